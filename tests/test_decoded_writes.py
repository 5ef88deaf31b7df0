"""Writes with the journal fed by logical decoding (JOURNAL=decoded;
docs/design/journal-decoding.md, "The write path"): what changes when the
entry is not there at commit. The write's right is held FOR SHARE until
its commit, so a removal or a demotion waits for it; a retry that arrives
before the sequencer journaled the original waits for its entry."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from graphql_todos.core import lists, verdicts, writes
from graphql_todos.core.journal_mode import SOURCE_INDEX
from graphql_todos.core.models import LOCAL_LIST_ID
from graphql_todos.core.pgoutput import JOURNAL
from tests.decoded import Journaled, journaled
from tests.gql import CHANGES as GQL_CHANGES
from tests.gql import TransportWs, create, data
from tests.helpers import serving, wait_until
from tests.test_lists import CREATE as CREATE_IN
from tests.test_lists import CREATE_LIST, SHARE, Caller
from tests.test_lists_deleted_concurrently import member_row_free, queued_on
from tests.test_mutations_once import CREATE, count, http, numbered

DECODED = pytest.mark.parametrize("journaled_db", ["decoded"], indirect=True)


def _blocked(conn: psycopg.Connection[Any], table: str) -> int:
    """Lock requests on `table`, or on a transaction holding one of its rows, not granted."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND (relation = %s::regclass OR locktype = 'transactionid')",
        (table,),
    ).fetchone()
    assert row is not None
    return int(row[0])


@DECODED
def test_a_retry_before_the_original_is_journaled_waits_for_its_entry(journaled_db: Journaled) -> None:
    me = str(uuid.uuid4())
    body = numbered(CREATE, {"t": "retried early"}, me, 1)
    with serving(journaled_db.dsn, journal="decoded") as server, psycopg.connect(server.dsn, autocommit=True) as holder:
        cursors = server.state("service").cursors
        # The sequencer's journal INSERT waits on this: nothing is journaled meanwhile.
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")
        replies: list[bytes] = []
        threads = [threading.Thread(target=lambda: replies.append(http(server, body))) for _ in range(2)]
        threads[0].start()
        wait_until(lambda: count(server, "SELECT count(*) FROM todos WHERE title = 'retried early'") == 1, timeout=10)
        threads[1].start()
        # Both wait: the original for its cursor, the retry for the original's entries.
        wait_until(lambda: server.call(lambda: cursors.waiters) == 2, timeout=10)
        assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s AND position IS NULL", me) == 1
        assert replies == []
        holder.execute("COMMIT")
        for thread in threads:
            thread.join(10)
        entry = count(server, "SELECT max(position) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:1")
    assert len(replies) == 2 and replies[0] == replies[1], replies
    reply = json.loads(replies[0])
    assert reply["extensions"]["mutation"]["verdict"] == "APPLIED"
    assert reply["extensions"]["cursor"] == str(entry)


LOSSES = pytest.mark.parametrize("loss", ["DELETE FROM list_members", "UPDATE list_members SET role = 'viewer'"])


def _lost_during_write(dsn: str, loss: str) -> tuple[list[str], uuid.UUID]:
    """Bob, an editor, writes a todo with the app's statement (its
    transaction left open) while the owner runs `loss` on his membership;
    then the write commits. What happened in which order, and the todo."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (LOCAL_LIST_ID, bob))
        (todo,) = setup.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
    events: list[str] = []
    with psycopg.connect(dsn) as writer, psycopg.connect(dsn, autocommit=True) as owner:
        params = {"id": todo, "title": "written by bob", "completed": None, "actor": bob}
        [row] = writer.execute(writes.DECODED.update.plain, params).fetchall()  # type: ignore[arg-type]
        assert row[1] == "written by bob"

        def lose() -> None:
            owner.execute(f"{loss} WHERE person_id = %s AND list_id = %s", (bob, LOCAL_LIST_ID))  # type: ignore[arg-type]
            events.append("lost")

        losing = threading.Thread(target=lose)
        losing.start()
        with psycopg.connect(dsn, autocommit=True) as observer:
            wait_until(lambda: _blocked(observer, "list_members") >= 1, timeout=10)
        events.append("committing")
        writer.commit()
        losing.join(10)
    return events, todo


@DECODED
@LOSSES
def test_a_removal_or_demotion_waits_for_the_members_open_write(journaled_db: Journaled, loss: str) -> None:
    """The write's statement holds the member's row FOR SHARE: the removal
    (a DELETE) or the demotion (a no-key UPDATE, which FOR KEY SHARE would
    let by) commits after the write, which is applied."""
    events, todo = _lost_during_write(journaled_db.dsn, loss)
    assert events == ["committing", "lost"]
    with psycopg.connect(journaled_db.dsn) as conn:
        assert conn.execute("SELECT title FROM todos WHERE id = %s", (todo,)).fetchone() == ("written by bob",)


@DECODED
@LOSSES
def test_a_members_write_open_at_the_removal_or_demotion_is_journaled_first(journaled_db: Journaled, loss: str) -> None:
    _, todo = _lost_during_write(journaled_db.dsn, loss)
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        journaled(conn)
        ops = [op for (op,) in conn.execute(
            "SELECT op FROM todo_changes WHERE (op = 'updated' AND todo_id = %s) OR op IN ('member_removed', 'member_updated')"
            " ORDER BY position", (todo,)
        )]
    assert ops == ["updated", "member_removed" if loss.startswith("DELETE") else "member_updated"]


@DECODED
def test_a_write_whose_entry_does_not_come_is_answered_database_unavailable(journaled_db: Journaled) -> None:
    """The sequencer held (its journal INSERT waits on a lock): the write
    committed, and its reply says so past the wait, never a hang."""
    with (
        serving(journaled_db.dsn, journal="decoded", database_timeout_seconds=1.0) as server,
        psycopg.connect(server.dsn, autocommit=True) as holder,
    ):
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")
        reply = httpx.post(server.url + "/api/todos/", json={"title": "journaled late"}, timeout=10)
        holder.execute("COMMIT")
        assert count(server, "SELECT count(*) FROM todos WHERE title = 'journaled late'") == 1
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "DATABASE_UNAVAILABLE"
    assert "the change was made, but the journal has not recorded it in 1 s" in error["message"]


@DECODED
def test_retention_keeps_a_verdict_whose_entries_are_not_journaled_yet(journaled_db: Journaled) -> None:
    """With no entry of its key yet, an applied verdict younger than
    MUTATIONS_KEEP_SECONDS stays: verdicts go by age alone (the journal's
    retention stores an applied one's answer with it as its entries go)."""
    me = str(uuid.uuid4())
    with serving(journaled_db.dsn, journal="decoded") as server, psycopg.connect(server.dsn, autocommit=True) as conn:
        # An entry, newer than the verdict will look: the journal's oldest kept.
        httpx.post(server.url + "/api/todos/", json={"title": "journaled first"}, timeout=10).raise_for_status()
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE todo_changes IN SHARE MODE")
        replies: list[bytes] = []
        writer = threading.Thread(target=lambda: replies.append(http(server, numbered(CREATE, {"t": "kept"}, me, 1))))
        writer.start()
        wait_until(lambda: count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 1, timeout=10)
        conn.execute("UPDATE mutations SET created_time = now() - interval '1 day' WHERE client_id = %s", (me,))
        assert conn.execute(verdicts.PRUNE_MUTATIONS, {"keep_seconds": 3 * 86400, "limit": 10}).rowcount == 0
        conn.execute("ROLLBACK")
        writer.join(10)
        assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 1
    assert json.loads(replies[0])["extensions"]["mutation"]["verdict"] == "APPLIED"


def test_an_entry_keeps_its_xid_when_decoded_before_its_backend_left_the_procarray(db_dsn: str) -> None:
    """The sequencer can journal a commit before its writer's backend has
    left the procarray: that xid is then at or above every snapshot's xmax,
    and its entry must still carry the writer's own xid8 (the writer finds
    its cursor by it), not one an epoch before."""
    with (
        psycopg.connect(db_dsn) as older,
        psycopg.connect(db_dsn) as writer,
        psycopg.connect(db_dsn, autocommit=True) as sequencer,
    ):
        # Both still running: the snapshots' xmax is at most the older's xid, below the writer's.
        older.execute("SELECT pg_current_xact_id()")
        (xid,) = writer.execute("SELECT pg_current_xact_id()::text").fetchone()  # type: ignore[misc]
        row = {"id": str(uuid.uuid4()), "title": "decoded early"}
        entry = {"source": "test/early", "xid": int(xid) & 0xFFFFFFFF, "op": "created", "row": row, "at": 0}
        sequencer.execute(SOURCE_INDEX)  # as the switch to decoded builds it (sql/013)
        sequencer.execute(JOURNAL, (json.dumps([entry]),))  # type: ignore[arg-type]
        assert sequencer.execute("SELECT xid::text FROM todo_changes WHERE source = 'test/early'").fetchone() == (xid,)


RENAME = "mutation($id: ID!) { updateTodo(id: $id, input: {title: \"renamed\"}) { id title } }"


def _rename(caller: Caller, transport: str, row: str) -> httpx.Response:
    if transport == "graphql":
        return caller.http.post("/graphql", json={"query": RENAME, "variables": {"id": row}})
    return caller.http.patch(f"/api/todos/{row}/", json={"title": "renamed"})


@DECODED
def test_a_removal_takes_the_list_before_the_member_row(journaled_db: Journaled) -> None:
    """The lock order itself: with the list's row held as a member's todo
    write holds it (FOR KEY SHARE, core/writes.py), the owner's removal of
    that member (the app's statement) waits for the list before it touches
    the member's row, so the writer, which next locks that row, finds it
    free. (Deleting the row first, its commit then waited for the list
    holding the row: a deadlock.)"""
    with serving(journaled_db.dsn, auth="accounts", journal="decoded") as server, \
            psycopg.connect(journaled_db.dsn) as writing, psycopg.connect(journaled_db.dsn) as probe:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
        ann.data(SHARE, id=shared, u="bob", r="EDITOR")
        writing.execute("SELECT FROM lists WHERE id = %s FOR KEY SHARE", (shared,))
        (writer_pid,) = writing.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        answers: list[httpx.Response] = []
        remover = threading.Thread(target=lambda: answers.append(ann.http.delete(f"/api/lists/{shared}/members/{bob.id}/")))
        remover.start()
        wait_until(lambda: queued_on(probe, writer_pid) == ["lists"], timeout=10)
        # Free: the waiting removal holds no lock on it.
        member_row_free(probe, shared, bob.id)
        writing.rollback()
        remover.join(20)
    [answer] = answers
    assert answer.status_code == 204, answer.text


@DECODED
def test_a_share_takes_the_list_before_its_commit_takes_the_journal_s_lock(journaled_db: Journaled) -> None:
    """Two shares of one list: each commit takes the journal's lock and then
    the list's row FOR UPDATE (its arrivals, sql/011). The app's share takes
    the list FOR UPDATE in its statement, so behind another share (psql's,
    its member row inserted, the list held FOR KEY SHARE by its foreign key)
    it waits for the list holding nothing; a share holding the list only by
    its foreign key went on to its commit and waited for the list holding
    the journal's lock, which the other's commit then waited for: a deadlock."""
    with serving(journaled_db.dsn, auth="accounts", journal="decoded") as server, \
            psycopg.connect(journaled_db.dsn) as other, psycopg.connect(journaled_db.dsn, autocommit=True) as probe:
        ann, cat = Caller(server, "ann"), Caller(server, "cat")
        Caller(server, "bob")  # the name ann's share gives
        shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
        other.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (shared, cat.id))
        answers: list[httpx.Response] = []
        sharing = threading.Thread(
            target=lambda: answers.append(ann.http.post(f"/api/lists/{shared}/members/", json={"username": "bob", "role": "viewer"}))
        )
        sharing.start()
        wait_until(lambda: _blocked(probe, "lists") == 1, timeout=10)
        assert queued_on(probe, other.info.backend_pid) == ["lists"]
        # Free: the waiting share holds no journal's lock (its commit's).
        locked = probe.execute("SELECT pg_try_advisory_xact_lock(%s)", (writes.COMMIT_ORDER_LOCK,)).fetchone()
        assert locked == (True,)
        other.commit()
        sharing.join(20)
        members = probe.execute("SELECT count(*) FROM list_members WHERE list_id = %s", (shared,)).fetchone()
    [answer] = answers
    assert answer.status_code == 201, answer.text
    assert members == (3,)


@pytest.mark.parametrize("transport", ["graphql", "rest"])
def test_a_writer_behind_a_removal_is_answered_as_refused(db_dsn: str, transport: str) -> None:
    """ann removes bob from her list (the app's statement, its transaction
    held open) while bob renames a row of it. The removal's commit takes
    the list's row FOR UPDATE (its removals, sql/011), and its statement
    holds it so already, before bob's member row: bob's statement, which
    takes the list before his member row (core/writes.py), waits for it
    holding nothing, so no deadlock closes (one did when the removal took
    bob's row alone: bob's statement held the list waiting on that row).
    At the removal's commit bob is answered as it left him, refused, never
    DATABASE_UNAVAILABLE nor a 500."""
    with serving(db_dsn, auth="accounts", journal="decoded") as server, \
            psycopg.connect(db_dsn) as removal, psycopg.connect(db_dsn, autocommit=True) as probe:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
        row = ann.data(CREATE_IN, t="milk", l=shared)["createTodo"]["id"]
        ann.data(SHARE, id=shared, u="bob", r="EDITOR")
        assert removal.execute(lists.DELETE_MEMBER[True], {"list": shared, "member": bob.id}).rowcount == 1
        replies: list[httpx.Response] = []
        writer = threading.Thread(target=lambda: replies.append(_rename(bob, transport, row)))
        writer.start()
        # Bob queues on the list's row, not on his member row.
        wait_until(lambda: queued_on(probe, removal.info.backend_pid) == ["lists"], timeout=10)
        removal.commit()
        writer.join(20)
        title = probe.execute("SELECT title FROM todos WHERE id = %s", (row,)).fetchone()
    [reply] = replies
    assert title == ("milk",)
    if transport == "graphql":
        assert reply.status_code == 200 and reply.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND", reply.text
    else:
        assert reply.status_code == 404, reply.text


# The fast path's selection (PostgreSQL writes the list), and one it leaves to the resolvers (introspection).
TODO_LISTS = {
    "fast": "{ todoList { cursor todos { title } } }",
    "resolver": '{ __type(name: "Todo") { name } todoList { cursor todos { title } } }',
}


@pytest.mark.parametrize("path", sorted(TODO_LISTS))
def test_a_list_read_cursor_covers_a_commit_it_saw_before_its_entry(db_dsn: str, path: str) -> None:
    """A row committed while the sequencer's INSERT waits is visible to a
    read before its entry exists: the read's cursor must still be at or past
    that entry, or `todoChanges(after: cursor)` sends its CREATED again (a
    duplicate every resume from that cursor repeats)."""
    with (
        serving(db_dsn, journal="decoded") as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
        psycopg.connect(db_dsn, autocommit=True) as holder,
        psycopg.connect(db_dsn, autocommit=True) as conn,
    ):
        create(client, "before")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")  # the sequencer's INSERT waits
        conn.execute("INSERT INTO todos (title) VALUES ('committed, not journaled')")
        reading = threading.Thread(target=lambda: listed.append(data(client, TODO_LISTS[path])["todoList"]))
        listed: list[dict[str, Any]] = []
        reading.start()
        reading.join(0.5)
        holder.execute("COMMIT")
        reading.join(20)
        journaled(conn)
        with TransportWs(server.ws_url) as ws:
            ws.subscribe(GQL_CHANGES, {"after": listed[0]["cursor"]})
            create(client, "after")
            first = ws.next_data()["todoChanges"]["todo"]["title"]
    assert "committed, not journaled" in [todo["title"] for todo in listed[0]["todos"]]
    assert first == "after"


def test_a_row_watchers_first_state_covers_a_commit_it_saw_before_its_entry(db_dsn: str) -> None:
    """As a list read's cursor: a `todo(id)` watcher starting while a change
    to its row is committed but not yet journaled shows that change in its
    first state, and must not get it again as a change once it is journaled."""
    with (
        serving(db_dsn, journal="decoded") as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
        psycopg.connect(db_dsn, autocommit=True) as holder,
        psycopg.connect(db_dsn, autocommit=True) as conn,
        TransportWs(server.ws_url) as ws,
    ):
        row = create(client, "before")["id"]
        journaled(conn)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")  # the sequencer's INSERT waits
        conn.execute("UPDATE todos SET title = 'committed, not journaled' WHERE id = %s", (row,))
        ws.subscribe("subscription($id: ID!) { todo(id: $id) { title } }", {"id": row})
        threading.Event().wait(0.5)
        holder.execute("COMMIT")
        first = ws.next_data()["todo"]["title"]
        journaled(conn)
        data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {title: \"after\"}) { id } }", {"id": row})
        then = ws.next_data()["todo"]["title"]
    assert (first, then) == ("committed, not journaled", "after")


@DECODED
def test_a_list_read_the_journal_does_not_catch_up_with_is_answered_database_unavailable(
    journaled_db: Journaled,
) -> None:
    """The sequencer held (its journal INSERT waits on a lock) with a commit
    the read saw: its cursor cannot be settled, and the read says so past
    the wait, never a hang."""
    with (
        serving(journaled_db.dsn, journal="decoded", database_timeout_seconds=1.0) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
        psycopg.connect(server.dsn, autocommit=True) as holder,
    ):
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO todos (title) VALUES ('journaled late')")
        body = client.post("/graphql", json={"query": TODO_LISTS["fast"]}).json()
        holder.execute("COMMIT")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert "the journal has not caught up with this read in 1 s" in error["message"]


def _member_of_two(dsn: str, held: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """bob, an editor of ann's default list and the owner of his own; a todo
    in the one `held` names (shared: ann's, own: bob's), and that list."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        (ann,) = setup.execute("INSERT INTO people (username) VALUES ('ann') RETURNING id").fetchone()  # type: ignore[misc]
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        (listed,) = setup.execute(  # type: ignore[misc]
            "SELECT id FROM lists WHERE owner_id = %s", (ann if held == "shared" else bob,)
        ).fetchone()
        if held == "shared":
            setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (listed, bob))
        (todo,) = setup.execute("INSERT INTO todos (title, list_id) VALUES ('a', %s) RETURNING id", (listed,)).fetchone()  # type: ignore[misc]
    return bob, listed, todo


@DECODED
@pytest.mark.parametrize("held", ["shared", "own"])
def test_a_person_s_deletion_takes_their_lists_before_their_member_rows(journaled_db: Journaled, held: str) -> None:
    """psql's DELETE FROM people, with one of the person's lists held as a
    member's todo write first holds it (FOR KEY SHARE, core/writes.py): the
    DELETE waits for the list before its cascade touches a member row
    (sql/021), so the write's statement, which next locks its member row FOR
    SHARE, goes on and commits, and the DELETE after it. (The cascade deleted
    the member rows first, and its commit then waited for the list holding
    them, sql/011: the write waited on the row, a deadlock. His own list was
    taken first already, by luck: the cascade of lists fires before that of
    members, their triggers' names in OID order.)"""
    bob, listed, todo = _member_of_two(journaled_db.dsn, held)
    failures: list[Exception] = []

    def delete() -> None:
        try:
            with psycopg.connect(journaled_db.dsn, autocommit=True) as admin:
                admin.execute("DELETE FROM people WHERE id = %s", (bob,))
        except psycopg.Error as exc:
            failures.append(exc)

    with psycopg.connect(journaled_db.dsn) as writing, psycopg.connect(journaled_db.dsn) as probe:
        writing.execute("SELECT FROM lists WHERE id = %s FOR KEY SHARE", (listed,))
        deleting = threading.Thread(target=delete)
        deleting.start()
        wait_until(lambda: queued_on(probe, writing.info.backend_pid) == ["lists"], timeout=10)
        # Free: the waiting DELETE holds no lock on it.
        member_row_free(probe, str(listed), str(bob))
        params = {"id": todo, "title": "written by bob", "completed": None, "actor": bob}
        written = writing.execute(writes.DECODED.update.plain, params).fetchall()  # type: ignore[arg-type]
        writing.commit()
        deleting.join(20)
        gone = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
    assert failures == []
    assert [row[1] for row in written] == ["written by bob"]
    assert gone == (0,)


@pytest.mark.parametrize("journaled_db", ["trigger"], indirect=True)
def test_a_person_s_deletion_in_trigger_mode_waits_for_no_list_of_theirs(journaled_db: Journaled) -> None:
    """Trigger mode's commits lock no list and its writes no member row: a
    person's deletion takes no list it does not delete (sql/021), so one
    held by a member's write keeps no DELETE waiting."""
    bob, listed, _ = _member_of_two(journaled_db.dsn, "shared")
    with psycopg.connect(journaled_db.dsn) as writing, psycopg.connect(journaled_db.dsn, autocommit=True) as admin:
        writing.execute("SELECT FROM lists WHERE id = %s FOR KEY SHARE", (listed,))
        admin.execute("SET lock_timeout = '5s'")
        assert admin.execute("DELETE FROM people WHERE id = %s", (bob,)).rowcount == 1
