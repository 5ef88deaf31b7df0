"""The bench databases, in pairs: ours (the app's migrations) and the peers'
(bench/peer.sql; PostGraphile 4 and 5 take turns on it), and with make
bench's pair a third, ours switched to JOURNAL=decoded."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.journal_mode import DECODED, JournalModeError, drop_slots, settle
from graphql_todos.core.migrations import SQL_DIR, migrate

from .writes import as_peer

ROOT = Path(__file__).resolve().parent.parent
ROWS = 50


@dataclass(frozen=True)
class Databases:
    ours: str
    peer: str
    embedded: bool
    # The server's own database, to create and drop others.
    admin: str
    # Ours in JOURNAL=decoded (its slot made, its triggers switched), or
    # None with the reason: a server without wal_level = logical, say.
    decoded: str | None = None
    no_decoded: str = ""

    def ours_decoded(self) -> str:
        """The JOURNAL=decoded database; RuntimeError saying why there is none."""
        if self.decoded is None:
            raise RuntimeError(f"no database in JOURNAL=decoded: {self.no_decoded or 'the pair was made without one'}")
        return self.decoded

    @property
    def peer_url(self) -> str:
        """The peer's DSN as a postgres:// URL, the only form node-postgres reads."""
        params = conninfo_to_dict(self.peer)
        user = quote(str(params.pop("user", ""))) + (
            ":" + quote(str(params.pop("password"))) if params.get("password") else ""
        )
        params.pop("password", None)
        host = str(params.pop("host", ""))
        port = params.pop("port", None)
        netloc = (user + "@" if user else "") + ("" if host.startswith("/") else host) + (f":{port}" if port else "")
        query = {"host": host} if host.startswith("/") else {}
        return f"postgres://{netloc}/{quote(str(params.pop('dbname')))}" + (f"?{urlencode(query)}" if query else "")


@contextmanager
def _server() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
    else:
        with embedded_postgres(ROOT / ".data" / "bench") as dsn:
            yield dsn


def _create(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        drop_slots(conn, name)
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return make_conninfo(admin, dbname=name)


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        drop_slots(conn, name)
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def reset_rows(dsn: str, rows: int = ROWS) -> None:
    """Exactly `rows` todos, whatever earlier tests wrote (DELETE: ours journals it, TRUNCATE it refuses)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM todos")
        add_rows(conn, rows)


def add_rows(conn: psycopg.Connection, rows: int) -> None:
    """`rows` todos in one statement, each created a millisecond after the last."""
    conn.execute(
        "INSERT INTO todos (title, completed, created_time) "
        "SELECT 'todo ' || i, i %% 3 = 0, now() + i * interval '1 ms' FROM generate_series(1, %s) i",
        (rows,),
    )


def vacuumed(dsns: Iterable[str], autovacuum: bool = False) -> None:
    """Each database's tables vacuumed and analyzed, and (unless `autovacuum`)
    left out of autovacuum: a timed A/B vacuums between its rounds, outside
    every run, where autovacuum's workers came at their own times and were
    billed to whichever run was on (the cluster's CPU is one figure)."""
    for dsn in dsns:
        with psycopg.connect(dsn, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = {str(autovacuum).lower()})")  # type: ignore[arg-type]
            conn.execute("VACUUM (ANALYZE)")


def quiet(admin: str, wait: float = 60) -> None:
    """Before a timed run: a CHECKPOINT (the last run's dirty pages written
    now, and each run starts from the same state: its first change of a page
    logs the page whole) and no autovacuum worker left running, for at most
    `wait` seconds. A role that may not CHECKPOINT skips it."""
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass
        deadline = time.monotonic() + wait
        busy = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
        while conn.execute(busy).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.1)


@contextmanager
def pair(admin: str, suffix: str = "", rows: int = ROWS, decoded: bool = False) -> Iterator[Databases]:
    """gt_bench (ours) and gt_peer (the peers'), names ending in `suffix`,
    each with `rows` todos; with `decoded`, gt_decoded too, switched to
    JOURNAL=decoded if the server allows it; dropped afterwards."""
    with (
        created(admin, f"gt_bench{suffix}") as ours,
        created(admin, f"gt_peer{suffix}") as peer,
        ExitStack() as stack,
    ):
        as_peer(peer)
        reset_rows(ours, rows)
        reset_rows(peer, rows)
        dbs = Databases(ours=ours, peer=peer, embedded=not os.environ.get("DATABASE_URL"), admin=admin)
        if decoded:
            dsn = stack.enter_context(created(admin, f"gt_decoded{suffix}"))
            reset_rows(dsn, rows)
            # Switched now, not by the first server's start inside a measure.
            try:
                settle(dsn, DECODED)
            except JournalModeError as e:
                dbs = replace(dbs, no_decoded=str(e))
            else:
                dbs = replace(dbs, decoded=dsn)
        yield dbs


@contextmanager
def created(admin: str, name: str, sql_dir: Traversable = SQL_DIR) -> Iterator[str]:
    """A fresh database `name` with the app's migrations (or those in sql_dir); dropped afterwards."""
    dsn = _create(admin, name)
    try:
        migrate(dsn, sql_dir)
        yield dsn
    finally:
        _drop(admin, name)


@contextmanager
def databases() -> Iterator[Databases]:
    """The bench's server (embedded, or DATABASE_URL) and its main pair, with ROWS todos each, and gt_decoded."""
    with _server() as admin, pair(admin, decoded=True) as dbs:
        yield dbs
