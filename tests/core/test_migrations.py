"""Migrations apply once, in order, and give the schema the app expects."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from graphql_todos.core.journal_mode import TO_DECODED, TO_TRIGGER
from graphql_todos.core.migrations import NoMigrations, migrate, migration_files
from tests.helpers import ROOT, wait_until


def test_migrating_again_applies_nothing(db_dsn: str) -> None:
    assert migrate(db_dsn) == []
    with psycopg.connect(db_dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [p.name for p in migration_files()]


def test_fresh_database_gets_every_migration(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gt_fresh WITH (FORCE)")
        conn.execute("CREATE DATABASE gt_fresh")
    try:
        dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname="gt_fresh")
        assert migrate(dsn) == [p.name for p in migration_files()]
        with psycopg.connect(dsn) as conn:
            (count,) = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'todos'::regclass AND NOT tgisinternal").fetchone()  # type: ignore[misc]
        assert count == 4
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gt_fresh WITH (FORCE)")


def test_journal_records_deletes_and_refuses_truncate(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        conn.execute("DELETE FROM todos")
        ops = [r[0] for r in conn.execute("SELECT op FROM todo_changes ORDER BY position")]
        assert ops == ["created", "deleted"]
        with pytest.raises(psycopg.errors.RaiseException, match="DELETE FROM todos"):
            conn.execute("TRUNCATE todos")


def test_rolled_back_changes_leave_no_journal_entry(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('gone')")
        conn.rollback()
        conn.execute("INSERT INTO todos (title) VALUES ('kept')")
        conn.commit()
        rows = conn.execute("SELECT todo->>'title' FROM todo_changes").fetchall()
    assert rows == [("kept",)]


def test_rows_no_client_could_read_are_refused(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for sql in [
            "INSERT INTO todos (title, created_time) VALUES ('x', '10000-01-01')",
            "INSERT INTO todos (title, updated_time) VALUES ('x', 'infinity')",
            "INSERT INTO todos (title) VALUES ('   ')",
        ]:
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(sql)  # type: ignore[arg-type]
        (count,) = conn.execute("SELECT count(*) FROM todo_changes").fetchone()  # type: ignore[misc]
        assert count == 0


def test_the_journal_refuses_an_op_no_reader_knows(db_dsn: str) -> None:
    """009 checks op by a domain rather than a table CHECK: still refused."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO todo_changes (position, op) VALUES (nextval('todo_changes_position'), 'renamed')")
        conn.execute("INSERT INTO todo_changes (position, op) VALUES (nextval('todo_changes_position'), 'access_revoked')")


def test_a_todo_keeps_its_id(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot change"):
            conn.execute("UPDATE todos SET id = gen_random_uuid()")


def test_writers_touching_the_same_row_in_opposite_order_do_not_deadlock(db_dsn: str) -> None:
    """T1 inserts, then updates R; T2 updates R first. With the commit-order
    lock taken per row, after the row lock, this deadlocked. Taken at commit,
    it lets T2 commit first and T1 then update R after it."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        (row_id,) = setup.execute("INSERT INTO todos (title) VALUES ('r') RETURNING id").fetchone()  # type: ignore[misc]
    with (
        psycopg.connect(db_dsn) as t1,
        psycopg.connect(db_dsn) as t2,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        t1.execute("INSERT INTO todos (title) VALUES ('t1')")
        errors: list[Exception] = []
        t2_pid = t2.info.backend_pid

        def second() -> None:
            try:
                t2.execute("UPDATE todos SET title = 't2' WHERE id = %s", (row_id,))
                t2.commit()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        # T2 has gone as far as it can: committed, or (with a lock taken per
        # row) waiting for T1's, holding R's row lock.
        wait_until(lambda: not thread.is_alive() or _waiting_for_a_lock(observer, t2_pid), timeout=10)
        t1.execute("UPDATE todos SET title = 't1' WHERE id = %s", (row_id,))
        t1.commit()
        thread.join(10)
        assert errors == []
        titles = [r[0] for r in t1.execute("SELECT todo->>'title' FROM todo_changes ORDER BY position")]
        assert titles == ["r", "t2", "t1", "t1"]


def test_positions_follow_commit_order_not_start_order(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as first, psycopg.connect(db_dsn) as second:
        first.execute("INSERT INTO todos (title) VALUES ('started first')")
        second.execute("INSERT INTO todos (title) VALUES ('committed first')")
        second.commit()
        first.commit()
        titles = [r[0] for r in first.execute("SELECT todo->>'title' FROM todo_changes ORDER BY position")]
    assert titles == ["committed first", "started first"]


def test_a_taken_position_holds_back_every_later_commit(db_dsn: str) -> None:
    """Two writers committing at once: the one that took the lower position
    commits first. Were the other to commit first with the next position, a
    reader between the two commits would go past the lower one for good."""
    with (
        psycopg.connect(db_dsn) as first,
        psycopg.connect(db_dsn, autocommit=True) as second,
        psycopg.connect(db_dsn, autocommit=True) as reader,
    ):
        first.execute("INSERT INTO todos (title) VALUES ('first')")
        # Runs the deferred journal trigger now, as a commit would: position 1
        # is taken, and the transaction stays open.
        first.execute("SET CONSTRAINTS ALL IMMEDIATE")
        second_pid = second.info.backend_pid
        committed = threading.Event()

        def write() -> None:
            second.execute("INSERT INTO todos (title) VALUES ('second')")
            committed.set()

        thread = threading.Thread(target=write)
        thread.start()
        wait_until(lambda: committed.is_set() or _waiting_for_a_lock(reader, second_pid, "advisory"), timeout=10)
        assert not committed.is_set(), "the second writer committed while the first held position 1"
        assert reader.execute("SELECT count(*) FROM todo_changes").fetchone() == (0,)
        first.commit()
        thread.join(10)
        entries = reader.execute("SELECT position, todo->>'title' FROM todo_changes ORDER BY position").fetchall()
    assert entries == [(1, "first"), (2, "second")]


def _waiting_for_a_lock(observer: psycopg.Connection[Any], pid: int, locktype: str | None = None) -> bool:
    """Whether backend `pid` waits for a lock (of that type)."""
    row = observer.execute(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted AND locktype = coalesce(%s, locktype))",
        (pid, locktype),
    ).fetchone()
    return row == (True,)


def test_notifications_carry_the_change(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        listener.execute("LISTEN todo_changes")
        (row_id,) = writer.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
        [notify] = list(listener.notifies(timeout=5, stop_after=1))
        (changed_at,) = writer.execute("SELECT changed_at FROM todo_changes").fetchone()  # type: ignore[misc]
    payload = json.loads(notify.payload)
    assert (payload["position"], payload["op"], payload["id"]) == (1, "created", str(row_id))
    assert payload["todo"]["title"] == "a"
    assert datetime.fromisoformat(payload["changed_at"]) == changed_at


def test_a_rows_notification_is_its_entry_as_010_printed_it(db_dsn: str) -> None:
    """012 concatenates a row's payload from its parts: the same bytes as
    010's json_build_object of the entry, for a created, an updated (a title
    json must escape) and a deleted row, and for a row moved to another list
    (012 leaves that payload as it was)."""
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        listener.execute("LISTEN todo_changes")
        (row_id,) = writer.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
        writer.execute("UPDATE todos SET title = %s, completed = true WHERE id = %s", ('say "hé"\\ \t✓', row_id))
        (other,) = writer.execute(
            "INSERT INTO lists (owner_id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'other') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        writer.execute("UPDATE todos SET list_id = %s WHERE id = %s", (other, row_id))
        writer.execute("DELETE FROM todos WHERE id = %s", (row_id,))
        payloads: list[str] = []
        for n in listener.notifies(timeout=5):
            if json.loads(n.payload)["id"] == str(row_id):
                payloads.append(n.payload)
            if len(payloads) == 4:
                break
        expected = [r[0] for r in writer.execute(
            """SELECT CASE WHEN before IS NULL THEN json_build_object(
                   'position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at, 'list_before', list_before,
                   'list_after', list_after, 'person', person_id, 'todo', todo)::text
               ELSE (jsonb_build_object('position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at,
                                        'list_before', list_before, 'list_after', list_after, 'person', person_id)
                     || jsonb_build_object('todo', todo, 'before', before))::text END
               FROM todo_changes WHERE todo_id = %s ORDER BY position""", (row_id,))]
    assert [json.loads(p)["op"] for p in payloads] == ["created", "updated", "updated", "deleted"]
    assert payloads == expected


def test_a_rows_notification_past_7900_bytes_is_its_head_as_010_printed_it(db_dsn: str) -> None:
    """014 writes a row's entry in todos_journal, 7,900-byte limit included:
    past it the head alone goes (json_build_object's), the entry whole in
    the journal. No title the app takes is that long: the test widens the
    column in its own database."""
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        writer.execute("ALTER TABLE todos ALTER COLUMN title TYPE text")
        listener.execute("LISTEN todo_changes")
        (short,) = writer.execute("INSERT INTO todos (title) VALUES (repeat('x', 7000)) RETURNING id").fetchone()  # type: ignore[misc]
        (long,) = writer.execute("INSERT INTO todos (title) VALUES (repeat('y', 7800)) RETURNING id").fetchone()  # type: ignore[misc]
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
        expected = [r[0] for r in writer.execute(
            """SELECT CASE WHEN todo_id = %s THEN json_build_object(
                   'position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at, 'list_before', list_before,
                   'list_after', list_after, 'person', person_id, 'todo', todo)::text
               ELSE json_build_object('position', position, 'op', op, 'id', todo_id, 'changed_at', changed_at,
                                      'list_before', list_before, 'list_after', list_after, 'person', person_id)::text END
               FROM todo_changes ORDER BY position""", (short,))]
        titles = writer.execute("SELECT length(todo->>'title') FROM todo_changes ORDER BY position").fetchall()
    assert payloads == expected
    assert [json.loads(p)["id"] for p in payloads] == [str(short), str(long)]
    assert len(payloads[0].encode()) < 7900 and "todo" not in json.loads(payloads[1])
    assert titles == [(7000,), (7800,)]


def test_a_rows_entry_tells_a_session_that_asks_its_position_and_key(db_dsn: str) -> None:
    """014 writes a row's entry in todos_journal: with app.cursor_notice on,
    each entry's position comes by NOTICE (SQLSTATE 01GT0) at commit, and
    the entry carries app.mutation's key; a moved row's (journal_write's) too."""
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        notices: list[tuple[str | None, str | None]] = []
        writer.add_notice_handler(lambda d: notices.append((d.sqlstate, d.message_primary)))
        (row_id,) = writer.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
        (other,) = writer.execute(
            "INSERT INTO lists (owner_id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'other') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        writer.execute("SET app.cursor_notice = on")
        with writer.transaction():
            writer.execute("SELECT set_config('app.mutation', 'k1', true)")
            writer.execute("UPDATE todos SET title = 'b' WHERE id = %s", (row_id,))
            writer.execute("UPDATE todos SET list_id = %s WHERE id = %s", (other, row_id))
            writer.execute("DELETE FROM todos WHERE id = %s", (row_id,))
        entries = writer.execute(
            "SELECT position, op, mutation FROM todo_changes WHERE todo_id = %s ORDER BY position", (row_id,)
        ).fetchall()
    assert [(op, key) for _, op, key in entries] == [("created", None), ("updated", "k1"), ("updated", "k1"),
                                                     ("deleted", "k1")]
    assert notices == [("01GT0", f"graphql-todos cursor {position}") for position, _, _ in entries[1:]]


def test_migrating_a_decoded_database_keeps_its_stager_and_index_and_readies_the_new_writer(
    admin_dsn: str, db_dsn: str, tmp_path: Path
) -> None:
    """012 replaces journal_write. In decoded mode that name holds the
    switch's stager, and trigger mode's writer waits in journal_mode.restore:
    012 goes there, and a switch back brings it (as a fresh install has it).
    013 leaves the sequencer's index of sources to decoded mode."""
    for f in migration_files():
        if f.name < "012":
            (tmp_path / f.name).write_text(f.read_text())
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gt_decoded WITH (FORCE)")
        conn.execute("CREATE DATABASE gt_decoded")
    writer = "SELECT pg_get_functiondef('journal_write'::regproc)"
    sources = "SELECT to_regclass('todo_changes_source') IS NOT NULL"
    try:
        dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname="gt_decoded")
        migrate(dsn, tmp_path)
        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.transaction():
                conn.execute(TO_DECODED)
            stager = conn.execute(writer).fetchone()
            assert migrate(dsn)
            assert conn.execute(writer).fetchone() == stager
            # The sequencer's index of sources stays (013 drops it in trigger mode only).
            assert conn.execute(sources).fetchone() == (True,)
            (restore,) = conn.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
            with conn.transaction():
                conn.execute(TO_TRIGGER)
                conn.execute(restore)
            switched_back = conn.execute(writer).fetchone()
            assert conn.execute(sources).fetchone() == (False,)
        with psycopg.connect(db_dsn) as fresh:
            assert switched_back == fresh.execute(writer).fetchone()
            assert fresh.execute(sources).fetchone() == (False,)
        assert restore.count("CREATE OR REPLACE FUNCTION") == 2
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gt_decoded WITH (FORCE)")


def test_upgrading_keeps_the_journal_going(admin_dsn: str, tmp_path: Path) -> None:
    """A database journaled by the previous migrations goes on, after this
    one, from the position it had reached, with the same notifications."""
    *earlier, newest = migration_files()
    for f in earlier:
        (tmp_path / f.name).write_text(f.read_text())
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gt_upgrade WITH (FORCE)")
        conn.execute("CREATE DATABASE gt_upgrade")
    try:
        dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname="gt_upgrade")
        migrate(dsn, tmp_path)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO todos (title) VALUES ('before')")
        assert migrate(dsn) == [newest.name]
        with psycopg.connect(dsn, autocommit=True) as listener, psycopg.connect(dsn, autocommit=True) as writer:
            listener.execute("LISTEN todo_changes")
            writer.execute("UPDATE todos SET title = 'after'")
            [notify] = list(listener.notifies(timeout=5, stop_after=1))
            entries = writer.execute("SELECT position, op, todo->>'title' FROM todo_changes ORDER BY position").fetchall()
        payload = json.loads(notify.payload)
        assert (payload["position"], payload["op"], payload["todo"]["title"]) == (2, "updated", "after")
        assert entries == [(1, "created", "before"), (2, "updated", "after")]
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gt_upgrade WITH (FORCE)")


def test_the_server_is_a_version_the_readme_claims(db_dsn: str) -> None:
    """make test runs this on the newest claimed (embedded) and the oldest (TEST_POSTGRES_BIN)."""
    match = re.search(r"PostgreSQL (\d+) to (\d+)", (ROOT / "README.md").read_text())
    assert match is not None
    oldest, newest = map(int, match.groups())
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert oldest <= int(row[0]) // 10000 <= newest


def test_no_migration_found_is_an_error_not_up_to_date(db_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(NoMigrations, match=str(tmp_path)):
        migrate(db_dsn, tmp_path)
