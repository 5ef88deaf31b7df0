"""PostgreSQL's side of a write, A/B in one sitting (issue 21): the same
todos table under ours before (the migrations at a git ref), ours now, the
peers' two NOTIFY triggers (bench/peer.sql) and no trigger at all. No app
server runs: statements go straight to the database.

    python -m bench.journal_ab --before main --rounds 15

Per table: one UPDATE of every row (the per-row subscription bench's
write), timed by the client (its commit, where our journal is written,
included) and by the backend's own CPU time (/proc/<pid>/schedstat: this
machine is shared, and a backend's CPU spreads far less than wall time);
a single-row INSERT's backend CPU; the app's own createTodo and updateTodo
statements (core/writes.py, acting for local as open mode does; the peers'
tables get PostGraphile's plain INSERT and UPDATE ... RETURNING), backend
CPU each; INSERTs per second from 4 and 16 writers (bench/writes.py). The
tables take turns in every round.
DATABASE_URL picks the server, else the bench's embedded one."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

from graphql_todos.core import writes
from graphql_todos.core.migrations import SQL_DIR
from graphql_todos.core.models import LOCAL_ID

from .databases import ROOT, _server, created
from .writes import as_peer, insert_rate

TABLES = ("before", "ours", "peer", "none")
PEERS = ("peer", "none")
PEER_STATEMENTS = {
    "create": "INSERT INTO todos (title) VALUES (%(title)s) RETURNING *",
    "update": "UPDATE todos SET title = %(title)s WHERE id = %(id)s RETURNING *",
}
# One statement with its parameters, for a table, in round i.
Statement = Callable[[str, int], tuple[str, dict[str, object] | None]]


def _backend_cpu_ms(pid: int) -> float:
    # schedstat's first field: nanoseconds on a CPU, at nanosecond resolution.
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6


@contextmanager
def _migrations_at(ref: str) -> Iterator[Path]:
    """The package's migrations as they were at git `ref`."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{ref}:graphql_todos/core/sql"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout.split()
        for name in listing:
            text = subprocess.run(
                ["git", "show", f"{ref}:graphql_todos/core/sql/{name}"], cwd=ROOT, check=True, capture_output=True
            ).stdout
            (Path(tmp) / name).write_bytes(text)
        yield Path(tmp)


@contextmanager
def _tables(admin: str, before: str, synchronous: bool) -> Iterator[dict[str, str]]:
    """One database per table, named journal_ab_<pid>_<table> (several runs may share a server)."""
    with ExitStack() as stack:
        old_sql = stack.enter_context(_migrations_at(before))
        dsns = {
            name: stack.enter_context(created(admin, f"journal_ab_{os.getpid()}_{name}", old_sql if name == "before" else SQL_DIR))
            for name in TABLES
        }
        for name in PEERS:
            as_peer(dsns[name], notify=name == PEERS[0])
        if not synchronous:
            for dsn in dsns.values():
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET synchronous_commit = off")  # type: ignore[arg-type]
        yield dsns


def _fill(dsns: dict[str, str], rows: int) -> None:
    for dsn in dsns.values():
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM todos")
            conn.execute("VACUUM todos")
            conn.execute("INSERT INTO todos (title) SELECT 'todo ' || i FROM generate_series(1, %s) i", (rows,))


def _plain(statement: str) -> Statement:
    """`statement` as it is, formatted with the round's {i}, on every table."""
    return lambda name, i: (statement.format(i=i), None)


def _ids(dsn: str) -> list[object]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM todos LIMIT 50")]


def write_statement(kind: str, peer: bool) -> str:
    """The app's createTodo ("create") or updateTodo ("update") statement
    (core/writes.py); on the peers' tables, PostGraphile's plain one."""
    if peer:
        return PEER_STATEMENTS[kind]
    return (writes.TRIGGER.insert if kind == "create" else writes.TRIGGER.update).plain


def write_params(kind: str, row_id: object, title: str) -> dict[str, object]:
    """write_statement's parameters, as the service sends them for local
    (open mode); `row_id` is the updated row's."""
    return {
        "id": row_id if kind == "update" else None, "title": title, "completed": False if kind == "create" else None,
        "list": None, "owner": LOCAL_ID, "actor": LOCAL_ID, "limit": 100,
    }


def _app(kind: str, ids: dict[str, list[object]]) -> Statement:
    """write_statement on every table, an update round the rows of `ids`."""
    turn = iter(range(2**62))

    def statement(name: str, i: int) -> tuple[str, dict[str, object] | None]:
        n = next(turn)
        return write_statement(kind, name in PEERS), write_params(kind, ids[name][n % len(ids[name])], f"round {i} {n}")

    return statement


def _timed(dsns: dict[str, str], rounds: int, statement: Statement, repeat: int) -> dict[str, tuple[float, float]]:
    """Per table, medians over `rounds` of (wall ms, backend CPU ms) for `repeat` runs of `statement`."""
    wall: dict[str, list[float]] = {name: [] for name in dsns}
    cpu: dict[str, list[float]] = {name: [] for name in dsns}
    with ExitStack() as stack:
        conns = {name: stack.enter_context(psycopg.connect(dsn, autocommit=True)) for name, dsn in dsns.items()}
        pids = {name: conn.info.backend_pid for name, conn in conns.items()}
        for i in range(rounds):
            for name, conn in conns.items():
                conn.execute("SELECT 1")
                cpu_start, start = _backend_cpu_ms(pids[name]), time.perf_counter()
                for _ in range(repeat):
                    conn.execute(*statement(name, i))  # type: ignore[arg-type]
                wall[name].append((time.perf_counter() - start) * 1000 / repeat)
                cpu[name].append((_backend_cpu_ms(pids[name]) - cpu_start) / repeat)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in dsns}


def _print(title: str, results: dict[str, float], unit: str) -> None:
    print(title + ": " + ", ".join(f"{n} {v:.1f} {unit} ({v / results['peer']:.2f} of peer)" for n, v in results.items()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journal_ab", description=__doc__)
    parser.add_argument("--before", default="main", help="git ref whose migrations are 'before'")
    parser.add_argument("--rows", type=int, default=1000, help="rows the UPDATE changes")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write-seconds", type=float, default=3)
    parser.add_argument("--write-rounds", type=int, default=3)
    parser.add_argument(
        "--asynchronous", action="store_true", help="synchronous_commit = off: the server's work, not the disk's flush"
    )
    args = parser.parse_args()
    with _server() as admin, _tables(admin, args.before, not args.asynchronous) as dsns:
        _fill(dsns, args.rows)
        update = _timed(dsns, args.rounds, _plain("UPDATE todos SET title = 'round {i}'"), 1)
        _print(f"UPDATE of {args.rows} rows, wall", {n: w for n, (w, _) in update.items()}, "ms")
        _print(f"UPDATE of {args.rows} rows, backend CPU", {n: c for n, (_, c) in update.items()}, "ms")
        insert = _timed(dsns, args.rounds, _plain("INSERT INTO todos (title) VALUES ('one')"), 100)
        _print("single-row INSERT, backend CPU", {n: c * 1000 for n, (_, c) in insert.items()}, "us")
        ids = {name: _ids(dsn) for name, dsn in dsns.items()}
        for kind in ("create", "update"):
            app = _timed(dsns, args.rounds, _app(kind, ids), 100)
            title = "createTodo's INSERT" if kind == "create" else "updateTodo's UPDATE"
            _print(f"{title}, backend CPU", {n: c * 1000 for n, (_, c) in app.items()}, "us")
        for writers in (4, 16):
            rates: dict[str, list[float]] = {name: [] for name in dsns}
            for _ in range(args.write_rounds):
                for name, dsn in dsns.items():
                    rates[name].append(asyncio.run(insert_rate(dsn, writers, args.write_seconds)))
            _print(f"INSERTs/s, {writers} writers", {n: statistics.median(v) for n, v in rates.items()}, "/s")


if __name__ == "__main__":
    main()
