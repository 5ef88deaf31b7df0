"""Journal retention against the real app: by row count and by age, oldest
first and never the newest, never what a subscriber of this process has
still to read, one process at a time."""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from graphql_todos.core import repository
from graphql_todos.live.hub import Hub
from graphql_todos.live.retention import Retention
from tests.gql import LegacyWs, TransportWs
from tests.helpers import Server, make_server, wait_until

RETENTION_KEY = 7305202418


@pytest.fixture
def serve(db_dsn: str) -> Iterator[Callable[..., Server]]:
    """Starts the app with these Settings overrides; stops it after the test.
    Unless told, it prunes only when the test says so."""
    started: list[Server] = []

    def start(**overrides: Any) -> Server:
        server = make_server(db_dsn, **{"journal_prune_seconds": 3600, **overrides})
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def keep_two(serve: Callable[..., Server]) -> Server:
    return serve(journal_keep_rows=2)


def sql(server: Server, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def insert(server: Server, count: int) -> None:
    """`count` todos in one statement; returns once the hub has delivered them
    (until then, the hub itself still needs them)."""
    sql(server, "INSERT INTO todos (title) SELECT 't' || n FROM generate_series(1, %s) n", (count,))
    newest = max(positions(server))
    wait_until(lambda: server.call(lambda: server.hub.position) == newest)


def positions(server: Server) -> list[int]:
    return [p for (p,) in sql(server, "SELECT position FROM todo_changes ORDER BY position")]


def prune(server: Server) -> int:
    retention: Retention = server.state("retention")
    return server.run(retention.prune())


def test_keeps_the_newest_rows(keep_two: Server) -> None:
    insert(keep_two, 5)
    assert prune(keep_two) == 3
    assert positions(keep_two) == [4, 5]
    assert sql(keep_two, "SELECT through FROM todo_changes_pruned") == [(3,)]
    assert prune(keep_two) == 0


def test_prunes_by_age_oldest_first_and_never_the_newest(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_seconds=3600)
    insert(server, 4)
    sql(server, "UPDATE todo_changes SET changed_at = now() - interval '2 hours' WHERE position <> 3")
    # 3 is young: the journal keeps it and everything after it, no holes.
    assert prune(server) == 2
    assert positions(server) == [3, 4]
    sql(server, "UPDATE todo_changes SET changed_at = now() - interval '2 hours'")
    assert prune(server) == 1
    assert positions(server) == [4]


def test_prunes_in_batches(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_rows=1, journal_batch=3)
    insert(server, 10)
    assert prune(server) == 9
    assert positions(server) == [10]


def test_keeps_what_a_subscriber_of_this_process_has_still_to_read(keep_two: Server) -> None:
    insert(keep_two, 5)
    hub: Hub = keep_two.hub
    behind = hub.subscribe(after=1)
    keep_two.run(behind.__aenter__())
    try:
        assert prune(keep_two) == 1
        assert positions(keep_two) == [2, 3, 4, 5]
    finally:
        keep_two.run(behind.__aexit__(None, None, None))
    assert prune(keep_two) == 2
    assert positions(keep_two) == [4, 5]


def test_one_process_prunes_at_a_time(keep_two: Server) -> None:
    insert(keep_two, 5)
    with psycopg.connect(keep_two.dsn, autocommit=True) as other:
        # Another process is pruning: this one skips its turn.
        other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_KEY,))
        assert prune(keep_two) == 0
        assert positions(keep_two) == [1, 2, 3, 4, 5]
        other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_KEY,))
    assert prune(keep_two) == 3


def test_prunes_on_its_own(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_rows=1, journal_prune_seconds=0.1)
    insert(server, 3)
    wait_until(lambda: positions(server) == [3])


def test_the_watcher_of_a_quiet_row_does_not_pin_the_journal(keep_two: Server) -> None:
    insert(keep_two, 1)
    [(todo_id,)] = sql(keep_two, "SELECT id FROM todos")
    with connect(f"{keep_two.ws_url}/api/todos/{todo_id}/") as watcher:
        assert json.loads(watcher.recv(timeout=5))["op"] == "snapshot"
        insert(keep_two, 5)
        assert prune(keep_two) == 4
        assert positions(keep_two) == [5, 6]
        sql(keep_two, "UPDATE todos SET completed = true WHERE id = %s", (todo_id,))
        message = json.loads(watcher.recv(timeout=5))
        assert (message["op"], message["cursor"]) == ("updated", "7")



# Pruned while behind: another process's retention passes a subscriber of
# this one by. Every transport says CURSOR_EXPIRED with the oldest cursor, in
# its own way, wherever the expiry is found. The app's pool has one
# connection, which the test holds and hands on (Turnstile): each journal
# read of the app waits for it, so the test prunes exactly between two.


class Turnstile:
    """The app's only pooled connection, held by the test: `admit()` lets the
    app's one waiting reader have it (waiters are served in turn), and takes
    it back once that reader is done with it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pool = server.state("pool")
        self.held = server.run(self.pool.getconn())

    def waiting(self) -> int:
        return int(self.server.pool_stats()["requests_waiting"])

    def admit(self) -> None:
        wait_until(lambda: self.waiting() == 1)
        assert self.server._loop is not None
        ours = asyncio.run_coroutine_threadsafe(self.pool.getconn(), self.server._loop)
        wait_until(lambda: self.waiting() == 2)
        self.server.run(self.pool.putconn(self.held))
        self.held = ours.result(10)

    def release(self) -> None:
        self.server.run(self.pool.putconn(self.held))


def prune_all_but_the_newest(server: Server, below: int = 2**62) -> str:
    """As another process's retention would (JOURNAL_KEEP_ROWS=1), or this
    one's (keeping what it still needs: `below`): the oldest cursor left."""
    sql(server, repository.PRUNE_JOURNAL, {"below": below, "keep_seconds": 3600, "keep_rows": 1, "limit": 1000})
    [(through,)] = sql(server, "SELECT through FROM todo_changes_pruned")
    return str(through)


def expired(cursor: str, oldest: str) -> list[dict[str, Any]]:
    """The GraphQL errors of a stream that finds its cursor pruned past once
    started, as Strawberry's path gives them (no location: no field raised)."""
    message = f"cursor {cursor} has expired; the oldest cursor available is {oldest}"
    return [{"message": message, "extensions": {"code": "CURSOR_EXPIRED", "oldest": oldest}}]


def codes(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [error["extensions"] for error in errors]


FEED = "subscription($after: String) { todoChanges(after: $after) { op cursor } }"
# The same feed on Strawberry's path (the fan-out takes no document with a directive).
STRAWBERRYS = "subscription($after: String) { todoChanges(after: $after) { op cursor @include(if: true) } }"


class Feed:
    """A subscriber over one transport, from `after`: `changes(n)` reads the
    cursors of the next n changes, `expired(cursor, oldest)` checks what the
    transport says when it finds the cursor pruned past once started (and
    that it ends), `refused(oldest)` when the start finds it so."""

    def changes(self, count: int) -> list[str]:
        raise NotImplementedError

    def expired(self, cursor: str, oldest: str) -> None:
        raise NotImplementedError

    def refused(self, oldest: str) -> None:
        raise NotImplementedError


class TransportWsFeed(Feed):
    def __init__(self, server: Server, after: str, query: str = FEED) -> None:
        self.ws = TransportWs(server.ws_url)
        self.id = self.ws.subscribe(query, {"after": after})

    def changes(self, count: int) -> list[str]:
        return [self.ws.next_data()["todoChanges"]["cursor"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        errors = {"data": None, "errors": expired(cursor, oldest)}
        assert self.ws.recv() == {"id": self.id, "type": "next", "payload": errors}
        assert self.ws.recv() == {"id": self.id, "type": "complete"}

    def refused(self, oldest: str) -> None:
        message = self.ws.recv()
        assert (message["id"], message["type"]) == (self.id, "error")
        assert codes(message["payload"]) == [{"code": "CURSOR_EXPIRED", "oldest": oldest}]


class LegacyWsFeed(Feed):
    def __init__(self, server: Server, after: str, query: str = FEED) -> None:
        self.ws = LegacyWs(server.ws_url)
        self.ws.send({"id": "1", "type": "start", "payload": {"query": query, "variables": {"after": after}}})

    def changes(self, count: int) -> list[str]:
        return [self.ws.recv()["payload"]["data"]["todoChanges"]["cursor"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        errors = {"data": None, "errors": expired(cursor, oldest)}
        assert self.ws.recv() == {"id": "1", "type": "data", "payload": errors}
        assert self.ws.recv() == {"id": "1", "type": "complete"}

    def refused(self, oldest: str) -> None:
        message = self.ws.recv()
        assert (message["id"], message["type"]) == ("1", "error")
        assert codes([message["payload"]]) == [{"code": "CURSOR_EXPIRED", "oldest": oldest}]


class RestSocketFeed(Feed):
    """Its handshake is answered once its start has checked the cursor
    (rest/sockets.relay), which may wait for the pool the test holds: the
    connect runs in a thread, and is taken when the test first reads."""

    def __init__(self, server: Server, after: str) -> None:
        connecting = ThreadPoolExecutor(max_workers=1)
        self._connected = connecting.submit(connect, f"{server.ws_url}/api/todos/?after={after}")
        connecting.shutdown(wait=False)

    @property
    def ws(self) -> ClientConnection:
        return self._connected.result(10)

    def _message(self) -> Any:
        while (message := json.loads(self.ws.recv(timeout=10)))["op"] == "keepalive":
            pass
        return message

    def changes(self, count: int) -> list[str]:
        return [self._message()["cursor"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        with pytest.raises(ConnectionClosed) as closed:
            self._message()
        assert closed.value.rcvd is not None
        reason = f"cursor {cursor} has expired; the oldest cursor available is {oldest}"
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4410, reason)

    def refused(self, oldest: str) -> None:
        self.expired("1", oldest)


class HttpFeed(Feed):
    """A streaming response: the request is sent at once, the response read
    when the test asks (its head comes once the start has read the journal)."""

    def __init__(self, server: Server, method: str, path: str, accept: str, body: Any = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        headers = {"Accept": accept, "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        self._response: http.client.HTTPResponse | None = None

    @property
    def response(self) -> http.client.HTTPResponse:
        if self._response is None:
            self._response = self.conn.getresponse()
        return self._response

    def events(self) -> Iterator[dict[str, str]]:
        """Server-Sent Events, heartbeats and blocks with no data (which an
        EventSource dispatches not) left out, until the response ends."""
        fields: dict[str, str] = {}
        while line := self.response.readline():
            text = line.decode().rstrip("\n")
            if text:
                if not text.startswith(":"):
                    name, _, value = text.partition(": ")
                    fields[name] = value
            elif fields:
                if "data" in fields:
                    yield fields
                fields = {}


class GraphQLSseFeed(HttpFeed):
    def __init__(self, server: Server, after: str, query: str = FEED) -> None:
        super().__init__(server, "POST", "/graphql", "text/event-stream", {"query": query, "variables": {"after": after}})

    def changes(self, count: int) -> list[str]:
        events = self.events()
        return [json.loads(next(events)["data"])["data"]["todoChanges"]["cursor"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        assert [(e["event"], json.loads(e["data"] or "null")) for e in self.events()] == [
            ("next", {"errors": expired(cursor, oldest)}), ("complete", None),
        ]

    def refused(self, oldest: str) -> None:
        [(first, errors), last] = [(e["event"], json.loads(e["data"] or "null")) for e in self.events()]
        assert (first, codes(errors["errors"]), last) == (
            "next", [{"code": "CURSOR_EXPIRED", "oldest": oldest}], ("complete", None),
        )


class MultipartFeed(HttpFeed):
    def __init__(self, server: Server, after: str, query: str = FEED) -> None:
        accept = "multipart/mixed;subscriptionSpec=1.0,application/json"
        super().__init__(server, "POST", "/graphql", accept, {"query": query, "variables": {"after": after}})

    def _parts(self) -> Iterator[Any]:
        """Each part's JSON, heartbeats ({}) left out, until the closing boundary."""
        while line := self.response.readline():
            if line.startswith(b"{") and line.strip() != b"{}":
                yield json.loads(line)
            elif line.strip() == b"--graphql--":
                return
        raise AssertionError("no closing boundary")

    def changes(self, count: int) -> list[str]:
        parts = self._parts()
        return [next(parts)["payload"]["data"]["todoChanges"]["cursor"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        assert list(self._parts()) == [{"payload": {"errors": expired(cursor, oldest)}}]
        assert self.response.read() == b""

    def refused(self, oldest: str) -> None:
        [part] = self._parts()
        assert codes(part["payload"]["errors"]) == [{"code": "CURSOR_EXPIRED", "oldest": oldest}]


class RestSseFeed(HttpFeed):
    def __init__(self, server: Server, after: str) -> None:
        super().__init__(server, "GET", f"/api/todos/?after={after}", "text/event-stream")

    def changes(self, count: int) -> list[str]:
        events = self.events()
        return [next(events)["id"] for _ in range(count)]

    def expired(self, cursor: str, oldest: str) -> None:
        message = f"cursor {cursor} has expired; the oldest cursor available is {oldest}"
        body = {"error": {"code": "CURSOR_EXPIRED", "message": message, "oldest": oldest}}
        assert [(e["event"], json.loads(e["data"])) for e in self.events()] == [("error", body)]

    def refused(self, oldest: str) -> None:
        assert self.response.status == 410
        error = json.loads(self.response.read())["error"]
        assert (error["code"], error["oldest"]) == ("CURSOR_EXPIRED", oldest)


FEEDS: dict[str, Callable[[Server, str], Feed]] = {
    "graphql-transport-ws": TransportWsFeed,
    "graphql-ws": LegacyWsFeed,
    "sse": GraphQLSseFeed,
    "multipart": MultipartFeed,
    "rest-sse": RestSseFeed,
    "restsocket": RestSocketFeed,
}
# And the GraphQL ones with the document on Strawberry's path: the same answers.
WITH_STRAWBERRYS: dict[str, Callable[[Server, str], Feed]] = {
    **FEEDS,
    **{
        f"{name} (Strawberry's path)": functools.partial(feed, query=STRAWBERRYS)
        for name, feed in (
            ("graphql-transport-ws", TransportWsFeed), ("graphql-ws", LegacyWsFeed),
            ("sse", GraphQLSseFeed), ("multipart", MultipartFeed),
        )
    },
}


@pytest.fixture
def turnstiled(serve: Callable[..., Server]) -> Server:
    """One pooled connection, waited for as long as the test takes; one
    journal entry per read; no heartbeat reads the journal meanwhile."""
    return serve(pool_size=1, database_timeout_seconds=120, journal_batch=1, heartbeat_seconds=120)


@pytest.mark.parametrize("transport", FEEDS)
def test_pruned_past_at_the_start(turnstiled: Server, transport: str) -> None:
    insert(turnstiled, 3)
    oldest = prune_all_but_the_newest(turnstiled)
    FEEDS[transport](turnstiled, "1").refused(oldest)


def catching_up(server: Server, transport: str, changes: int) -> tuple[Turnstile, Feed]:
    """A subscriber from cursor 0 of `changes` changes, given the first and
    waiting for the pool to read the next."""
    insert(server, changes)
    gate = Turnstile(server)
    feed = WITH_STRAWBERRYS[transport](server, "0")
    gate.admit()  # the cursor check
    gate.admit()  # the first journal read: change 1 goes out
    assert feed.changes(1) == ["1"]
    wait_until(lambda: gate.waiting() == 1)
    return gate, feed


@pytest.mark.parametrize("transport", WITH_STRAWBERRYS)
def test_pruned_past_while_catching_up(turnstiled: Server, transport: str) -> None:
    gate, feed = catching_up(turnstiled, transport, 3)
    # Meanwhile, another process prunes.
    oldest = prune_all_but_the_newest(turnstiled)
    gate.release()
    feed.expired("1", oldest)


@pytest.mark.parametrize("transport", WITH_STRAWBERRYS)
def test_this_process_keeps_what_a_subscriber_catching_up_still_needs(turnstiled: Server, transport: str) -> None:
    """A broadcast member reading the journal to catch up to its group is
    no hub subscriber of its own: the hub counts it all the same."""
    gate, feed = catching_up(turnstiled, transport, 5)
    # Meanwhile, this process prunes with its retention's bound (on a
    # connection of its own: the pool's one is the test's).
    hub: Hub = turnstiled.hub
    pruned_through = prune_all_but_the_newest(turnstiled, below=turnstiled.call(hub.needed_after) + 1)
    gate.release()
    assert feed.changes(4) == ["2", "3", "4", "5"]
    assert pruned_through == "1"


@pytest.mark.parametrize("transport", FEEDS)
def test_pruned_past_the_listener_and_its_group(turnstiled: Server, transport: str) -> None:
    """The listener itself was away (here: waiting for the pool) while
    another process pruned past it: every broadcast member is behind."""
    insert(turnstiled, 1)
    feed = FEEDS[transport](turnstiled, "1")
    wait_until(lambda: turnstiled.subscriber_count() == 1)
    gate = Turnstile(turnstiled)
    # Not ours on the channel: the listener reads the journal, and waits.
    sql(turnstiled, "NOTIFY todo_changes, 'not a change'")
    wait_until(lambda: gate.waiting() == 1)
    sql(turnstiled, "INSERT INTO todos (title) VALUES ('a'), ('b'), ('c')")
    oldest = prune_all_but_the_newest(turnstiled)
    gate.release()
    feed.expired("1", oldest)


def test_a_live_list_pruned_past_reads_itself_again_and_goes_on(turnstiled: Server) -> None:
    """A live query has no cursor to expire: its list is read again."""
    insert(turnstiled, 1)
    with TransportWs(turnstiled.ws_url) as ws:
        ws.subscribe("subscription { todos { title } }")
        assert ws.next_data() == {"todos": [{"title": "t1"}]}
        gate = Turnstile(turnstiled)
        sql(turnstiled, "NOTIFY todo_changes, 'not a change'")
        wait_until(lambda: gate.waiting() == 1)
        sql(turnstiled, "INSERT INTO todos (title) VALUES ('a'), ('b'), ('c')")
        prune_all_but_the_newest(turnstiled)
        gate.release()
        assert titles(ws) == ["a", "b", "c", "t1"]
        sql(turnstiled, "INSERT INTO todos (title) VALUES ('d')")
        assert titles(ws) == ["a", "b", "c", "d", "t1"]


def titles(ws: TransportWs) -> list[str]:
    return sorted(todo["title"] for todo in ws.next_data()["todos"])
