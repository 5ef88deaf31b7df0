"""make bench: the measures of issues 11, 16 (item 9), 19 (people) and 21 in
one sitting, ours beside PostGraphile 5 and 4 and the floor.

    .venv/bin/python -m bench [--smoke] [--out docs/benchmarks.md] [--cases rows,live] [--subscribers 100,1000,...]

Starts the embedded PostgreSQL in .data/bench (or uses DATABASE_URL), fresh
databases, and each server as its own process on 127.0.0.1; the HTTP load is
wrk, the subscribers are processes of bench/fanout_client.c. Every loop is
bounded in count and time, and a case PostgreSQL restarted under runs again
(bench/restarts.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from . import report
from .changes import http_mutations, sql_inserts, sql_retitle_all, sql_retitle_one
from .databases import ROWS, Databases, add_rows, created, databases, quiet, reset_rows
from .documents import CHANGES, CREATE, LIST, LIVE_FEED_CHANGES, LIVE_LIST, ROW, UPDATE, row_variables
from .fanout import FanoutResult, client_processes, fan_out
from .growing import growing_table
from .http_load import Load, wrk
from .people import people_tests
from .restarts import rerun_on_restart
from .servers import (
    FLOOR,
    LIVE_FEED,
    OURS,
    OURS_CACHED,
    OURS_DECODED,
    OURS_WORKERS,
    PEERS,
    POSTGRAPHILE,
    POSTGRAPHILE5,
    running,
)
from .writes import DECODED_INSERTS, INSERT_TABLES, as_peer, insert_rate, notify_latency

T = TypeVar("T")

CASES = ("http", "growing", "single", "fanout", "rows", "live", "workers", "database", "people")
# The per-row and live-list measures, at one size: rows of their own, and watchers.
ROW_SUBSCRIBERS = 1000
# wrk's run of each HTTP test before its measured ones.
WARM_SECONDS = 1


def _graphql(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": query, "variables": variables or {}})


def _numbered(query: str) -> str:
    """A createTodo body numbered by {client} and {seq}, which bench/post.lua fills in."""
    mutation = {"client": "{client}", "seq": "{seq}"}
    return json.dumps({"query": query, "variables": {"t": "wrk create"}, "extensions": {"mutation": mutation}}).replace(
        '"{seq}"', "{seq}"
    )


def _ids(dsn: str, count: int) -> tuple[str, ...]:
    """The first `count` todos' ids, in list order."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute("SELECT id::text FROM todos ORDER BY created_time, id LIMIT %s", (count,))
        rows = cursor.fetchall()
    return tuple(row[0] for row in rows)


WRITES = ("createTodo", "updateTodo", "createTodo (REST POST /api/todos/)", "updateTodo (REST PATCH /api/todos/{id}/)")


def _write(test: str, server: str, ids: tuple[str, ...]) -> Load:
    """One of WRITES' loads for `server` (ours in either mode takes ours').
    Updates go round the rows `ids`, so concurrent ones rarely wait for one row's lock."""
    named = server if server in PEERS else OURS
    if test == "createTodo":
        return Load("/graphql", _graphql(CREATE[named], {"t": "wrk create"}))
    if test == "updateTodo":
        return Load("/graphql", _graphql(UPDATE[named], {"id": "{id}", "t": "wrk update {n}"}), ids=ids)
    if test.startswith("createTodo (REST"):
        return Load("/api/todos/", json.dumps({"title": "wrk create"}))
    return Load("/api/todos/{id}/", json.dumps({"title": "wrk update {n}"}), method="PATCH", ids=ids)


def _writes(dbs: Databases, servers: tuple[str, ...], tests: tuple[str, ...] = WRITES) -> list[tuple[str, str, Load]]:
    """`tests`' loads for `servers`, server by server within each test. Each
    update load goes round ROWS rows of its own (rows added for it): one
    sharing its rows with an earlier load (ours' REST PATCH after ours'
    updateTodo, PostGraphile 4 after PostGraphile 5 on the peers' database)
    would pay for that load's dead row versions, and its ratio with it."""
    dsns = {server: _dsn(dbs, server) for server in servers}
    # REST has no peer.
    pairs = [(test, server) for test in tests for server in servers if not (server in PEERS and "REST" in test)]
    rows: dict[tuple[str, str], tuple[str, ...]] = {}
    for dsn in set(dsns.values()):
        updates = [pair for pair in pairs if pair[0].startswith("updateTodo") and dsns[pair[1]] == dsn]
        with psycopg.connect(dsn, autocommit=True) as conn:
            add_rows(conn, ROWS * (len(updates) - 1))
        ids = _ids(dsn, ROWS * len(updates))
        rows |= {pair: ids[ROWS * n : ROWS * (n + 1)] for n, pair in enumerate(updates)}
    return [(test, server, _write(test, server, rows.get((test, server), ()))) for test, server in pairs]


def _http_writes(dbs: Databases) -> list[tuple[str, str, Load]]:
    """WRITES' loads for ours (in JOURNAL=decoded too, if the server allows it) and the peers."""
    servers = (OURS, *((OURS_DECODED,) if dbs.decoded else ()), POSTGRAPHILE5, POSTGRAPHILE)
    writes = _writes(dbs, servers)
    # Issue 20: numbered by a client id and a sequence number (target: within
    # 1.1x of the plain one), just after every server's createTodo.
    numbered = ("createTodo numbered (extensions.mutation)", OURS, Load("/graphql", _numbered(CREATE[OURS]), numbered=True))
    writes.insert(len(servers), numbered)
    return writes


def _measured(
    dbs: Databases, urls: dict[str, str], group: list[tuple[str, str, Load]], rounds: int, args: argparse.Namespace
) -> dict[tuple[str, str], dict[str, Any]]:
    """wrk on each of `group`'s loads, each checked and warmed (Node's JIT)
    first, then `rounds` rounds of them all: the servers alternate within each
    round, so drift on a shared machine hits all alike, the group backwards
    in odd rounds (no server always after the same one), each run after a
    CHECKPOINT (the last run's dirty pages not written during the next:
    docs/bench-ab-harness.md). By (test, server)."""
    for _, server, load in group:
        load.check(urls[server])
        wrk(urls[server], load, WARM_SECONDS, args.connections)
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for round_ in range(rounds):
        for test, server, load in group if round_ % 2 == 0 else group[::-1]:
            quiet(dbs.admin)
            label = f"{test} {server}"
            run = functools.partial(wrk, urls[server], load, args.seconds, args.connections)
            r = rerun_on_restart(dbs.admin, label, run)
            # Reported in ours' column: the test's name says which ours.
            shown = OURS if server == OURS_CACHED else server
            new: dict[str, Any] = {"test": test, "server": shown, "rps": [], "errors": 0}
            entry = results.setdefault((test, shown), new)
            entry["rps"].append(r.requests_per_second)
            entry["errors"] += r.errors
            entry["command"] = r.command
            print(f"  {label}: {r.requests_per_second:.0f} req/s", flush=True)
    return results


def http_tests(dbs: Databases, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Measures 1 and 2 and the writes: wrk against each server in turn,
    `rounds` times, servers all running."""
    cached = "50-row list (GraphQL), ours with its response cache"
    reads = [
        *(("50-row list (GraphQL)", name, Load("/graphql", _graphql(LIST[name]))) for name in LIST),
        ("50-row list (GraphQL)", FLOOR, Load("/graphql", _graphql(LIST[OURS]))),
        # The same loads again, ours answered by the instance with the cache.
        (cached, OURS_CACHED, Load("/graphql", _graphql(LIST[OURS]))),
        *((cached, name, Load("/graphql", _graphql(LIST[name]))) for name in (POSTGRAPHILE5, POSTGRAPHILE)),
        (cached, FLOOR, Load("/graphql", _graphql(LIST[OURS]))),
        ("50-row list (REST GET /api/todos/)", OURS, Load("/api/todos/")),
        # Issue 21: answered by the same front door as GraphQL's, at least as fast.
        ("50-row list (REST GET /api/todos/), ours with its response cache", OURS_CACHED, Load("/api/todos/")),
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    # Ours in JOURNAL=decoded (if the server allows it) writes just after ours.
    names = (OURS_CACHED, OURS, *((OURS_DECODED,) if dbs.decoded else ()), POSTGRAPHILE5, POSTGRAPHILE, FLOOR)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(running(name, dbs)).url for name in names}
        # Writes last: they grow the tables the list tests read. The writes'
        # rows are added after the reads ran, which read every row.
        for make_group in (lambda: reads, lambda: _http_writes(dbs)):
            results |= _measured(dbs, urls, make_group(), args.rounds, args)
    _reset_all(dbs)
    return list(results.values())


def _reset_all(dbs: Databases, rows: int = ROWS) -> None:
    """Each database of the bench's pair back to `rows` todos."""
    for dsn in (dbs.ours, dbs.peer, dbs.decoded):
        if dsn:
            reset_rows(dsn, rows)


def _dsn(dbs: Databases, server_name: str) -> str:
    if server_name == OURS_DECODED:
        return dbs.ours_decoded()
    return dbs.ours if server_name in (OURS, OURS_WORKERS) else dbs.peer


async def _fanout_one(
    dbs: Databases, server_name: str, subscribers: int, events: int, args: argparse.Namespace, http: bool
) -> FanoutResult:
    procs = client_processes(subscribers, args.client_processes)
    with running(server_name, dbs) as server:
        async with (
            await psycopg.AsyncConnection.connect(_dsn(dbs, server_name), autocommit=True) as conn,
            httpx.AsyncClient() as client,
        ):
            change = http_mutations(client, server.url + "/graphql", server_name) if http else sql_inserts(conn)
            return await fan_out(server, CHANGES[server_name], subscribers, events, change, procs)


def _in_loop(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> Callable[[], T]:
    """A case that runs fn(*args) in an event loop of its own each time it is called."""
    return lambda: asyncio.run(fn(*args))


def _fanout(
    dbs: Databases, label: str, fn: Callable[..., Coroutine[Any, Any, FanoutResult]], *args: Any
) -> FanoutResult:
    """One fan-out case (a fresh server and clients), run again if PostgreSQL restarted under it."""
    result = rerun_on_restart(dbs.admin, label, _in_loop(fn, *args))
    shown = f"last arrival p50 {report.ms(report.median(result.last_arrival))}"
    print(f"  {label}: {shown}, CPU per delivery {report.us(result.cpu_per_delivery)}", flush=True)
    return result


def _events(subscribers: int, args: argparse.Namespace) -> int:
    """Fewer changes at large N: the deliveries per size stay about the same."""
    return max(args.min_events, min(args.max_events, args.deliveries // subscribers))


def single_tests(dbs: Databases, args: argparse.Namespace) -> list[FanoutResult]:
    """Measure 3: an HTTP mutation to one subscriber."""
    return [
        _fanout(dbs, f"1 subscriber {name}", _fanout_one, dbs, name, 1, args.single_events, args, True)
        for name in (OURS, POSTGRAPHILE5, POSTGRAPHILE)
    ]


def fanout_tests(dbs: Databases, args: argparse.Namespace) -> list[FanoutResult]:
    """Measures 4 and 5: one INSERT to N subscribers of one shared document."""
    fanout = []
    for i, n in enumerate(args.subscribers):
        # The order flips at each size: no server always runs on the coolest machine.
        for name in (OURS, POSTGRAPHILE5, POSTGRAPHILE, FLOOR)[:: 1 if i % 2 == 0 else -1]:
            run = (_fanout_one, dbs, name, n, _events(n, args), args, False)
            fanout.append(_fanout(dbs, f"{n} subscribers {name}", *run))
    return fanout


# The workers case's servers, in the order they run (report's, which shows
# them in that order), and its writes.
WORKERS_SERVERS = report.WORKERS_SERVERS
WORKERS_WRITES = ("createTodo", "updateTodo")
# Its rounds of each write, at most: about a minute and a half of wrk at 5 s.
WORKERS_ROUNDS = 3


def workers_tests(dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    """Ours as one process, then two, then PostGraphile 5, back to back (the
    other cases' figures ran minutes earlier, on a machine that may have
    drifted): the shared fan-out at the largest size, ROW_SUBSCRIBERS
    subscribers each on its own row, and the writes (servers alternating)."""
    n = max(args.subscribers)
    fanout = [
        _fanout(dbs, f"{n} subscribers {name}", _fanout_one, dbs, name, n, _events(n, args), args, False)
        for name in WORKERS_SERVERS
    ]
    rows_n = min(ROW_SUBSCRIBERS, n)
    _reset_all(dbs, rows_n)
    try:
        rows = [
            _fanout(dbs, f"{rows_n} subscribers each on its own row {name}", _rows_one, dbs, name, rows_n, args)
            for name in WORKERS_SERVERS
        ]
    finally:
        _reset_all(dbs)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(running(name, dbs)).url for name in WORKERS_SERVERS}
        group = _writes(dbs, WORKERS_SERVERS, WORKERS_WRITES)
        writes = _measured(dbs, urls, group, min(args.rounds, WORKERS_ROUNDS), args)
    _reset_all(dbs)
    return {
        "fanout": [dataclasses.asdict(r) for r in fanout],
        "rows": [dataclasses.asdict(r) for r in rows],
        "writes": list(writes.values()),
    }


async def _rows_one(dbs: Databases, server_name: str, n: int, args: argparse.Namespace) -> FanoutResult:
    """n subscribers each on its own row, and one UPDATE of every row per change."""
    dsn = _dsn(dbs, server_name)
    ids = _ids(dsn, n)
    variables = [json.dumps(row_variables(server_name, todo_id)) for todo_id in ids]
    procs = client_processes(n, args.client_processes)
    with running(server_name, dbs) as server:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            change = sql_retitle_all(conn)
            if server_name == OURS_DECODED:
                await _journaled_all(conn, ids[0])
            query = ROW[OURS if server_name in (OURS_DECODED, OURS_WORKERS) else server_name]
            return await fan_out(server, query, n, args.row_events, change, procs, variables=variables, rounds=True)


async def _journaled_all(conn: psycopg.AsyncConnection[Any], todo_id: str, wait: float = 300) -> None:
    """Decoded: wait until the sequencer has journaled every commit before now.
    The write cases' reset leaves tens of thousands of commits for it to catch
    up on when the server starts; measured while subscribers open, that
    catch-up (its batches, its peak memory) read as the cost of an open. One
    change of its own, journaled only after every earlier commit (whole
    transactions in commit order), marks the end."""
    cur = await conn.execute(
        "UPDATE todos SET title = 'journaled all' WHERE id = %s RETURNING pg_current_xact_id()", (todo_id,)
    )
    (xid,) = await cur.fetchone()  # type: ignore[misc]
    deadline = time.monotonic() + wait
    journaled = "SELECT EXISTS (SELECT FROM todo_changes WHERE xid = %s)"
    while await (await conn.execute(journaled, (xid,))).fetchone() != (True,):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sequencer did not journal its backlog within {wait:g} s")
        await asyncio.sleep(0.1)


def rows_tests(dbs: Databases, args: argparse.Namespace) -> list[FanoutResult]:
    """ROW_SUBSCRIBERS subscribers each on its own row (`todo(id)`), one UPDATE of every row."""
    n = min(ROW_SUBSCRIBERS, max(args.subscribers))
    _reset_all(dbs, n)
    decoded = (OURS_DECODED,) if dbs.decoded else ()
    try:
        return [
            _fanout(dbs, f"{n} subscribers each on its own row {name}", _rows_one, dbs, name, n, args)
            for name in (OURS, *decoded, POSTGRAPHILE5, POSTGRAPHILE)
        ]
    finally:
        _reset_all(dbs)


async def _live_one(dbs: Databases, n: int, query: str, args: argparse.Namespace) -> FanoutResult:
    """n subscribers of `query`; each change retitles one row of the 50."""
    (first,) = _ids(dbs.ours, 1)
    procs = client_processes(n, args.client_processes)
    with running(OURS, dbs) as server:
        async with await psycopg.AsyncConnection.connect(dbs.ours, autocommit=True) as conn:
            return await fan_out(server, query, n, args.live_events, sql_retitle_one(conn, first), procs)


def live_tests(dbs: Databases, args: argparse.Namespace) -> list[FanoutResult]:
    """Ours only: ROW_SUBSCRIBERS watchers of one live list (the peers have
    no live queries), beside as many subscribers of ours' change feed with
    the same changes, run just before it: the ratio of one sitting."""
    n = min(ROW_SUBSCRIBERS, max(args.subscribers))
    feed = _fanout(dbs, f"{n} subscribers of {LIVE_FEED}", _live_one, dbs, n, LIVE_FEED_CHANGES, args)
    live = _fanout(dbs, f"{n} watchers of the live todos list {OURS}", _live_one, dbs, n, LIVE_LIST, args)
    return [dataclasses.replace(feed, server=LIVE_FEED), live]


INSERT_RAW = "INSERT INTO todos (title) VALUES ('raw {i}')"


def _beside(name: str, dbs: Databases, case: Callable[[], T]) -> Callable[[], T]:
    """case(), with the server `name` running meanwhile."""

    def run() -> T:
        with running(name, dbs):
            return case()

    return run


def database_tests(dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    """The NOTIFY floor and measure 6, insert rates with concurrent writers (no
    server running, but ours in JOURNAL=decoded during its database's turn:
    its sequencer journals the writes)."""
    latencies = {
        "NOTIFY -> psycopg listener": (dbs.peer, "NOTIFY bench_raw, '{i}'"),
        "INSERT -> the peers' NOTIFY triggers -> listener": (dbs.peer, INSERT_RAW),
        "INSERT -> our journal trigger -> listener": (dbs.ours, INSERT_RAW),
    }
    notify = {
        label: rerun_on_restart(dbs.admin, label, _in_loop(notify_latency, dsn, args.notify_n, sql))
        for label, (dsn, sql) in latencies.items()
    }
    if dbs.decoded:
        label = f"INSERT -> {OURS_DECODED}'s sequencer -> listener"
        latency = _in_loop(notify_latency, dbs.decoded, args.notify_n, INSERT_RAW)
        notify[label] = rerun_on_restart(dbs.admin, label, _beside(OURS_DECODED, dbs, latency))
    # Issue 21: beside the peers' table, the same table with no trigger at all
    # (the peers' less its two NOTIFY triggers): what the journal costs on top of nothing.
    with created(dbs.admin, "gt_none") as none:
        as_peer(none, notify=False)
        dsns = dict(zip(INSERT_TABLES, (dbs.ours, dbs.peer, none), strict=True))
        dsns |= {DECODED_INSERTS: dbs.decoded} if dbs.decoded else {}
        inserts = []
        for writers in args.writers:
            rates: dict[str, list[float]] = {name: [] for name in dsns}
            for _ in range(args.write_rounds):
                for name, dsn in dsns.items():
                    rate = _in_loop(insert_rate, dsn, writers, args.write_seconds)
                    rate = _beside(OURS_DECODED, dbs, rate) if name == DECODED_INSERTS else rate
                    rates[name].append(rerun_on_restart(dbs.admin, f"INSERT rate {name}, {writers} writers", rate))
            inserts.append({"writers": writers, "rates": rates})
    return {"notify": notify, "inserts": inserts}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the report here (plots beside it)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the bench runs, in seconds")
    parser.add_argument(
        "--cases", type=lambda s: s.split(","), default=list(CASES), help=f"which, of {','.join(CASES)} (all)"
    )
    # More, shorter rounds: a ratio is the median of the rounds' ratios (bench/report.py).
    parser.add_argument("--seconds", type=float, default=5, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each HTTP and write test")
    parser.add_argument("--connections", type=int, default=20, help="wrk -c")
    parser.add_argument("--grown-rows", type=int, default=50_000, help="the grown table's rows (growing)")
    parser.add_argument(
        "--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000, 5000, 10000]
    )
    parser.add_argument("--deliveries", type=int, default=100_000, help="changes x subscribers per size")
    parser.add_argument("--min-events", type=int, default=10)
    parser.add_argument("--max-events", type=int, default=50)
    parser.add_argument("--single-events", type=int, default=100, help="mutations timed with 1 subscriber")
    parser.add_argument("--row-events", type=int, default=10, help="changes timed per row case")
    # CPU is read in clock ticks (10 ms): a cheap delivery needs many of them.
    parser.add_argument("--live-events", type=int, default=30, help="changes timed per live-list case")
    parser.add_argument("--client-processes", type=int, default=4, help="most WebSocket client processes")
    parser.add_argument("--notify-n", type=int, default=300)
    parser.add_argument(
        "--writers", type=lambda s: [int(x) for x in s.split(",")], default=[4, 16], help="INSERT rates' writers"
    )
    parser.add_argument("--write-seconds", type=float, default=5)
    parser.add_argument("--write-rounds", type=int, default=3, help="alternating runs of the INSERT rates")
    parser.add_argument("--people", type=int, default=1000, help="people, in lists of 10, one subscriber each (people)")
    # CPU is read in clock ticks (10 ms): 10 deliveries a change need many changes.
    parser.add_argument("--people-events", type=int, default=500, help="INSERTs timed, each into one list (people)")
    args = parser.parse_args()
    if unknown := set(args.cases) - set(CASES):
        parser.error(f"no such case: {', '.join(sorted(unknown))}")
    if args.smoke:
        args.seconds, args.rounds, args.subscribers, args.grown_rows = 2, 1, [10, 50], 5_000
        args.min_events, args.max_events, args.single_events, args.row_events = 3, 5, 5, 3
        args.live_events = 3
        args.notify_n, args.write_seconds, args.write_rounds = 20, 1, 1
        args.people, args.people_events = 100, 30
    return args


def main() -> None:
    args = _arguments()
    # 10,000 sockets need as many descriptors in the servers and clients, which inherit this.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started, commit = report.started(), report.commit()
    cases: dict[str, Callable[[Databases, argparse.Namespace], Any]] = {
        "http": http_tests,
        "growing": lambda dbs, args: growing_table(dbs.admin, args),
        "single": single_tests,
        "fanout": fanout_tests,
        "rows": rows_tests,
        "live": live_tests,
        "workers": workers_tests,
        "database": database_tests,
        "people": people_tests,
    }
    measured: dict[str, Any] = {}
    with databases() as dbs:
        with psycopg.connect(dbs.ours) as conn:
            postgres = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        if dbs.no_decoded:
            print(f"{OURS_DECODED} not measured: {dbs.no_decoded}", flush=True)
        for name in CASES:
            if name in args.cases:
                print(name, flush=True)
                result = cases[name](dbs, args)
                fanouts = name not in ("http", "growing", "workers", "database", "people")
                measured[name] = [dataclasses.asdict(r) for r in result] if fanouts else result
    results = {
        "args": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(args.out)},
        "started": started,
        "commit": commit,
        "embedded": dbs.embedded,
        # Why ours in JOURNAL=decoded was not measured, if it was not.
        "no_decoded": dbs.no_decoded,
        "postgres": postgres,
        **measured,
    }
    text = report.render(results, args.out)
    print(text)
    # Written into the report too: a figure measured while data went where it must not is no figure.
    if errors := measured.get("people", {}).get("errors"):
        sys.exit("make bench: " + "; ".join(errors))


if __name__ == "__main__":
    main()
