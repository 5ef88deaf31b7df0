"""Each decoded entry's source (core/pgoutput.py) is unique: the server
gives a logical message the LSN where its record ends, a row change the
LSN where its record starts, so a staged entry and another transaction's
row change written right after it in the WAL were given one LSN, and the
second journaled was dropped as a batch streamed again (its writer
answered JournalLate after 5 s; tests/test_review21_lock_storm.py met it
about once in 26 decoded runs)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.decoded import journaled, sequenced

# Tries at writing the row change right after the staged entry's record:
# other WAL (autovacuum, the checkpointer's records) may come between.
ATTEMPTS = 20


def _adjacent(dsn: str, list_id: Any, title: str, writer_first: bool) -> tuple[str, str, str]:
    """A list renamed, its entry staged at once (a deferred trigger's
    message, as a commit writes it while others write theirs), then a todo
    inserted by another transaction: the staging's WAL end, and the xids of
    the rename and of the insert, committed in the order asked."""
    with psycopg.connect(dsn) as staging, psycopg.connect(dsn) as writer:
        staging.execute("SET CONSTRAINTS lists_journal IMMEDIATE")
        staging.execute("UPDATE lists SET name = %s WHERE id = %s", (title, list_id))
        (end, renamed) = staging.execute(
            "SELECT pg_current_wal_insert_lsn()::text, pg_current_xact_id()::text"
        ).fetchone()  # type: ignore[misc]
        (created,) = writer.execute(
            "INSERT INTO todos (title) VALUES (%s) RETURNING pg_current_xact_id()::text", (title,)
        ).fetchone()  # type: ignore[misc]
        first, second = (writer, staging) if writer_first else (staging, writer)
        first.commit()
        second.commit()
    return str(end), str(renamed), str(created)


@pytest.mark.parametrize("writer_first", [False, True], ids=["staged-first", "row-first"])
def test_a_staged_entry_and_the_row_change_written_after_it_are_both_journaled(db_dsn: str, writer_first: bool) -> None:
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        (list_id,) = conn.execute("SELECT id FROM lists WHERE is_default").fetchone()  # type: ignore[misc]
        for attempt in range(ATTEMPTS):
            end, renamed, created = _adjacent(db_dsn, list_id, f"t{attempt}", writer_first)
            journaled(conn)
            row = conn.execute(
                "SELECT source FROM todo_changes WHERE xid = %s::xid8 AND op = 'created'", (created,)
            ).fetchone()
            staged = conn.execute(
                "SELECT source FROM todo_changes WHERE xid = %s::xid8 AND op = 'list_updated'", (renamed,)
            ).fetchone()
            assert row is not None and staged is not None, (attempt, end, row, staged)
            if row == (end,):
                # The row change's record started where the staged message's ended.
                assert staged != row
                return
    pytest.fail(f"no insert was written right after the staged entry in {ATTEMPTS} tries")
