"""Shared fixtures: one PostgreSQL per session (embedded, or DATABASE_URL),
a migrated template database, a fresh clone of it per test, and the real app
under uvicorn on a free port."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.journal_mode import drop_slots
from graphql_todos.core.migrations import migrate
from tests.decoded import JOURNALS, Journaled, sequenced
from tests.helpers import ROOT, TOKEN, Server, make_server, serving
from tests.pgserver import installed_postgres, server_directory

# test_bad_input proves its checks fail by running them in a pytest of their own.
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    """A superuser connection string to the session's PostgreSQL server:
    DATABASE_URL's (at wal_level = logical, for JOURNAL=decoded's tests); a cluster of the PostgreSQL installed in TEST_POSTGRES_BIN
    (make test runs the database-facing tests again on the oldest version
    claimed); or the embedded one."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    if bin_dir := os.environ.get("TEST_POSTGRES_BIN"):
        with installed_postgres(Path(bin_dir)) as dsn:
            yield dsn
        return
    with embedded_postgres(_embedded_data_dir()) as dsn:
        yield dsn


def _embedded_data_dir() -> Path:
    """make test runs pytest in several processes (pytest-xdist): each has an
    embedded server of its own, as a serial run does (tests count the
    server's slots and backends, and name slots of their own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return ROOT / ".data" / ("test" if worker == "gw0" else f"test-{worker}")


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A DATA_DIR for an app that makes its embedded PostgreSQL there: not a
    tmp_path (tests/pgserver.py's server_directory says why)."""
    with server_directory() as path:
        yield path


def _admin(admin_dsn: str, sql: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def drop_database(admin_dsn: str, name: str) -> None:
    """DROP DATABASE, its slot first (JOURNAL=decoded's: a slot blocks it)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        drop_slots(conn, name)
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(admin_dsn: str) -> Iterator[str]:
    name = f"gt_template_{os.getpid()}"
    _admin(admin_dsn, f"DROP DATABASE IF EXISTS {name}")
    _admin(admin_dsn, f"CREATE DATABASE {name}")
    migrate(make_conninfo(admin_dsn, dbname=name))
    yield name
    drop_database(admin_dsn, name)


def _clone(admin_dsn: str, template_db: str) -> Iterator[str]:
    name = f"gt_{uuid.uuid4().hex[:12]}"
    _admin(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield make_conninfo(admin_dsn, dbname=name)
    drop_database(admin_dsn, name)


@pytest.fixture
def db_dsn(admin_dsn: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    yield from _clone(admin_dsn, template_db)


@pytest.fixture(scope="module")
def module_db_dsn(admin_dsn: str, template_db: str) -> Iterator[str]:
    """A migrated database shared by one module's tests (one server for them all)."""
    yield from _clone(admin_dsn, template_db)


def _journaled(request: pytest.FixtureRequest) -> Iterator[Journaled]:
    """A migrated database for the journal mode request.param (tests/decoded.py)."""
    for dsn in _clone(request.getfixturevalue("admin_dsn"), request.getfixturevalue("template_db")):
        if request.param == "trigger":
            yield Journaled(dsn, "trigger")
        else:
            with sequenced(dsn):
                yield Journaled(dsn, request.param)


@pytest.fixture(params=JOURNALS)
def journaled_db(request: pytest.FixtureRequest) -> Iterator[Journaled]:
    """A database of this test's own, once per journal mode (Settings.journal)."""
    yield from _journaled(request)


@pytest.fixture(scope="module", params=JOURNALS)
def module_journaled_db(request: pytest.FixtureRequest) -> Iterator[Journaled]:
    """A database shared by one module's tests, once per journal mode."""
    yield from _journaled(request)


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    srv = make_server(db_dsn)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    """A server with people (sign-up, sign-in, sessions) beside TOKEN.
    Modules that need it on another database or with other settings define their own."""
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def guarded(db_dsn: str) -> Iterator[Server]:
    """A server that requires TOKEN, with small limits to break."""
    srv = make_server(
        db_dsn, token=TOKEN, max_body_bytes=1000, request_seconds=1.0, max_sockets_per_client=2
    )
    srv.start()
    yield srv
    srv.stop()
