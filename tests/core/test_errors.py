"""Every error code through every transport that can produce it: GraphQL over
HTTP, over graphql-transport-ws and the legacy graphql-ws, REST, and the
RESTSockets' close codes. The code, status and close code each transport
shows must be the ones errors.ErrorCode gives."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from graphql_todos.core import repository
from graphql_todos.core.errors import ErrorCode
from tests.gql import LegacyWs, TransportWs, gql
from tests.helpers import BEARER, ROOT, Server, make_server, raw_exchange, serving, wait_until

MISSING = str(uuid.UUID(int=1))
JSON = {"content-type": "application/json"}
BAD_CURSOR = 'subscription { todoChanges(after: "nope") { cursor } }'
UPDATE_MISSING = f'mutation {{ updateTodo(id: "{MISSING}", input: {{title: "x"}}) {{ id }} }}'
EXPIRED_CURSOR = 'subscription { todoChanges(after: "1") { cursor } }'


def _break_database(server: Server) -> None:
    # A failure no layer anticipates: the table is gone.
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE todos RENAME TO todos_gone")


def _expire_cursor_1(server: Server) -> None:
    """Three changes, then the app's own pruning keeps only the newest: the
    journal is pruned through position 2, so cursor 1 has expired."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c')")
        params = {"below": 2**62, "keep_seconds": 3600, "keep_rows": 1, "limit": 100}
        assert conn.execute(repository.PRUNE_JOURNAL, params).fetchone() == (2,)


def _take_database_away(server: Server) -> None:
    # As when PostgreSQL restarts: every connection is cut and no new one is let in.
    name = conninfo_to_dict(server.dsn)["dbname"]
    with psycopg.connect(make_conninfo(server.dsn, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # type: ignore[arg-type]
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    # And the hub has seen its listener go: until then it takes a cursor at
    # its own position as written (streams.start_after) and asks the
    # database nothing, so a stream opened in that moment opens, caught up.
    wait_until(lambda: httpx.get(server.url + "/healthz").json().get("reason") == "listener")


def _fill_past_the_cap(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO todos (title) SELECT 't' || n FROM generate_series(1, %s) n",
            (server.settings.max_list_rows + 1,),
        )


# What puts the server in the state that yields the code.
SETUP: dict[ErrorCode, Callable[[Server], None]] = {
    ErrorCode.INTERNAL_SERVER_ERROR: _break_database,
    ErrorCode.CURSOR_EXPIRED: _expire_cursor_1,
    ErrorCode.DATABASE_UNAVAILABLE: _take_database_away,
    ErrorCode.LIST_TOO_LARGE: _fill_past_the_cap,
}


def _set_up(code: ErrorCode, server: Server) -> None:
    if code in SETUP:
        SETUP[code](server)


# GraphQL: (document, variables) that yields the code; over HTTP each gives a
# 200 with errors (the code is in extensions), over WebSockets an `error`
# message or a result with errors.
GRAPHQL: dict[ErrorCode, tuple[str, dict[str, Any]]] = {
    ErrorCode.BAD_USER_INPUT: (BAD_CURSOR, {}),
    ErrorCode.NOT_FOUND: (UPDATE_MISSING, {}),
    ErrorCode.GRAPHQL_PARSE_FAILED: ("subscription { todoChanges {", {}),
    ErrorCode.GRAPHQL_VALIDATION_FAILED: ("subscription { nope }", {}),
    ErrorCode.INTERNAL_SERVER_ERROR: ("{ todos { id } }", {}),
    ErrorCode.CURSOR_EXPIRED: (EXPIRED_CURSOR, {}),
    # From now: a cursor at the hub's position asks the database nothing
    # until the hub has seen its listener go (streams.start_after).
    ErrorCode.DATABASE_UNAVAILABLE: ("subscription { todoChanges { cursor } }", {}),
    ErrorCode.LIST_TOO_LARGE: ("subscription { todos { id } }", {}),
}
# Over HTTP, a subscription is refused before it runs: use a query instead.
HTTP_DOCUMENT: dict[ErrorCode, tuple[str, dict[str, Any]]] = {
    ErrorCode.BAD_USER_INPUT: ('{ todo(id: "nope") { id } }', {}),
    ErrorCode.GRAPHQL_VALIDATION_FAILED: ("{ todos { nope } }", {}),
    ErrorCode.DATABASE_UNAVAILABLE: ('mutation { createTodo(input: {title: "x"}) { id } }', {}),
    ErrorCode.LIST_TOO_LARGE: ("{ todoList { cursor } }", {}),
}
# No query or mutation takes a cursor: only subscriptions can expire one.
HTTP = [code for code in GRAPHQL if code is not ErrorCode.CURSOR_EXPIRED]
# The legacy protocol runs subscriptions only (issue: `start` with a query).
LEGACY = [code for code in GRAPHQL if code not in (ErrorCode.NOT_FOUND, ErrorCode.INTERNAL_SERVER_ERROR)]
# Facts beside the code that a client acts on.
DETAILS: dict[ErrorCode, dict[str, str]] = {ErrorCode.CURSOR_EXPIRED: {"oldest": "2"}}

# REST: a request that yields the code, answered with the code's status.
REST: dict[ErrorCode, Callable[[httpx.Client], httpx.Response]] = {
    ErrorCode.BAD_USER_INPUT: lambda c: c.post("/api/todos/", json={"title": " "}),
    ErrorCode.NOT_FOUND: lambda c: c.get(f"/api/todos/{MISSING}/"),
    ErrorCode.MALFORMED_JSON: lambda c: c.post("/api/todos/", content=b"{", headers=JSON),
    ErrorCode.METHOD_NOT_ALLOWED: lambda c: c.put("/api/todos/", json={}),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: lambda c: c.post("/api/todos/", content=b"x"),
    ErrorCode.NOT_ACCEPTABLE: lambda c: c.get("/api/todos/", headers={"accept": "text/html"}),
    ErrorCode.INTERNAL_SERVER_ERROR: lambda c: c.get("/api/todos/"),
    ErrorCode.DATABASE_UNAVAILABLE: lambda c: c.post("/api/todos/", json={"title": "x"}),
    ErrorCode.LIST_TOO_LARGE: lambda c: c.get("/api/todos/"),
}
# RESTSockets: a URL that the server closes with the code's close code.
SOCKETS: dict[ErrorCode, str] = {
    ErrorCode.BAD_USER_INPUT: "/api/todos/?after=nope",
    ErrorCode.NOT_FOUND: f"/api/todos/{MISSING}/",
    ErrorCode.INTERNAL_SERVER_ERROR: f"/api/todos/{MISSING}/",
    ErrorCode.CURSOR_EXPIRED: "/api/todos/?after=1",
    ErrorCode.DATABASE_UNAVAILABLE: "/api/todos/?after=0",
}
# Errors of requests that are not GraphQL at all.
NOT_GRAPHQL: dict[ErrorCode, Callable[[httpx.Client], httpx.Response]] = {
    ErrorCode.BAD_REQUEST: lambda c: c.post("/graphql", content=b"{", headers=JSON),
    ErrorCode.NOT_ACCEPTABLE: lambda c: c.post("/graphql", json={"query": "{ todos { id } }"}, headers={"accept": "text/html"}),
}

# Against the `guarded` server (a token, small limits): an HTTP request that
# yields the code, as (status, JSON body).


def _slow_body(server: Server) -> httpx.Response:
    head = b"POST /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += f"Authorization: {BEARER['Authorization']}\r\nContent-Length: 50\r\n\r\n".encode()
    answer = raw_exchange(server, head, [b"{"] * 50, pause=0.1)
    status_line, _, rest = answer.partition(b"\r\n")
    return httpx.Response(int(status_line.split()[1]), content=rest.partition(b"\r\n\r\n")[2])


GUARDED_HTTP: dict[ErrorCode, Callable[[Server], httpx.Response]] = {
    ErrorCode.UNAUTHENTICATED: lambda s: httpx.get(s.url + "/api/todos/"),
    ErrorCode.MISDIRECTED_REQUEST: lambda s: httpx.get(s.url + "/api/todos/", headers={"Host": "evil.example"}),
    ErrorCode.PAYLOAD_TOO_LARGE: lambda s: httpx.post(
        s.url + "/api/todos/", json={"title": "x" * 2000}, headers=BEARER
    ),
    ErrorCode.REQUEST_TIMEOUT: _slow_body,
}


def _third_socket(server: Server) -> None:
    # The `guarded` server takes two WebSockets from one address.
    url = server.ws_url + "/api/todos/"
    with connect(url, additional_headers=BEARER), connect(url, additional_headers=BEARER):
        connect(url, additional_headers=BEARER)


# WebSocket handshakes refused before the upgrade, with the code's HTTP status.
HANDSHAKE: dict[ErrorCode, Callable[[Server], object]] = {
    ErrorCode.FORBIDDEN: lambda s: connect(s.ws_url + "/api/todos/", origin="http://evil.example"),  # type: ignore[arg-type]
    ErrorCode.TOO_MANY_REQUESTS: _third_socket,
    ErrorCode.MISDIRECTED_REQUEST: lambda s: connect(
        "ws://evil.example/api/todos/", sock=socket.create_connection(("127.0.0.1", s.port))
    ),
}


# Persisted queries: (settings, request body); tests/test_persisted.py takes
# them through every transport.
UNKNOWN_HASH = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
PERSISTED: dict[ErrorCode, tuple[dict[str, Any], dict[str, Any]]] = {
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: ({}, {"extensions": UNKNOWN_HASH}),
    ErrorCode.DOCUMENT_NOT_TRUSTED: ({"trusted_documents": {}}, {"query": "{ todos { id } }"}),
}
# Codes that need a client behaving in a way of its own, each in its own test.
ELSEWHERE: dict[ErrorCode, str] = {
    ErrorCode.CLIENT_STALLED: "tests/test_stalled.py: a RESTSocket client that stops reading",
    ErrorCode.SHUTTING_DOWN: "tests/test_cli.py: a request still running when SHUTDOWN_SECONDS run out",
    ErrorCode.CONFLICT: "tests/test_accounts.py: a sign-up whose username is taken (AUTH=accounts)",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: "tests/test_mutations_once.py: a numbered mutation's key sent again"
    " with another request, over HTTP, both GraphQL WebSocket protocols and REST",
}


def test_every_code_is_produced_by_some_transport() -> None:
    produced = {*GRAPHQL, *REST, *SOCKETS, *NOT_GRAPHQL, *ELSEWHERE, *GUARDED_HTTP, *HANDSHAKE, *PERSISTED}
    assert produced == set(ErrorCode)


def test_every_code_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [code.name for code in ErrorCode if f"`{code.name}`" not in readme] == []


def _extensions(errors: list[dict[str, Any]], code: ErrorCode) -> list[dict[str, Any]]:
    return [{"code": code.name, **DETAILS.get(code, {})}] * len(errors)


@pytest.mark.parametrize("code", HTTP, ids=lambda c: c.name)
def test_graphql_over_http(code: ErrorCode, server: Server, client: httpx.Client) -> None:
    _set_up(code, server)
    query, variables = HTTP_DOCUMENT.get(code, GRAPHQL[code])
    body = gql(client, query, variables)
    assert [e["extensions"] for e in body["errors"]] == [{"code": code.name}]


@pytest.mark.parametrize("code", list(GRAPHQL), ids=lambda c: c.name)
def test_graphql_transport_ws(code: ErrorCode, server: Server) -> None:
    _set_up(code, server)
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe(*GRAPHQL[code])
        try:
            message = ws.recv()
        except ConnectionClosed as closed:
            # Strawberry closes the socket on a document that does not parse.
            assert closed.rcvd is not None
            assert (code, closed.rcvd.code) == (ErrorCode.GRAPHQL_PARSE_FAILED, code.close_code)
            return
    assert message["id"] == op_id
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [e["extensions"] for e in errors] == _extensions(errors, code) != []


@pytest.mark.parametrize("code", LEGACY, ids=lambda c: c.name)
def test_legacy_graphql_ws(code: ErrorCode, server: Server) -> None:
    _set_up(code, server)
    ws = LegacyWs(server.ws_url)
    try:
        query, variables = GRAPHQL[code]
        ws.send({"id": "1", "type": "start", "payload": {"query": query, "variables": variables}})
        message = ws.recv()
    finally:
        ws.close()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    errors = errors if isinstance(errors, list) else [errors]
    assert [e["extensions"] for e in errors] == _extensions(errors, code) != []


@pytest.mark.parametrize("code", list(REST), ids=lambda c: c.name)
def test_rest(code: ErrorCode, server: Server, client: httpx.Client) -> None:
    _set_up(code, server)
    response = REST[code](client)
    assert response.status_code == code.http_status, response.text
    assert response.json()["error"]["code"] == code.name


@pytest.mark.parametrize("code", list(SOCKETS), ids=lambda c: c.name)
def test_restsocket_close_codes(code: ErrorCode, server: Server) -> None:
    _set_up(code, server)
    with connect(server.ws_url + SOCKETS[code], open_timeout=5) as ws, pytest.raises(ConnectionClosed) as closed:
        while json.loads(ws.recv(timeout=5))["op"] == "keepalive":
                pass
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code.close_code
    for name, value in DETAILS.get(code, {}).items():
        assert f"{name} cursor available is {value}" in closed.value.rcvd.reason


@pytest.mark.parametrize("code", list(NOT_GRAPHQL), ids=lambda c: c.name)
def test_requests_that_are_not_graphql(code: ErrorCode, client: httpx.Client) -> None:
    response = NOT_GRAPHQL[code](client)
    assert response.status_code == code.http_status
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code.name]


@pytest.mark.parametrize("code", list(GUARDED_HTTP), ids=lambda c: c.name)
def test_limits_and_access_over_http(code: ErrorCode, guarded: Server) -> None:
    response = GUARDED_HTTP[code](guarded)
    assert response.status_code == code.http_status, response.text
    assert response.json()["error"]["code"] == code.name


@pytest.mark.parametrize("code", list(HANDSHAKE), ids=lambda c: c.name)
def test_refused_handshakes(code: ErrorCode, guarded: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with pytest.raises(InvalidStatus) as refused:
        HANDSHAKE[code](guarded)
    assert refused.value.response.status_code == code.http_status
    assert json.loads(refused.value.response.body or b"")["error"]["code"] == code.name
    # A refusal is an answer, not a failure: nothing is logged as an error
    # (once the loop has gone past the refused socket's end).
    guarded.call(lambda: None)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _closed_with(ws: Any) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_unauthenticated_sockets_close_with_the_table_codes(guarded: Server) -> None:
    code = ErrorCode.UNAUTHENTICATED
    with connect(guarded.ws_url + "/api/todos/") as ws:
        assert _closed_with(ws) == code.close_code
    protocol = [Subprotocol("graphql-transport-ws")]
    with connect(guarded.ws_url + "/graphql", subprotocols=protocol) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}))
        assert _closed_with(ws) == code.close_code
    with connect(guarded.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")]) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        message = json.loads(ws.recv(timeout=5))
        assert message["type"] == "connection_error"
        assert message["payload"]["extensions"]["code"] == code.name
        assert _closed_with(ws) == ErrorCode.FORBIDDEN.close_code


def _unavailable(client: httpx.Client) -> None:
    code = ErrorCode.DATABASE_UNAVAILABLE
    response = client.get("/api/todos/")
    assert (response.status_code, response.json()["error"]["code"]) == (code.http_status, code.name)
    # GraphQL answers with errors, or 503 when the wait came before the
    # operation ran (the response cache reads the journal position first).
    graphql = client.post("/graphql", json={"query": "{ todos { id } }"})
    body = graphql.json()
    if graphql.status_code == code.http_status:
        assert body["error"]["code"] == code.name
    else:
        assert [e["extensions"]["code"] for e in body["errors"]] == [code.name]


def test_a_busy_database_is_unavailable(db_dsn: str) -> None:
    with (
        serving(db_dsn, pool_size=1, database_timeout_seconds=0.5, statement_timeout_seconds=0.3) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        # A statement over the timeout: the table is locked by someone else.
        with psycopg.connect(server.dsn) as locker:
            locker.execute("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
            _unavailable(client)
        # No pooled connection in time: the only one is taken.
        assert server._uvicorn is not None and server._loop is not None
        pool = server._uvicorn.lifespan.state["pool"]
        held = asyncio.run_coroutine_threadsafe(pool.getconn(), server._loop).result(5)
        try:
            _unavailable(client)
        finally:
            asyncio.run_coroutine_threadsafe(pool.putconn(held), server._loop).result(5)
        # Recovered once the connection is back (the hub may have to reconnect first).
        wait_until(lambda: client.get("/api/todos/").status_code == 200, timeout=15)


@pytest.mark.parametrize(
    "query",
    [
        "query Q($id: ID!) { __typename }",
        "query { todo(id: $x) { id } }",
        "query($c: String) { todos(completed: $c) { id } }",
    ],
)
def test_variable_misuse_is_a_validation_failure(query: str, client: httpx.Client) -> None:
    body = gql(client, query, {"id": MISSING, "c": "x"})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($id: ID!) { todo(id: $id) { id } }", {"id": None}),
        ("mutation($in: CreateTodoInput!) { createTodo(input: $in) { id } }", {"in": {"title": None}}),
    ],
)
def test_a_null_for_a_non_null_variable_says_null(
    query: str, variables: dict[str, Any], client: httpx.Client
) -> None:
    body = gql(client, query, variables)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].endswith("not to be null.")
    assert "None" not in error["message"]


def test_the_table_gives_each_code_a_status_and_a_close_code() -> None:
    for code in ErrorCode:
        assert 400 <= code.http_status < 600, code
        assert 4000 <= code.close_code < 5000 or code.close_code in (1011, 1012, 1013), code
    assert ErrorCode.for_status(404) is ErrorCode.NOT_FOUND
    assert ErrorCode.for_status(405) is ErrorCode.METHOD_NOT_ALLOWED
    assert len({code.name for code in ErrorCode}) == len(ErrorCode)


@pytest.mark.parametrize("code", list(PERSISTED), ids=lambda c: c.name)
def test_persisted_queries(code: ErrorCode, db_dsn: str) -> None:
    settings, body = PERSISTED[code]
    server = make_server(db_dsn, **settings)
    server.start()
    try:
        for accept, status in (("application/json", 200), ("application/graphql-response+json", code.http_status)):
            response = httpx.post(server.url + "/graphql", json=body, headers={"accept": accept})
            assert response.status_code == status
            assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code.name]
    finally:
        server.stop()
