"""A view at a cursor in JOURNAL=decoded (both modes run): a membership
change is in list_members at its commit but in the journal only once the
sequencer has journaled it. A stream opened from a cursor in between must
still start from the reader's lists at that cursor (people.md section 2, "A
view at a cursor"): a share not yet journaled is not taken as always there
(everything of the list before the share is not the reader's), nor a removal
not yet journaled as always so (what the list had for the reader before it
is). Found by review11; fixed by Hub.view_at's wait for the sequencer."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from graphql_todos.core.errors import ErrorCode
from graphql_todos.core.read_cursors import CONFIRMED
from tests.conftest import Journaled
from tests.decoded import journaled
from tests.helpers import TOKEN, Server, serving, wait_until
from tests.test_decoded_writes import DECODED
from tests.test_lists import CREATE, CREATE_LIST, DELETE, SHARE, Caller
from tests.test_lists_live import REMOVE


@pytest.fixture
def accounts(journaled_db: Journaled) -> Iterator[Server]:
    with serving(journaled_db.dsn, journal=journaled_db.journal, auth="accounts", token=TOKEN) as srv:
        yield srv


def _received(url: str, seconds: float) -> list[str]:
    """Every message a RESTSocket sends in the time given."""
    got: list[str] = []
    with connect(url, open_timeout=10) as ws:
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                got.append(str(ws.recv(timeout=left)))
        except (TimeoutError, ConnectionClosed):
            pass
    return got


def _view_read(server: Server, journal: str) -> Callable[[], bool]:
    """Once true: a stream opened after this call has read the reader's lists
    its view rests on (Hub.view_at). It then subscribes: the hub's
    subscribers one more than at this call. Decoded, it first waits for the
    sequencer, which looks at the slot (read_cursors.CONFIRMED) every few ms
    meanwhile: a connection of the server running it since this call."""
    before = _subscribers(server)
    prefix = CONFIRMED.split("%")[0]  # the text before its parameter
    since = time.time()

    def waiting() -> bool:
        # A connection of its own: one in a transaction sees the activity as at its first look.
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE left(query, length(%s)) = %s"
                " AND query_start > to_timestamp(%s)",
                (prefix, prefix, since),
            ).fetchone() == (True,)

    return lambda: _subscribers(server) > before or (journal == "decoded" and waiting())


def _subscribers(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    return float(re.search(r"^graphql_todos_hub_subscribers (\S+)$", text, re.MULTILINE)[1])  # type: ignore[index]


def _setting(server: Server, title: str) -> tuple[Caller, Caller, str, str, str]:
    """ann, bob, bob's token, ann's list and a row in it titled `title`."""
    ann, bob = Caller(server, "ann"), Caller(server, "bob")
    secret = bob.http.post("/api/tokens/", json={"name": "stream"}).json()["secret"]
    shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
    row = ann.data(CREATE, t=title, l=shared)["createTodo"]["id"]
    return ann, bob, secret, shared, row


def _opened_while_held(
    server: Server, journaled_db: Journaled, change: Callable[[], object], bob: Caller, shared: str, url: str
) -> list[str]:
    """What a stream opened at `url` gets while `change` (a change of bob's
    membership of the list) is committed but its member entry not journaled:
    the sequencer stalls at it (trigger mode: the change waits for the lock
    at its commit, so the stream opens before it)."""
    with psycopg.connect(server.dsn, autocommit=True) as side:
        journaled(side)
        (members,) = side.execute(  # type: ignore[misc]
            "SELECT count(*) FROM list_members WHERE list_id = %s AND person_id = %s", (shared, bob.id)
        ).fetchone()
        side.execute("BEGIN")
        side.execute("LOCK TABLE todo_changes_members IN SHARE MODE")
        write = threading.Thread(target=change)
        write.start()
        if journaled_db.journal == "decoded":
            wait_until(lambda: side.execute(
                "SELECT count(*) FROM list_members WHERE list_id = %s AND person_id = %s", (shared, bob.id)
            ).fetchone() == (1 - members,))
        received: list[str] = []
        read = _view_read(server, journaled_db.journal)
        reader = threading.Thread(target=lambda: received.extend(_received(url, 4)))
        reader.start()
        wait_until(read, timeout=10)
        side.execute("COMMIT")
    write.join(10)
    reader.join(10)
    return received


@pytest.mark.parametrize("path", ["/api/feed/", "/api/todos/"])
def test_a_stream_opened_while_a_share_is_not_yet_journaled_gets_nothing_from_before_it(
    accounts: Server, journaled_db: Journaled, path: str
) -> None:
    ann, bob, secret, shared, gone = _setting(accounts, "gone before the share")
    ann.data(DELETE, id=gone)
    ann.data(CREATE, t="there at the share", l=shared)
    received = _opened_while_held(
        accounts, journaled_db, lambda: ann.data(SHARE, id=shared, u="bob", r="VIEWER"), bob, shared,
        f"{accounts.ws_url}{path}?after=0&token={secret}",
    )
    assert any("there at the share" in message for message in received), received
    assert not any("gone before the share" in message for message in received), received
    kinds = [json.loads(message).get("kind") for message in received]
    assert "list_added" not in kinds or kinds.index("list_added") > kinds.index("member_added"), kinds


@pytest.mark.parametrize("path", ["/api/feed/", "/api/todos/"])
def test_a_stream_opened_from_now_gets_nothing_committed_before_a_share_it_sees_late(
    accounts: Server, journaled_db: Journaled, path: str
) -> None:
    """The same from now (no cursor): a delete in the list, committed before
    the share and journaled after the stream opened, is not the reader's."""
    ann, bob, secret, shared, gone = _setting(accounts, "deleted before the share")
    decoded = journaled_db.journal == "decoded"
    with psycopg.connect(accounts.dsn, autocommit=True) as side:
        journaled(side)
        side.execute("BEGIN")
        if decoded:  # every entry waits, after its commit (trigger mode: the writes are simply done first)
            side.execute("LOCK TABLE todo_changes IN SHARE MODE")
        writes = [
            threading.Thread(target=lambda: ann.data(DELETE, id=gone)),
            threading.Thread(target=lambda: ann.data(SHARE, id=shared, u="bob", r="VIEWER")),
        ]
        # Committed in this order: the delete, then the share.
        for write, members in zip(writes, (0, 1), strict=True):
            write.start()
            if not decoded:
                write.join(10)
            wait_until(lambda members=members: side.execute(  # type: ignore[misc]
                "SELECT (SELECT count(*) FROM todos WHERE id = %s) = 0 AND"
                " (SELECT count(*) FROM list_members WHERE list_id = %s AND person_id = %s) = %s",
                (gone, shared, bob.id, members),
            ).fetchone() == (True,))
        received: list[str] = []
        read = _view_read(accounts, journaled_db.journal)
        reader = threading.Thread(target=lambda: received.extend(
            _received(f"{accounts.ws_url}{path}?token={secret}", 4)
        ))
        reader.start()
        wait_until(read, timeout=10)
        side.execute("COMMIT")
    for thread in (*writes, reader):
        thread.join(10)
    assert not any("deleted before the share" in message for message in received), received


@pytest.mark.parametrize("path", ["/api/feed/", "/api/todos/"])
def test_a_stream_opened_while_a_removal_is_not_yet_journaled_gets_what_came_before_it(
    accounts: Server, journaled_db: Journaled, path: str
) -> None:
    """The mirror: bob a member at the cursor, removed since (committed, not
    yet journaled). What the list had after the cursor and before the
    removal is his: read as never a member, it would be lost."""
    ann, bob, secret, shared, _ = _setting(accounts, "before the cursor")
    ann.data(SHARE, id=shared, u="bob", r="VIEWER")
    with psycopg.connect(accounts.dsn, autocommit=True) as side:
        journaled(side)
        (cursor,) = side.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
    ann.data(CREATE, t="after the cursor", l=shared)
    received = _opened_while_held(
        accounts, journaled_db, lambda: ann.data(REMOVE, l=shared, p=bob.id), bob, shared,
        f"{accounts.ws_url}{path}?after={cursor}&token={secret}",
    )
    # Its creation (then, with the removal, the rows he no longer sees go: both).
    created = [message for message in received if json.loads(message).get("op", json.loads(message).get("kind")) in (
        "created", "todo_created")]
    assert any("after the cursor" in message for message in created), received


@DECODED
def test_a_view_the_journal_does_not_catch_up_with_closes_the_stream_database_unavailable(
    journaled_db: Journaled,
) -> None:
    """The sequencer held (its journal INSERT waits on a lock) with a commit
    before the view's read: the view cannot be known, and the stream opening
    from a cursor says so past the wait (4503), never a silent hang."""
    with serving(
        journaled_db.dsn, journal="decoded", auth="accounts", token=TOKEN, database_timeout_seconds=1.0
    ) as server:
        bob = Caller(server, "bob")
        secret = bob.http.post("/api/tokens/", json={"name": "stream"}).json()["secret"]
        with psycopg.connect(server.dsn, autocommit=True) as holder:
            journaled(holder)
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE todo_changes IN SHARE MODE")
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO todos (title) VALUES ('journaled late')")
            with connect(f"{server.ws_url}/api/feed/?after=0&token={secret}", open_timeout=10) as ws:
                started = time.monotonic()
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                waited = time.monotonic() - started
            holder.execute("COMMIT")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == ErrorCode.DATABASE_UNAVAILABLE.close_code
    assert "the journal has not caught up with the memberships read in 1 s" in closed.value.rcvd.reason
    assert waited < 5
