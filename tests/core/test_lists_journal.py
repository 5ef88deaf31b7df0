"""007_lists.sql: lists and members, and a journal each reader can be shown
its part of (docs/design/people.md sections 1 to 3), at the SQL level; in
both journal modes (JOURNAL=trigger, and decoded: sql/011's staged entries
journaled by the sequencer). The tests of the commit-order lock are the
trigger's; their decoded twins show the list's row lock ordering the same."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from graphql_todos.core.models import LOCAL_LIST_ID
from graphql_todos.core.people import LOCAL
from tests.decoded import journaled, sequenced
from tests.helpers import wait_until

DEFAULT_LIST = LOCAL_LIST_ID
# The commit-order lock's tests, and their decoded twins (the list's row lock).
TRIGGER_ONLY = pytest.mark.parametrize("db_dsn", ["trigger"], indirect=True)
DECODED_ONLY = pytest.mark.parametrize("db_dsn", ["decoded"], indirect=True)


@pytest.fixture(params=["trigger", "decoded"])
def db_dsn(request: pytest.FixtureRequest, db_dsn: str) -> Iterator[str]:
    """Each test's database in either journal mode (a test of one mode alone
    narrows the params: TRIGGER_ONLY, DECODED_ONLY)."""
    if request.param == "trigger":
        yield db_dsn
        return
    with sequenced(db_dsn):
        yield db_dsn


def _person(conn: psycopg.Connection[Any], name: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A new person and their default list."""
    row = conn.execute(
        "WITH p AS (INSERT INTO people (username) VALUES (%s) RETURNING id) SELECT id FROM p", (name,)
    ).fetchone()
    assert row is not None
    default = conn.execute("SELECT id FROM lists WHERE owner_id = %s AND is_default", (row[0],)).fetchone()
    assert default is not None
    return row[0], default[0]


def _journal(conn: psycopg.Connection[Any], after: int = 0) -> list[tuple[Any, ...]]:
    journaled(conn)
    return conn.execute(
        "SELECT op, todo_id, list_before, list_after, person_id, todo->>'title', before->>'title', detail"
        " FROM todo_changes WHERE position > %s ORDER BY position",
        (after,),
    ).fetchall()


def _newest(conn: psycopg.Connection[Any]) -> int:
    journaled(conn)
    row = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()
    assert row is not None
    return int(row[0])


def test_existing_todos_join_locals_default_list_and_new_ones_too(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        assert conn.execute("SELECT list_id FROM todos").fetchall() == [(DEFAULT_LIST,)]
        assert conn.execute("SELECT list_id, person_id, role FROM list_members").fetchall() == [
            (DEFAULT_LIST, LOCAL.id, "owner")
        ]
        [entry] = _journal(conn)
    assert entry[:4] == ("created", entry[1], None, DEFAULT_LIST)


def test_a_new_person_gets_a_default_list_they_own(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        person, default = _person(conn, "ann")
        ops = [(e[0], e[2], e[4]) for e in _journal(conn)]
    assert ops == [("list_created", default, None), ("member_added", default, person)]


def test_sharing_journals_the_member_then_its_arrivals_and_unsharing_removals_then_the_member(
    db_dsn: str,
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _, ann_list = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
        for title in ("one", "two"):
            conn.execute("INSERT INTO todos (title, list_id) VALUES (%s, %s)", (title, ann_list))
        mark = _newest(conn)
        conn.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (ann_list, bob))
        shared = [(e[0], e[4], e[5]) for e in _journal(conn, mark)]
        assert shared == [("member_added", bob, None), ("arrived", bob, "one"), ("arrived", bob, "two")]
        mark = _newest(conn)
        conn.execute("UPDATE list_members SET role = 'editor' WHERE person_id = %s AND list_id = %s", (bob, ann_list))
        conn.execute("DELETE FROM list_members WHERE person_id = %s AND list_id = %s", (bob, ann_list))
        entries = _journal(conn, mark)
    assert [(e[0], e[4], e[6]) for e in entries] == [
        ("member_updated", bob, None),
        ("removed", bob, "one"),
        ("removed", bob, "two"),
        ("member_removed", bob, None),
    ]
    assert entries[0][7]["role_after"] == "editor"
    assert entries[3][7] == {"role_before": "editor", "role_after": None, "username": "bob", "reason": None}


def test_a_move_records_both_lists_and_the_row_before(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _, ann_list = _person(conn, "ann")
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        mark = _newest(conn)
        conn.execute("UPDATE todos SET list_id = %s, title = 'moved'", (ann_list,))
        [entry] = _journal(conn, mark)
    assert entry[0] == "updated"
    assert (entry[2], entry[3], entry[5], entry[6]) == (DEFAULT_LIST, ann_list, "moved", "a")


def test_deleting_a_list_journals_its_todos_then_its_members_then_itself(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, _ = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
        (shared,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO lists (owner_id, name) VALUES (%s, 'shared') RETURNING id", (ann,)
        ).fetchone()
        conn.execute("INSERT INTO list_members VALUES (%s, %s, 'owner'), (%s, %s, 'editor')", (shared, ann, shared, bob))
        conn.execute("INSERT INTO todos (title, list_id) VALUES ('x', %s)", (shared,))
        mark = _newest(conn)
        conn.execute("DELETE FROM lists WHERE id = %s", (shared,))
        entries = _journal(conn, mark)
    assert [e[0] for e in entries] == ["deleted", "member_removed", "member_removed", "list_deleted"]
    assert {e[4] for e in entries[1:3]} == {ann, bob}
    assert all(e[7]["reason"] == "list_deleted" for e in entries[1:3])


def test_a_transaction_may_not_change_a_lists_members_and_its_todos(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        conn.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (DEFAULT_LIST, bob))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            conn.commit()


@TRIGGER_ONLY
def test_a_writer_removed_by_a_commit_before_its_own_is_refused_at_commit(db_dsn: str) -> None:
    """people.md section 2, rule 1: the right is judged at the commit position."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (DEFAULT_LIST, bob))
        (row,) = setup.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
    with psycopg.connect(db_dsn) as writer, psycopg.connect(db_dsn, autocommit=True) as owner:
        writer.execute("SELECT set_config('app.person_id', %s, true)", (str(bob),))
        writer.execute("UPDATE todos SET title = 'b' WHERE id = %s", (row,))
        owner.execute("DELETE FROM list_members WHERE person_id = %s AND list_id = %s", (bob, DEFAULT_LIST))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.commit()
        ops = [e[0] for e in _journal(owner)]
    assert ops[-2:] == ["removed", "member_removed"]
    assert "updated" not in ops


@TRIGGER_ONLY
def test_a_viewer_may_not_write_and_psql_is_not_checked(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (DEFAULT_LIST, bob))
    with psycopg.connect(db_dsn) as conn:
        conn.execute("SELECT set_config('app.person_id', %s, true)", (str(bob),))
        conn.execute("INSERT INTO todos (title) VALUES ('no')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.commit()
        conn.execute("INSERT INTO todos (title) VALUES ('psql')")
        conn.commit()


@TRIGGER_ONLY
def test_arrivals_are_the_rows_at_the_shares_commit(db_dsn: str) -> None:
    """Rule 2: an insert still open while the list is shared lands after the
    share as a created entry, not among the arrivals."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
    with (
        psycopg.connect(db_dsn) as writer,
        psycopg.connect(db_dsn, autocommit=True) as owner,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        writer.execute("INSERT INTO todos (title) VALUES ('late')")
        mark = _newest(owner)
        owner.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (DEFAULT_LIST, bob))
        writer.commit()
        ops = [(e[0], e[5]) for e in _journal(observer, mark)]
    assert ops == [("member_added", None), ("created", "late")]


def test_ending_a_session_or_token_is_journaled(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        bob, _ = _person(conn, "bob")
        (session,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO sessions (secret_hash, person_id, expires_time) VALUES ('\\x01', %s, now()) RETURNING id",
            (bob,),
        ).fetchone()
        (token,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO access_tokens (secret_hash, person_id, name) VALUES ('\\x02', %s, 't') RETURNING id", (bob,)
        ).fetchone()
        mark = _newest(conn)
        conn.execute("DELETE FROM sessions")
        conn.execute("DELETE FROM access_tokens")
        entries = [(e[0], e[4], e[7]) for e in _journal(conn, mark)]
    assert entries == [
        ("access_revoked", bob, {"session": str(session)}),
        ("access_revoked", bob, {"token": str(token)}),
    ]


@TRIGGER_ONLY
def test_the_lock_orders_membership_and_todo_commits(db_dsn: str) -> None:
    """A share whose expansion holds the commit-order lock makes a todo
    commit wait for it, so the todo's entry comes after the arrivals."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
        setup.execute("INSERT INTO todos (title) VALUES ('a')")
    with (
        psycopg.connect(db_dsn) as owner,
        psycopg.connect(db_dsn, autocommit=True) as writer,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        mark = _newest(observer)
        owner.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (DEFAULT_LIST, bob))
        owner.execute("SET CONSTRAINTS ALL IMMEDIATE")
        pid = writer.info.backend_pid
        thread = threading.Thread(target=lambda: writer.execute("INSERT INTO todos (title) VALUES ('b')"))
        thread.start()
        wait_until(lambda: observer.execute(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)", (pid,)
        ).fetchone() == (True,), timeout=10)
        owner.commit()
        thread.join(10)
        ops = [(e[0], e[5]) for e in _journal(observer, mark)]
    assert ops == [("member_added", None), ("arrived", "a"), ("created", "b")]


def _waiting(observer: psycopg.Connection[Any], pid: int) -> None:
    """Until backend `pid` waits for a lock."""
    wait_until(lambda: observer.execute(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND NOT granted)", (pid,)
    ).fetchone() == (True,), timeout=10)


@DECODED_ONLY
def test_decoded_a_removal_waits_for_an_open_write_whose_entry_comes_first(db_dsn: str) -> None:
    """Rule 1 without the commit-order lock: the write reads its right FOR
    SHARE (the app's statements do), so the removal waits for its commit,
    and no entry of the writer lands after its removal."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (DEFAULT_LIST, bob))
        (row,) = setup.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
        mark = _newest(setup)
    with (
        psycopg.connect(db_dsn) as writer,
        psycopg.connect(db_dsn, autocommit=True) as owner,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        writer.execute(
            "UPDATE todos SET title = 'b' WHERE id = %s AND EXISTS (SELECT FROM list_members WHERE list_id = %s"
            " AND person_id = %s AND role <> 'viewer' FOR SHARE)", (row, DEFAULT_LIST, bob),
        )
        removal = threading.Thread(target=lambda: owner.execute(
            "DELETE FROM list_members WHERE person_id = %s AND list_id = %s", (bob, DEFAULT_LIST)
        ))
        removal.start()
        _waiting(observer, owner.info.backend_pid)
        writer.commit()
        removal.join(10)
        entries = [(e[0], e[4], e[5]) for e in _journal(observer, mark)]
    assert entries == [("updated", None, "b"), ("removed", bob, None), ("member_removed", bob, None)]


@DECODED_ONLY
def test_decoded_a_share_waits_for_an_open_insert_which_is_among_its_arrivals(db_dsn: str) -> None:
    """The share reads the list's rows with the list's row FOR UPDATE; an
    open insert holds it FOR KEY SHARE (its foreign key), so the share
    commits after it, and its arrivals hold the row created before them."""
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        bob, _ = _person(setup, "bob")
        setup.execute("INSERT INTO todos (title) VALUES ('a')")
        mark = _newest(setup)
    with (
        psycopg.connect(db_dsn) as writer,
        psycopg.connect(db_dsn) as owner,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        writer.execute("INSERT INTO todos (title) VALUES ('late')")
        owner.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (DEFAULT_LIST, bob))
        share = threading.Thread(target=owner.commit)
        share.start()
        _waiting(observer, owner.info.backend_pid)
        writer.commit()
        share.join(10)
        entries = [(e[0], e[5]) for e in _journal(observer, mark)]
    assert entries == [("created", "late"), ("member_added", None), ("arrived", "a"), ("arrived", "late")]

