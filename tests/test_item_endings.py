"""How a watched row's stream ends, on every item transport
(docs/design/people.md section 6): deleted (or its list), it ends as done
(the REST socket closes 1000 after "deleted", the event stream ends after
it; GraphQL's `todo(id)`, over both WebSocket protocols and GraphQL SSE,
sends null then complete); moved to a list its reader cannot see, or its
list unshared from the reader, it ends as a row that is not there (the REST
socket closes 4404 with a reason, the event stream ends with a NOT_FOUND
error event; GraphQL's null then complete), and nothing of where it went
reaches the reader. A real server, real sockets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.helpers import TOKEN, Server, serving, wait_until
from tests.sse_client import Events
from tests.test_lists import CREATE, CREATE_LIST, SHARE, Caller

MOVE = "mutation($id: ID!, $l: ID!) { moveTodo(id: $id, listId: $l) { id } }"
REMOVE = "mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { role } }"
DELETE = "mutation($id: ID!) { deleteTodo(id: $id) { id } }"
DELETE_LIST = "mutation($id: ID!) { deleteList(id: $id) { id } }"
WATCH = "subscription($id: ID!) { todo(id: $id) { title } }"


@pytest.fixture(scope="module")
def accounts(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


@dataclass
class Watch:
    """What one item stream sent (its messages, as JSON, in order) and how it ended."""

    messages: list[Any] = field(default_factory=list)
    ending: Any = None
    received: str = ""  # every byte of it, for what must not be there


class Sharing:
    """ann's list, shared with bob (an editor), holding the row bob watches;
    ann's own list, which bob does not see."""

    def __init__(self, server: Server, name: str) -> None:
        self.ann, self.bob = Caller(server, f"ann-{name}"), Caller(server, f"bob-{name}")
        self.shared = self.ann.data(CREATE_LIST, name="shared")["createList"]["id"]
        self.hidden = self.ann.data(CREATE_LIST, name="ann's alone")["createList"]["id"]
        self.row = self.ann.data(CREATE, t="milk", l=self.shared)["createTodo"]["id"]
        self.ann.data(SHARE, id=self.shared, u=f"bob-{name}", r="EDITOR")
        made = self.bob.http.post("/api/tokens/", json={"name": "watch"})
        assert made.status_code == 201, made.text
        self.token: str = made.json()["secret"]


# How the row leaves bob's sight. A list's deletion deletes its rows (it
# journals their deletes first, people.md section 2): to bob, deleted.
ENDINGS: dict[str, Callable[[Sharing], None]] = {
    "deleted": lambda s: s.ann.data(DELETE, id=s.row),
    "list deleted": lambda s: s.ann.data(DELETE_LIST, id=s.shared),
    "moved out": lambda s: s.ann.data(MOVE, id=s.row, l=s.hidden),
    "unshared": lambda s: s.ann.data(REMOVE, l=s.shared, p=s.bob.id),
}


def _socket(server: Server, path: str, token: str, protocol: str | None = None) -> ClientConnection:
    return connect(
        server.ws_url + path, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10,
        subprotocols=None if protocol is None else [Subprotocol(protocol)], compression=None,
    )


def _rest_socket(server: Server, sharing: Sharing, end: Callable[[], None]) -> Watch:
    watch = Watch()
    with _socket(server, f"/api/todos/{sharing.row}/", sharing.token) as ws:
        try:
            while True:
                raw = ws.recv(timeout=10)
                watch.received += str(raw)
                message = json.loads(raw)
                if message["op"] == "snapshot":
                    end()
                if message["op"] != "keepalive":
                    watch.messages.append(message["op"])
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            watch.ending = (closed.rcvd.code, closed.rcvd.reason)
            watch.received += closed.rcvd.reason
    return watch


def _rest_sse(server: Server, sharing: Sharing, end: Callable[[], None]) -> Watch:
    watch = Watch()
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {sharing.token}"}
    with httpx.stream("GET", f"{server.url}/api/todos/{sharing.row}/", headers=headers, timeout=10) as response:
        assert response.status_code == 200
        for event in Events(response):
            if "data" not in event:
                continue  # a heartbeat
            watch.received += event["data"]
            if event["event"] == "error":
                watch.ending = json.loads(event["data"])["error"]["code"]
                continue
            watch.messages.append(event["event"])
            if event["event"] == "snapshot":
                end()
    watch.ending = watch.ending or "ended"
    return watch


def _graphql(protocol: str) -> Callable[[Server, Sharing, Callable[[], None]], Watch]:
    legacy = protocol == "graphql-ws"

    def watch_row(server: Server, sharing: Sharing, end: Callable[[], None]) -> Watch:
        watch = Watch()
        with _socket(server, "/graphql", sharing.token, protocol) as ws:
            ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            payload = {"query": WATCH, "variables": {"id": sharing.row}}
            ws.send(json.dumps({"id": "1", "type": "start" if legacy else "subscribe", "payload": payload}))
            while watch.ending is None:
                raw = str(ws.recv(timeout=10))
                watch.received += raw
                message = json.loads(raw)
                if message["type"] in ("next", "data"):
                    todo = message["payload"]["data"]["todo"]
                    watch.messages.append(todo)
                    if todo is not None and len(watch.messages) == 1:
                        end()
                elif message["type"] == "complete":
                    watch.ending = "complete"
            # The socket outlives the subscription: it answers a ping.
            if not legacy:
                ws.send(json.dumps({"type": "ping"}))
                assert json.loads(ws.recv(timeout=10))["type"] == "pong"
        return watch

    return watch_row


def _graphql_sse(server: Server, sharing: Sharing, end: Callable[[], None]) -> Watch:
    watch = Watch()
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {sharing.token}"}
    body = {"query": WATCH, "variables": {"id": sharing.row}}
    with httpx.stream("POST", f"{server.url}/graphql", json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        for event in Events(response):
            watch.received += event.get("data", "")
            if event.get("event") == "next":
                watch.messages.append(json.loads(event["data"])["data"]["todo"])
                if len(watch.messages) == 1:
                    end()
            elif event.get("event") == "complete":
                watch.ending = "complete"
    return watch


TRANSPORTS = {
    "RESTSocket": _rest_socket,
    "REST SSE": _rest_sse,
    "graphql-transport-ws": _graphql("graphql-transport-ws"),
    "graphql-ws": _graphql("graphql-ws"),
    "graphql-sse": _graphql_sse,
}


def _expected(transport: str, ending: str, row: str) -> tuple[list[Any], Any]:
    """What the stream sends and how it ends, by the design."""
    if transport.startswith("graphql"):
        return [{"title": "milk"}, None], "complete"
    gone = ending not in ("deleted", "list deleted")
    messages = ["snapshot"] if gone else ["snapshot", "deleted"]
    if transport == "RESTSocket":
        return messages, (4404, f"no todo with id {row}") if gone else (1000, "")
    return messages, "NOT_FOUND" if gone else "ended"


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_watched_row_s_stream_ends_as_the_design_says(accounts: Server, transport: str, ending: str) -> None:
    sharing = Sharing(accounts, f"{transport}-{ending}".lower().replace(" ", "-"))
    before = accounts.subscriber_count()

    def end() -> None:
        # Once the stream is subscribed (the snapshot came): the change is then live, not read back.
        wait_until(lambda: accounts.subscriber_count() > before)
        ENDINGS[ending](sharing)

    watch = TRANSPORTS[transport](accounts, sharing, end)
    assert (watch.messages, watch.ending) == _expected(transport, ending, sharing.row)
    # Where it went is none of bob's business.
    assert sharing.hidden not in watch.received
