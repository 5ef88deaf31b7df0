"""HTTP throughput with wrk: the same script and connection count for every server."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(__file__).resolve().parent / "post.lua"


@dataclass(frozen=True)
class Load:
    """One HTTP test: a body to POST (None: GET) at a path."""

    path: str
    body: str | None = None

    def check(self, base_url: str) -> None:
        """One request first: a test that answers errors fast must not count as fast."""
        url = base_url + self.path
        r = httpx.post(url, content=self.body, headers={"Content-Type": "application/json"}) if self.body else httpx.get(url)
        if r.status_code != 200 or b'"errors"' in r.content:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:500]}")


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    errors: int
    command: str


def wrk(base_url: str, load: Load, seconds: float, connections: int) -> WrkResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    env = dict(os.environ)
    if load.body is not None:
        args += ["-s", str(SCRIPT)]
        env["BENCH_BODY"] = load.body
    args.append(base_url + load.path)
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"no rate in wrk output: {out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, failed.groups())) if failed else 0)
    shown = (f"BENCH_BODY={shlex.quote(load.body)} " if load.body else "") + shlex.join(args)
    shown = shown.replace(str(SCRIPT), "bench/post.lua")
    return WrkResult(float(rate.group(1)), errors, shown)
