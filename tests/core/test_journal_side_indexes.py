"""sql/015's side tables against the partial indexes they replace (006's
todo_changes_mutation, 007's todo_changes_membership): after writes of
every kind, in both journal modes, each holds exactly the entries its index
held, and the readers answer as the index's queries did; 015 writes the
entries, payloads, notices and errors 014 wrote; a database switched to
decoded before 015 comes back with 015's writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from graphql_todos.core import repository, verdicts
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

CLIENT = "00000000-0000-4000-8000-0000000000c1"
PEOPLE = (LOCAL, VIEWER, EDITOR)


def _key(seq: int) -> str:
    return f"{LOCAL}:{CLIENT}:{seq}"


def _keyed(seq: int) -> str:
    return f"SELECT set_config('app.mutation', '{_key(seq)}', true)"


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
# Each side table, and the entries its index held (its predicate).
SIDES = {
    "members": ("SELECT person_id, position, list_id, op::text FROM todo_changes_members ORDER BY 1, 2",
                "SELECT person_id, position, list_after, op::text FROM todo_changes WHERE op IN ('member_added', 'member_removed') ORDER BY 1, 2"),
    "keyed": ("SELECT mutation, position FROM todo_changes_keyed ORDER BY 1, 2",
              "SELECT mutation, position FROM todo_changes WHERE mutation IS NOT NULL ORDER BY 1, 2"),
}
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
# A key's cursor and rows, and its newest entry, as its entries hold them.
KEY_014 = """
SELECT max(position), jsonb_agg(todo ORDER BY position), (array_agg(todo ORDER BY position DESC))[1]
FROM todo_changes WHERE mutation = %s
"""


def _sides(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Each side table holds exactly its index's entries; how many."""
    counts = {}
    for name, (side, index) in SIDES.items():
        held = conn.execute(side).fetchall()  # type: ignore[arg-type]
        assert held == conn.execute(index).fetchall(), name  # type: ignore[arg-type]
        counts[name] = len(held)
    return counts


def _readers(conn: psycopg.Connection[Any]) -> None:
    """Every person's lists at every cursor, and every key's verdict, as 014's queries read them."""
    (newest,) = conn.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
    for person in PEOPLE:
        for after in range(newest + 1):
            params = {"person": person, "after": after}
            assert set(conn.execute(repository.SELECT_VIEW_AT, params).fetchall()) == set(
                conn.execute(VIEW_AT_014, params).fetchall()), (person, after)
    seqs = range(1, 10)
    with conn.transaction():
        conn.execute("""INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict)
                        SELECT %s, %s, seq, '', 'applied' FROM unnest(%s::bigint[]) seq""", (LOCAL, CLIENT, list(seqs)))
    verdict = {"principal": LOCAL, "client": CLIENT, "after": 0, "limit": 100}
    found = {row[0]: row[3:] for row in conn.execute(verdicts.SELECT_VERDICTS, verdict)}
    for seq in seqs:
        position, rows, newest_row = conn.execute(KEY_014, (_key(seq),)).fetchone()  # type: ignore[misc]
        settled = conn.execute(verdicts.SELECT_SETTLED, {"principal": LOCAL, "client": CLIENT, "seq": seq, "key": _key(seq)})
        assert settled.fetchone()[3:] == (position, rows), seq  # type: ignore[index]
        assert found[seq] == (position, newest_row), seq


@pytest.fixture
def before_015(admin_dsn: str, tmp_path: Path) -> Iterator[str]:
    """A database migrated up to 014: the partial indexes."""
    yield from migrated_before(admin_dsn, tmp_path, "015")


def test_015_writes_as_014_did_and_its_side_tables_hold_what_the_indexes_held(before_015: str, db_dsn: str) -> None:
    theirs, ours = run_writes(before_015, SIDE_WRITES), run_writes(db_dsn, SIDE_WRITES)
    for name in ("outcomes", "ops", "rows", "payloads"):
        assert ours[name] == theirs[name], name
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        counts = _sides(conn)
        keys = {key for (key,) in conn.execute("SELECT DISTINCT mutation FROM todo_changes_keyed")}
        _readers(conn)
    # The writes did what they claim: members added and removed (a list's
    # deletion too), and keyed rows, moves, arrivals, removals and member entries.
    assert counts["members"] >= 8, counts
    assert keys == {"k1", *(_key(seq) for seq in (2, 3, 4, 5, 6, 8))}, keys
    errors = [error for _, error in ours["outcomes"] if error is not None]
    assert [state for state, _ in errors] == ["42501"] * 5 + ["55000"] * 2 + ["42501"], errors


def test_retention_takes_an_entrys_side_rows_with_it(db_dsn: str) -> None:
    run_writes(db_dsn, SIDE_WRITES)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        before, had = _sides(conn), _journaled_keys(conn)
        # Up to the third mutation's entries, and no further.
        (below,) = conn.execute("SELECT max(position) + 1 FROM todo_changes WHERE mutation = %s", (_key(3),)).fetchone()  # type: ignore[misc]
        prune = {"below": below, "keep_seconds": 0, "keep_rows": 0, "limit": 10000}
        assert conn.execute(repository.PRUNE_JOURNAL, prune).fetchone()[0] > 0  # type: ignore[index]
        after = _sides(conn)
        assert 0 < after["members"] < before["members"] and after["keyed"] < before["keyed"], (before, after)
        # A verdict whose entries were all pruned goes (kept while any is left).
        conn.execute("""INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict, created_time)
                        SELECT %s, %s, seq, '', 'applied', '2000-01-01' FROM generate_series(1, 9) seq""", (LOCAL, CLIENT))
        kept = _journaled_keys(conn)
        conn.execute(verdicts.PRUNE_MUTATIONS, {"keep_seconds": 10**9, "limit": 100})
        assert {seq for (seq,) in conn.execute("SELECT seq FROM mutations")} == kept
    assert kept and kept < had, (had, kept)


def _journaled_keys(conn: psycopg.Connection[Any]) -> set[int]:
    """The numbered mutations with an entry in the journal."""
    return {seq for seq in range(1, 10) if conn.execute("SELECT 1 FROM todo_changes WHERE mutation = %s", (_key(seq),)).fetchone()}


def test_the_sequencer_writes_the_side_tables(db_dsn: str) -> None:
    """Decoded: member entries staged (a key read from app.mutation), rows
    keyed by the writer's message; the sequencer's statement writes their rows."""
    key = "SELECT pg_logical_emit_message(true, 'graphql_todos', %s)"
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer'), ('{EDITOR}', 'editor')")
        conn.execute(f"INSERT INTO lists (id, owner_id, name) VALUES ('{OTHER}', '{LOCAL}', 'other')")
        conn.execute(f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[0]}', 'a', '{OTHER}')")
        with conn.transaction():
            conn.execute(_keyed(1))
            conn.execute(f"INSERT INTO list_members VALUES ('{OTHER}', '{VIEWER}', 'viewer'), ('{OTHER}', '{EDITOR}', 'editor')")
        with conn.transaction():
            conn.execute(key, (_key(2),))
            conn.execute(f"UPDATE todos SET title = 'b' WHERE id = '{ROWS[0]}'")
            conn.execute(f"INSERT INTO todos (id, title) VALUES ('{ROWS[1]}', 'c')")
        conn.execute(f"DELETE FROM list_members WHERE list_id = '{OTHER}' AND person_id = '{VIEWER}'")
        with conn.transaction():
            conn.execute(_keyed(3))
            conn.execute(f"DELETE FROM lists WHERE id = '{OTHER}'")
        journaled(conn)
        counts = _sides(conn)
        _readers(conn)
    assert counts["members"] == 6 and counts["keyed"] >= 6, counts


def test_a_database_switched_to_decoded_before_015_comes_back_with_its_writers(db_dsn: str, before_015: str) -> None:
    """015 replaces journal_write and journal_expand, which a decoded
    database holds as stagers and keeps trigger mode's in journal_mode.restore:
    a database migrated in decoded mode keeps its stagers, and restores 015's
    writers when switched back, as a fresh install switched and back."""
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
        assert migrate(before_015) == ["015_journal_side_indexes.sql"]
        assert [conn.execute(functions, (f,)).fetchone() for f in names[1:]] == stagers
        assert all("journal_stage" in stager[0] for stager in stagers)  # type: ignore[index]
        (restore,) = conn.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
        assert restore == fresh_restore
        with conn.transaction():
            conn.execute(TO_TRIGGER)
            conn.execute(restore)
        assert [conn.execute(functions, (f,)).fetchone() for f in names] == writers
        # And it journals: a member's entry and its side row.
        conn.execute(f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer')")
        conn.execute(f"INSERT INTO list_members VALUES ('{INBOX}', '{VIEWER}', 'viewer')")
        assert _sides(conn)["members"] >= 2


def test_015_keeps_the_entries_written_before_it_findable(before_015: str) -> None:
    run_writes(before_015, SIDE_WRITES)
    with psycopg.connect(before_015, autocommit=True) as conn:
        assert migrate(before_015) == ["015_journal_side_indexes.sql"]
        assert _sides(conn)["members"] >= 8
        _readers(conn)
        indexes = {name for (name,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'todo_changes'")}
    assert indexes == {"todo_changes_pkey"}, indexes
