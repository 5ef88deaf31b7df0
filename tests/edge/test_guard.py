"""Access, origins, headers and limits (graphql_todos/edge/guard.py), tried from
outside against the real server; docs/security.md says what each is for."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import os
import signal
import socket
import time
from typing import Any, cast

import httpx
import psycopg
import pytest
from graphql import get_introspection_query
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from graphql_todos.core.errors import ErrorCode, RequestError
from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import Access
from graphql_todos.edge.guard import (
    BODY_READ,
    Guard,
    Hosts,
    SocketGate,
    _media_type,
    middleware,
    stacked,
    without_origin,
)
from graphql_todos.graphql.persisted import sha256
from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES
from tests.gql import LegacyWs, TransportWs, create, data, error_codes, gql
from tests.helpers import BEARER, TOKEN, Serve, Server, listening_workers, raw_exchange, serving, wait_until
from tests.internals.test_uvicorn_http import lean_cycle

TRANSPORT_WS = [Subprotocol("graphql-transport-ws")]
TODOS = "{ todos { id title } }"


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: todos {{ id title }}" for i in range(count)) + " }"


@pytest.fixture
def authed(guarded: Server) -> Any:
    with httpx.Client(base_url=guarded.url, headers=BEARER, timeout=10) as client:
        yield client


def test_the_token_opens_every_route(guarded: Server, authed: httpx.Client) -> None:
    assert authed.get("/api/todos/").status_code == 200
    assert authed.get("/api/openapi.json").status_code == 200
    assert "errors" not in gql(authed, TODOS)
    assert authed.get("/graphql", params={"query": TODOS}).json()["data"] == {"todos": []}
    for wrong in ("Bearer nope", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"):
        response = httpx.post(guarded.url + "/graphql", json={"query": TODOS}, headers={"Authorization": wrong})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="graphql-todos"'


def test_health_and_the_web_client_need_no_token(guarded: Server) -> None:
    assert httpx.get(guarded.url + "/healthz").status_code == 200
    page = httpx.get(guarded.url + "/")
    assert page.status_code == 200
    bundle = page.text.split('src="', 1)[1].split('"', 1)[0]
    assert httpx.get(guarded.url + bundle).status_code == 200
    graphiql = httpx.get(guarded.url + "/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200
    assert "GraphiQL" in graphiql.text


def test_a_mutation_over_get_is_refused_before_it_runs(
    server: Server, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # A GET is safe (GraphQL over HTTP: 405), whatever it takes in return:
    # as an event stream it used to run into a 500 and a traceback.
    caplog.set_level(logging.ERROR)
    document = 'mutation { createTodo(input: {title: "over GET"}) { id } }'
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}
    assert "errors" not in client.post("/graphql", json={"query": document, "extensions": persisted}).json()
    for params in ({"query": document}, {"extensions": json.dumps(persisted)}):
        for accept in (
            "application/json", "application/graphql-response+json", "text/event-stream",
            "multipart/mixed;subscriptionSpec=1.0,application/json",
        ):
            response = client.get("/graphql", params=params, headers={"Accept": accept})
            assert (response.status_code, response.headers["allow"]) == (405, "POST"), accept
            assert error_codes(response.json()) == ["METHOD_NOT_ALLOWED"]
    assert len(client.get("/api/todos/").json()) == 1  # the POST's, and no other
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_sockets_take_the_token_where_their_clients_can_send_it(guarded: Server, authed: httpx.Client) -> None:
    todo = authed.post("/api/todos/", json={"title": "seen"}).json()
    # RESTSockets: the header, or ?token= (a browser cannot set headers on a WebSocket).
    for url, headers in (
        (f"/api/todos/{todo['id']}/", BEARER),
        (f"/api/todos/{todo['id']}/?token={TOKEN}", {}),
    ):
        with connect(guarded.ws_url + url, additional_headers=headers) as ws:
            assert json.loads(ws.recv(timeout=5))["op"] == "snapshot"
    # GraphQL: connection_init's payload, or the upgrade's header.
    with connect(guarded.ws_url + "/graphql", subprotocols=TRANSPORT_WS) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": BEARER}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
    with connect(guarded.ws_url + "/graphql", subprotocols=TRANSPORT_WS, additional_headers=BEARER) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
    with connect(guarded.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")]) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": BEARER}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"


@pytest.mark.parametrize(("protocol", "start"), [("graphql-transport-ws", "subscribe"), ("graphql-ws", "start")])
def test_a_graphql_socket_without_the_token_gets_no_data(
    guarded: Server, authed: httpx.Client, protocol: str, start: str
) -> None:
    create(authed, "secret")
    with connect(guarded.ws_url + "/graphql", subprotocols=[Subprotocol(protocol)]) as ws:
        # Subscribing before connection_init, which would carry the token, is refused.
        query = 'subscription { todoChanges(after: "0") { todo { title } } }'
        ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": query}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


def test_websockets_from_foreign_origins_are_refused(db_dsn: str) -> None:
    with serving(db_dsn, allowed_origins=("https://app.example",)) as server:
        own = f"http://127.0.0.1:{server.port}"
        for path in ("/graphql", "/api/todos/"):
            for origin in (own, "https://app.example"):
                with connect(server.ws_url + path, origin=origin, subprotocols=TRANSPORT_WS):  # type: ignore[arg-type]
                    pass
            for origin in ("https://evil.example", "http://127.0.0.1:1", "null"):
                with pytest.raises(InvalidStatus) as refused:
                    connect(server.ws_url + path, origin=origin, subprotocols=TRANSPORT_WS)  # type: ignore[arg-type]
                assert refused.value.response.status_code == 403


def test_a_dns_rebinding_page_is_refused(server: Server, client: httpx.Client) -> None:
    # A page on evil.example points its name at 127.0.0.1: the browser sends
    # that name as Host and as Origin, so Origin and Host agree.
    evil = f"evil.example:{server.port}"
    rebound = {"Host": evil, "Origin": f"http://{evil}"}
    query = {"query": TODOS}
    for _ in range(2):  # the second time, the front door holds the reply
        assert client.get("/graphql", params=query).status_code == 200
        assert client.post("/graphql", json=query).status_code == 200
    probes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/graphql", {"params": query}),
        ("POST", "/graphql", {"json": query}),
        ("GET", "/api/todos/", {}),
        ("GET", "/api/todos/", {"headers": {"Accept": "text/event-stream"}}),
        ("GET", "/", {}),
        ("GET", "/healthz", {}),
        ("OPTIONS", "/graphql", {"headers": {"Access-Control-Request-Method": "POST"}}),
    ]
    for method, path, kwargs in probes:
        headers = {**rebound, **kwargs.pop("headers", {})}
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 421, (method, path)
        assert response.json()["error"] == {
            "code": "MISDIRECTED_REQUEST",
            "message": "this server does not answer to the host 'evil.example': add it to ALLOWED_HOSTS",
        }
    for path in ("/graphql", "/api/todos/"):
        with pytest.raises(InvalidStatus) as refused:
            connect(
                f"ws://{evil}{path}", sock=socket.create_connection(("127.0.0.1", server.port)),
                origin=f"http://{evil}", subprotocols=TRANSPORT_WS,  # type: ignore[arg-type]
            )
        assert refused.value.response.status_code == 421
        assert json.loads(refused.value.response.body or b"")["error"]["code"] == "MISDIRECTED_REQUEST"
    # This machine's own names, with any port, and the server's own origin.
    for host in ("127.0.0.1", "localhost", "LocalHost.", "[::1]"):
        own = {"Host": f"{host}:1234", "Origin": f"http://{host}:1234"}
        assert client.get("/graphql", params=query, headers=own).json() == {"data": {"todos": []}}
        with connect(
            f"ws://{host}:1234/api/todos/", sock=socket.create_connection(("127.0.0.1", server.port)),
            origin=f"http://{host}:1234",  # type: ignore[arg-type]
        ):
            pass


WS_UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"


@pytest.mark.parametrize(
    ("request_line", "extra"),
    [
        (b"GET /api/todos/", b"Connection: close\r\n"),
        (b"GET /healthz", b"Connection: close\r\n"),
        (b"POST /graphql", b"Connection: close\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"),
        (b"GET /api/todos/", WS_UPGRADE),
        (b"GET /graphql", WS_UPGRADE + b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n"),
    ],
)
@pytest.mark.parametrize("hosts", [(b"localhost", b"localhost"), (b"localhost", b"evil.example"), (b"evil.example", b"localhost")])
def test_a_request_with_two_host_lines_is_refused(
    server: Server, request_line: bytes, extra: bytes, hosts: tuple[bytes, bytes]
) -> None:
    # RFC 9112 section 3.2: 400 to a request with more than one Host line,
    # whichever of them is ours (a proxy in front may have read the other).
    head = request_line + b" HTTP/1.1\r\n" + b"".join(b"Host: " + host + b"\r\n" for host in hosts) + extra
    reply = raw_exchange(server, head + b"\r\n" + (b'{"query":"{a}"}\r\n' if b"Content-Length" in extra else b""))
    status, _, rest = reply.partition(b"\r\n")
    assert status == b"HTTP/1.1 400 Bad Request", reply
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "error": {"code": "BAD_REQUEST", "message": "a request must have one Host header, not several"}
    }


@pytest.mark.parametrize(
    ("bound", "listed", "answered", "refused"),
    [
        ("127.0.0.1", (), ["localhost", "127.0.0.1:8000", "[::1]:80", "localhost."], ["10.0.0.5", "todos.lan"]),
        ("::1", (), ["[::1]:8000", "localhost"], ["[2001:db8::1]", "evil.example"]),
        # Bound beyond loopback: any address (no name, no rebinding), names listed.
        ("0.0.0.0", (), ["10.0.0.5:8000", "[2001:db8::1]:8000", "localhost"], ["todos.lan", "10.0.0.5.nip.io"]),
        ("todos.lan", (), ["todos.lan:8000", "10.0.0.5"], ["evil.example"]),
        (
            "0.0.0.0", ("todos.example", ".lan"), ["TODOS.example:443", "lan", "a.b.lan"],
            ["todos.example.evil", "evillan", "example"],
        ),
        ("127.0.0.1", ("*",), ["anything.example"], []),
    ],
)
def test_the_hosts_a_server_answers_to(
    bound: str, listed: tuple[str, ...], answered: list[str], refused: list[str]
) -> None:
    hosts = Hosts(Settings(host=bound, allowed_hosts=listed))
    assert [host for host in answered if not hosts.allows(host)] == []
    assert [host for host in refused if hosts.allows(host)] == []
    assert hosts.allows(None)  # no Host: no browser


def test_cross_origin_reads_only_for_allowed_origins(server: Server, db_dsn: str) -> None:
    foreign = {"Origin": "https://app.example"}
    response = httpx.get(server.url + "/api/todos/", headers=foreign)
    assert "access-control-allow-origin" not in response.headers
    with serving(db_dsn, allowed_origins=("https://app.example",), token=TOKEN) as allowing:
        preflight = httpx.options(
            allowing.url + "/graphql",
            headers={
                **foreign,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        response = httpx.get(allowing.url + "/api/todos/", headers={**foreign, **BEARER})
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.get(allowing.url + "/api/todos/", headers={"Origin": "https://evil.example", **BEARER})
        assert "access-control-allow-origin" not in other.headers


def test_security_headers(server: Server, client: httpx.Client) -> None:
    for path in ("/", "/graphql", "/api/todos/", "/healthz", "/nope"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
    for page in ("/", "/graphql"):
        policy = _directives(client.get(page, headers={"Accept": "text/html"}).headers["content-security-policy"])
        # What docs/security.md promises: no framing, talk only to its own
        # origin, load only its own scripts (none inline, no eval).
        assert policy["frame-ancestors"] == ["'none'"], page
        assert policy["connect-src"] == ["'self'"], page
        assert policy["script-src"] == ["'self'"], page
        assert policy["default-src"] == ["'self'"], page
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"], page


def _directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header: each directive's sources."""
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"  # a browser would use the first only
        directives[name] = sources
    return directives


def test_a_query_of_2000_aliases_is_refused_before_execution(server: Server, client: httpx.Client) -> None:
    create(client, "one")
    response = client.post("/graphql", json={"query": aliases(2000)})
    assert response.status_code == 200
    assert "data" not in response.json() or response.json()["data"] is None
    assert error_codes(response.json()) == ["GRAPHQL_PARSE_FAILED"]
    assert "tokens" in response.json()["errors"][0]["message"]
    # Within the token limit, the alias limit refuses it.
    body = gql(client, aliases(31))
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert len(gql(client, aliases(30))["data"]) == 30


def test_broadcast_subscriptions_are_held_to_the_document_limits(server: Server) -> None:
    # todoChanges over WebSockets takes the broadcast fan-out, which plans
    # documents of its own: over the limits, they must not get a plan.
    within = "subscription { todoChanges { todo { " + " ".join(f"a{i}: id" for i in range(30)) + " } } }"
    over_aliases = within.replace("a0: id", "a0: id x: id")
    over_tokens = within.replace("a0: id", " ".join(f"b{i}: id" for i in range(500)))
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(within)
        wait_until(lambda: server.subscriber_count() == 1)
        refused = ws.subscribe(over_aliases)
        message = ws.recv()
        assert (message["type"], message["id"]) == ("error", refused)
        assert [e["extensions"]["code"] for e in message["payload"]] == ["GRAPHQL_VALIDATION_FAILED"]
        assert "MAX_ALIASES" in message["payload"][0]["message"]
        # Strawberry closes the socket on a document that does not parse.
        ws.subscribe(over_tokens)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    legacy = LegacyWs(server.ws_url)
    try:
        legacy.send({"id": "1", "type": "start", "payload": {"query": over_aliases}})
        message = legacy.recv()
    finally:
        legacy.close()
    assert message["type"] in ("error", "data"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    errors = errors if isinstance(errors, list) else [errors]
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]


def doubled(levels: int) -> str:
    """Fragments F0 (five fields) to F<levels>, each spreading the one
    before twice: F<n> selects 5 * 2**n fields once expanded."""
    fragments = ["fragment F0 on Todo { id title completed createdTime updatedTime }"]
    fragments += [f"fragment F{n} on Todo {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)]
    return " ".join(fragments)


def test_fields_are_counted_with_fragments_expanded(server: Server, client: httpx.Client) -> None:
    assert server.settings.max_fields == 2000
    create(client, "one")
    # 1 + 5 * 2**8 = 1281 fields: answered.
    assert len(data(client, "{ todos { ...F8 } } " + doubled(8))["todos"]) == 1
    # 1 + 5 * 2**9 = 2561: refused before anything runs, over HTTP and WebSockets.
    body = gql(client, "{ todos { ...F9 } } " + doubled(9))
    assert ("data" in body, error_codes(body)) == (False, ["GRAPHQL_VALIDATION_FAILED"])
    assert body["errors"][0]["message"] == (
        "the document selects 2561 fields, its fragments expanded; at most 2000 (MAX_FIELDS)"
    )
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe("subscription { todos { ...F9 } } " + doubled(9))
        message = ws.recv()
    assert (message["type"], message["id"]) == ("error", op_id)
    assert [e["extensions"]["code"] for e in message["payload"]] == ["GRAPHQL_VALIDATION_FAILED"]


def test_measuring_a_document_takes_no_longer_than_reading_it(client: httpx.Client) -> None:
    # 5 * 2**40 fields and 40 levels of spreads in 1,400 bytes: each fragment
    # is measured once (Strawberry's own limiters walked every spread again,
    # for hours). Refused with every limit it breaks, an unknown fragment
    # with graphql-core's own error rather than a crash.
    body = gql(client, "{ todos { ...F40 } } " + doubled(40))
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "MAX_FIELDS" in body["errors"][0]["message"]
    unknown = gql(client, "{ todos { ...Nope } }")
    assert error_codes(unknown) == ["GRAPHQL_VALIDATION_FAILED"]
    assert unknown["errors"][0]["message"] == "Unknown fragment 'Nope'."


def test_depth_and_introspection_limits(db_dsn: str) -> None:
    with (
        serving(db_dsn, max_depth=1, introspection=False) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert error_codes(gql(client, "{ todoList { todos { id } } }")) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "errors" not in gql(client, "{ todos { id } }")
        introspection = gql(client, "{ __schema { queryType { name } } }")
        assert set(error_codes(introspection)) == {"GRAPHQL_VALIDATION_FAILED"}, introspection


def test_introspection_is_on_by_default(client: httpx.Client) -> None:
    # GraphiQL's own introspection query is deep: introspection fields are not counted.
    body = gql(client, get_introspection_query(descriptions=True))
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_a_large_chunked_body_is_refused(guarded: Server) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 100

    response = httpx.post(
        guarded.url + "/graphql", content=chunks(), headers={**BEARER, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_websocket_message_over_the_limit_closes_the_socket(server: Server) -> None:
    limit = server.settings.ws_max_bytes
    with TransportWs(server.ws_url) as ws:
        ws.send({"type": "ping", "payload": {"pad": "x" * limit}})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


def test_subscriptions_per_socket_are_limited(db_dsn: str) -> None:
    with serving(db_dsn, max_subscriptions=2) as server:
        with TransportWs(server.ws_url) as ws:
            for _ in range(2):
                ws.subscribe("subscription { todoChanges { cursor } }")
            wait_until(lambda: server.subscriber_count() == 2)
            op_id = ws.subscribe("subscription { todoChanges { cursor } }")
            message = ws.recv()
            assert (message["type"], message["id"]) == ("error", op_id)
            assert message["payload"][0]["message"] == "Subscription limit reached"
            assert message["payload"][0]["extensions"] == {"code": "TOO_MANY_REQUESTS"}
        legacy = LegacyWs(server.ws_url)
        try:
            for op_id in ("1", "2", "3"):
                legacy.send({"id": op_id, "type": "start", "payload": {"query": "subscription { todoChanges { cursor } }"}})
            message = legacy.recv()
            assert (message["type"], message["id"]) == ("error", "3")
            assert message["payload"] == {"message": "Subscription limit reached", "extensions": {"code": "TOO_MANY_REQUESTS"}}
        finally:
            legacy.close()


def test_database_statements_and_pool_waits_are_bounded(db_dsn: str) -> None:
    with serving(db_dsn, statement_timeout_seconds=0.25, database_timeout_seconds=1.5) as server:
        assert server._uvicorn is not None and server._loop is not None
        pool = server._uvicorn.lifespan.state["pool"]

        async def settings() -> tuple[str, float]:
            async with pool.connection() as conn:
                row = await (await conn.execute("SHOW statement_timeout")).fetchone()
            return row[0], pool.timeout

        assert asyncio.run_coroutine_threadsafe(settings(), server._loop).result(5) == ("250ms", 1.5)


def _closed_within(sock: socket.socket, send: bytes, seconds: float) -> bool:
    """Send `send` a byte at a time; whether the server hangs up within `seconds`
    (it must not wait for the rest)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.1)
    for byte in send:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        # request_seconds is 1 on `guarded`; 10 s is the test's patience, not a bound.
        sock.settimeout(10)
        assert sock.recv(1) == b""


def test_a_request_head_sent_a_byte_at_a_time_is_cut_off(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        assert _closed_within(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"y" * 1000, 10)


def test_a_keep_alive_connection_that_sends_nothing_more_is_closed(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Then a new request's head, trickled: uvicorn's own keep-alive timer stops at the first byte.
        assert _closed_within(sock, b"GET /healthz HTTP/1.1\r\n" + b"X: " + b"y" * 1000, 10)


def test_a_request_head_over_the_limit_is_refused(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n"
    assert raw_exchange(server, head).startswith(b"HTTP/1.1 431 ")
    fits = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Big: " + b"x" * 60000 + b"\r\n\r\n"
    assert raw_exchange(server, fits).startswith(b"HTTP/1.1 200 ")


def test_uvicorn_calls_the_hooks_the_head_timeout_relies_on() -> None:
    # If uvicorn renames these, HttpProtocol would silently time nothing out.
    for hook in ("connection_made", "data_received", "on_headers_complete", "on_response_complete", "connection_lost"):
        assert hook in vars(HttpToolsProtocol), hook
    assert "self.pipeline" in inspect.getsource(HttpToolsProtocol.on_response_complete)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_a_graphql_socket_that_never_sends_connection_init_is_closed(db_dsn: str, protocol: str) -> None:
    """On both protocols, though the legacy one sets no deadline: a silent
    socket would hold a place of MAX_SOCKETS_PER_CLIENT forever."""
    with serving(db_dsn, connection_init_seconds=0.5) as server:
        ws = connect(server.ws_url + "/graphql", subprotocols=[Subprotocol(protocol)])
        with ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4408, "Connection initialisation timeout")


def test_a_legacy_socket_initialised_in_time_outlives_the_deadline(db_dsn: str) -> None:
    with serving(db_dsn, connection_init_seconds=0.5, keepalive_seconds=1) as server:
        legacy = LegacyWs(server.ws_url)
        # Keep-alives at the acknowledgement and a second later: past the deadline.
        assert [json.loads(legacy.ws.recv(timeout=5)) for _ in range(2)] == [{"type": "ka"}] * 2
        legacy.close()


def test_a_streamed_subscription_outlives_the_request_deadline(guarded: Server, authed: httpx.Client) -> None:
    headers = {**BEARER, "accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    body = {"query": "subscription { todoChanges { todo { title } } }"}
    with httpx.stream("POST", guarded.url + "/graphql", json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        wait_until(lambda: guarded.subscriber_count() == 1)
        # The deadline bounds receiving the body, not the answer that follows:
        # a request begun after this one, whose body never comes, is refused
        # at its deadline, and this one is still answering after it.
        slow = (
            b"POST /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"
        )
        assert raw_exchange(guarded, slow).startswith(b"HTTP/1.1 408 ")
        create(authed, "after the deadline")
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk
            if "after the deadline" in buffer:
                break
    assert "after the deadline" in buffer


def _insert(server: Server, count: int, completed: bool = False) -> None:
    """`count` rows t1, t2, ... in that list order, in one statement."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO todos (title, completed, created_time)"
            " SELECT 't' || n, %s, now() + n * interval '1 ms' FROM generate_series(1, %s) n",
            (completed, count),
        )


def _titles(todos: list[dict[str, Any]]) -> list[str]:
    return [todo["title"] for todo in todos]


def test_lists_come_in_pages_of_at_most_max_list_rows(db_dsn: str) -> None:
    with serving(db_dsn, max_list_rows=3) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        _insert(server, 5)
        assert _titles(data(client, "{ todos(first: 2, offset: 1) { title } }")["todos"]) == ["t2", "t3"]
        page = data(client, "{ todoList(first: 3, offset: 3) { cursor todos { title } } }")["todoList"]
        assert (page["cursor"], _titles(page["todos"])) == ("5", ["t4", "t5"])
        assert data(client, "{ todos(first: 0) { title } todoList(offset: 9, first: 3) { todos { id } } }") == {
            "todos": [],
            "todoList": {"todos": []},
        }
        # Pages by variables are kept apart by the response cache.
        paged = "query($f: Int, $o: Int) { todos(first: $f, offset: $o) { title } }"
        assert [_titles(data(client, paged, {"f": 2, "o": o})["todos"]) for o in (0, 2, 4, 0)] == [
            ["t1", "t2"], ["t3", "t4"], ["t5"], ["t1", "t2"]
        ]
        # Asked for whole, a list over the cap is refused, never cut short.
        for whole in ("{ todos { id } }", "{ todoList { cursor } }", "{ todos(first: null, offset: 1) { id } }"):
            body = gql(client, whole)
            assert (body["data"], error_codes(body)) == (None, ["LIST_TOO_LARGE"]), whole
            assert "first and offset" in body["errors"][0]["message"]
        # The rest of the list from an offset is whole when it fits.
        assert _titles(data(client, paged, {"f": None, "o": 2})["todos"]) == ["t3", "t4", "t5"]
        for bad in ("first: 4", "first: -1", "first: 2, offset: -1"):
            body = gql(client, f"{{ todos({bad}) {{ id }} }}")
            assert error_codes(body) == ["BAD_USER_INPUT"], bad
        # Within the cap, whole lists answer as before.
        _insert(server, 2, completed=True)
        assert _titles(data(client, "{ todos(completed: true) { title } }")["todos"]) == ["t1", "t2"]


def test_toggle_all_and_clear_completed_change_every_row_and_return_at_most_the_cap(db_dsn: str) -> None:
    with serving(db_dsn, max_list_rows=3) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        _insert(server, 5)
        toggled = data(client, "mutation { toggleAll(completed: true) { title completed } }")["toggleAll"]
        assert toggled == [{"title": f"t{n}", "completed": True} for n in (1, 2, 3)]
        assert _titles(data(client, "{ todos(completed: false) { title } }")["todos"]) == []
        cleared = data(client, "mutation { clearCompleted { title } }")["clearCompleted"]
        assert _titles(cleared) == ["t1", "t2", "t3"]
        assert data(client, "{ todos { id } }") == {"todos": []}


def test_the_live_list_ends_with_list_too_large_once_over_the_cap(db_dsn: str) -> None:
    live = "subscription { todos { title } }"
    with serving(db_dsn, max_list_rows=3) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        _insert(server, 3)
        with TransportWs(server.ws_url) as ws:
            op_id = ws.subscribe(live)
            assert _titles(ws.next_data()["todos"]) == ["t1", "t2", "t3"]
            create(client, "t4")
            message = ws.recv()
            assert (message["type"], message["id"]) == ("next", op_id)
            assert error_codes(message["payload"]) == ["LIST_TOO_LARGE"]
            assert ws.recv() == {"type": "complete", "id": op_id}
            # Over the cap from the start: the same at once.
            ws.subscribe(live)
            assert error_codes(ws.recv()["payload"]) == ["LIST_TOO_LARGE"]


def test_a_live_list_over_the_cap_is_read_again_rather_than_patched(db_dsn: str) -> None:
    # The resolver ends every watcher of such a list, but one may still be
    # between versions: it must never see the held rows as the whole list.
    with serving(db_dsn, max_list_rows=3) as server:
        _insert(server, 5)

        async def versions() -> list[list[str]]:
            seen = []
            watch = server.live_lists.watch(None)
            try:
                seen.append(_titles_of(await anext(watch)))
                with psycopg.connect(server.dsn, autocommit=True) as conn:
                    conn.execute("DELETE FROM todos WHERE title IN ('t1', 't2')")
                seen.append(_titles_of(await anext(watch)))
            finally:
                await watch.aclose()
            return seen

        assert server.run(versions()) == [["t1", "t2", "t3", "t4"], ["t3", "t4", "t5"]]


def _titles_of(rows: Any) -> list[str]:
    return [row.title for row in rows]


def _open_until_refused(serve: Serve, in_a_row: int = 20) -> list[Connection]:
    """Open WebSockets (both kinds, both front doors) from one address until
    `in_a_row` are refused one after another, keeping each one accepted.
    The kernel hands each connection to either worker: 20 refusals in a row
    have reached both."""
    held: list[Connection] = []
    refused_in_a_row = 0
    for attempt in itertools.count():
        if refused_in_a_row == in_a_row:
            break
        path = "/graphql" if attempt % 2 else "/api/todos/"
        try:
            ws = connect(serve.ws_url + path, subprotocols=TRANSPORT_WS if attempt % 2 else None)
        except InvalidStatus as refused:
            assert refused.response.status_code == 429
            refused_in_a_row += 1
            continue
        refused_in_a_row = 0
        if attempt % 2:
            ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        held.append(ws)
    return held


@pytest.mark.parametrize("limit", [3, 256], ids=["one place at a time", "reserved ahead"])
def test_the_sockets_per_address_limit_holds_exactly_across_workers(db_dsn: str, limit: int) -> None:
    # With 3, each worker reserves one place at a time; with 256, 4 at a
    # time while the address is far from it (shared_counts.SPARE_SHARE).
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "MAX_SOCKETS_PER_CLIENT": str(limit)}
    serve = Serve(env, args=["--workers", "2"])
    held: list[Connection] = []

    def by_worker() -> dict[int, list[Connection]]:
        by_port = {ws.socket.getsockname()[1]: ws for ws in held}
        return {pid: [by_port[p] for p in ports] for pid, ports in serve.workers_of(by_port).items()}

    try:
        wait_until(lambda: listening_workers(db_dsn) == 2, timeout=30)
        held = _open_until_refused(serve)  # each worker alone would take the limit
        assert len(held) == limit
        assert len(by_worker()) == 2 or limit == 3  # 256 land in both
        # Sockets closed in one worker give their places back, to either.
        for ws in next(iter(by_worker().values()))[: limit // 6 + 1]:
            ws.close()
            held.remove(ws)
        wait_until(lambda: sum(map(len, by_worker().values())) == len(held))
        held += _open_until_refused(serve)
        assert len(held) == limit
        # A worker killed outright takes its sockets with it, and its places.
        victim, lost = next(iter(by_worker().items()))
        os.kill(victim, signal.SIGKILL)
        for ws in lost:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            held.remove(ws)
        wait_until(lambda: listening_workers(db_dsn) == 2, timeout=30)  # its replacement
        held += _open_until_refused(serve)
        assert len(held) == limit
    finally:
        for ws in held:
            ws.close()
        serve.stop(signal.SIGTERM)


def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(db_dsn: str) -> None:
    def open_socket(server: Server, client: str) -> Connection:
        return connect(server.ws_url + "/api/todos/", additional_headers={"X-Forwarded-For": client})

    # A client of this machine that names itself another address each time is
    # still counted as what it is (uvicorn by itself trusts 127.0.0.1).
    with serving(db_dsn, max_sockets_per_client=2) as server:
        held = [open_socket(server, f"10.0.0.{n}") for n in range(2)]
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server, "10.0.0.9")
        assert refused.value.response.status_code == 429
        for ws in held:
            ws.close()
    # Behind a proxy it trusts, each client counts as itself (the proxy
    # appends the address it saw: the last one not trusted is the client).
    with serving(db_dsn, max_sockets_per_client=2, forwarded_allow_ips=("127.0.0.1",)) as server:
        held = [open_socket(server, "10.0.0.1") for _ in range(2)]
        with pytest.raises(InvalidStatus) as refused:
            open_socket(server, "192.0.2.7, 10.0.0.1")
        assert refused.value.response.status_code == 429
        held.append(open_socket(server, "10.0.0.2"))
        for ws in held:
            ws.close()


@pytest.mark.parametrize(
    "answer",
    [
        [(b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"content-type", b"application/json")],
        [(b"vary", b"Accept"), (b"content-type", b"text/html"), (b"vary", b"Cookie")],
    ],
    ids=["no vary", "one vary", "two varies"],
)
def test_the_guard_without_origin_answers_as_the_cors_layer_and_guard(answer: list[tuple[bytes, bytes]]) -> None:
    # The write door's layers for a request without Origin (guard.without_origin)
    # against middleware()'s two, the answer's headers byte for byte.
    settings = Settings(allowed_origins=("https://app.example",))
    access, sockets = Access(settings), SocketGate(settings)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(answer)})
        await send({"type": "http.response.body", "body": b"{}"})

    def sent(app: ASGIApp) -> list[Message]:
        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        scope = {
            "type": "http", "method": "POST", "path": "/api/todos/", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        }
        async def answered() -> None:
            await app(scope, receive, send)

        asyncio.run(answered())
        return messages

    stack = stacked(route, middleware(settings, access, sockets))
    assert sent(without_origin(route, settings, access, sockets)) == sent(stack)


def test_an_answers_media_type_is_its_first_content_type_in_any_case() -> None:
    # What decides the page's Content-Security-Policy (text/html).
    html, json_type = b"text/html; charset=utf-8", b"application/json"
    assert _media_type([]) == b""
    assert _media_type([(b"content-length", b"2"), (b"x-content-type", html)]) == b""
    assert _media_type([(b"content-length", b"2"), (b"content-type", html)]) == html
    assert _media_type([(b"Content-Type", json_type), (b"content-type", html)]) == json_type
    assert _media_type([(b"content-type", b""), (b"CONTENT-TYPE", html)]) == b""


def test_a_body_that_has_arrived_is_bounded_with_no_timer_and_one_that_has_not_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guard.bounded over uvicorn's receive (a LeanCycle's): a body that has
    # come is taken with no timer armed; one still to come waits until
    # REQUEST_SECONDS, then the refusal (408).
    settings = Settings(request_seconds=0.05)
    guard = Guard(route_nowhere, settings, Access(settings), SocketGate(settings))
    timers: list[float] = []
    timeout_at = asyncio.timeout_at

    def counted(when: float) -> asyncio.Timeout:
        timers.append(when)
        return timeout_at(when)

    monkeypatch.setattr(asyncio, "timeout_at", counted)

    async def run() -> tuple[Message, list[float], RequestError]:
        event = asyncio.Event()
        cycle = lean_cycle(event)
        cycle.body, cycle.more_body = bytearray(b"{}"), False
        event.set()
        message = await guard.bounded(cast(Receive, cycle.receive))()
        untimed = list(timers)
        with pytest.raises(RequestError) as refused:
            await guard.bounded(cast(Receive, lean_cycle(asyncio.Event()).receive))()
        return message, untimed, refused.value

    message, untimed, refusal = asyncio.run(run())
    assert message == {"type": "http.request", "body": b"{}", "more_body": False}
    assert untimed == [] and len(timers) == 1
    assert refusal.code is ErrorCode.REQUEST_TIMEOUT


def test_a_declared_body_that_has_come_whole_reaches_the_route_as_uvicorns_receive() -> None:
    # Within its Content-Length (uvicorn hands over no more), a body that
    # has come whole needs no bounds: the route gets uvicorn's receive()
    # itself, and the scope says so (BODY_READ: a REST handler reads it in
    # one step). One yet to come, or with no Content-Length (chunked: its
    # size is not known), is still bounded: one over MAX_BODY_BYTES refused.
    settings = Settings(max_body_bytes=2)

    async def run(length: bytes | None, body: bytes, arrived: bool) -> tuple[bool, Message | RequestError]:
        got: list[Receive] = []

        async def route(scope: Scope, receive: Receive, send: Send) -> None:
            assert scope.get(BODY_READ, False) is (receive == cycle.receive)
            got.append(receive)

        event = asyncio.Event()
        cycle = lean_cycle(event)
        cycle.body, cycle.more_body = bytearray(body), False
        if arrived:
            event.set()
        headers = [(b"host", b"127.0.0.1")] + ([] if length is None else [(b"content-length", length)])
        scope = {"type": "http", "method": "PATCH", "path": "/api/todos/x/", "query_string": b"", "headers": headers}
        await Guard(route, settings, Access(settings), SocketGate(settings))(scope, cast(Receive, cycle.receive), _not_sent)
        [receive] = got
        if not arrived:
            event.set()
        try:
            return receive == cycle.receive, await receive()
        except RequestError as refused:
            return receive == cycle.receive, refused

    whole = {"type": "http.request", "body": b"{}", "more_body": False}
    assert asyncio.run(run(b"2", b"{}", arrived=True)) == (True, whole)
    assert asyncio.run(run(b"2", b"{}", arrived=False)) == (False, whole)
    unbounded, refusal = asyncio.run(run(None, b"{}{}", arrived=True))
    assert not unbounded and isinstance(refusal, RequestError) and refusal.code is ErrorCode.PAYLOAD_TOO_LARGE


async def _not_sent(message: Message) -> None:
    raise AssertionError(f"sent {message}")


async def route_nowhere(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")
