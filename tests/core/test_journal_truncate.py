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
