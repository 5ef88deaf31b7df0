"""The journal fed by logical decoding (JOURNAL=decoded) for the tests: the
one place that makes a database whose todos journal comes from a sequencer.

Until the app's own sequencer lands (docs/design/journal-decoding.md, "The
sequencer"), this is bench.offcommit's: the todos journal triggers dropped
(UNJOURNALED), the xid and source columns, REPLICA IDENTITY FULL and a
publication (APP_DECODED), and its `stream_app` sequencer process beside
each database, on a PostgreSQL of the tests' own with wal_level = logical
(logical_cluster, in .data/test-logical). Swapping in the app's sequencer
changes decoded_database alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import make_conninfo

from bench.offcommit import APP_DECODED, UNJOURNALED, logical_cluster, sequencer
from tests.helpers import ROOT

# Settings.journal's values: the trigger at commit (the default), or the sequencer.
JOURNALS = ("trigger", "decoded")


@dataclass(frozen=True)
class Journaled:
    """A migrated database of a test's own, and the journal mode it is made for."""

    dsn: str
    journal: str


@contextmanager
def logical_server() -> Iterator[str]:
    """A superuser connection string to the tests' PostgreSQL with wal_level = logical."""
    with logical_cluster(ROOT / ".data" / "test-logical") as dsn:
        yield dsn


@contextmanager
def decoded_database(admin_dsn: str, template: str) -> Iterator[str]:
    """A clone of `template` journaled by the sequencer, running for the block."""
    name = f"gt_decoded_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")  # type: ignore[arg-type]
    dsn = make_conninfo(admin_dsn, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(UNJOURNALED + APP_DECODED)  # type: ignore[arg-type]
        # The sequencer drops its slot as it stops: a slot would block DROP DATABASE.
        with sequencer(dsn, "stream_app"):
            yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
