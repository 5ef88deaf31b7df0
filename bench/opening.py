"""Opening subscriptions, A/B in one sitting (issue 21): two versions of ours
(each its own checkout, by PYTHONPATH, each its own database) and
PostGraphile 5, a fresh server each run, the order rotated every round.
Per run: the time to open N graphql-transport-ws subscriptions (handshake,
connection_init, subscribe; bench/fanout_client.c) and the server's CPU per
open, as `make bench` measures them, on one shared document and on one row
each (`todo(id)`).

    python -m bench.opening --a /tmp/main --b . --subscribers 1000,10000 --rounds 4

(each size in turn, its rows reset to N).

`--profile DIR` records ours (A and B) with py-spy while they open (raw
stacks, DIR/<case>-<label>-<round>.txt) and prints each one's shares by step
(STEPS).

`--objects` counts instead the objects an open socket keeps: the server's
objects by type (after a full collection, `gc.get_objects()`), before and
after N opens, the difference divided by N (A and B, one run each per round);
then the objects made in that time by type and owner (what refers to each),
to say which code keeps them.

`--instructions` counts instead, under valgrind's callgrind, the server's
instructions per open (A and B only, as bench/instructions.py does for
requests: the count barely moves with the machine's load, where the time
and CPU per open do by 20-50%). One server per version for the whole run,
warmed by a first open of a tenth as many; then each round opens N anew (the
last round's sockets closed), the count taken from the first socket's
connect until a change reached every subscriber, as the CPU per open is.

`--bytecodes` counts instead the Python bytecodes per open (A and B, no
valgrind: bench/instructions.py's counting server, a minute, not twenty),
over the same window, and lists the functions whose count moved most:
deterministic but for how many subscribes a journal read serves, and blind
to C (uvloop's, httptools', orjson's work).

The `rest-sse` case (ours only) opens N REST event streams instead
(`GET /api/todos/`, Accept: text/event-stream, from now), SSE_IN_FLIGHT at a
time, each open at its first frame (the resume point), over the same window
(to the first change every stream has); with every mode but `--objects`.
Its windows under the tracer run past the 15 s keepalive: count with
KEEPALIVE_SECONDS=3600 in the environment (the servers take it) to leave
the heartbeats out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from .__main__ import _ids
from .ab import PG5, _start, order, ours_env, peer5
from .changes import sql_inserts, sql_retitle_all
from .databases import Databases, databases, reset_rows
from .documents import CHANGES, ROW, row_variables
from .fanout import Clients, FanoutResult, client_processes, fan_out
from .instructions import _COUNTING as COUNTING
from .instructions import _dumped, _where, control, instructions
from .procstat import cpu_seconds, rss_bytes
from .servers import OURS, POSTGRAPHILE5, Server

CASES = ("shared", "rows", "rest-sse")
# Cases PostGraphile 5 has no counterpart of: A and B alone.
OURS_ONLY = ("rest-sse",)
# As many streams opening at once as bench/fanout_client.c's 4 processes
# open sockets (64 each).
SSE_IN_FLIGHT = 256
# An open's steps, by a frame on the sample's stack (the first step matching
# wins); samples of none are the event loop's own (uvloop's C: accepting,
# reading, calling back) and the rest. The idle worker thread is left out.
IDLE = "Thread._bootstrap"
STEPS = (
    ("keepalive pings", ("send_keepalive_ping",)),
    ("HTTP upgrade: parse, hand over", ("HttpToolsProtocol.data_received", "connection_made", "create_protocol")),
    ("101 response (accept)", ("GraphQL.create_websocket_response", "WebSocket.accept")),
    ("connection_init -> ack", ("handle_connection_init",)),
    ("subscribe -> group join", ("run_operation", "handle_subscribe")),
    ("journal position reads", ("Coalesced._run",)),
    ("warm-up change fanned out", ("Group._run",)),
    ("frames in (uvicorn, websockets)", ("WebSocketsSansIOProtocol.data_received",)),
    ("rest of the socket's app (its stack, the receive loop)", ("run_asgi",)),
)


def ours(
    name: str, tree: Path, dsn: str, under: tuple[str, ...] = (), site: Path | None = None, counts: Path | None = None
) -> AbstractContextManager[Server]:
    """`under`: the command the server runs under (valgrind's); `site`: a
    folder on its path after the checkout (a sitecustomize: `--objects`);
    `counts`: where it writes its bytecodes counted (`--bytecodes`)."""
    # Every subscriber connects from this one address.
    env = {**ours_env(tree, dsn), "MAX_SOCKETS_PER_CLIENT": "100000"}
    if site is not None:
        env["PYTHONPATH"] += f":{site}"
    command = [str(Path(sys.executable).parent / "graphql-todos"), "serve"]
    if counts is not None:
        env["BYTECODES_OUT"] = str(counts)
        command = [sys.executable, "-c", COUNTING]
    # Under valgrind, on a loaded machine, the start takes minutes.
    wait = 600 if under else 60
    return _start(name, [*under, *command], env, tree, "healthz", wait)


def _alternating(
    args: argparse.Namespace, dsn: str, n: int, start: Callable[[str, Path], AbstractContextManager[Server]]
) -> Iterator[tuple[str, Server]]:
    """A's and B's servers (`start(label, tree)`), one each for the whole
    run, warmed by a first open of a tenth as many; then every round's
    (case, server), A first in even rounds, B in odd ones."""
    with contextlib.ExitStack() as stack:
        servers = []
        for label, tree in (("A", args.a), ("B", args.b)):
            server = stack.enter_context(start(label, tree))
            for case in args.cases.split(","):
                asyncio.run(_open(server, dsn, OURS, case, max(1, n // 10)))  # warm: imports, plans, caches
            servers.append(server)
        for round_ in range(args.rounds):
            for case in args.cases.split(","):
                for server in servers if round_ % 2 == 0 else servers[::-1]:
                    yield case, server


def counted(args: argparse.Namespace, dsn: str, n: int) -> None:
    """`--instructions`: A's and B's instructions per open, by case, alternating every round."""
    work = Path(tempfile.mkdtemp(prefix="opening-instructions-"))
    counts: dict[tuple[str, str], list[float]] = {}

    def start(label: str, tree: Path) -> AbstractContextManager[Server]:
        callgrind = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={work / label}.out")
        return ours(label, tree, dsn, callgrind)

    for case, server in _alternating(args, dsn, n, start):
        control(server.pid, "-z")
        control(server.pid, "-i", "on")
        result = asyncio.run(_open(server, dsn, OURS, case, n))
        control(server.pid, "-i", "off")
        per_open = instructions(_dumped(work, server.name, server.pid)) / n
        counts.setdefault((case, server.name), []).append(per_open)
        print(f"{case} {server.name}: {per_open / 1e6:.3f} M instructions per open, "
              f"failed {result.failed_connections}", flush=True)
    print(f"means of {args.rounds} rounds, {n} subscribers:")
    for case in args.cases.split(","):
        a, b = (statistics.mean(counts[case, label]) for label in ("A", "B"))
        print(f"  {case}: A {a / 1e6:.3f} M, B {b / 1e6:.3f} M per open, B/A {b / a:.3f}")


def counted_bytecodes(args: argparse.Namespace, dsn: str, n: int) -> None:
    """`--bytecodes`: A's and B's Python bytecodes per open, by case,
    alternating every round, and the functions that moved most."""
    work = Path(tempfile.mkdtemp(prefix="opening-bytecodes-"))
    per: dict[tuple[str, str], list[Counter[str]]] = {}
    for case, server in _alternating(args, dsn, n, lambda label, tree: ours(label, tree, dsn, counts=work / f"{label}.json")):
        out = work / f"{server.name}.json"
        out.unlink(missing_ok=True)
        time.sleep(2)  # the last run's sockets closed (their ends are not an open's)
        os.kill(server.pid, signal.SIGUSR1)
        time.sleep(0.5)  # the handler runs between two bytecodes of the main thread
        result = asyncio.run(_open(server, dsn, OURS, case, n))
        os.kill(server.pid, signal.SIGUSR2)
        for _ in range(600):
            if out.exists():
                break
            time.sleep(0.1)
        counts: Counter[str] = Counter()
        for key, count in json.loads(out.read_text()).items():
            counts[_where(key)] += count / n
        per.setdefault((case, server.name), []).append(counts)
        print(f"{case} {server.name}: {sum(counts.values()):,.0f} bytecodes per open, "
              f"failed {result.failed_connections}", flush=True)
    print(f"means of {args.rounds} rounds, {n} subscribers:")
    for case in args.cases.split(","):
        a, b = (_mean(per[case, label]) for label in ("A", "B"))
        total_a, total_b = sum(a.values()), sum(b.values())
        print(f"  {case}: A {total_a:,.0f}, B {total_b:,.0f} bytecodes per open, B/A {total_b / total_a:.3f}")
        for key in sorted(a.keys() | b.keys(), key=lambda k: -abs(b[k] - a[k]))[: args.top]:
            print(f"    {a[key]:7.1f} -> {b[key]:7.1f}  {key}")


def _mean(rounds: list[Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in rounds:
        total.update(counts)
    return Counter({key: count / len(rounds) for key, count in total.items()})


# Loaded by the server (`ours(site=...)`): on SIGUSR1, after a full
# collection, its objects by type, and the objects made since the last
# signal by type and owner (the first of them, in the collector's order,
# that refers to it, with the attribute or key; ROOT: only older objects
# do), as JSON in OPENING_OBJECTS.
_COUNTER = """
import collections, gc, json, os, signal, types

_seen = set()

def _label(o):
    if isinstance(o, types.MethodType):
        return "method " + getattr(o.__func__, "__qualname__", "?")
    if isinstance(o, (types.FunctionType, types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType)):
        return type(o).__name__ + " " + o.__qualname__
    return type(o).__qualname__

def _where(owner, o):
    pairs = owner.items() if isinstance(owner, dict) else getattr(owner, "__dict__", {}).items()
    for key, value in pairs:
        if value is o:
            return f"[{key!r}]" if isinstance(owner, dict) else "." + key
    for slot in getattr(type(owner), "__slots__", ()):
        if getattr(owner, slot, None) is o:
            return "." + slot
    return ""

def _count(*_):
    global _seen
    gc.collect()
    objects = gc.get_objects()
    new = [o for o in objects if id(o) not in _seen]
    ids = {id(o) for o in new}
    owners = {}
    for o in new:
        for referent in gc.get_referents(o):
            if id(referent) in ids:
                owners.setdefault(id(referent), o)
    kept = collections.Counter()
    for o in new:
        owner = owners.get(id(o))
        kept[_label(o) + " <- " + ("ROOT" if owner is None else _label(owner) + _where(owner, o))] += 1
    counts = {"types": collections.Counter(type(o).__qualname__ for o in objects), "owners": kept}
    _seen = {id(o) for o in objects}
    path = os.environ["OPENING_OBJECTS"]
    with open(path + ".part", "w") as out:
        json.dump(counts, out)
    os.replace(path + ".part", path)

signal.signal(signal.SIGUSR1, _count)
"""


def _objects_now(server: Server, out: Path) -> tuple[Counter[str], Counter[str]]:
    """The server's objects by type, and those made since the last call by type and owner."""
    out.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR1)
    for _ in range(600):
        if out.exists():
            counts = json.loads(out.read_text())
            return Counter(counts["types"]), Counter(counts["owners"])
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} wrote no counts")


async def _kept(server: Server, dsn: str, case: str, n: int, out: Path) -> tuple[Counter[str], Counter[str]]:
    """The objects N open sockets keep, by type (counted before they open,
    and once every one has had the first change), and by type and owner."""
    before, _ = _objects_now(server, out)
    query = CHANGES[OURS] if case == "shared" else ROW[OURS]
    variables = [] if case == "shared" else [json.dumps(row_variables(OURS, i)) for i in _ids(dsn, n)]
    clients = await Clients.start(server.ws_url, "graphql-transport-ws", n, 4, query, variables)
    try:
        await clients.ready(60 + n / 50)
        await asyncio.sleep(2)  # every subscribe answered (its journal read)
        after, owners = _objects_now(server, out)
    finally:
        await clients.close()
    after.subtract(before)
    return after, owners


def objects(args: argparse.Namespace, dsn: str, n: int) -> None:
    """`--objects`: the objects an open socket keeps, A and B, by case: by
    type, then (at least half a socket's worth each) by type and owner."""
    work = Path(tempfile.mkdtemp(prefix="opening-objects-"))
    (work / "sitecustomize.py").write_text(_COUNTER)
    for round_ in range(args.rounds):
        for case in args.cases.split(","):
            for label, tree in (("A", args.a), ("B", args.b))[:: 1 if round_ % 2 == 0 else -1]:
                out = work / f"{label}.json"
                os.environ["OPENING_OBJECTS"] = str(out)
                with ours(label, tree, dsn, site=work) as server:
                    kept, owners = asyncio.run(_kept(server, dsn, case, n, out))
                top = ", ".join(f"{name} {count / n:.1f}" for name, count in kept.most_common(60) if count)
                print(f"{case} {label}: {sum(kept.values()) / n:.1f} objects per socket ({top})", flush=True)
                for name, count in owners.most_common():
                    if count >= n / 2:
                        print(f"  {count / n:5.2f}  {name}")


class _EventStream(asyncio.Protocol):
    """One `GET /api/todos/` event stream, read raw in this process (a few
    bytecodes a read, where an HTTP client per stream would outweigh the
    server's share of the cores): `opened` at its first frame, the resume
    point (ConnectionError for any status but 200); `arrived` called at its
    first event."""

    def __init__(self, request: bytes, arrived: Callable[[], None]) -> None:
        self.request = request
        self.arrived: Callable[[], None] | None = arrived
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head = b""
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            status = self.head.partition(b"\r\n")[0]
            if b"\r\n\r\n" in self.head and not status.startswith(b"HTTP/1.1 200 "):
                self.opened.set_exception(ConnectionError(status.decode("latin-1")))
                return
            if b"id: " not in self.head:
                return
            self.opened.set_result(None)
            data = self.head
        # An event is written whole, in one chunk: it comes in one read.
        if self.arrived is not None and b"event: " in data:
            self.arrived()
            self.arrived = None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before its first frame"))


async def _open_streams(server: Server, dsn: str, n: int) -> FanoutResult:
    """`rest-sse`: N event streams from now, then one INSERT, as fan_out
    opens sockets: the time until every stream has its first frame, and the
    server's CPU and memory per open until the change reached all."""
    result = FanoutResult(server.name, n)
    url = urlsplit(server.url)
    host, port = url.hostname, url.port
    assert host is not None and port is not None
    request = f"GET /api/todos/ HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(SSE_IN_FLIGHT)
    everyone = asyncio.Event()
    arrivals = 0

    def arrived() -> None:
        nonlocal arrivals
        arrivals += 1
        if arrivals == n - result.failed_connections:
            everyone.set()

    async def open_one() -> _EventStream:
        stream = _EventStream(request, arrived)
        async with gate:
            try:
                await loop.create_connection(lambda: stream, host, port)
                await asyncio.wait_for(stream.opened, 60)
            except (OSError, TimeoutError):
                result.failed_connections += 1
        return stream

    rss0, cpu0, t0 = rss_bytes(server.pid), cpu_seconds(server.pid), time.monotonic()
    streams = await asyncio.gather(*(open_one() for _ in range(n)))
    try:
        result.open_seconds = time.monotonic() - t0
        if result.failed_connections == n:
            everyone.set()  # none to wait for
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await sql_inserts(conn)(-1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone.wait(), 60)
        result.open_cpu_per_subscription = (cpu_seconds(server.pid) - cpu0) / n
        result.rss_per_subscription = (rss_bytes(server.pid) - rss0) / n
        result.expected, result.delivered = n - result.failed_connections, arrivals
    finally:
        for stream in streams:
            if stream.transport is not None:
                stream.transport.close()
    return result


async def _open(server: Server, dsn: str, kind: str, case: str, n: int) -> FanoutResult:
    if case == "rest-sse":
        return await _open_streams(server, dsn, n)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if case == "shared":
            return await fan_out(server, CHANGES[kind], n, 0, sql_inserts(conn), client_processes(n, 4))
        variables = [json.dumps(row_variables(kind, todo_id)) for todo_id in _ids(dsn, n)]
        change = sql_retitle_all(conn)
        return await fan_out(server, ROW[kind], n, 0, change, client_processes(n, 4), variables=variables, rounds=True)


@contextlib.contextmanager
def _profiled(server: Server, target: Path | None) -> Iterator[None]:
    """py-spy on the server while the block runs (ended by SIGINT, which
    makes it write what it has)."""
    if target is None:
        yield
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.pid), "--format", "raw",
         "--rate", "250", "-o", str(target)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def shares(raw: Path) -> dict[str, float]:
    """py-spy raw stacks' shares by step (STEPS), of the samples not idle."""
    counts: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or IDLE in stack:
            continue
        step = next((name for name, frames in STEPS if any(f in stack for f in frames)), "event loop and other")
        counts[step] = counts.get(step, 0) + int(n)
    total = sum(counts.values()) or 1
    return {step: counts[step] / total for step in [*(name for name, _ in STEPS), "event loop and other"] if step in counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for version, what in (("a", "the base"), ("b", "the change")):
        parser.add_argument(f"--{version}", type=Path, required=True, help=f"checkout of {what}")
    parser.add_argument("--subscribers", default="1000", help="comma-separated sizes, each run in turn")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--profile", type=Path, help="record ours with py-spy here while it opens")
    parser.add_argument("--instructions", action="store_true", help="count A's and B's instructions per open instead")
    parser.add_argument("--objects", action="store_true", help="count the objects an open socket keeps instead")
    parser.add_argument("--bytecodes", action="store_true", help="count A's and B's Python bytecodes per open instead")
    parser.add_argument("--top", type=int, default=25, help="with --bytecodes: the functions that moved most")
    args = parser.parse_args()
    if args.objects and "rest-sse" in args.cases.split(","):
        parser.error("--objects counts WebSocket opens (shared, rows) only")
    with databases() as dbs:
        for n in (int(size) for size in args.subscribers.split(",")):
            # The rows case's change retitles every row: exactly N, per size.
            reset_rows(dbs.ours, n)
            if args.objects:
                objects(args, dbs.ours, n)
            elif args.instructions:
                counted(args, dbs.ours, n)
            elif args.bytecodes:
                counted_bytecodes(args, dbs.ours, n)
            else:
                reset_rows(dbs.peer, n)
                timed(args, dbs, n)


def timed(args: argparse.Namespace, dbs: Databases, n: int) -> None:
    """A's, B's and PostGraphile 5's time and CPU per open, by case, the order rotated every round."""
    runs: dict[tuple[str, str], list[FanoutResult]] = {}
    servers: list[tuple[str, str, str, Callable[[], AbstractContextManager[Server]]]] = [
        ("A", OURS, dbs.ours, lambda: ours("A", args.a, dbs.ours)),
        ("B", OURS, dbs.ours, lambda: ours("B", args.b, dbs.ours)),
        (PG5, POSTGRAPHILE5, dbs.peer, lambda: peer5(dbs.peer_url)),
    ]
    for round_ in range(args.rounds):
        for case in args.cases.split(","):
            for label, kind, dsn, start in order(servers, round_):
                if kind != OURS and case in OURS_ONLY:
                    continue
                spied = args.profile / f"{case}-{label}-{round_}.txt" if args.profile and kind == OURS else None
                with start() as server, _profiled(server, spied):
                    result = asyncio.run(_open(server, dsn, kind, case, n))
                runs.setdefault((case, label), []).append(result)
                if spied is not None:
                    print(f"{spied.name}: " + ", ".join(f"{k} {v:.1%}" for k, v in shares(spied).items()))
                print(
                    f"{case} {label}: open {result.open_seconds:.3f} s, CPU per open "
                    f"{result.open_cpu_per_subscription * 1e3:.3f} ms, RSS per socket "
                    f"{result.rss_per_subscription / 1024:.1f} KiB, failed {result.failed_connections}",
                    flush=True,
                )
    print(f"medians of {args.rounds} rounds, {n} subscribers:")
    for (case, label), results in sorted(runs.items()):
        seconds = statistics.median(r.open_seconds for r in results)
        cpu = statistics.median(r.open_cpu_per_subscription for r in results)
        rss = statistics.median(r.rss_per_subscription for r in results)
        print(f"  {case} {label}: open {seconds:.3f} s, CPU per open {cpu * 1e3:.3f} ms, RSS per socket {rss / 1024:.1f} KiB")
    for case in args.cases.split(","):
        # Per round, B against A and against PostGraphile 5: median (range).
        for other in ("A", PG5) if case not in OURS_ONLY else ("A",):
            for name, value in (("time", "open_seconds"), ("CPU", "open_cpu_per_subscription")):
                ratios = [
                    getattr(b, value) / getattr(o, value)
                    for b, o in zip(runs[case, "B"], runs[case, other], strict=True)
                    if getattr(o, value)
                ]
                if ratios:
                    print(f"  {case} B/{other} {name}: {statistics.median(ratios):.2f} "
                          f"({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
