"""Instructions per request, A/B: each version of ours under valgrind's
callgrind, the same requests sent to each (the A/B of bench/ab.py, in
instructions rather than CPU time). The count is the server's own user-space
work, whatever else loads the machine: CPU time per request on this shared
machine spreads by 20 to 40% between runs a minute apart, an instruction
count by about 1%. It leaves out the kernel's share (system time) and what
a cache miss or a busy core costs; bench/ab.py measures those.

    python -m bench.instructions --a /tmp/main --b . --requests 400

Each case: the server's counters zeroed, instrumentation on, `--requests`
requests from 20 concurrent clients, instrumentation off, counters dumped.

With --bytecodes, no valgrind: each server counts the Python bytecodes it
runs (sys.settrace's opcode events, per function) over the same requests,
and the functions whose count moved most are listed. A minute, not twenty;
deterministic but for how writes fall into batches (about 100 a write
either way); blind to C (psycopg's, uvloop's, orjson's work)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

from .__main__ import _ids
from .ab import CASES, _start, loads, ours_env
from .databases import _server, pair
from .http_load import Load
from .servers import Server

CLIENTS = 20


@contextmanager
def ours_under_callgrind(name: str, tree: Path, dsn: str, out: Path) -> Iterator[Server]:
    serve = str(Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parent.parent / ".venv")) / "bin" / "graphql-todos")
    args = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", serve, "serve"]
    env = ours_env(tree, dsn)
    # Under valgrind, on a loaded machine, the start takes minutes.
    with _start(name, args, env, tree, "healthz", wait=600) as running:
        yield running


# The server, counting bytecodes between SIGUSR1 and SIGUSR2, then writing
# {"file:line:function": count} to $BYTECODES_OUT. Run by `python -c`: the
# tree on PYTHONPATH may be one without this module.
_COUNTING = """
import collections, json, os, signal, sys
counts = collections.Counter()
def local(frame, event, arg):
    if event == "opcode":
        counts[frame.f_code] += 1
    return local
def called(frame, event, arg):
    frame.f_trace_opcodes, frame.f_trace_lines = True, False
    return local
def on(*_):
    counts.clear()
    sys.settrace(called)
def off(*_):
    sys.settrace(None)
    out = collections.Counter()
    for code, n in counts.items():
        out[f"{code.co_filename}:{code.co_firstlineno}:{code.co_qualname}"] += n
    with open(os.environ["BYTECODES_OUT"] + ".part", "w") as f:
        json.dump(out, f)
    os.replace(os.environ["BYTECODES_OUT"] + ".part", os.environ["BYTECODES_OUT"])
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
from graphql_todos.cli import main
sys.argv = ["graphql-todos", "serve"]
sys.exit(main())
"""


@contextmanager
def ours_counting(name: str, tree: Path, dsn: str, out: Path) -> Iterator[Server]:
    env = {**ours_env(tree, dsn), "BYTECODES_OUT": str(out)}
    with _start(name, [sys.executable, "-c", _COUNTING], env, tree, "healthz") as running:
        yield running


def bytecodes(server: Server, out: Path, load: Load, requests: int) -> Counter[str]:
    """Bytecodes per function (file:line:name) over `requests` requests."""
    out.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR1)
    time.sleep(0.5)  # the handler runs between two bytecodes of the main thread
    asyncio.run(send(server.url, load, requests))
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 60
    while not out.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no counts from {server.name}")
        time.sleep(0.2)
    return Counter(json.loads(out.read_text()))


def _where(key: str) -> str:
    """A function's key without the tree's or site-packages' prefix (A and B alike)."""
    path, _, name = key.rsplit(":", 2)
    for marker in ("site-packages/", "graphql_todos/", "/lib/python"):
        if marker in path:
            path = (marker if marker == "graphql_todos/" else "") + path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


Start = Callable[[str, Path, str, Path], AbstractContextManager[Server]]


@contextmanager
def _versions(args: argparse.Namespace, start: Start, work: Path, suffix: str, ext: str) -> Iterator[tuple[Server, Server, dict[str, tuple[str, ...]]]]:
    """A and B, each by `start` on its own database (names ending in
    `suffix` and a or b), and each database's first 50 todos' ids."""
    with (
        _server() as admin,
        pair(admin, f"{suffix}a") as dbs_a,
        pair(admin, f"{suffix}b") as dbs_b,
        start("A", args.a, dbs_a.ours, work / f"a.{ext}") as a,
        start("B", args.b, dbs_b.ours, work / f"b.{ext}") as b,
    ):
        yield a, b, {"A": _ids(dbs_a.ours, 50), "B": _ids(dbs_b.ours, 50)}


def compare_bytecodes(args: argparse.Namespace, work: Path) -> None:
    with _versions(args, ours_counting, work, "_b", "json") as (a, b, ids):
        for case in args.cases.split(","):
            per: dict[str, Counter[str]] = {"A": Counter(), "B": Counter()}
            for server in (a, b):
                load = loads(case, ids[server.name], ())[0]
                asyncio.run(send(server.url, load, 50))  # warm: statements prepared, caches filled
                for key, n in bytecodes(server, work / f"{server.name.lower()}.json", load, args.requests).items():
                    per[server.name][_where(key)] += n / args.requests
            total_a, total_b = sum(per["A"].values()), sum(per["B"].values())
            print(f"{case}: A {total_a:,.0f}, B {total_b:,.0f} bytecodes per request, B/A {total_b / total_a:.3f}", flush=True)
            moved = sorted(per["A"].keys() | per["B"].keys(), key=lambda k: -abs(per["B"][k] - per["A"][k]))
            for key in moved[: args.top]:
                print(f"  {per['A'][key]:7.1f} -> {per['B'][key]:7.1f}  {key}", flush=True)


def control(pid: int, *args: str) -> None:
    """callgrind_control on the server's valgrind process. vgdb names its
    pipes with $HOST, which the server has set (HOST=127.0.0.1): so must this."""
    env = {**os.environ, "HOST": "127.0.0.1"}
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120, env=env)


async def send(url: str, load: Load, requests: int) -> None:
    """Exactly `requests` requests, CLIENTS at a time; every one must succeed."""
    ids = load.ids or ("",)
    counter = iter(range(requests))

    async def client() -> None:
        # A numbered load: each client its own id, numbering its requests 1, 2, ... (as bench/post.lua).
        numbered, seq = str(uuid.uuid4()), 0
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            for n in counter:
                todo = ids[n % len(ids)]
                seq += 1
                # {n} as bench/post.lua fills it: each update sets a new title, as in make bench.
                body = (load.body or "").replace("{id}", todo).replace("{n}", str(n))
                body = body.replace("{client}", numbered).replace("{seq}", str(seq))
                r = await http.request(
                    load.method, load.path.replace("{id}", todo), content=body,
                    headers={"Content-Type": "application/json"},
                )
                if not r.is_success or b'"errors"' in r.content:
                    raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def _dumped(work: Path, name: str, pid: int) -> Path:
    """Ask for a dump and wait for it: dumps are numbered, <file>.1, <file>.2, ..."""
    before = set(work.glob(f"{name}.out.*"))
    control(pid, "-d")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = set(work.glob(f"{name}.out.*")) - before
        if new and "totals:" in (dump := max(new, key=lambda p: int(p.suffix[1:]))).read_text(errors="replace"):
            return dump
        time.sleep(0.5)
    raise RuntimeError(f"no dump from {name}")


def instructions(dump: Path) -> int:
    """A callgrind dump's totals: its Ir (its summary line is 0 for a dump on demand)."""
    text = dump.read_text(errors="replace")
    found = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no totals in {dump}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bytecodes", action="store_true", help="count Python bytecodes, not instructions (one round)")
    parser.add_argument("--top", type=int, default=20, help="with --bytecodes: the functions that moved most")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="instructions-"))
    if args.bytecodes:
        return compare_bytecodes(args, work)
    with _versions(args, ours_under_callgrind, work, "_i", "out") as (a, b, ids):
        for case in args.cases.split(","):
            counts: dict[str, list[float]] = {"A": [], "B": []}
            for round_ in range(args.rounds):
                for server in (a, b) if round_ % 2 == 0 else (b, a):
                    load = loads(case, ids[server.name], ())[0]
                    asyncio.run(send(server.url, load, 50))  # warm: statements prepared, caches filled
                    pid = server.pid
                    control(pid, "-z")
                    control(pid, "-i", "on")
                    asyncio.run(send(server.url, load, args.requests))
                    control(pid, "-i", "off")
                    dump = _dumped(work, server.name.lower(), pid)
                    counts[server.name].append(instructions(dump) / args.requests)
                    print(f"{case} {server.name}: {counts[server.name][-1] / 1e6:.2f} M instructions per request", flush=True)
            a_mean = sum(counts["A"]) / len(counts["A"])
            b_mean = sum(counts["B"]) / len(counts["B"])
            print(f"{case}: A {a_mean / 1e6:.2f} M, B {b_mean / 1e6:.2f} M, B/A {b_mean / a_mean:.3f}", flush=True)


if __name__ == "__main__":
    main()
