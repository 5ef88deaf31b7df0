"""sql/017: a TRUNCATE of the journal takes the rows of todo_changes_members
(015) with its entries, as retention's DELETE does, so that a person's
lists at a cursor read no entry that is gone."""

from __future__ import annotations

import psycopg
import pytest

from tests.core.test_journal_members_table import SIDE_WRITES, _members, _readers
from tests.core.test_journal_row_inline import INBOX, VIEWER, run_writes


@pytest.mark.parametrize("restart", ["", " RESTART IDENTITY"], ids=["positions kept", "positions restarted"])
def test_a_truncate_of_the_journal_takes_its_members_rows(db_dsn: str, restart: str) -> None:
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert _members(conn) >= 8
        conn.execute("TRUNCATE todo_changes" + restart)  # type: ignore[arg-type]
        assert _members(conn) == 0
        # A member added after: with positions restarted, its entry's
        # position is one a member's row held before.
        conn.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer')")
        assert _members(conn) == 1
        _readers(conn)


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_truncate_of_the_journal_under_an_older_snapshot_is_refused(db_dsn: str, isolation: str) -> None:
    """sql/018: the trigger's DELETE reads the transaction's snapshot, which
    under REPEATABLE READ (or SERIALIZABLE) was taken before the TRUNCATE
    waited for the journal's writers: a member's row committed meanwhile is
    not seen, and would stay beside a journal emptied by TRUNCATE, which
    takes every row whatever the snapshot. Refused with a clear error, the
    journal left whole (nothing that could take it whole but a TRUNCATE of
    the members' table, whose lock, taken under the journal's, can deadlock
    with a reader: 017's comment)."""
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn) as truncating, psycopg.connect(db_dsn, autocommit=True) as writer:
        truncating.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")  # type: ignore[arg-type]
        truncating.execute("SELECT count(*) FROM todo_changes_members")  # the snapshot, taken now
        # A member's entry committed after the snapshot.
        writer.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer') ON CONFLICT DO NOTHING")
        writer.execute(f"DELETE FROM list_members WHERE list_id = '{INBOX}' AND person_id = '{VIEWER}'")
        before = _members(writer)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="TRUNCATE todo_changes under"):
            truncating.execute("TRUNCATE todo_changes")
        truncating.rollback()
        assert _members(writer) == before > 0
        # READ COMMITTED takes it all, as before.
        writer.execute("TRUNCATE todo_changes")
        assert _members(writer) == 0
