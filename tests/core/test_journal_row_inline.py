"""sql/014's todos_journal, which writes a row's entry itself, against 012's
journal_write that wrote it before: the same writes on a database migrated
up to 013 and on one migrated to the end give the same entries, payloads,
notices and errors (the times apart, which the payloads carry as written)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from graphql_todos.core.journal_mode import TO_DECODED, TO_TRIGGER
from graphql_todos.core.migrations import migrate, migration_files

LOCAL = "00000000-0000-4000-8000-000000000001"
INBOX = "00000000-0000-4000-8000-000000000002"
OTHER = "00000000-0000-4000-8000-0000000000a1"
THIRD = "00000000-0000-4000-8000-0000000000a2"
VIEWER = "00000000-0000-4000-8000-0000000000b1"
EDITOR = "00000000-0000-4000-8000-0000000000b2"
ROWS = [f"00000000-0000-4000-8000-0000000001{i:02d}" for i in range(8)]


def _acting(person: str | None) -> str:
    return f"SELECT set_config('app.person_id', '{person or ''}', true)"


# Each a transaction: its statements, then whether it commits.
WRITES: list[list[str]] = [
    # Before any trigger's plan is made in the session (a plan made for varchar refuses text).
    ["ALTER TABLE todos ALTER COLUMN title TYPE text"],
    [f"INSERT INTO people (id, username) VALUES ('{VIEWER}', 'viewer'), ('{EDITOR}', 'editor')"],
    [f"INSERT INTO lists (id, owner_id, name) VALUES ('{OTHER}', '{LOCAL}', 'other'), ('{THIRD}', '{LOCAL}', 'third')"],
    [(f"INSERT INTO list_members (list_id, person_id, role) VALUES ('{OTHER}', '{VIEWER}', 'viewer'),"
      f" ('{OTHER}', '{EDITOR}', 'editor'), ('{INBOX}', '{EDITOR}', 'editor')")],
    # Created, in the default list and another, several in one statement.
    [f"INSERT INTO todos (id, title) VALUES ('{ROWS[0]}', 'a')"],
    [(f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[1]}', 'b', '{OTHER}'), ('{ROWS[2]}', 'c', '{OTHER}'),"
      f" ('{ROWS[3]}', 'd', '{INBOX}')")],
    # Updated: a title json must escape, several rows, an update that changes nothing (no entry).
    [f"UPDATE todos SET title = 'say \"hé\"\\ \t✓', completed = true WHERE id = '{ROWS[0]}'"],
    ["UPDATE todos SET completed = NOT completed"],
    [f"UPDATE todos SET title = title WHERE id = '{ROWS[1]}'"],
    # Moved, and moved back, and a move with an update of another row.
    [f"UPDATE todos SET list_id = '{OTHER}' WHERE id = '{ROWS[0]}'"],
    [f"UPDATE todos SET list_id = '{INBOX}', title = 'back' WHERE id = '{ROWS[0]}'",
     f"UPDATE todos SET title = 'e' WHERE id = '{ROWS[3]}'"],
    # With a mutation's key and the position asked by NOTICE.
    ["SET LOCAL app.cursor_notice = on", "SELECT set_config('app.mutation', 'k1', true)",
     f"UPDATE todos SET title = 'f' WHERE id = '{ROWS[3]}'",
     f"UPDATE todos SET list_id = '{THIRD}' WHERE id = '{ROWS[3]}'",
     f"INSERT INTO todos (id, title) VALUES ('{ROWS[4]}', 'g')",
     f"DELETE FROM todos WHERE id = '{ROWS[4]}'"],
    # The rights, judged at commit: an editor writes, a viewer may not, nor
    # may an editor move a row out of a list it does not edit, or into one.
    [_acting(EDITOR), f"UPDATE todos SET title = 'h' WHERE id = '{ROWS[1]}'"],
    [_acting(EDITOR), f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[5]}', 'i', '{OTHER}')"],
    [_acting(VIEWER), f"UPDATE todos SET title = 'no' WHERE id = '{ROWS[1]}'"],
    [_acting(VIEWER), f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[6]}', 'no', '{OTHER}')"],
    [_acting(VIEWER), f"DELETE FROM todos WHERE id = '{ROWS[2]}'"],
    [_acting(EDITOR), f"UPDATE todos SET list_id = '{OTHER}' WHERE id = '{ROWS[3]}'"],
    [_acting(EDITOR), f"UPDATE todos SET list_id = '{THIRD}' WHERE id = '{ROWS[2]}'"],
    [_acting(EDITOR), f"UPDATE todos SET list_id = '{INBOX}' WHERE id = '{ROWS[2]}'"],
    # A list's members and its todos in one transaction: refused.
    [f"UPDATE todos SET title = 'j' WHERE id = '{ROWS[1]}'",
     f"DELETE FROM list_members WHERE list_id = '{OTHER}' AND person_id = '{VIEWER}'"],
    [f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[4]}', 'k', '{THIRD}')",
     f"INSERT INTO list_members (list_id, person_id, role) VALUES ('{THIRD}', '{VIEWER}', 'viewer')"],
    # Deleted, by a statement, then with its list.
    [f"DELETE FROM todos WHERE id = '{ROWS[0]}'"],
    # By whoever (its rows' list checked no more as it goes).
    [_acting(VIEWER), f"DELETE FROM lists WHERE id = '{OTHER}'"],
    # A title past what a NOTIFY takes, and one just short of it (the column widened first).
    [f"INSERT INTO todos (id, title) VALUES ('{ROWS[6]}', repeat('x', 7000))"],
    [f"UPDATE todos SET title = repeat('y', 7700) WHERE id = '{ROWS[6]}'"],
    # Some 50 bytes past the limit (the times' digits vary), short of NOTIFY's 8,000.
    [f"UPDATE todos SET title = repeat('w', 7440) WHERE id = '{ROWS[6]}'"],
    [f"INSERT INTO todos (id, title, list_id) VALUES ('{ROWS[7]}', repeat('z', 7800), '{THIRD}')"],
    [f"UPDATE todos SET list_id = '{INBOX}' WHERE id = '{ROWS[7]}'"],
    [f"DELETE FROM todos WHERE id = '{ROWS[7]}'"],
]
# The times a write takes, in the journal and the payloads.
_TIME = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d"')
# The rows' entries (the default lists of new people have ids of their own: their entries by op).
ENTRIES = """
SELECT position, op, todo_id, todo - 'created_time' - 'updated_time', list_before, list_after, person_id, detail,
       before - 'created_time' - 'updated_time', mutation
FROM todo_changes ORDER BY position
"""
# A row's payload as 010's json_build_object printed it (the head alone past 7,900 bytes).
PRINTED = """
SELECT position, CASE WHEN before IS NOT NULL OR detail IS NOT NULL OR todo IS NULL OR person_id IS NOT NULL
                     THEN (jsonb_build_object('position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at,
                                              'list_before', list_before, 'list_after', list_after, 'person', person_id)
                           || jsonb_strip_nulls(jsonb_build_object('todo', todo, 'detail', detail, 'before', before)))::text
                     ELSE json_build_object('position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at,
                                            'list_before', list_before, 'list_after', list_after, 'person', person_id,
                                            'todo', todo)::text END,
       json_build_object('position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at,
                         'list_before', list_before, 'list_after', list_after, 'person', person_id)::text
FROM todo_changes ORDER BY position
"""


def _database(admin_dsn: str, name: str) -> Iterator[str]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    try:
        yield psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def migrated_before(admin_dsn: str, tmp_path: Path, number: str) -> Iterator[str]:
    """A database of its own migrated up to the migration before `number` ("014")."""
    for f in migration_files():
        if f.name < number:
            (tmp_path / f.name).write_text(f.read_text())
    for dsn in _database(admin_dsn, f"gt_before_{number}_{uuid.uuid4().hex[:8]}"):
        migrate(dsn, tmp_path)
        yield dsn


@pytest.fixture
def before_014(admin_dsn: str, tmp_path: Path) -> Iterator[str]:
    """A database migrated up to 013: 012's journal_write writes a row's entry."""
    yield from migrated_before(admin_dsn, tmp_path, "014")


def run_writes(dsn: str, writes: list[list[str]] = WRITES) -> dict[str, Any]:
    """`writes` on `dsn`: each transaction's notices and error, the journal,
    and the payloads notified, each checked against its entry."""
    outcomes: list[Any] = []
    with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as writer:
        listener.execute("LISTEN todo_changes")
        notices: list[tuple[str | None, str | None]] = []
        writer.add_notice_handler(lambda d: notices.append((d.sqlstate, d.message_primary)))
        for statements in writes:
            notices.clear()
            error = None
            try:
                with writer.transaction():
                    for statement in statements:
                        writer.execute(statement)  # type: ignore[arg-type]
            except psycopg.Error as exc:
                error = (exc.sqlstate, str(exc.diag.message_primary))
            outcomes.append((list(notices), error))
        printed = writer.execute(PRINTED).fetchall()
        entries = writer.execute(ENTRIES).fetchall()
        times = [t for (t,) in writer.execute("SELECT changed_at FROM todo_changes ORDER BY position")]
        runs = _expanded(entries)
        alone = [entry for entry in printed if not any(first <= entry[0] <= through for first, through, *_ in runs)]
        payloads = {json.loads(n.payload)["position"]: n.payload
                    for n in listener.notifies(timeout=5, stop_after=len(alone) + len(runs))}
    # Each payload is its entry as printed, its time the entry's own, or
    # past 7,900 bytes the head alone; the times follow the positions. A
    # reader's arrivals or removals: one payload naming their range (007).
    assert sorted(payloads) == sorted([position for position, _, _ in alone] + [run[0] for run in runs])
    for position, whole, head in alone:
        assert payloads[position] == (whole if len(whole.encode()) < 7900 else head), position
    for first, through, op, person in runs:
        assert json.loads(payloads[first]) == {"position": first, "through": through, "op": op, "person": str(person)}
    # Each entry's own time, taken as it is written (clock_timestamp, the column's default), in position order.
    assert times == sorted(set(times))
    rows = [entry for entry in entries if entry[2] is not None]
    return {"outcomes": outcomes, "ops": [op for _, op, *_ in entries], "rows": rows,
            "payloads": [_TIME.sub('"T"', payloads[position]) for position, *_ in rows if position in payloads]}


def _expanded(entries: list[Any]) -> list[tuple[int, int, str, Any]]:
    """The runs of a reader's arrivals or removals (journal_expand's): first, through, op, person."""
    runs: list[tuple[int, int, str, Any]] = []
    for position, op, *_, person, _, _, _ in entries:
        if op not in ("arrived", "removed"):
            continue
        if runs and runs[-1][1] == position - 1 and runs[-1][2:] == (op, person):
            runs[-1] = (runs[-1][0], position, op, person)
        else:
            runs.append((position, position, op, person))
    return runs


def test_a_rows_entry_is_written_as_012_wrote_it(before_014: str, db_dsn: str) -> None:
    theirs, ours = run_writes(before_014), run_writes(db_dsn)
    for name in ("outcomes", "ops", "rows", "payloads"):
        assert ours[name] == theirs[name], name
    # The writes did what they claim: a refusal of each kind, a head alone, a NOTICE for each entry asked.
    errors = [error for _, error in ours["outcomes"] if error is not None]
    assert [state for state, _ in errors] == ["42501"] * 5 + ["55000"] * 2, errors
    assert sum("todo" not in json.loads(p) for p in ours["payloads"]) == 5
    assert [state for state, _ in ours["outcomes"][11][0]] == ["01GT0"] * 4


def test_a_database_switched_to_decoded_before_014_comes_back_with_its_writer(db_dsn: str, before_014: str) -> None:
    """014 replaces todos_journal, whose triggers the switch to decoded drops
    (journal_mode.restore keeps them by name): a database migrated in
    decoded mode and switched back writes with 014's, as a fresh install."""
    functions = "SELECT pg_get_functiondef(%s::regproc)"
    triggers = "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'todos'::regclass AND NOT tgisinternal ORDER BY tgname"
    with psycopg.connect(before_014, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(TO_DECODED)
        assert migrate(before_014)[:1] == ["014_journal_row_inline.sql"]
        (restore,) = conn.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
        with conn.transaction():
            conn.execute(TO_TRIGGER)
            conn.execute(restore)
        switched = [conn.execute(functions, (f,)).fetchone() for f in ("todos_journal", "journal_write")]
        their_triggers = conn.execute(triggers).fetchall()
    with psycopg.connect(db_dsn) as fresh:
        assert switched == [fresh.execute(functions, (f,)).fetchone() for f in ("todos_journal", "journal_write")]
        assert their_triggers == fresh.execute(triggers).fetchall()
    assert "journal_write(change_op, NEW.id" in switched[0][0]  # type: ignore[index]
    # And it journals: a created row's entry, notified.
    with psycopg.connect(before_014, autocommit=True) as listener, psycopg.connect(before_014) as writer:
        listener.execute("LISTEN todo_changes")
        writer.execute(f"INSERT INTO todos (id, title) VALUES ('{ROWS[0]}', 'a')")
        writer.commit()
        [notify] = list(listener.notifies(timeout=5, stop_after=1))
    assert (json.loads(notify.payload)["op"], json.loads(notify.payload)["id"]) == ("created", ROWS[0])
