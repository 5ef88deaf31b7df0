"""Writes, A/B in one sitting (issue 21): two versions of ours side by side
(each its own checkout, by PYTHONPATH, each its own database) and
PostGraphile 5, all running at once; wrk against each in turn, A before B
in even rounds and after it in odd ones (`order`), each run after a
CHECKPOINT with no autovacuum worker running, each round after a VACUUM of
every database (docs/bench-ab-harness.md says why). Per run: req/s, and the server's CPU and PostgreSQL's
(every process of the cluster) per request, from /proc. The ratios are the
result: runs minutes apart on this shared machine differ by more than the
versions do.

    python -m bench.ab --a /tmp/main --b . --rounds 8 --seconds 3

`--profile DIR` instead records each version under one load with py-spy
(raw stacks, for `python -m bench.ab_profile`)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TypeVar

import psycopg

from .__main__ import WRITES, _ids, _numbered, _write
from .databases import _server, pair, quiet, vacuumed
from .documents import CREATE
from .http_load import Load, wrk
from .procstat import cpu_seconds
from .servers import BENCH, OURS, PEER5, POSTGRAPHILE5, Server, answers, started

PG5 = "pg5"
T = TypeVar("T")
# Each case: ours' load, and PostGraphile 5's (REST and the numbered
# createTodo of issue 20 are set beside its GraphQL mutations, as in make bench).
CASES = ("createTodo", "updateTodo", "rest-post", "rest-patch", "createTodo-numbered")
# Each case but the numbered one: its test in make bench's WRITES, in that order.
_TESTS = dict(zip(CASES[: len(WRITES)], WRITES, strict=True))


# Each server's own port (several run at once), its output beside the TMPDIR.
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    name: str, args: list[str], env: dict[str, str], cwd: Path, probe: str, wait: float = 60
) -> AbstractContextManager[Server]:
    port = _free_port()
    env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    args = [a.replace("{port}", str(port)) for a in args]
    # The port in the name: bench.ab and bench.instructions running at once keep both logs.
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"ab-{name}-{port}.log"
    return started(name, args, env, cwd, port, functools.partial(answers, graphql=probe == "graphql"), log, wait)


def ours_env(tree: Path, dsn: str, journal: str = "trigger") -> dict[str, str]:
    """One checkout of ours (by PYTHONPATH) on its own database, as make bench
    runs ours; `journal`: Settings.journal (decoded: the database's sequencer runs beside it)."""
    return {
        "PYTHONPATH": str(tree.resolve()),
        "DATABASE_URL": dsn,
        "JOURNAL": journal,
        "POOL_SIZE": "10",
        "WEB_DIST": "",
        "LOG_LEVEL": "warning",
        # make bench's plain `ours` (no cache); BENCH_RESPONSE_CACHE_SIZE
        # measures a server as it runs by default, with the front door's cache.
        "RESPONSE_CACHE_SIZE": os.environ.get("BENCH_RESPONSE_CACHE_SIZE", "0"),
    }


def ours(name: str, tree: Path, dsn: str, journal: str = "trigger") -> AbstractContextManager[Server]:
    serve = str(Path(sys.executable).parent / "graphql-todos")
    return _start(name, [serve, "serve"], ours_env(tree, dsn, journal), tree, "healthz")


def peer5(peer_url: str) -> AbstractContextManager[Server]:
    node = str(PEER5 / "node_modules" / ".bin" / "node")
    cli = str(PEER5 / "node_modules" / "postgraphile" / "dist" / "cli-run.js")
    args = [node, cli, "-C", str(BENCH / "peer5.config.mjs"), "--host", "127.0.0.1", "--port", "{port}"]
    return _start(PG5, args, {"NODE_ENV": "production", "DATABASE_URL": peer_url}, PEER5, "graphql")


def loads(case: str, ours_ids: tuple[str, ...], peer_ids: tuple[str, ...]) -> tuple[Load, Load]:
    """The case's load for ours, and for PostGraphile 5: make bench's (its
    WRITES'), REST's peer its GraphQL mutation."""
    if case == "createTodo-numbered":
        return Load("/graphql", _numbered(CREATE[OURS]), numbered=True), _write("createTodo", POSTGRAPHILE5, peer_ids)
    test = _TESTS[case]
    return _write(test, OURS, ours_ids), _write(test.split(" (REST")[0], POSTGRAPHILE5, peer_ids)


def postmaster(admin: str) -> int:
    with psycopg.connect(admin) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _system_seconds(pid: int) -> float:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[12]) / os.sysconf("SC_CLK_TCK")


def measure(server: Server, load: Load, seconds: float, pg: int) -> dict[str, float]:
    cpu, db, system = cpu_seconds(server.pid), cpu_seconds(pg), _system_seconds(server.pid)
    result = wrk(server.url, load, seconds, 20)
    cpu, db = cpu_seconds(server.pid) - cpu, cpu_seconds(pg) - db
    system = _system_seconds(server.pid) - system
    requests = result.requests_per_second * seconds
    return {
        "rps": result.requests_per_second,
        "errors": result.errors,
        "cpu_us": cpu / requests * 1e6,
        "pg_us": db / requests * 1e6,
        "sys_us": system / requests * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="checkout of version A (the base)")
    parser.add_argument("--b", type=Path, required=True, help="checkout of version B (the change)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--out", type=Path, help="JSON lines, one per run")
    parser.add_argument(
        "--b-journal", default="trigger", choices=("trigger", "decoded"),
        help="JOURNAL of version B (A's: trigger); decoded needs the server at wal_level logical (the embedded one is)",
    )
    parser.add_argument("--profile", type=Path, help="record py-spy raw stacks here instead")
    args = parser.parse_args()
    cases = args.cases.split(",")
    with _server() as admin, pair(admin, "_a") as dbs_a, pair(admin, "_b") as dbs_b, ExitStack() as stack:
        a = stack.enter_context(ours("A", args.a, dbs_a.ours))
        b = stack.enter_context(ours("B", args.b, dbs_b.ours, args.b_journal))
        p5 = stack.enter_context(peer5(dbs_a.peer_url))
        pg = postmaster(admin)
        ids = {"A": _ids(dbs_a.ours, 50), "B": _ids(dbs_b.ours, 50)}
        plans = warmed(cases, [a, b, p5], ids, _ids(dbs_a.peer, 50))
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for case, runs in plans.items():
                for server, load in runs[:2]:
                    target = args.profile / f"{case}-{server.name}.txt"
                    spy = subprocess.Popen(
                        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.pid), "--format",
                         "raw", *os.environ.get("SPY_ARGS", "").split(), "--rate", "250", "--duration", str(int(args.seconds)), "-o", str(target)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                    r = measure(server, load, args.seconds, pg)
                    spy.wait()
                    print(case, server.name, json.dumps(r), flush=True)
            return
        alternate(plans, args.rounds, args.seconds, pg, args.out, admin, (dbs_a.ours, dbs_b.ours, dbs_a.peer))


def warmed(
    cases: list[str], servers: list[Server], ids: dict[str, tuple[str, ...]], peer_ids: tuple[str, ...]
) -> dict[str, list[tuple[Server, Load]]]:
    """Each case's load for each server (PostGraphile 5 by its name), each checked and run for a second."""
    plans: dict[str, list[tuple[Server, Load]]] = {}
    for case in cases:
        runs = []
        for server in servers:
            ours_load, pg5_load = loads(case, ids.get(server.name, ()), peer_ids)
            runs.append((server, pg5_load if server.name == PG5 else ours_load))
        for server, load in runs:
            load.check(server.url)
            wrk(server.url, load, 1, 20)
        plans[case] = runs
    return plans


def order(servers: list[T], round_: int) -> list[T]:
    """A, B and PostGraphile 5 in a round's order: A before B in even
    rounds, after it in odd ones, PostGraphile 5 moving through the three
    places (every order once in six rounds). Each run leaves the cluster a
    little costlier for the next (the journal grows, rows are rewritten,
    pages are left dirty), so the later of A and B pays more; a rotation of
    the three put B after A in the first three rounds of every six (and
    reversing every other round kept it so, as it still does for any other
    number of servers)."""
    if len(servers) != 3:
        turned = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
        return turned[::-1] if round_ % 2 else turned
    a, b, peer = servers
    pair = [a, b] if round_ % 2 == 0 else [b, a]
    pair.insert(round_ % 3, peer)
    return pair


def alternate(
    plans: dict[str, list[tuple[Server, Load]]], rounds: int, seconds: float, pg: int, out: Path | None,
    admin: str | None = None, dsns: tuple[str, ...] = (),
) -> None:
    """The rounds, a JSON line per run (to `out` too), the servers in
    `order`; every database vacuumed before each round (and autovacuum off
    for them), a CHECKPOINT before each run (both left out without `admin`,
    as the callers before them had it). Rounds outermost: the cases
    alternate too (numbered against plain createTodo, say, is a ratio of two
    cases within one round)."""
    with ExitStack() as stack:
        lines = stack.enter_context(out.open("a")) if out else None
        for round_ in range(rounds):
            vacuumed(dsns)
            for case, runs in plans.items():
                for server, load in order(runs, round_):
                    if admin:
                        quiet(admin)
                    r = measure(server, load, seconds, pg)
                    line = json.dumps({"case": case, "server": server.name, "round": round_, **r})
                    print(line, flush=True)
                    if lines:
                        lines.write(line + "\n")
                        lines.flush()


def summary(path: Path) -> None:
    """Medians per case and server, and the ratios (pairs: B worse than A in how many rounds)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for case in dict.fromkeys(r["case"] for r in rows):
        # A, B and PostGraphile 5, and any other versions.
        names = dict.fromkeys(["A", "B", PG5, *(r["server"] for r in rows)])
        by = {s: [r for r in rows if r["case"] == case and r["server"] == s] for s in names}
        med = {s: {k: statistics.median(r[k] for r in v) for k in ("rps", "cpu_us", "pg_us")} for s, v in by.items() if v}
        rps = {s: {r["round"]: r["rps"] for r in v} for s, v in by.items()}
        print(f"{case} ({len({r['round'] for r in by['A']})} rounds)")
        for s, m in med.items():
            print(f"  {s}: {m['rps']:.0f} req/s, server {m['cpu_us']:.0f} us/req, PostgreSQL {m['pg_us']:.0f} us/req")
        if "B" in med:
            rounds = rps["A"].keys() & rps["B"].keys()
            worse = sum(rps["B"][k] < rps["A"][k] for k in rounds)
            print(f"  B/A req/s {med['B']['rps'] / med['A']['rps']:.2f} (B slower in {worse} of {len(rounds)}),"
                  f" CPU {med['B']['cpu_us'] / med['A']['cpu_us']:.2f}")
        if PG5 in med:
            # Each version's ratio to PostGraphile 5, of the medians and (in brackets) of each round's pair.
            print("  " + ", ".join(
                f"{s}/PG5 {m['rps'] / med[PG5]['rps']:.2f} ({statistics.median(rps[s][k] / rps[PG5][k] for k in rps[s] if k in rps[PG5]):.2f})"
                for s, m in med.items() if s != PG5
            ))
        for other in [s for s in med if s not in ("A", "B", PG5)]:
            print(f"  {other}/A {med[other]['rps'] / med['A']['rps']:.2f}"
                  + (f", {other}/B {med[other]['rps'] / med['B']['rps']:.2f}" if "B" in med else ""))
    # Issue 20's target: a numbered createTodo within 1.1x of the plain one,
    # each round's pair: in req/s, and in CPU (server and PostgreSQL) per request.
    run = {(r["case"], r["server"], r["round"]): r for r in rows}
    for s in ("A", "B"):
        pairs = [(run["createTodo", s, k], run["createTodo-numbered", s, k])
                 for (case, server, k) in run if case == "createTodo" and server == s and ("createTodo-numbered", s, k) in run]
        if pairs:
            slower = [plain["rps"] / numbered["rps"] for plain, numbered in pairs]
            cpu = [(numbered["cpu_us"] + numbered["pg_us"]) / (plain["cpu_us"] + plain["pg_us"]) for plain, numbered in pairs]
            print(f"{s}: numbered createTodo slower than plain by {statistics.median(slower):.3f}x in req/s,"
                  f" {statistics.median(cpu):.3f}x in CPU per request (per round medians of {len(pairs)};"
                  f" req/s each {', '.join(f'{x:.2f}' for x in slower)})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(Path(sys.argv[2]))
    else:
        main()
