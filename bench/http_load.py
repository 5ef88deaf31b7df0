"""HTTP throughput with wrk: the same script and connection count for every server."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(__file__).resolve().parent / "post.lua"


@dataclass(frozen=True)
class Load:
    """One HTTP test: a body to send (None: GET) at a path, by POST or
    `method`; with `ids`, each request puts the next of them in place of
    {id} in the path and the body; `numbered`: each request numbers its
    mutation with {client} and {seq} in the body, a client per connection
    (bench/post.lua); with `authorization`, every request sends it (a
    person's `Bearer` token)."""

    path: str
    body: str | None = None
    method: str = "POST"
    ids: tuple[str, ...] = ()
    authorization: str | None = None
    numbered: bool = False

    def check(self, base_url: str) -> None:
        """One request first: a test that answers errors fast must not count as fast."""
        first = self.ids[0] if self.ids else ""
        url = base_url + self.path.replace("{id}", first)
        headers = {"Authorization": self.authorization} if self.authorization else {}
        if self.body is None:
            r = httpx.get(url, headers=headers)
        else:
            body = self.body.replace("{id}", first).replace("{client}", str(uuid.uuid4())).replace("{seq}", "1")
            r = httpx.request(self.method, url, content=body, headers={"Content-Type": "application/json", **headers})
        if not r.is_success or b'"errors"' in r.content:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:500]}")


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    errors: int
    command: str


def wrk(base_url: str, load: Load, seconds: float, connections: int) -> WrkResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    env = dict(os.environ)
    shown = ""
    if load.body is not None:
        args += ["-s", str(SCRIPT)]
        settings = {"BENCH_BODY": load.body}
        if load.method != "POST":
            settings["BENCH_METHOD"] = load.method
        if load.ids:
            settings |= {"BENCH_PATH": load.path, "BENCH_IDS": ",".join(load.ids)}
        if load.numbered:
            # New clients each run: a key used before would be a retry.
            settings["BENCH_CLIENTS"] = ",".join(str(uuid.uuid4()) for _ in range(connections))
        if load.authorization:
            settings["BENCH_AUTHORIZATION"] = load.authorization
        env |= settings
        # The ids are many and change each run, a token is a credential: shown by name only.
        hidden = {"BENCH_IDS": "<ids>", "BENCH_CLIENTS": "<client ids>", "BENCH_AUTHORIZATION": "<Bearer token>"}
        shown = " ".join(f"{k}={shlex.quote(hidden.get(k, v))}" for k, v in settings.items()) + " "
    args.append(base_url + (load.path.split("{id}")[0] if load.ids else load.path))
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"no rate in wrk output: {out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, failed.groups())) if failed else 0)
    shown += shlex.join(args)
    shown = shown.replace(str(SCRIPT), "bench/post.lua")
    return WrkResult(float(rate.group(1)), errors, shown)
