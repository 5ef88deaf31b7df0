"""Every live stream shows its reader what it may see (docs/design/people.md
sections 2 and 6), on every transport: a row of a list shared with the
reader arrives whole, its updates follow, it is removed when the reader is,
and a row the reader never could see sends nothing; a stream resumed from a
cursor judges each entry at its own position, so it gets the same changes."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.helpers import TOKEN, Server, serving, wait_until
from tests.live_readers import READERS
from tests.sse_client import Events
from tests.test_lists import CREATE, CREATE_LIST, DELETE, SHARE, Caller

REMOVE = "mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { role } }"
RENAME = "mutation($id: ID!, $t: String!) { updateTodo(id: $id, input: {title: $t}) { id } }"


def _token(caller: Caller) -> tuple[str, str]:
    """A new personal access token of the caller's: its secret and id."""
    response = caller.http.post("/api/tokens/", json={"name": "stream"})
    assert response.status_code == 201, response.text
    return response.json()["secret"], response.json()["token"]["id"]


def _cursor(caller: Caller, query: str, **variables: Any) -> str:
    """Run a mutation; the journal cursor its reply carries."""
    body = caller.gql(query, **variables)
    assert "errors" not in body, body
    cursor: str = body["extensions"]["cursor"]
    return cursor


# What bob's reader gets of Story.play.
EXPECTED = [("created", "milk"), ("updated", "oat milk"), ("deleted", "oat milk"), ("created", "mine")]


class Story:
    """ann shares a list with bob, edits it, unshares it, writes on; bob's
    reader must see only his part of it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ann, self.bob = Caller(server, "ann"), Caller(server, "bob")
        self.token, self.token_id = _token(self.bob)
        self.list = self.ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
        self.milk = self.ann.data(CREATE, t="milk", l=self.list)["createTodo"]["id"]
        # Before anything bob may see: a reader resumed from here gets it all.
        self.start = _cursor(self.ann, CREATE, t="ann's alone", l=None)

    def play(self) -> None:
        self.ann.data(CREATE, t="never bob's", l=None)
        self.ann.data(SHARE, id=self.list, u="bob", r="VIEWER")
        self.ann.data(RENAME, id=self.milk, t="oat milk")
        self.ann.data(REMOVE, l=self.list, p=self.bob.id)
        self.ann.data(CREATE, t="after bob left", l=self.list)
        self.ann.data(RENAME, id=self.milk, t="not for bob")
        self.bob.data(CREATE, t="mine", l=None)


@pytest.mark.parametrize("transport", READERS)
def test_a_reader_gets_arrivals_updates_and_removals_of_its_lists_only(accounts: Server, transport: str) -> None:
    story = Story(accounts)
    before = accounts.subscriber_count()
    with READERS[transport](accounts, story.token, None) as reader:
        wait_until(lambda: accounts.subscriber_count() > before)
        story.play()
        assert reader.take(4) == EXPECTED
    # Resumed from a cursor before the share: the same changes, once.
    with READERS[transport](accounts, story.token, story.start) as reader:
        assert reader.take(4) == EXPECTED
        story.bob.data(CREATE, t="last", l=None)
        assert reader.take(1) == [("created", "last")]


def _transport_ws(server: Server, token: str) -> Any:
    ws = connect(
        server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10,
    )
    ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
    return ws


def _messages(ws: Any) -> Iterator[dict[str, Any]]:
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message["type"] not in ("ping", "pong"):
            yield message


def test_a_watched_row_ends_when_its_reader_is_removed_and_an_unseen_row_is_null(accounts: Server) -> None:
    story = Story(accounts)
    story.ann.data(SHARE, id=story.list, u="bob", r="EDITOR")
    watch = {"query": "subscription($id: ID!) { todo(id: $id) { title } }", "variables": {"id": story.milk}}
    with _transport_ws(accounts, story.token) as ws:
        before = accounts.subscriber_count()
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": watch}))
        messages = _messages(ws)
        assert next(messages)["payload"]["data"]["todo"] == {"title": "milk"}
        wait_until(lambda: accounts.subscriber_count() > before)
        story.ann.data(RENAME, id=story.milk, t="oat milk")
        assert next(messages)["payload"]["data"]["todo"] == {"title": "oat milk"}
        story.ann.data(REMOVE, l=story.list, p=story.bob.id)
        assert next(messages)["payload"]["data"]["todo"] is None
        assert next(messages) == {"id": "1", "type": "complete"}
        # A row bob cannot see is no row.
        ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": watch}))
        assert next(messages)["payload"]["data"]["todo"] is None
        assert next(messages) == {"id": "2", "type": "complete"}


def test_a_live_list_gains_shared_rows_and_loses_them_with_the_share(accounts: Server) -> None:
    story = Story(accounts)
    live = {"query": "subscription { todos { title } }"}
    with _transport_ws(accounts, story.token) as ws:
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": live}))
        messages = _messages(ws)

        def titles() -> list[str]:
            return [row["title"] for row in next(messages)["payload"]["data"]["todos"]]

        assert titles() == []
        story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
        assert titles() == ["milk"]
        story.ann.data(CREATE, t="never bob's", l=None)
        story.ann.data(REMOVE, l=story.list, p=story.bob.id)
        story.bob.data(CREATE, t="mine", l=None)
        # Coalesced versions: never one with ann's own row; the last is bob's alone.
        seen = [titles()]
        while seen[-1] != ["mine"]:
            seen.append(titles())
        assert all("never bob's" not in version for version in seen), seen


@pytest.mark.parametrize("transport", READERS)
def test_revoking_the_token_ends_its_streams_and_a_reconnect_resumes_once(accounts: Server, transport: str) -> None:
    story = Story(accounts)
    story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
    before = accounts.subscriber_count()
    with READERS[transport](accounts, story.token, story.start) as reader:
        wait_until(lambda: accounts.subscriber_count() > before)
        [(_, title, cursor)] = [reader.next()]
        assert title == "milk"
        assert story.bob.http.delete(f"/api/tokens/{story.token_id}/").status_code == 204
        with pytest.raises(StopIteration):
            reader.next()
        closed = reader.closed
        error = reader.error
    if transport in ("graphql-transport-ws", "graphql-ws", "restsocket"):
        assert closed == 4401
    else:
        assert (closed, error) == ("ended", "UNAUTHENTICATED")
    # The revoked token opens nothing now; a new one resumes after the cursor, once.
    new_token, _ = _token(story.bob)
    story.bob.data(CREATE, t="mine", l=None)
    with READERS[transport](accounts, new_token, cursor) as reader:
        assert reader.take(1) == [("created", "mine")]


def test_a_stream_ends_when_its_session_expires(db_dsn: str) -> None:
    # Open sockets count as activity (the idle deadline moves), not past the absolute one.
    with serving(db_dsn, auth="accounts", token=TOKEN, session_max_seconds=2.0) as server:
        bob = Caller(server, "bob")
        headers = {"accept": "text/event-stream"}
        with bob.http.stream("GET", "/api/todos/", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            events = [event for event in Events(response) if "comment" not in event]
        [last] = events
        assert last["event"] == "error"
        assert json.loads(last["data"])["error"] == {"code": "UNAUTHENTICATED", "message": "session expired"}


MOVE = "mutation($id: ID!, $l: ID!) { moveTodo(id: $id, listId: $l) { id } }"
DELETE_LIST = "mutation($id: ID!) { deleteList(id: $id) { id } }"


@pytest.mark.parametrize("transport", ["graphql-transport-ws", "rest-sse"])
def test_a_row_moved_in_arrives_moved_out_is_removed_and_a_deleted_list_deletes_its_rows(
    accounts: Server, transport: str
) -> None:
    story = Story(accounts)
    story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
    other = story.ann.data(CREATE_LIST, name="ann's own")["createList"]["id"]
    moving = story.ann.data(CREATE, t="moving", l=other)["createTodo"]["id"]
    before = accounts.subscriber_count()
    with READERS[transport](accounts, story.token, None) as reader:
        wait_until(lambda: accounts.subscriber_count() > before)
        story.ann.data(MOVE, id=moving, l=story.list)
        story.ann.data(RENAME, id=moving, t="moved")
        story.ann.data(MOVE, id=moving, l=other)
        story.ann.data(RENAME, id=moving, t="ann's again")
        story.ann.data(DELETE_LIST, id=story.list)
        story.bob.data(CREATE, t="mine", l=None)
        assert reader.take(5) == [
            ("created", "moving"), ("updated", "moved"), ("deleted", "moved"), ("deleted", "milk"), ("created", "mine")
        ]


FEED = """subscription($after: String) { feed(after: $after) {
    kind cursor todoId listId reason todo { title } member { person { username } role } list { name }
} }"""


def test_the_feed_carries_a_reader_s_lists_members_and_rows(accounts: Server) -> None:
    story = Story(accounts)
    with _transport_ws(accounts, story.token) as ws:
        before = accounts.subscriber_count()
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": FEED}}))
        wait_until(lambda: accounts.subscriber_count() > before)
        story.ann.data(CREATE, t="never bob's", l=None)
        story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
        story.ann.data(RENAME, id=story.milk, t="oat milk")
        story.ann.data(REMOVE, l=story.list, p=story.bob.id)
        story.bob.data(CREATE, t="mine", l=None)
        messages = _messages(ws)
        events = [next(messages)["payload"]["data"]["feed"] for _ in range(6)]
    shared = story.list
    assert [(e["kind"], e["listId"]) for e in events] == [
        ("MEMBER_ADDED", shared), ("TODO_ARRIVED", shared), ("TODO_UPDATED", shared),
        ("TODO_REMOVED", shared), ("MEMBER_REMOVED", shared), ("TODO_CREATED", events[5]["listId"]),
    ]
    assert events[0]["member"] == {"person": {"username": "bob"}, "role": "VIEWER"}
    assert [e["todo"] for e in events[1:4]] == [{"title": "milk"}, {"title": "oat milk"}, None]
    assert events[3]["todoId"] == story.milk
    assert events[4]["list"] is None  # bob no longer sees it
    assert events[5]["todo"] == {"title": "mine"} and events[5]["listId"] != shared


def test_a_jwt_s_streams_end_at_its_exp(db_dsn: str) -> None:
    secret = "an-hs256-secret-for-the-tests-0123456789"
    with serving(db_dsn, auth="accounts", token=TOKEN, jwt_secret=secret, sign_up="open") as server:
        def token() -> str:
            return jwt.encode({"sub": "wendy", "exp": int(time.time()) + 3}, secret, algorithm="HS256")

        headers = {"accept": "text/event-stream", "authorization": f"Bearer {token()}"}
        with httpx.stream("GET", server.url + "/api/todos/", headers=headers, timeout=10) as response:
            assert response.status_code == 200
            events = [event for event in Events(response) if "comment" not in event]
        assert [json.loads(event["data"])["error"] for event in events] == [
            {"code": "UNAUTHENTICATED", "message": "token expired"}
        ]
        with READERS["graphql-transport-ws"](server, token(), None) as reader, pytest.raises(StopIteration):
            reader.next()
        assert reader.closed == 4401


def _rest_feed(server: Server, token: str, after: str, transport: str, count: int) -> list[dict[str, Any]]:
    """The first `count` events of /api/feed/ after the cursor, as a RESTSocket or an event stream."""
    url = f"/api/feed/?after={after}"
    if transport == "RESTSocket":
        received: list[dict[str, Any]] = []
        with connect(server.ws_url + url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            while len(received) < count:
                message = json.loads(ws.recv(timeout=10))
                if message.get("op") != "keepalive":
                    received.append(message)
        return received
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {token}"}
    with httpx.stream("GET", server.url + url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        events = (event for event in Events(response) if "comment" not in event)
        taken = list(itertools.islice(events, count))
    data = [json.loads(event["data"]) for event in taken]
    # Each event is named for its kind, with its cursor as the id (Last-Event-ID resumes).
    assert [(event["event"], event["id"]) for event in taken] == [(d["kind"], d["cursor"]) for d in data]
    return data


@pytest.mark.parametrize("transport", ["RESTSocket", "REST SSE"])
def test_the_rest_feed_carries_what_graphql_s_feed_does(accounts: Server, transport: str) -> None:
    story = Story(accounts)
    story.ann.data(CREATE, t="never bob's", l=None)
    story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
    story.ann.data(RENAME, id=story.milk, t="oat milk")
    story.ann.data(REMOVE, l=story.list, p=story.bob.id)
    story.bob.data(CREATE, t="mine", l=None)
    # Resumed from before it all: each entry judged at its own position.
    events = _rest_feed(accounts, story.token, story.start, transport, 6)
    shared = story.list
    assert [(e["kind"], e.get("list_id")) for e in events] == [
        ("member_added", shared), ("todo_arrived", shared), ("todo_updated", shared),
        ("todo_removed", shared), ("member_removed", shared), ("todo_created", events[5]["list_id"]),
    ]
    assert events[0]["member"] == {"person": {"id": story.bob.id, "username": "bob"}, "role": "viewer"}
    assert [e.get("todo", {}).get("title") for e in events[1:4]] == ["milk", "oat milk", None]
    assert events[3] == {"kind": "todo_removed", "cursor": events[3]["cursor"], "todo_id": story.milk, "list_id": shared}
    assert events[5]["todo"]["title"] == "mine" and events[5]["list_id"] != shared
    assert "never bob's" not in json.dumps(events)


def test_the_rest_feed_is_a_stream_and_says_what_it_refuses(accounts: Server) -> None:
    story = Story(accounts)
    auth = {"authorization": f"Bearer {story.token}"}
    with httpx.Client(base_url=accounts.url, headers=auth, timeout=10) as client:
        refused = client.get("/api/feed/", headers={"accept": "application/json"})
        assert refused.status_code == 406 and refused.json()["error"]["code"] == "NOT_ACCEPTABLE", refused.text
        for query, name in (("after=nope", "after"), ("list_id=nope", "list_id")):
            bad = client.get(f"/api/feed/?{query}", headers={"accept": "text/event-stream"})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_USER_INPUT", bad.text
            assert name in bad.json()["error"]["message"]
        head = client.head("/api/feed/")
        assert (head.status_code, head.headers["content-type"].split(";")[0], head.content) == (200, "text/event-stream", b"")
    with connect(accounts.ws_url + "/api/feed/?after=nope", additional_headers=auth) as ws, pytest.raises(
        ConnectionClosed
    ) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


CHANGES_REMOVED = "subscription { todoChanges { op removed todo { title } } }"


def test_todo_changes_tells_a_row_out_of_sight_from_a_deleted_one(accounts: Server) -> None:
    """todoChanges' DELETED is both a deletion and a removal (the row left
    the reader's sight): `removed` tells them apart, so a client need not say
    "deleted" of a row moved where its reader cannot follow."""
    story = Story(accounts)
    story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
    other = story.ann.data(CREATE_LIST, name="ann's own")["createList"]["id"]
    bread = story.ann.data(CREATE, t="bread", l=story.list)["createTodo"]["id"]
    with _transport_ws(accounts, story.token) as ws:
        before = accounts.subscriber_count()
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHANGES_REMOVED}}))
        wait_until(lambda: accounts.subscriber_count() > before)
        story.ann.data(MOVE, id=story.milk, l=other)
        story.ann.data(DELETE, id=bread)
        story.ann.data(CREATE, t="jam", l=story.list)
        messages = _messages(ws)
        events = [next(messages)["payload"]["data"]["todoChanges"] for _ in range(3)]
    assert events == [
        {"op": "DELETED", "removed": True, "todo": {"title": "milk"}},
        {"op": "DELETED", "removed": False, "todo": {"title": "bread"}},
        {"op": "CREATED", "removed": False, "todo": {"title": "jam"}},
    ]
