"""sql/017: a TRUNCATE of the journal takes the rows of todo_changes_members
(015) with its entries, as retention's DELETE does, so that a person's
lists at a cursor read no entry that is gone."""

from __future__ import annotations

from typing import Any

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


def _snapshot_then_a_member_row(truncating: psycopg.Connection[Any], writer: psycopg.Connection[Any], isolation: str) -> None:
    """`truncating` in `isolation` with its snapshot taken, then a member's
    entry committed by `writer` after it (a row that snapshot does not see)."""
    truncating.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")  # type: ignore[arg-type]
    truncating.execute("SELECT count(*) FROM todo_changes_members")
    writer.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer') ON CONFLICT DO NOTHING")
    writer.execute(f"DELETE FROM list_members WHERE list_id = '{INBOX}' AND person_id = '{VIEWER}'")


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.parametrize(
    "statements",
    [
        ("TRUNCATE todo_changes, todo_changes_members",),
        ("TRUNCATE todo_changes_members, todo_changes RESTART IDENTITY",),
        ("TRUNCATE todo_changes_members", "TRUNCATE todo_changes"),
    ],
    ids=["one statement", "members first", "members the statement before"],
)
def test_a_truncate_of_the_journal_with_its_members_table_is_taken_under_any_snapshot(
    db_dsn: str, isolation: str, statements: tuple[str, ...]
) -> None:
    """sql/019: a TRUNCATE that takes todo_changes_members too (in the same
    statement, or earlier in the transaction) leaves no member's row whatever
    the snapshot (TRUNCATE takes every row, and its lock lets no writer add
    one until the commit), so 018's refusal does not apply to it."""
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn) as truncating, psycopg.connect(db_dsn, autocommit=True) as writer:
        _snapshot_then_a_member_row(truncating, writer, isolation)
        assert _members(writer) > 0
        for statement in statements:
            truncating.execute(statement)  # type: ignore[arg-type]
        truncating.commit()
        assert _members(writer) == 0
        assert writer.execute("SELECT count(*) FROM todo_changes").fetchone() == (0,)


@pytest.mark.parametrize(
    ("earlier", "before"),
    [
        ((), ("SAVEPOINT s", "TRUNCATE todo_changes_members", "ROLLBACK TO SAVEPOINT s")),
        ((), ("LOCK todo_changes_members IN ACCESS EXCLUSIVE MODE",)),
        (("TRUNCATE todo_changes, todo_changes_members",), ()),
    ],
    ids=["members' truncate rolled back", "members locked, not truncated", "members truncated a transaction before"],
)
def test_a_truncate_of_the_journal_is_refused_unless_the_members_table_went_too(
    db_dsn: str, earlier: tuple[str, ...], before: tuple[str, ...]
) -> None:
    """What lets sql/019 take the journal under an older snapshot is the
    members' TRUNCATE in the same transaction: one rolled back to a
    savepoint, or committed in an earlier transaction of the session, or a
    lock taken after the snapshot (rows committed before it stay unseen),
    leave the refusal as 018 made it."""
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn) as truncating, psycopg.connect(db_dsn, autocommit=True) as writer:
        for statement in earlier:
            truncating.execute(statement)  # type: ignore[arg-type]
        truncating.commit()
        _snapshot_then_a_member_row(truncating, writer, "REPEATABLE READ")
        for statement in before:
            truncating.execute(statement)  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="TRUNCATE todo_changes under") as refused:
            truncating.execute("TRUNCATE todo_changes")
        assert refused.value.diag.message_hint is not None and "todo_changes_members" in refused.value.diag.message_hint
        truncating.rollback()
        assert _members(writer) > 0
