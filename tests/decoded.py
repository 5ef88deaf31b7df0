"""JOURNAL=decoded in the tests: a database switched to it with its
sequencer running, and `journaled`, the wait for the sequencer to have
journaled what committed before it (the entries exist only after commit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from graphql_todos.core.journal_mode import DECODED, settle, slot_name
from graphql_todos.live.sequencer import Sequencer
from tests.helpers import wait_until


@contextmanager
def sequenced(dsn: str) -> Iterator[Sequencer]:
    """The database switched to decoded, and a sequencer on it for the block.
    On a server that cannot decode (a DATABASE_URL below wal_level = logical)
    the switch fails with what is missing: the suite's own servers decode."""
    settle(dsn, DECODED)
    sequencer = Sequencer(dsn)
    sequencer.start()
    try:
        yield sequencer
    finally:
        sequencer.stop()


def journaled(conn: psycopg.Connection[Any], timeout: float = 30) -> None:
    """Once every transaction committed before this call is journaled (no
    wait in trigger mode): a transaction of a logical message commits after
    them, and the slot's confirmed LSN passes it once the sequencer has
    journaled it and everything before."""
    if conn.execute("SELECT mode FROM journal_mode").fetchone() != (DECODED,):
        return
    with psycopg.connect(conn.info.dsn, autocommit=True) as marker:
        (lsn,) = marker.execute("SELECT pg_logical_emit_message(true, 'graphql_todos_test', '')").fetchone()  # type: ignore[misc]
        slot = slot_name(marker.info.dbname)
        wait_until(
            lambda: marker.execute(
                "SELECT confirmed_flush_lsn > %s FROM pg_replication_slots WHERE slot_name = %s", (lsn, slot)
            ).fetchone() == (True,),
            timeout=timeout,
        )


# Settings.journal's values: the trigger at commit (the default), or the sequencer.
JOURNALS = ("trigger", DECODED)


@dataclass(frozen=True)
class Journaled:
    """A migrated database of a test's own, and the journal mode it is made for."""

    dsn: str
    journal: str
