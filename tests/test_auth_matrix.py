"""Who may do what without the token (docs/security.md, Access), tried on one
server that requires it: every route in the app's route table and the front
doors before it, every method, and every way of sending a GraphQL document,
each with no token, a wrong token and the right one. PUBLIC (and GraphiQL's
page) are the only answers given without the token, and they run nothing.
A route, a method or a front door this file does not list fails
test_the_matrix_covers_the_whole_app: a new one cannot be forgotten."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from graphql_todos.app import TodoApp
from graphql_todos.core import metrics, paths
from graphql_todos.edge import error_handlers, guard, negotiation
from graphql_todos.edge.socket_routes import SocketRoutes
from graphql_todos.graphql.fast.front import ResponseFront
from graphql_todos.graphql.feed import FeedKind
from graphql_todos.graphql.persisted import sha256
from graphql_todos.graphql.socket import GraphQLSockets
from tests.helpers import BEARER, TOKEN, WEB_DIST, Server, serving, wait_until

AUTHS: dict[str, dict[str, str]] = {
    "none": {},
    "wrong": {"Authorization": "Bearer " + "x" * len(TOKEN)},
    "right": BEARER,
}
REFUSED = (401, "UNAUTHENTICATED")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Every HTTP route, the methods it takes, and the status each answers with
# the token (HEAD /graphql: GraphQL runs over GET and POST only, 405).
HTTP_ROUTES: dict[str, dict[str, int]] = {
    "/healthz": {"GET": 200, "HEAD": 200},
    "/metrics": {"GET": 200, "HEAD": 200},
    "/graphql": {"GET": 200, "POST": 200},
    "/api/openapi.json": {"GET": 200, "HEAD": 200},
    "/api/todos/": {"GET": 200, "HEAD": 200, "POST": 201},
    "/api/todos/{id}/": {"GET": 200, "HEAD": 200, "PUT": 200, "PATCH": 200, "DELETE": 204},
    "/api/mutations/{client}/": {"GET": 200, "HEAD": 200},
    "/api/feed/": {"GET": 200, "HEAD": 200},
    # People and sign-in: with AUTH=open (this server) only `me` answers.
    "/api/auth/sign-up": {"POST": 404},
    "/api/auth/sign-in": {"POST": 404},
    "/api/auth/sign-out": {"POST": 404},
    "/api/auth/password": {"POST": 404},
    "/api/auth/me": {"GET": 200, "HEAD": 200},
    "/api/sessions/": {"GET": 404, "HEAD": 404},
    "/api/sessions/{id}/": {"DELETE": 404},
    "/api/tokens/": {"GET": 404, "HEAD": 404, "POST": 404},
    "/api/tokens/{id}/": {"DELETE": 404},
    # Lists (a todo's id names no list: 404).
    "/api/lists/": {"GET": 200, "HEAD": 200, "POST": 201},
    "/api/lists/{id}/": {"GET": 404, "HEAD": 404, "PATCH": 404, "DELETE": 404},
    "/api/lists/{id}/members/": {"GET": 404, "HEAD": 404, "POST": 404},
    "/api/lists/{id}/members/{person_id}/": {"PATCH": 404, "DELETE": 404},
    "/api/lists/{id}/todos/": {"GET": 404, "HEAD": 404, "POST": 404},
    "/": {"GET": 200, "HEAD": 200},
    "/assets/{path}": {"GET": 200, "HEAD": 200},
    "/sw.js": {"GET": 200, "HEAD": 200},
}
SOCKET_ROUTES = {"/api/todos/", "/api/todos/{id}/", "/api/feed/"}
# The only routes and methods that answer without the token. (GraphiQL's
# page is one request to /graphql, not a route: see its own test.)
PUBLIC = {(path, method) for path in ("/healthz", "/", "/assets/{path}", "/sw.js") for method in ("GET", "HEAD")} | {
    # What one posts to become somebody (AUTH=open: 404, running nothing).
    ("/api/auth/sign-up", "POST"),
    ("/api/auth/sign-in", "POST"),
}
# Middleware that answers requests past the route table, and what it serves.
FRONT_DOORS: dict[type, str] = {
    GraphQLSockets: "the /graphql WebSocket (WAYS: graphql-transport-ws, legacy graphql-ws)",
    ResponseFront: "repeated GET and POST /graphql (WAYS, each asked with the token first)",
}
# Middleware that hands every request on, or refuses it.
PASSING = {
    guard.HostCheck, SocketRoutes, error_handlers.ShutdownCut, metrics.MetricsMiddleware, CORSMiddleware, guard.Guard, negotiation.Cached,
    *(m.cls for m in error_handlers.MIDDLEWARE),
}

QUERY = "{ todos { id } }"
SUBSCRIPTION = 'subscription { todoChanges(after: "0") { cursor } }'
MUTATION = "mutation { toggleAll(completed: false) { id } }"


def _hash(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}


# The feed's event names (GraphQL's FeedKind values).
FEED_KINDS = {kind.value: "event" for kind in FeedKind}
UNKNOWN_HASH = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    assert (WEB_DIST / "index.html").exists(), "the route table includes the web client: make web"
    with serving(module_db_dsn, token=TOKEN) as srv:
        with httpx.Client(base_url=srv.url, headers=BEARER) as client:
            client.post("/api/todos/", json={"title": "seen"}).raise_for_status()
            # The server learns these documents' hashes (automatic persisted queries).
            for document in (QUERY, MUTATION):
                sent = client.post("/graphql", json={"query": document, "extensions": _hash(document)})
                assert "errors" not in sent.json(), sent.text
        learn = {"query": SUBSCRIPTION, "extensions": _hash(SUBSCRIPTION)}
        assert _ask(srv, "POST", "/graphql", "right", json=learn, headers=SSE) == (200, "data")
        yield srv


@pytest.fixture(scope="module")
def todo_id(server: Server) -> str:
    todos = httpx.get(server.url + "/api/todos/", headers=BEARER).json()
    return str(todos[0]["id"])


def _table(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, frozenset[str]]]:
    """(kind, path, methods) of every route, into every Mount."""
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            yield from _table(route.routes, prefix + route.path)
        elif isinstance(route, Mount):  # an app mounted whole: the web client's static files
            yield "http", prefix + route.path + "/{path}", frozenset({"GET", "HEAD"})
        elif isinstance(route, WebSocketRoute):
            yield "websocket", prefix + route.path, frozenset()
        elif isinstance(route, Route):
            yield "http", prefix + route.path, frozenset(route.methods or _handled(route.endpoint))
        else:
            raise AssertionError(f"a kind of route this test does not know: {route!r}")


def _handled(endpoint: Any) -> set[str]:
    """The methods an HTTPEndpoint has handlers for (HEAD is answered by get)."""
    assert isinstance(endpoint, type) and issubclass(endpoint, HTTPEndpoint), endpoint
    methods = {method for method in METHODS if hasattr(endpoint, method.lower())}
    return methods | {"HEAD"} if "GET" in methods else methods


def test_the_matrix_covers_the_whole_app(server: Server) -> None:
    table = list(_table(server.app.routes))
    assert {path: set(methods) for kind, path, methods in table if kind == "http"} == {
        path: set(statuses) for path, statuses in HTTP_ROUTES.items()
    }
    assert {path for kind, path, _ in table if kind == "websocket"} == SOCKET_ROUTES
    app = server.app
    assert isinstance(app, TodoApp)
    for middleware in [*app.front_middleware, *app.user_middleware]:
        assert middleware.cls in FRONT_DOORS or middleware.cls in PASSING, middleware.cls
    assert paths.GRAPHQL == "/graphql"


# What a response says: its status and the code it carries, "data" for a
# GraphQL result, "event" for a REST event, or its media type.
Outcome = tuple[int, str]


def _outcome(response: httpx.Response) -> Outcome:
    media = response.headers.get("content-type", "").split(";")[0]
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="graphql-todos"'
        if response.request.method == "HEAD":
            return REFUSED  # no body: WWW-Authenticate says it
    if media == "text/event-stream":
        return response.status_code, _first_event(response)
    if media == "multipart/mixed":
        return response.status_code, _first_part(response)
    if media not in ("application/json", "application/graphql-response+json") or response.request.method == "HEAD":
        return response.status_code, media
    return response.status_code, _said(json.loads(response.read()))


def _said(body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]["code"])
    if isinstance(body, dict) and body.get("errors"):
        return str(body["errors"][0]["extensions"]["code"])
    return "data" if isinstance(body, dict) and body.get("data") else "json"


def _first_event(response: httpx.Response) -> str:
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                break
            fields = {}  # no event, as an EventSource dispatches none (a stream's opening id)
            continue
        name, _, value = line.partition(":")
        if name:
            fields[name] = value.strip()
    if fields.get("event") == "next":
        return _said(json.loads(fields["data"]))
    return "event" if fields.get("event") in ("created", "snapshot", *FEED_KINDS) else repr(fields)


def _first_part(response: httpx.Response) -> str:
    buffer = ""
    for chunk in response.iter_text():
        buffer += chunk
        parts = [part for part in buffer.split("--graphql") if '"payload"' in part]
        if parts and parts[0].rstrip().endswith("}"):
            return _said(json.loads(parts[0][parts[0].index("{") :])["payload"])
    return repr(buffer)


def _ask(server: Server, method: str, path: str, auth: str | dict[str, str], **kwargs: Any) -> Outcome:
    """The outcome of a request with one of AUTHS (or these credential headers)."""
    headers = {**kwargs.pop("headers", {}), **(AUTHS[auth] if isinstance(auth, str) else auth)}
    with httpx.stream(method, server.url + path, headers=headers, timeout=10, **kwargs) as response:
        return _outcome(response)


def _work(server: Server) -> tuple[int, ...]:
    """What has run so far: GraphQL over HTTP, subscription events, and
    every change in the journal (once the streams asked for before are gone)."""
    wait_until(lambda: server.subscriber_count() == 0)
    fast = server.fast_path()
    with psycopg.connect(server.dsn) as conn:
        row = conn.execute("SELECT count(*) FROM todo_changes").fetchone()
    assert row is not None
    return fast.executions, fast.refusals, server.executions(), row[0]


def _url(server: Server, path: str, method: str, todo_id: str) -> str:
    if "{path}" in path:
        index = httpx.get(server.url + "/").text
        return index.split('src="', 1)[1].split('"', 1)[0]  # the page's bundle
    if "{id}" in path and method == "DELETE":
        created = httpx.post(server.url + "/api/todos/", json={"title": "to delete"}, headers=BEARER)
        todo_id = created.json()["id"]
    # Any client id: its verdicts (none) are a list.
    return path.replace("{id}", todo_id).replace("{person_id}", todo_id).replace("{client}", todo_id)


# A request each route and method runs with the token.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/graphql", "POST"): {"json": {"query": QUERY}},
    ("/graphql", "GET"): {"params": {"query": QUERY}},
    ("/graphql", "HEAD"): {"params": {"query": QUERY}},
    ("/api/todos/", "POST"): {"json": {"title": "posted"}},
    # From the start: the first event is the fixture's row (the feed is only a stream).
    ("/api/feed/", "GET"): {"params": {"after": "0"}},
    ("/api/todos/{id}/", "PUT"): {"json": {"title": "put", "completed": False}},
    ("/api/todos/{id}/", "PATCH"): {"json": {"completed": True}},
    ("/api/lists/", "POST"): {"json": {"name": "matrix"}},
    ("/api/lists/{id}/", "PATCH"): {"json": {"name": "matrix"}},
    ("/api/lists/{id}/members/", "POST"): {"json": {"username": "local", "role": "viewer"}},
    ("/api/lists/{id}/members/{person_id}/", "PATCH"): {"json": {"role": "viewer"}},
    ("/api/lists/{id}/todos/", "POST"): {"json": {"title": "matrix"}},
}


@pytest.mark.parametrize("auth", list(AUTHS))
@pytest.mark.parametrize("path", list(HTTP_ROUTES))
def test_every_route_and_method(server: Server, todo_id: str, path: str, auth: str) -> None:
    for method in METHODS:
        before = _work(server)
        url = _url(server, path, method, todo_id)
        status, said = _ask(server, method, url, auth, **BODIES.get((path, method), {}))
        if (path, method) in PUBLIC:
            assert status == HTTP_ROUTES[path][method], (method, said)
            assert said != "data" and _work(server) == before, "a public answer ran something"
        elif auth != "right":
            assert (status, said) == REFUSED, method
        else:
            assert status == HTTP_ROUTES[path].get(method, 405), (method, said)


@pytest.mark.parametrize("auth", list(AUTHS))
def test_the_graphiql_page_is_public_and_runs_nothing(server: Server, auth: str) -> None:
    for accept in ("text/html,application/xhtml+xml,*/*;q=0.8", "*/*"):
        before = _work(server)
        response = httpx.get(server.url + "/graphql", headers={"Accept": accept, **AUTHS[auth]})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "GraphiQL" in response.text
        assert _work(server) == before


LOOKALIKES: dict[str, dict[str, Any]] = {
    "with a document": {"params": {"query": QUERY}},
    "with a known hash": {"params": {"extensions": json.dumps(_hash(QUERY))}},
    "with an unknown hash": {"params": {"extensions": json.dumps(UNKNOWN_HASH)}},
    "with variables": {"params": {"variables": "{}"}},
    "with an operation name": {"params": {"operationName": "A"}},
    "with any query string": {"params": {"page": "1"}},
    "taking JSON": {"headers": {"Accept": "application/json"}},
    "taking an event stream": {"headers": {"Accept": "text/event-stream"}},
    "taking multipart": {"headers": {"Accept": "multipart/mixed;subscriptionSpec=1.0"}},
    "as HEAD": {"method": "HEAD"},
}


@pytest.mark.parametrize("lookalike", list(LOOKALIKES))
def test_what_is_not_the_graphiql_page_needs_the_token(server: Server, lookalike: str) -> None:
    kwargs = dict(LOOKALIKES[lookalike])
    method = kwargs.pop("method", "GET")
    headers = {"Accept": "text/html", **kwargs.pop("headers", {})}
    for auth in ("none", "wrong"):
        before = _work(server)
        assert _ask(server, method, "/graphql", auth, headers=headers, **kwargs) == REFUSED
        assert _work(server) == before


# Every way of sending a GraphQL document (and the REST streams) over HTTP,
# and what it answers with the token. Without it (none or wrong): REFUSED.
SSE = {"Accept": "text/event-stream"}
MULTIPART = {"Accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
HTTP_WAYS: dict[str, tuple[str, str, dict[str, Any], Outcome]] = {
    "POST body": ("POST", "/graphql", {"json": {"query": QUERY}}, (200, "data")),
    "POST persisted hash": ("POST", "/graphql", {"json": {"extensions": _hash(QUERY)}}, (200, "data")),
    "POST unknown hash": ("POST", "/graphql", {"json": {"extensions": UNKNOWN_HASH}}, (200, "PERSISTED_QUERY_NOT_FOUND")),
    "POST form body": ("POST", "/graphql", {"data": {"query": QUERY}}, (400, "BAD_REQUEST")),
    "GET query": ("GET", "/graphql", {"params": {"query": QUERY}}, (200, "data")),
    "GET persisted hash": ("GET", "/graphql", {"params": {"extensions": json.dumps(_hash(QUERY))}}, (200, "data")),
    # A browser's navigation with a hash: not the page, and no JSON taken.
    "GET persisted hash taking HTML": (
        "GET", "/graphql", {"params": {"extensions": json.dumps(_hash(QUERY))}, "headers": {"Accept": "text/html"}},
        (406, "NOT_ACCEPTABLE"),
    ),
    "GET unknown hash": (
        "GET", "/graphql", {"params": {"extensions": json.dumps(UNKNOWN_HASH)}}, (200, "PERSISTED_QUERY_NOT_FOUND")
    ),
    "GraphQL SSE, POST": ("POST", "/graphql", {"json": {"query": SUBSCRIPTION}, "headers": SSE}, (200, "data")),
    "GraphQL SSE, GET query": ("GET", "/graphql", {"params": {"query": SUBSCRIPTION}, "headers": SSE}, (200, "data")),
    "GraphQL SSE, GET persisted hash": (
        "GET", "/graphql", {"params": {"extensions": json.dumps(_hash(SUBSCRIPTION))}, "headers": SSE}, (200, "data")
    ),
    "GraphQL SSE, GET mutation hash": (
        "GET", "/graphql", {"params": {"extensions": json.dumps(_hash(MUTATION))}, "headers": SSE},
        (405, "METHOD_NOT_ALLOWED"),
    ),
    "multipart, POST": ("POST", "/graphql", {"json": {"query": SUBSCRIPTION}, "headers": MULTIPART}, (200, "data")),
    "multipart, GET persisted hash": (
        "GET", "/graphql", {"params": {"extensions": json.dumps(_hash(SUBSCRIPTION))}, "headers": MULTIPART},
        (200, "data"),
    ),
    "REST SSE, collection": ("GET", "/api/todos/?after=0", {"headers": SSE}, (200, "event")),
    "REST SSE, item": ("GET", "/api/todos/{id}/", {"headers": SSE}, (200, "event")),
    "REST SSE, feed": ("GET", "/api/feed/?after=0", {"headers": SSE}, (200, "event")),
}


@pytest.mark.parametrize("way", list(HTTP_WAYS))
def test_every_way_over_http(server: Server, todo_id: str, way: str) -> None:
    method, path, kwargs, ran = HTTP_WAYS[way]
    path = path.replace("{id}", todo_id)
    # With the token first: a reply the front door keeps is not given to the others.
    for auth in ("right", "right", "none", "wrong"):
        before = _work(server)
        outcome = _ask(server, method, path, auth, **kwargs)
        if auth == "right":
            assert outcome == ran
        else:
            assert outcome == REFUSED
            assert _work(server) == before


def _connect(url: str, **options: Any) -> ClientConnection:
    """websockets' client, its received messages not bounded: each way reads
    the first message of a stream from the journal's start and leaves. With
    more than max_queue (16) unread, websockets stops reading the socket, and
    its close then waits out close_timeout (10 s) for the server's close frame
    it will not read, though the server answered at once (websockets means it
    to: python-websockets/websockets#1555)."""
    return connect(url, max_queue=None, **options)


def _closed(ws: Connection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def _messages(ws: Connection) -> Iterator[dict[str, Any]]:
    while True:
        message = json.loads(ws.recv(timeout=5))
        if message.get("type") not in ("ping", "pong", "ka") and message.get("op") != "keepalive":
            yield message


def _payload(credential: dict[str, str]) -> dict[str, str]:
    """What of a credential connection_init's payload can carry (no cookie)."""
    return {name: value for name, value in credential.items() if name == "Authorization"}


def _query_token(credential: dict[str, str]) -> str | None:
    """What of a credential a RESTSocket's ?token= can carry."""
    authorization = credential.get("Authorization")
    return None if authorization is None else authorization.removeprefix("Bearer ")


def _transport_ws(server: Server, headers: dict[str, str], payload: dict[str, str]) -> str:
    with _connect(
        server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], additional_headers=headers
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            assert next(_messages(ws))["type"] == "connection_ack"
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else None}"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        return _said(next(_messages(ws))["payload"])


def _transport_ws_subscribing_first(server: Server, headers: dict[str, str]) -> str:
    with _connect(
        server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], additional_headers=headers
    ) as ws:
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        return f"closed {_closed(ws)}"


def _legacy_ws(server: Server, headers: dict[str, str], payload: dict[str, str]) -> str:
    with _connect(server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")], additional_headers=headers) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        answer = next(_messages(ws))
        if answer["type"] == "connection_error":
            return f"{answer['payload']['extensions']['code']}, closed {_closed(ws)}"
        ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}}))
        return _said(next(_messages(ws))["payload"])


def _legacy_ws_starting_first(server: Server) -> str:
    with _connect(server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")]) as ws:
        ws.send(json.dumps({"id": "1", "type": "start", "payload": {"query": SUBSCRIPTION}}))
        return f"closed {_closed(ws)}"


def _restsocket(server: Server, path: str, headers: dict[str, str], token: str | None) -> str:
    url = server.ws_url + path
    if token is not None:
        url += ("&" if "?" in path else "?") + "token=" + token
    with _connect(url, additional_headers=headers) as ws:
        try:
            message = next(_messages(ws))
            # The feed's messages have a kind (the first one differs by mode).
            return str(message["op"]) if "op" in message else "feed " + FEED_KINDS[message["kind"]]
        except ConnectionClosed as closed:
            return f"closed {closed.rcvd.code if closed.rcvd else None}"


Way = Callable[[Server, str, dict[str, str]], str]
# Every way over a WebSocket, given a todo's id and credential headers:
# (how, what it says with the token, without it).
SOCKET_WAYS: dict[str, tuple[Way, str, str]] = {
    "graphql-transport-ws, token in connection_init": (
        lambda s, _, c: _transport_ws(s, {}, _payload(c)), "data", "closed 4401"
    ),
    "graphql-transport-ws, token in the upgrade": (lambda s, _, c: _transport_ws(s, c, {}), "data", "closed 4401"),
    "graphql-transport-ws, subscribe before connection_init": (
        lambda s, _, c: _transport_ws_subscribing_first(s, c), "closed 4401", "closed 4401"
    ),
    "legacy graphql-ws, token in connection_init": (
        lambda s, _, c: _legacy_ws(s, {}, _payload(c)), "data", "UNAUTHENTICATED, closed 4403"
    ),
    "legacy graphql-ws, token in the upgrade": (
        lambda s, _, c: _legacy_ws(s, c, {}), "data", "UNAUTHENTICATED, closed 4403"
    ),
    "legacy graphql-ws, start before connection_init": (
        lambda s, _, c: _legacy_ws_starting_first(s), "closed 4401", "closed 4401"
    ),
    "RESTSocket, collection, header": (
        lambda s, _, c: _restsocket(s, "/api/todos/?after=0", c, None), "created", "closed 4401"
    ),
    "RESTSocket, collection, ?token=": (
        lambda s, _, c: _restsocket(s, "/api/todos/?after=0", {}, _query_token(c)), "created", "closed 4401"
    ),
    "RESTSocket, item, header": (
        lambda s, todo, c: _restsocket(s, f"/api/todos/{todo}/", c, None), "snapshot", "closed 4401"
    ),
    "RESTSocket, item, ?token=": (
        lambda s, todo, c: _restsocket(s, f"/api/todos/{todo}/", {}, _query_token(c)), "snapshot", "closed 4401"
    ),
    "RESTSocket, feed, header": (
        lambda s, _, c: _restsocket(s, "/api/feed/?after=0", c, None), "feed event", "closed 4401"
    ),
    "RESTSocket, feed, ?token=": (
        lambda s, _, c: _restsocket(s, "/api/feed/?after=0", {}, _query_token(c)), "feed event", "closed 4401"
    ),
}


@pytest.mark.parametrize("way", list(SOCKET_WAYS))
def test_every_way_over_a_websocket(server: Server, todo_id: str, way: str) -> None:
    run, ran, refused = SOCKET_WAYS[way]
    for auth, credential in AUTHS.items():
        before = _work(server)
        said = run(server, todo_id, credential)
        if auth == "right":
            assert said == ran
        else:
            assert said == refused, auth
            assert _work(server) == before
