"""A 50-row page of a table that grew under writers (issue 16, item 9).

Each server first reads a table of START_ROWS rows that was never analyzed
(autovacuum is off on it: nothing refreshes its statistics, or the plans
cached from them, as when autovacuum lags on a busy server), until its
connections have prepared their statements. The table then grows to
`--grown-rows` rows (50,000), and the page is read under wrk while WRITERS insert
WRITE_RATE rows a second. A read planned for the small table (a scan of
every row and a sort) shows here as a rate far below the 50-row table's.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import psycopg

from .databases import add_rows, pair
from .documents import PAGE
from .http_load import Load, WrkResult, wrk
from .procstat import cpu_seconds
from .restarts import rerun_on_restart
from .servers import OURS, POSTGRAPHILE, POSTGRAPHILE5, running
from .writes import PacedWriters

START_ROWS = 1_000
WRITERS, WRITE_RATE = 4, 400.0
WARM_SECONDS = 2.0
SERVERS = (OURS, POSTGRAPHILE5, POSTGRAPHILE)


def _settle(pid: int, timeout: float = 30.0) -> None:
    """Wait until the process is all but idle (ours takes the grown rows'
    notifications): the next server measured does not share the cores with it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:
            return


def _read_beside_writers(url: str, load: Load, dsn: str, args: argparse.Namespace) -> tuple[WrkResult, float]:
    """wrk's result, and the rows written a second meanwhile."""
    with PacedWriters(dsn, WRITERS, WRITE_RATE) as writers:
        r = wrk(url, load, args.seconds, args.connections)
    return r, writers.inserted / args.seconds


def growing_table(admin: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The page's req/s per server, as http_tests reports them."""
    test = f"50-row page of a {args.grown_rows:,}-row table, {WRITERS} writers ({WRITE_RATE:.0f} rows/s)"
    results: dict[str, dict[str, Any]] = {
        name: {"test": test, "server": name, "rps": [], "errors": 0, "writes": []} for name in SERVERS
    }
    with pair(admin, "_grown", rows=0) as dbs:
        for dsn in (dbs.ours, dbs.peer):
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ALTER TABLE todos SET (autovacuum_enabled = false)")
                add_rows(conn, START_ROWS)
        dsns = {OURS: dbs.ours, POSTGRAPHILE5: dbs.peer, POSTGRAPHILE: dbs.peer}
        with running(OURS, dbs) as ours, running(POSTGRAPHILE5, dbs) as peer5, running(POSTGRAPHILE, dbs) as peer:
            servers = {OURS: ours, POSTGRAPHILE5: peer5, POSTGRAPHILE: peer}
            loads = {name: Load("/graphql", json.dumps({"query": PAGE[name], "variables": {}})) for name in SERVERS}
            for name, server in servers.items():
                loads[name].check(server.url)
                wrk(server.url, loads[name], WARM_SECONDS, args.connections)
            for dsn in (dbs.ours, dbs.peer):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    add_rows(conn, args.grown_rows - START_ROWS)
            _settle(ours.pid)
            for _ in range(args.rounds):
                for name, server in servers.items():
                    label = f"{test} {name}"
                    case = functools.partial(_read_beside_writers, server.url, loads[name], dsns[name], args)
                    r, written = rerun_on_restart(dbs.admin, label, case)
                    entry = results[name]
                    entry["rps"].append(r.requests_per_second)
                    entry["errors"] += r.errors
                    entry["writes"].append(written)
                    entry["command"] = r.command
                    print(f"  {label}: {r.requests_per_second:.0f} req/s ({written:.0f} rows/s written)", flush=True)
                    _settle(ours.pid)
    return list(results.values())
