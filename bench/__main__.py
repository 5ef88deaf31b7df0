"""make bench: every measure of issue 11 in one sitting, ours beside PostGraphile and the floor.

    .venv/bin/python -m bench [--smoke] [--out docs/benchmarks.md] [--subscribers 100,1000,...]

Starts the embedded PostgreSQL in .data/bench (or uses DATABASE_URL), two
fresh databases, and each server as its own process on 127.0.0.1; the HTTP
load is wrk, the subscribers are processes of bench/fanout_client.c. Every loop is bounded in
count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
from pathlib import Path
from typing import Any

import httpx
import psycopg

from . import report
from .changes import CREATE, http_mutations, sql_inserts
from .databases import Databases, databases, reset_rows
from .fanout import FanoutResult, client_processes, fan_out
from .http_load import Load, wrk
from .servers import FLOOR, OURS, OURS_CACHED, OURS_WORKERS, POSTGRAPHILE, running
from .writes import insert_rate, notify_latency

LIST = {
    OURS: "{ todos { id title completed } }",
    POSTGRAPHILE: "{ allTodos(orderBy: [CREATED_TIME_ASC, ID_ASC]) { nodes { id title completed } } }",
}
SUBSCRIBE = {
    OURS: "subscription { todoChanges { op todo { id title completed } } }",
    POSTGRAPHILE: 'subscription { listen(topic: "todos") { relatedNodeId } }',
    FLOOR: "",
    OURS_WORKERS: "subscription { todoChanges { op todo { id title completed } } }",
}


def _graphql(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": query, "variables": variables or {}})


def http_tests(dbs: Databases, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Measures 1 and 2: wrk against each server in turn, `rounds` times, servers all running."""
    cached = "50-row list (GraphQL), ours with its response cache"
    tests = [
        ("50-row list (GraphQL)", OURS, Load("/graphql", _graphql(LIST[OURS]))),
        ("50-row list (GraphQL)", POSTGRAPHILE, Load("/graphql", _graphql(LIST[POSTGRAPHILE]))),
        ("50-row list (GraphQL)", FLOOR, Load("/graphql", _graphql(LIST[OURS]))),
        # The same loads again, ours answered by the instance with the cache.
        (cached, OURS_CACHED, Load("/graphql", _graphql(LIST[OURS]))),
        (cached, POSTGRAPHILE, Load("/graphql", _graphql(LIST[POSTGRAPHILE]))),
        (cached, FLOOR, Load("/graphql", _graphql(LIST[OURS]))),
        ("50-row list (REST GET /api/todos/)", OURS, Load("/api/todos/")),
        ("createTodo", OURS, Load("/graphql", _graphql(CREATE[OURS], {"t": "wrk create"}))),
        ("createTodo", POSTGRAPHILE, Load("/graphql", _graphql(CREATE[POSTGRAPHILE], {"t": "wrk create"}))),
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with (
        running(OURS, dbs) as ours,
        running(OURS_CACHED, dbs) as ours_cached,
        running(POSTGRAPHILE, dbs) as peer,
        running(FLOOR, dbs) as floor,
    ):
        urls = {OURS: ours.url, OURS_CACHED: ours_cached.url, POSTGRAPHILE: peer.url, FLOOR: floor.url}
        for test, server, load in tests:
            load.check(urls[server])
        reset_rows(dbs.ours)  # the createTodo checks added a row
        reset_rows(dbs.peer)
        # Creates last: they grow the tables the list tests read. Servers
        # alternate within each round, so drift on a shared machine hits all alike.
        reads = [t for t in tests if t[0] != "createTodo"]
        creates = [t for t in tests if t[0] == "createTodo"]
        for group in (reads, creates):
            for _ in range(args.rounds):
                for test, server, load in group:
                    r = wrk(urls[server], load, args.seconds, args.connections)
                    # Reported in ours' column: the test's name says which ours.
                    shown = OURS if server == OURS_CACHED else server
                    entry = results.setdefault((test, shown), {"test": test, "server": shown, "rps": [], "errors": 0})
                    entry["rps"].append(r.requests_per_second)
                    entry["errors"] += r.errors
                    entry["command"] = r.command
                    print(f"  {test} {server}: {r.requests_per_second:.0f} req/s", flush=True)
    reset_rows(dbs.ours)
    reset_rows(dbs.peer)
    return list(results.values())


async def _fanout_one(
    dbs: Databases, server_name: str, subscribers: int, events: int, args: argparse.Namespace, http: bool
) -> FanoutResult:
    dsn = dbs.ours if server_name in (OURS, OURS_WORKERS) else dbs.peer
    procs = client_processes(subscribers, args.client_processes)
    with running(server_name, dbs) as server:
        async with (
            await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
            httpx.AsyncClient() as client,
        ):
            change = http_mutations(client, server.url + "/graphql", server_name) if http else sql_inserts(conn)
            return await fan_out(server, SUBSCRIBE[server_name], subscribers, events, change, procs)


def _events(subscribers: int, args: argparse.Namespace) -> int:
    """Fewer changes at large N: the deliveries per size stay about the same."""
    return max(args.min_events, min(args.max_events, args.deliveries // subscribers))


def subscription_tests(
    dbs: Databases, args: argparse.Namespace
) -> tuple[list[FanoutResult], list[FanoutResult], list[FanoutResult]]:
    """Measure 3 (HTTP mutation to 1 subscriber), measures 4 and 5 (one INSERT to N subscribers),
    and ours with `--workers 2` beside one process at the largest size."""
    single = []
    for name in (OURS, POSTGRAPHILE):
        single.append(asyncio.run(_fanout_one(dbs, name, 1, args.single_events, args, http=True)))
        print(f"  1 subscriber {name}: done", flush=True)
    fanout = []
    for i, n in enumerate(args.subscribers):
        # The order flips at each size: no server always runs on the coolest machine.
        for name in (OURS, POSTGRAPHILE, FLOOR)[:: 1 if i % 2 == 0 else -1]:
            r = asyncio.run(_fanout_one(dbs, name, n, _events(n, args), args, http=False))
            fanout.append(r)
            print(f"  {n} subscribers {name}: last arrival p50 {report.ms(report.median(r.last_arrival))}", flush=True)
    # One process, then two, back to back at the largest size (the one-process
    # figure above ran minutes earlier, on a machine that may have drifted).
    n = max(args.subscribers)
    workers = [asyncio.run(_fanout_one(dbs, name, n, _events(n, args), args, http=False)) for name in (OURS, OURS_WORKERS)]
    for r in workers:
        print(f"  {n} subscribers {r.server}: last arrival p50 {report.ms(report.median(r.last_arrival))}", flush=True)
    return single, fanout, workers


def database_tests(dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    """The NOTIFY floor and measure 6, insert rates with concurrent writers (no server running)."""
    notify = {
        "NOTIFY -> psycopg listener": asyncio.run(notify_latency(dbs.peer, args.notify_n, "NOTIFY bench_raw, '{i}'")),
        "INSERT -> plain NOTIFY trigger -> listener": asyncio.run(
            notify_latency(dbs.peer, args.notify_n, "INSERT INTO todos (title) VALUES ('raw {i}')")
        ),
        "INSERT -> our journal trigger -> listener": asyncio.run(
            notify_latency(dbs.ours, args.notify_n, "INSERT INTO todos (title) VALUES ('raw {i}')")
        ),
    }
    rates: dict[str, list[float]] = {OURS: [], POSTGRAPHILE: []}
    for _ in range(args.write_rounds):
        for name, dsn in ((OURS, dbs.ours), (POSTGRAPHILE, dbs.peer)):
            rates[name].append(asyncio.run(insert_rate(dsn, args.writers, args.write_seconds)))
    return {"notify": notify, "inserts": rates, "writers": args.writers}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the report here (plots beside it)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the bench runs, in seconds")
    parser.add_argument("--seconds", type=float, default=10, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each HTTP and write test")
    parser.add_argument("--connections", type=int, default=20, help="wrk -c")
    parser.add_argument(
        "--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000, 5000, 10000]
    )
    parser.add_argument("--deliveries", type=int, default=100_000, help="changes x subscribers per size")
    parser.add_argument("--min-events", type=int, default=10)
    parser.add_argument("--max-events", type=int, default=50)
    parser.add_argument("--single-events", type=int, default=100, help="mutations timed with 1 subscriber")
    parser.add_argument("--client-processes", type=int, default=4, help="most WebSocket client processes")
    parser.add_argument("--notify-n", type=int, default=300)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--write-seconds", type=float, default=5)
    parser.add_argument("--write-rounds", type=int, default=3, help="alternating runs of the INSERT rates")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.rounds, args.subscribers = 2, 1, [10, 50]
        args.min_events, args.max_events, args.single_events = 3, 5, 5
        args.notify_n, args.write_seconds, args.write_rounds = 20, 1, 1
    return args


def main() -> None:
    args = _arguments()
    # 10,000 sockets need as many descriptors in the servers and clients, which inherit this.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started, commit = report.started(), report.commit()
    with databases() as dbs:
        with psycopg.connect(dbs.ours) as conn:
            postgres = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        print("HTTP (wrk)", flush=True)
        http = http_tests(dbs, args)
        print("subscriptions", flush=True)
        single, fanout, workers = subscription_tests(dbs, args)
        print("database", flush=True)
        db = database_tests(dbs, args)
    results = {
        "args": {k: v for k, v in vars(args).items() if k != "out"} | {"out": str(args.out)},
        "started": started,
        "commit": commit,
        "embedded": dbs.embedded,
        "postgres": postgres,
        "http": http,
        "single": [dataclasses.asdict(r) for r in single],
        "fanout": [dataclasses.asdict(r) for r in fanout],
        "workers": [dataclasses.asdict(r) for r in workers],
        "database": db,
    }
    text = report.render(results, args.out)
    print(text)


if __name__ == "__main__":
    main()
