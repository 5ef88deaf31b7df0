"""One `todoChanges` reader per transport, for the people tests and the
killed-after-commit retries (test_mutations_once.py): each opens its stream with a bearer credential and yields the changes it is sent as
(op, title, cursor), op in lower case; it ends (StopIteration) when the
server ends the stream, and `closed` then tells how (a WebSocket's close
code, or "ended" for an HTTP stream), `error` the code of an error it was
sent (a GraphQL result's, a REST `error` event's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from tests.helpers import Reachable
from tests.sse_client import Events

CHANGES = "subscription($after: String) { todoChanges(after: $after) { op cursor todo { title } } }"
Change = tuple[str, str, str]


class Reader:
    """A stream's changes as they come; `closed` once it ended."""

    def __init__(self, changes: Iterator[Change]) -> None:
        self._changes = changes
        self.closed: int | str | None = None
        self.error: str | None = None

    def next(self) -> Change:
        return next(self._changes)

    def take(self, count: int) -> list[tuple[str, str]]:
        return [change[:2] for change in (self.next() for _ in range(count))]


def _graphql_changes(payloads: Iterator[dict[str, Any]], reader: list[Reader]) -> Iterator[Change]:
    for payload in payloads:
        if payload.get("errors"):
            reader[0].error = payload["errors"][0]["extensions"]["code"]
            continue
        change = payload["data"]["todoChanges"]
        yield change["op"].lower(), change["todo"]["title"], change["cursor"]


def _socket(server: Reachable, path: str, token: str, protocol: str | None) -> ClientConnection:
    return connect(
        server.ws_url + path,
        subprotocols=None if protocol is None else [Subprotocol(protocol)],
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=10,
    )


def _messages(ws: Connection, reader: list[Reader]) -> Iterator[dict[str, Any]]:
    while True:
        try:
            yield json.loads(ws.recv(timeout=10))
        except ConnectionClosed as closed:
            reader[0].closed = closed.rcvd.code if closed.rcvd is not None else None
            return


def _graphql_ws(subscribe: str, event: str) -> Callable[[Reachable, str, str | None], AbstractContextManager[Reader]]:
    """A GraphQL WebSocket reader: the protocols differ in the names of the subscribe
    message and of the result message (graphql-transport-ws: subscribe, next;
    graphql-ws: start, data)."""
    protocol = "graphql-transport-ws" if subscribe == "subscribe" else "graphql-ws"

    @contextmanager
    def reader(server: Reachable, token: str, after: str | None) -> Iterator[Reader]:
        with _socket(server, "/graphql", token, protocol) as ws:
            ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            payload = {"query": CHANGES, "variables": {"after": after}}
            ws.send(json.dumps({"id": "1", "type": subscribe, "payload": payload}))
            holder: list[Reader] = []
            holder.append(Reader(
                _graphql_changes((m["payload"] for m in _messages(ws, holder) if m["type"] == event), holder)
            ))
            yield holder[0]

    return reader


transport_ws = _graphql_ws("subscribe", "next")
legacy_ws = _graphql_ws("start", "data")


@contextmanager
def rest_socket(server: Reachable, token: str, after: str | None) -> Iterator[Reader]:
    path = "/api/todos/" + ("" if after is None else f"?after={after}")
    with _socket(server, path, token, None) as ws:
        holder: list[Reader] = []
        holder.append(Reader(
            (m["op"], m["todo"]["title"], m["cursor"]) for m in _messages(ws, holder) if "op" in m
        ))
        yield holder[0]


def _ended(reader: list[Reader], changes: Iterator[Change]) -> Iterator[Change]:
    yield from changes
    reader[0].closed = "ended"


@contextmanager
def graphql_sse(server: Reachable, token: str, after: str | None) -> Iterator[Reader]:
    body = {"query": CHANGES, "variables": {"after": after}}
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {token}"}
    with httpx.stream("POST", server.url + "/graphql", json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200, response.read()
        holder: list[Reader] = []
        events = (e for e in Events(response) if e.get("event", "next") == "next" and "data" in e)
        holder.append(Reader(_ended(holder, _graphql_changes((json.loads(e["data"]) for e in events), holder))))
        yield holder[0]


@contextmanager
def rest_sse(server: Reachable, token: str, after: str | None) -> Iterator[Reader]:
    url = server.url + "/api/todos/" + ("" if after is None else f"?after={after}")
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {token}"}
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        assert response.status_code == 200, response.read()
        holder: list[Reader] = []
        holder.append(Reader(_ended(holder, _rest_changes(Events(response), holder))))
        yield holder[0]


def _rest_changes(events: Events, reader: list[Reader]) -> Iterator[Change]:
    for event in events:
        if "data" not in event:
            continue
        message = json.loads(event["data"])
        if event.get("event") == "error":
            reader[0].error = message["error"]["code"]
        elif "op" in message:
            yield message["op"], message["todo"]["title"], message["cursor"]


def _parts(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """multipart/mixed parts' JSON bodies, as they complete."""
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        while "\r\n--graphql" in buffer:
            part, buffer = buffer.split("\r\n--graphql", 1)
            if "{" in part:
                yield json.loads(part[part.index("{"):])


@contextmanager
def multipart(server: Reachable, token: str, after: str | None) -> Iterator[Reader]:
    body = {"query": CHANGES, "variables": {"after": after}}
    headers = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json", "authorization": f"Bearer {token}"}
    with httpx.stream("POST", server.url + "/graphql", json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200, response.read()
        holder: list[Reader] = []
        payloads = (p["payload"] for p in _parts(response) if p.get("payload"))
        holder.append(Reader(_ended(holder, _graphql_changes(payloads, holder))))
        yield holder[0]


READERS: dict[str, Callable[[Reachable, str, str | None], AbstractContextManager[Reader]]] = {
    "graphql-transport-ws": transport_ws,
    "graphql-ws": legacy_ws,
    "graphql-sse": graphql_sse,
    "multipart": multipart,
    "restsocket": rest_socket,
    "rest-sse": rest_sse,
}


def resumed_everywhere(server: Reachable, token: str, after: str, last: str) -> dict[str, list[Change]]:
    """Each transport's changes on a stream resumed from `after`, up to and
    including the first titled `last` (one stream at a time)."""
    seen: dict[str, list[Change]] = {}
    for transport, read in READERS.items():
        with read(server, token, after) as reader:
            seen[transport] = [reader.next()]
            while seen[transport][-1][1] != last:
                seen[transport].append(reader.next())
    return seen
