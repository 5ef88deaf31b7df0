"""sql/015's todo_changes_members against the partial index it replaces
(007's todo_changes_membership): after writes of every kind, in both
journal modes, it holds exactly the entries the index held, and a reader's
lists at every cursor are what the index's query read; 015 writes the
entries, payloads, notices and errors 014 wrote; retention takes its rows
with their entries; a database switched to decoded before 015 comes back
with 015's writer."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from graphql_todos.core import repository
from graphql_todos.core.journal_mode import TO_DECODED, TO_TRIGGER
from graphql_todos.core.migrations import migrate
from tests.core.test_journal_row_inline import (
    EDITOR,
    INBOX,
    LOCAL,
    OTHER,
    ROWS,
    THIRD,
    VIEWER,
    WRITES,
    migrated_before,
    run_writes,
)
from tests.decoded import journaled, sequenced
from tests.helpers import wait_until

PEOPLE = (LOCAL, VIEWER, EDITOR)
# What a database at 014 is migrated by first: the table, then the index dropped.
MIGRATIONS = ["015_journal_members_table.sql", "016_journal_membership_index_dropped.sql"]


def _keyed(seq: int) -> str:
    return f"SELECT set_config('app.mutation', 'k{seq}', true)"


# 014's writes, then members added and removed (with arrivals, removals and
# a role change between), with and without a key, keyed rows, a keyed
# write refused, and a list deleted with its members.
SIDE_WRITES: list[list[str]] = [
    *WRITES,
    [_keyed(2), f"INSERT INTO list_members (list_id, person_id, role) VALUES ('{THIRD}', '{VIEWER}', 'viewer')"],
    [_keyed(3), f"UPDATE list_members SET role = 'editor' WHERE list_id = '{THIRD}' AND person_id = '{VIEWER}'"],
    [f"INSERT INTO list_members (list_id, person_id, role) VALUES ('{INBOX}', '{VIEWER}', 'viewer')"],
    [_keyed(4), f"DELETE FROM list_members WHERE list_id = '{INBOX}' AND person_id = '{EDITOR}'"],
    [_keyed(5), "UPDATE todos SET completed = NOT completed"],
    [_keyed(6), f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[0]}', 'l', '{THIRD}')",
     f"UPDATE todos SET list_id = '{INBOX}' WHERE id = '{ROWS[0]}'"],
    [_keyed(7), f"SELECT set_config('app.person_id', '{EDITOR}', true)", f"UPDATE todos SET title = 'no' WHERE id = '{ROWS[0]}'"],
    [f"DELETE FROM list_members WHERE list_id = '{INBOX}' AND person_id = '{VIEWER}'"],
    [_keyed(8), f"DELETE FROM lists WHERE id = '{THIRD}'"],
]
# The table, and the entries the index held (its predicate).
MEMBERS = "SELECT person_id, position, list_id, op::text FROM todo_changes_members ORDER BY 1, 2"
INDEXED = """SELECT person_id, position, list_after, op::text FROM todo_changes
WHERE op IN ('member_added', 'member_removed') ORDER BY 1, 2"""
# A reader's lists at a cursor as 014 read them, through the membership index.
VIEW_AT_014 = """
WITH firsts AS (
    SELECT DISTINCT ON (list_after) list_after AS list_id, op FROM todo_changes
    WHERE person_id = %(person)s AND op IN ('member_added', 'member_removed') AND position > %(after)s
    ORDER BY list_after, position
)
SELECT list_id FROM list_members WHERE person_id = %(person)s
    AND list_id NOT IN (SELECT list_id FROM firsts WHERE op = 'member_added')
UNION
SELECT list_id FROM firsts WHERE op = 'member_removed'
"""


def _members(conn: psycopg.Connection[Any]) -> int:
    """The table holds exactly the index's entries; how many."""
    held = conn.execute(MEMBERS).fetchall()
    assert held == conn.execute(INDEXED).fetchall()
    return len(held)


def _readers(conn: psycopg.Connection[Any]) -> None:
    """Every person's lists at every cursor, as 014's query read them."""
    (newest,) = conn.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
    for person in PEOPLE:
        for after in range(newest + 1):
            params: dict[str, Any] = {"person": person, "after": after}
            expected = set(conn.execute(VIEW_AT_014, params).fetchall())
            # Both ways: the members read in the statement (trigger mode), and given (decoded).
            params["members"] = [row[0] for row in conn.execute(repository.SELECT_MEMBERS, params)]
            for given in (False, True):
                assert set(conn.execute(repository.SELECT_VIEW_AT[given], params).fetchall()) == expected, (
                    person, after, given)


@pytest.fixture
def before_015(admin_dsn: str, tmp_path: Path) -> Iterator[str]:
    """A database migrated up to 014: the partial indexes."""
    yield from migrated_before(admin_dsn, tmp_path, "015")


def test_015_writes_as_014_did_and_its_table_holds_what_the_index_held(before_015: str, db_dsn: str) -> None:
    theirs, ours = run_writes(before_015, SIDE_WRITES), run_writes(db_dsn, SIDE_WRITES)
    for name in ("outcomes", "ops", "rows", "payloads"):
        assert ours[name] == theirs[name], name
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        members = _members(conn)
        _readers(conn)
    # The writes did what they claim: members added and removed (a list's deletion too).
    assert members >= 8, members
    errors = [error for _, error in ours["outcomes"] if error is not None]
    assert [state for state, _ in errors] == ["42501"] * 5 + ["55000"] * 2 + ["42501"], errors


def test_retention_takes_an_entrys_row_with_it(db_dsn: str) -> None:
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        before = _members(conn)
        (middle,) = conn.execute("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY position) FROM todo_changes_members").fetchone()  # type: ignore[misc]
        prune = {"below": middle, "keep_seconds": 0, "keep_rows": 0, "limit": 10000}
        assert conn.execute(repository.PRUNE_JOURNAL, prune).fetchone()[0] > 0  # type: ignore[index]
        assert 0 < _members(conn) < before
        _readers(conn)


def test_the_sequencer_writes_the_table(db_dsn: str) -> None:
    """Decoded: member entries staged, the sequencer's statement writes their rows."""
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer'), ('{EDITOR}', 'editor')")
        conn.execute(f"INSERT INTO lists (id, owner_id, name) VALUES ('{OTHER}', '{LOCAL}', 'other')")
        conn.execute(f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[0]}', 'a', '{OTHER}')")
        with conn.transaction():
            conn.execute(_keyed(1))
            conn.execute(f"INSERT INTO list_members VALUES ('{OTHER}', '{VIEWER}', 'viewer'), ('{OTHER}', '{EDITOR}', 'editor')")
        conn.execute(f"UPDATE todos SET title = 'b' WHERE id = '{ROWS[0]}'")
        conn.execute(f"DELETE FROM list_members WHERE list_id = '{OTHER}' AND person_id = '{VIEWER}'")
        with conn.transaction():
            conn.execute(_keyed(3))
            conn.execute(f"DELETE FROM lists WHERE id = '{OTHER}'")
        journaled(conn)
        members = _members(conn)
        _readers(conn)
    assert members == 6, members


def test_a_database_switched_to_decoded_before_015_comes_back_with_its_writers(db_dsn: str, before_015: str) -> None:
    """015 replaces journal_write, which a decoded database holds as a
    stager, trigger mode's kept in journal_mode.restore: a database migrated
    in decoded mode keeps its stagers, and restores 015's writer when
    switched back, as a fresh install switched and back."""
    functions = "SELECT pg_get_functiondef(%s::regproc)"
    names = ("todos_journal", "journal_write", "journal_expand")
    with psycopg.connect(db_dsn) as fresh:
        writers = [fresh.execute(functions, (f,)).fetchone() for f in names]
        with fresh.transaction():
            fresh.execute(TO_DECODED)
            (fresh_restore,) = fresh.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
            fresh.execute(TO_TRIGGER)
            fresh.execute(fresh_restore)
            assert [fresh.execute(functions, (f,)).fetchone() for f in names] == writers
        fresh.rollback()
    with psycopg.connect(before_015, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(TO_DECODED)
        stagers = [conn.execute(functions, (f,)).fetchone() for f in names[1:]]
        assert migrate(before_015)[: len(MIGRATIONS)] == MIGRATIONS
        assert [conn.execute(functions, (f,)).fetchone() for f in names[1:]] == stagers
        assert all("journal_stage" in stager[0] for stager in stagers)  # type: ignore[index]
        (restore,) = conn.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
        assert restore == fresh_restore
        with conn.transaction():
            conn.execute(TO_TRIGGER)
            conn.execute(restore)
        assert [conn.execute(functions, (f,)).fetchone() for f in names] == writers
        # And it journals: a member's entry and its row.
        conn.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer')")
        conn.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer')")
        assert _members(conn) == 2


def test_015_keeps_the_entries_written_before_it_findable(before_015: str) -> None:
    run_writes(before_015, SIDE_WRITES)
    with psycopg.connect(before_015, autocommit=True) as conn:
        assert migrate(before_015)[: len(MIGRATIONS)] == MIGRATIONS
        assert _members(conn) >= 8
        _readers(conn)
        indexes = {name for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'todo_changes'")}
    assert indexes == {"todo_changes_pkey", "todo_changes_mutation"}, indexes


# How many sessions of the database wait for a lock: the migration, or a writer.
_WAITING = "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"


# The rows of the members' entries of the inbox (the writes below).
_JOINED = f"SELECT count(*) FROM todo_changes_members WHERE list_id = '{INBOX}' AND person_id <> '{LOCAL}'"


def _waiters(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(_WAITING).fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # A process of the old build wrote a member's entry (014's
        # journal_write: no row) and commits while 015 runs: 015 copies it
        # (it waits for the journal's writers before it copies).
        (None, "SET CONSTRAINTS ALL IMMEDIATE"),
        # A write that read todo_changes (016's DROP INDEX then waits for it)
        # journals a member's entry at its commit (the journal's lock, which
        # 015 holds to its end): with the DROP INDEX in 015, a deadlock
        # rolled the migration back.
        ("SELECT count(*) FROM todo_changes", None),
    ],
    ids=["entry written before 015", "entry written at commit"],
)
def test_a_member_write_open_while_the_migrations_run_commits_with_its_row(
    before_015: str, before: str | None, after: str | None
) -> None:
    """A member's write open while 015 and 016 run: both commit, its entry
    with its row of todo_changes_members."""
    with psycopg.connect(before_015, autocommit=True) as setup:
        setup.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer')")
    with psycopg.connect(before_015) as writer, ThreadPoolExecutor(1) as pool:
        for statement in (before, f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer')", after):
            if statement is not None:
                writer.execute(statement)
        migrating = pool.submit(migrate, before_015)
        wait_until(lambda: _waiters(before_015) == 1)
        writer.commit()
        assert migrating.result(timeout=30)[: len(MIGRATIONS)] == MIGRATIONS
    with psycopg.connect(before_015, autocommit=True) as conn:
        _members(conn)
        assert conn.execute(_JOINED).fetchone() == (1,)


def test_a_member_write_waiting_for_015_writes_its_row(before_015: str) -> None:
    """A member's write that waits for 015 (the journal's lock) writes with
    015's journal_write, though its session ran 014's before."""
    with psycopg.connect(before_015, autocommit=True) as setup:
        setup.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer'), ('{EDITOR}', 'editor')")
    with (
        psycopg.connect(before_015, autocommit=True) as writer,
        psycopg.connect(before_015) as holder,
        ThreadPoolExecutor(2) as pool,
    ):
        writer.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer')")
        holder.execute("SELECT pg_advisory_xact_lock(7305202417)")
        migrating = pool.submit(migrate, before_015)
        wait_until(lambda: migrating.done() or _waiters(before_015) == 1)
        writing = pool.submit(writer.execute, f"INSERT INTO list_members VALUES ('{INBOX}', '{EDITOR}', 'viewer')")
        wait_until(lambda: _waiters(before_015) == 2 - migrating.done())
        holder.commit()
        assert migrating.result(timeout=30)[: len(MIGRATIONS)] == MIGRATIONS
        writing.result(timeout=30)
    with psycopg.connect(before_015, autocommit=True) as conn:
        _members(conn)
        assert conn.execute(_JOINED).fetchone() == (2,)

