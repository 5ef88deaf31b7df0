"""One live subscriber per transport, each in a thread of its own, with a
person's credential and through that person's wiretap (tests/leaks.py):
the change feed (`todoChanges` over graphql-transport-ws, graphql-ws,
GraphQL SSE and multipart; the RESTSocket and the event stream of
/api/todos/), or the feed (REST's /api/feed/, as an event stream and as a
RESTSocket; GraphQL's `feed`, over the same four GraphQL protocols), from
a cursor, recording each change or feed event, and how
the stream ended (a WebSocket's close code, or the error code an HTTP
stream ended with)."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.leaks import TappedSocket, Wiretap

TRANSPORTS = ("graphql-transport-ws", "graphql-ws", "graphql-sse", "multipart", "restsocket", "rest-sse")
# GraphQL's `feed`, by the protocol it goes over: /api/feed/'s events in GraphQL's spelling.
GRAPHQL_FEEDS = {
    "graphql-feed-ws": "graphql-transport-ws", "graphql-feed-legacy-ws": "graphql-ws",
    "graphql-feed-sse": "graphql-sse", "graphql-feed-multipart": "multipart",
}
# The feed: every entry its reader may see, lists' and members' too (FeedEvent).
FEEDS = ("feed-sse", "feed-socket", *GRAPHQL_FEEDS)
WEBSOCKETS = frozenset({"graphql-transport-ws", "graphql-ws", "restsocket", "feed-socket"})  # by protocol
REST_PATHS = {"restsocket": "/api/todos/", "rest-sse": "/api/todos/", "feed-socket": "/api/feed/", "feed-sse": "/api/feed/"}
FEED_KINDS = frozenset({
    "todo_created", "todo_updated", "todo_deleted", "todo_arrived", "todo_removed",
    "list_added", "list_updated", "list_removed", "member_added", "member_updated", "member_removed",
})
CHANGES = (
    "subscription($after: String) { todoChanges(after: $after) { op cursor todo { id title completed } } }"
)
# `list` (the list as it stands now) is not compared: it is there for the leak scanner.
FEED = (
    "subscription($after: String, $listId: ID) { feed(after: $after, listId: $listId) {"
    " kind cursor todoId listId reason todo { id title completed listId } member { person { id username } role }"
    " list { id name } } }"
)
MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"
SESSION_COOKIE = "todos_session"


@dataclass(frozen=True)
class Credential:
    """A person's session (its cookie) or personal access token, and its id (to revoke it)."""

    kind: Literal["session", "token"]
    secret: str
    id: str

    def headers(self) -> dict[str, str]:
        if self.kind == "session":
            return {"Cookie": f"{SESSION_COOKIE}={self.secret}"}
        return {"Authorization": f"Bearer {self.secret}"}


def sign_in(base_url: str, tap: Wiretap, username: str, password: str) -> Credential:
    """A new session of the person's (as another browser would get it)."""
    with tap.client(base_url, headers={"Origin": base_url}, timeout=10) as client:
        response = client.post("/api/auth/sign-in", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        [current] = [s for s in client.get("/api/sessions/").json() if s["current"]]
        return Credential("session", client.cookies[SESSION_COOKIE], current["id"])


def new_token(http: httpx.Client, name: str) -> Credential:
    """A new personal access token, made by the person's signed-in client."""
    response = http.post("/api/tokens/", json={"name": name})
    assert response.status_code == 201, response.text
    made = response.json()
    return Credential("token", made["secret"], made["token"]["id"])


def revoke(http: httpx.Client, credential: Credential) -> None:
    """Revoke it through its owner's signed-in client."""
    path = "sessions" if credential.kind == "session" else "tokens"
    response = http.delete(f"/api/{path}/{credential.id}/")
    assert response.status_code == 204, response.text


@dataclass(frozen=True)
class Event:
    """A change as a subscriber got it: REST's and GraphQL's shapes alike."""

    cursor: int
    op: str  # created, updated, deleted
    id: str
    title: str
    completed: bool


@dataclass(frozen=True)
class FeedEvent:
    """An event of /api/feed/ as a subscriber got it: the row as (id, title,
    completed, list_id), the member as (person id, username, role)."""

    cursor: int
    kind: str
    todo_id: str | None
    list_id: str | None
    todo: tuple[str, str, bool, str] | None
    member: tuple[str, str, str] | None
    reason: str | None

    @classmethod
    def of(cls, message: dict[str, Any]) -> FeedEvent:
        todo, member = message.get("todo"), message.get("member")
        return cls(
            int(message["cursor"]), message["kind"], message.get("todo_id"), message.get("list_id"),
            None if todo is None else (todo["id"], todo["title"], todo["completed"], todo["list_id"]),
            None if member is None else (member["person"]["id"], member["person"]["username"], member["role"]),
            message.get("reason"),
        )

    @classmethod
    def of_graphql(cls, event: dict[str, Any]) -> FeedEvent:
        """GraphQL's feed event, read as REST's: the same event in another spelling."""
        return cls.of(_rest_spelling(event))


_CAPITAL = re.compile(r"(?=[A-Z])")


def _rest_spelling(event: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL object as REST spells it: snake_case names (todoId: todo_id),
    its enums (kind, role) in lower case; reason is LIST_DELETED in both."""
    spelled: dict[str, Any] = {}
    for name, value in event.items():
        name = _CAPITAL.sub("_", name).lower()
        if isinstance(value, dict):
            value = _rest_spelling(value)
        elif name in ("kind", "role"):
            value = value.lower()
        spelled[name] = value
    return spelled


@dataclass
class Subscriber:
    """One connection of one transport, following the changes after `after`."""

    base_url: str
    transport: str
    credential: Credential
    after: int
    tap: Wiretap
    # An event stream resumed as EventSource does: its URL's ?after= stays
    # this, and `after` goes as Last-Event-ID (which comes first).
    url_after: int | None = None
    list_id: str | None = None  # the feed's ?list_id=: the entries of that list alone
    events: list[Event] = field(default_factory=list)
    feed: list[FeedEvent] = field(default_factory=list)  # the feed's transports' events
    # The close code (WebSockets), the error code an HTTP stream carried at
    # its end (None: it ended without one), or the refused handshake's status.
    ending: int | str | None = None
    reason: str = ""  # a WebSocket's close reason
    refusal: str | None = None  # the code of graphql-ws's connection_error
    ended: threading.Event = field(default_factory=threading.Event)
    ended_at: float | None = None
    unexpected: list[Any] = field(default_factory=list)
    _closing: bool = False
    _close: Any = None

    def __post_init__(self) -> None:
        self.connected = threading.Event()
        threading.Thread(target=self._run, daemon=True, name=f"{self.transport} {self.tap.person}").start()

    @property
    def protocol(self) -> str:
        """The protocol it speaks: its transport's name, but for GraphQL's feed."""
        return GRAPHQL_FEEDS.get(self.transport, self.transport)

    @property
    def operation(self) -> dict[str, Any]:
        """The GraphQL request it subscribes with: the feed (of one list, if given) or todoChanges."""
        if self.transport in GRAPHQL_FEEDS:
            return {"query": FEED, "variables": {"after": str(self.after), "listId": self.list_id}}
        return {"query": CHANGES, "variables": {"after": str(self.after)}}

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http")

    @property
    def position(self) -> int:
        """Its last cursor: where a reconnect resumes."""
        got = self.events or self.feed
        return got[-1].cursor if got else self.after

    def wait_until_connected(self, timeout: float = 10) -> None:
        """Until it is subscribed, or was refused (it ended)."""
        deadline = time.monotonic() + timeout
        while not (self.connected.is_set() or self.ended.is_set()):
            assert time.monotonic() < deadline, f"{self.transport} did not connect"
            self.connected.wait(0.01)

    def wait_for(self, position: int, timeout: float = 20) -> None:
        """Until it got a change at `position` or later, or ended."""
        deadline = time.monotonic() + timeout
        while self.position < position and not self.ended.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self._closing = True
        if self._close is not None:
            with contextlib.suppress(Exception):
                self._close()
        self.ended.wait(5)

    def _run(self) -> None:
        try:
            if self.protocol in WEBSOCKETS:
                self._websocket()
            else:
                self._http()
        except InvalidStatus as refused:
            self.ending = refused.response.status_code
        except Exception as exc:  # noqa: BLE001 (any failure of the thread is reported, unless we closed it)
            if not self._closing:
                self.unexpected.append(repr(exc))
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()

    def _change(self, change: dict[str, Any]) -> None:
        todo = change["todo"]
        self.events.append(Event(int(change["cursor"]), change["op"].lower(), todo["id"], todo["title"], todo["completed"]))

    def _result(self, data: dict[str, Any]) -> None:
        """A GraphQL result's data: a feed event or a change."""
        if "feed" in data:
            self.feed.append(FeedEvent.of_graphql(data["feed"]))
        else:
            self._change(data["todoChanges"])

    # -- WebSockets ---------------------------------------------------------

    def _websocket(self) -> None:
        headers = {"Origin": self.base_url}
        if self.transport in REST_PATHS:
            url = f"{self.ws_url}{REST_PATHS[self.transport]}?after={self.after}"
            if self.list_id is not None:
                url += f"&list_id={self.list_id}"
            if self.credential.kind == "token":
                url += f"&token={quote(self.credential.secret)}"  # as a browser's EventSource-less socket would
            else:
                headers.update(self.credential.headers())
            ws = self.tap.websocket(url, additional_headers=headers)
        else:
            if self.credential.kind == "session":
                headers.update(self.credential.headers())
            ws = self.tap.websocket(
                self.ws_url + "/graphql", additional_headers=headers, subprotocols=[Subprotocol(self.protocol)]
            )
        self._close = ws.close
        if self._closing:  # closed while it connected
            ws.close()
            return
        try:
            if self.transport in REST_PATHS:
                self.connected.set()
                self._rest_messages(ws)
            else:
                self._graphql_messages(ws)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                self.ending, self.reason = closed.rcvd.code, closed.rcvd.reason

    def _rest_messages(self, ws: TappedSocket) -> None:
        while True:
            message = json.loads(ws.recv())
            if "kind" in message:
                self.feed.append(FeedEvent.of(message))
            elif message["op"] != "keepalive":
                self._change(message)

    def _graphql_messages(self, ws: TappedSocket) -> None:
        legacy = self.protocol == "graphql-ws"
        init: dict[str, Any] = {"type": "connection_init"}
        if self.credential.kind == "token":
            init["payload"] = {"Authorization": f"Bearer {self.credential.secret}"}
        ws.send(json.dumps(init))
        start = "start" if legacy else "subscribe"
        subscribed = False
        while True:
            message = json.loads(ws.recv())
            kind = message["type"]
            if kind == "connection_ack" and not subscribed:
                ws.send(json.dumps({"id": "1", "type": start, "payload": self.operation}))
                subscribed = True
                self.connected.set()
            elif kind in ("next", "data"):
                result = message["payload"]
                if result.get("errors"):
                    self.unexpected.append(result)
                else:
                    self._result(result["data"])
            elif kind == "connection_error":  # the legacy protocol's refusal, before its close 4403
                self.refusal = _error_code({"errors": [message.get("payload") or {}]})
            elif kind == "ping":
                ws.send(json.dumps({"type": "pong"}))
            elif kind not in ("pong", "ka"):
                self.unexpected.append(message)

    # -- HTTP streams -------------------------------------------------------

    def _http(self) -> None:
        headers = {"Origin": self.base_url, **self.credential.headers()}
        with self.tap.client(self.base_url, headers=headers, timeout=httpx.Timeout(10, read=None)) as client:
            if self.transport in REST_PATHS:
                accepting = {"accept": "text/event-stream"}
                after = self.after if self.url_after is None else self.url_after
                if self.url_after is not None:
                    accepting["last-event-id"] = str(self.after)
                params = {"after": str(after)} | ({} if self.list_id is None else {"list_id": self.list_id})
                request = client.build_request("GET", REST_PATHS[self.transport], params=params, headers=accepting)
            else:
                accept = "text/event-stream" if self.protocol == "graphql-sse" else MULTIPART
                request = client.build_request("POST", "/graphql", json=self.operation, headers={"accept": accept})
            response = client.send(request, stream=True)
            # Closing the client would not wake a thread blocked reading: shut the socket.
            sock = response.extensions["network_stream"].get_extra_info("socket")
            self._close = functools.partial(sock.shutdown, socket.SHUT_RDWR)
            if self._closing:  # closed while it connected
                response.close()
                return
            with contextlib.closing(response):
                if response.status_code != 200:
                    self.ending = response.status_code
                    response.read()
                    return
                self.connected.set()
                if self.protocol == "multipart":
                    self._parts(response)
                else:
                    self._events(response)

    def _events(self, response: httpx.Response) -> None:
        for event in _sse(response.iter_lines()):
            name, data = event.get("event"), event.get("data", "")
            if name == "next":
                result = json.loads(data)
                if result.get("errors"):
                    self.ending = _error_code(result)
                else:
                    self._result(result["data"])
            elif name in ("created", "updated", "deleted"):
                self._change(json.loads(data))
            elif name in FEED_KINDS:
                self.feed.append(FeedEvent.of(json.loads(data)))
            elif name == "error":
                self.ending = _error_code(json.loads(data))
            elif name != "complete":
                self.unexpected.append(event)

    def _parts(self, response: httpx.Response) -> None:
        buffered = b""
        for chunk in response.iter_bytes():
            *parts, buffered = (buffered + chunk).split(b"\r\n--graphql")
            for part in parts:
                body = part.partition(b"\r\n\r\n")[2].strip()
                if not body:
                    continue
                message = json.loads(body)
                result = message.get("payload", message)
                if result is None or result == {}:
                    continue  # a heartbeat
                if result.get("errors") or message.get("errors"):
                    self.ending = _error_code(result if result.get("errors") else message)
                else:
                    self._result(result["data"])


def _sse(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            # As an EventSource: a block with no data dispatches nothing.
            if "data" in fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def _error_code(body: dict[str, Any]) -> str | None:
    """The code of a GraphQL result's first error, or of a REST error body."""
    if errors := body.get("errors"):
        code: str | None = (errors[0].get("extensions") or {}).get("code")
        return code
    error = body.get("error") or {}
    return error.get("code")


def unauthenticated(subscriber: Subscriber) -> bool:
    """Did it end as a revoked or expired credential's stream must: close
    4401, an UNAUTHENTICATED end, a refused handshake (401), or, as the
    legacy protocol refuses a connection, connection_error then close 4403."""
    legacy_refusal = subscriber.ending == 4403 and subscriber.refusal == "UNAUTHENTICATED"
    return subscriber.ending in (4401, "UNAUTHENTICATED", 401) or legacy_refusal
