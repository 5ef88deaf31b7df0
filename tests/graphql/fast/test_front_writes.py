"""The front door's short way for writes (graphql/fast/write_door.py) answers
as the whole stack does: each write below is sent, as raw bytes, to a real
server twice: chunked (the door leaves a chunked body to the stack), then
with a Content-Length (the write door takes it, a GraphQL mutation once the
intake has its document), and the two answers must be equal byte for byte,
but for the Date header and, for a create, the new row's id, times and
cursor. Whether the door took a request is read from its count."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, cast

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_todos.core.errors import ErrorCode, NotFound, RequestError
from graphql_todos.core.settings import Settings
from graphql_todos.edge import error_handlers, guard
from graphql_todos.edge.access import PRINCIPAL, SESSION_COOKIE, Access
from graphql_todos.edge.guard import SocketGate
from graphql_todos.edge.negotiation import accept_header
from graphql_todos.graphql.fast import front, write_door
from graphql_todos.graphql.intake import Intake
from graphql_todos.internals.starlette_endpoint import HANDLERS
from tests.decoded import Journaled
from tests.helpers import BEARER, TOKEN, Server, raw_exchange, serving
from tests.internals.test_uvicorn_http import lean_cycle

ORIGIN = "https://app.example"
SETTINGS: dict[str, Any] = {
    "token": TOKEN, "max_body_bytes": 1000, "request_seconds": 1.0, "allowed_origins": (ORIGIN,),
}
JSON = {"Content-Type": "application/json"}
TODO = "11111111-1111-4111-8111-111111111111"
FIELDS = "id title completed"
CREATE = f"mutation($t: String!) {{ createTodo(input: {{title: $t}}) {{ {FIELDS} }} }}"
UPDATE = f'mutation {{ updateTodo(id: "{TODO}", input: {{title: "same"}}) {{ {FIELDS} }} }}'
POST_TODOS = "POST /api/todos/"
PATCH_TODO = f"PATCH /api/todos/{TODO}/"
# What differs between two creates: the row's id and times, the journal's cursor.
_VARYING = [
    (rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b"<id>"),
    (rb"\d{4}-\d\d-\d\dT[0-9:.+]+", b"<time>"),
    (rb"(?i)journal-cursor: \d+", b"journal-cursor: <n>"),
    (rb'"cursor":"\d+"', b'"cursor":"<n>"'),
    (rb"\r\ncontent-length: \d+", b""),
]


def _query(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()


@pytest.fixture
def server(journaled_db: Journaled) -> Iterator[Server]:
    """In each journal mode (Settings.journal): decoded, a write's cursor comes from the hub."""
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (id, title) VALUES (%s, 'same')", (TODO,))
    with serving(journaled_db.dsn, journal=journaled_db.journal, **SETTINGS) as srv:
        _warm(srv.url, BEARER)
        yield srv


def _warm(url: str, headers: dict[str, str]) -> None:
    """The intake takes the mutations in (the door takes none it has not):
    a refused request never reaches it."""
    for body in (_query(UPDATE), _query(CREATE, {"t": "warm"})):
        answer = httpx.post(f"{url}/graphql", content=body, headers={**JSON, **headers}, timeout=10)
        assert answer.status_code == 200 and b'"errors"' not in answer.content, answer.text


def _taken(server: Server) -> int:
    return int(server.app.state.writes.taken)


def _exchange(server: Server, target: str, body: bytes, headers: dict[str, str], chunked: bool) -> bytes:
    lines = [f"{name}: {value}" for name, value in {"Host": "127.0.0.1", **headers, "Connection": "close"}.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        chunks = [f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"]
    else:
        lines.append(f"Content-Length: {len(body)}")
        chunks = [body]
    head = (f"{target} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode()
    # The one header that differs from one answer to the next.
    return re.sub(rb"\r\ndate: [^\r]*", b"", raw_exchange(server, head, chunks))


def _same_answers(
    server: Server, target: str, body: bytes, headers: dict[str, str], taken: bool = True, varying: bool = False
) -> bytes:
    """The door's answer (it took the request, or left it when `taken` is
    False), which the stack's answer to the same write, chunked, equals."""
    before = _taken(server)
    # The stack's first: the intake takes a new document in there, and the
    # door takes only mutations it has.
    stack = _exchange(server, target, body, headers, chunked=True)
    assert _taken(server) == before, "a chunked body went to the write door"
    front = _exchange(server, target, body, headers, chunked=False)
    assert _taken(server) == before + taken
    if varying:
        for pattern, mark in _VARYING:
            front, stack = re.sub(pattern, mark, front), re.sub(pattern, mark, stack)
    assert front == stack
    return front


GRAPHQL_CASES = [
    (_query(UPDATE), {**JSON, **BEARER}, 200, True),
    (_query(CREATE, {"t": 5}), {**JSON, **BEARER}, 200, True),
    (_query(CREATE), {**JSON, **BEARER}, 200, True),
    (_query('mutation { createTodo(input: {title: "x"}) { nope } }'), {**JSON, **BEARER}, 200, False),
    (_query(f'mutation {{ createTodo(input: {{title: 5}}) {{ {FIELDS} }} }}'), {**JSON, **BEARER}, 200, False),
    (_query(UPDATE), {**JSON, **BEARER, "Accept": "application/graphql-response+json"}, 200, True),
    (_query('mutation { nope(x: 1) { id } }'), {**JSON, **BEARER, "Accept": "application/graphql-response+json"}, 400, False),
    (_query(UPDATE), JSON, 401, True),
    (_query(UPDATE), {**JSON, "Authorization": "Bearer wrong"}, 401, True),
    (_query(UPDATE), {**JSON, **BEARER, "Origin": ORIGIN}, 200, True),
    (_query(UPDATE), {**JSON, **BEARER, "Origin": "https://evil.example"}, 200, True),
    (_query(UPDATE) + b" " * 1000, {**JSON, **BEARER}, 413, False),
    (b'{"query": "mutation {', {**JSON, **BEARER}, 400, False),
    (_query("{ todos { id } }"), {**JSON, **BEARER}, 200, False),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "taken"),
    GRAPHQL_CASES,
    ids=[
        "success", "invalid variables", "missing variable", "unknown field", "wrong type",
        "graphql-response+json", "unknown mutation, graphql-response+json", "no token", "wrong token",
        "allowed origin", "foreign origin", "body too big", "bad JSON", "a query",
    ],
)
def test_a_graphql_write_gets_the_stacks_answer(
    server: Server, body: bytes, headers: dict[str, str], status: int, taken: bool
) -> None:
    answer = _same_answers(server, "POST /graphql", body, headers, taken)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    if "Origin" in headers:
        allowed = f"access-control-allow-origin: {ORIGIN}".encode()
        assert (allowed in answer) is (headers["Origin"] == ORIGIN)


def test_a_graphql_create_gets_the_stacks_answer(server: Server) -> None:
    answer = _same_answers(server, "POST /graphql", _query(CREATE, {"t": "new"}), {**JSON, **BEARER}, varying=True)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"title":"new"' in answer
    assert b"x-content-type-options: nosniff" in answer


REST_CASES = [
    (PATCH_TODO, b'{"title": "same"}', {**JSON, **BEARER}, 200),
    (PATCH_TODO, b'{"title": 5}', {**JSON, **BEARER}, 422),
    (PATCH_TODO, b'{"nope": 1}', {**JSON, **BEARER}, 422),
    (PATCH_TODO, b'{"title": ', {**JSON, **BEARER}, 400),
    (PATCH_TODO, b'{"title": "same"}', {**BEARER, "Content-Type": "text/plain"}, 415),
    (PATCH_TODO, b'{"title": "same"}' + b" " * 1000, {**JSON, **BEARER}, 413),
    (PATCH_TODO, b'{"title": "same"}', JSON, 401),
    (PATCH_TODO, b'{"title": "same"}', {**JSON, "Authorization": "Bearer wrong"}, 401),
    (PATCH_TODO, b'{"title": "same"}', {**JSON, **BEARER, "Origin": ORIGIN}, 200),
    (PATCH_TODO, b'{"title": "same"}', {**JSON, **BEARER, "Origin": "https://evil.example"}, 200),
    ("PATCH /api/todos/22222222-2222-4222-8222-222222222222/", b'{"title": "x"}', {**JSON, **BEARER}, 404),
    ("PATCH /api/todos/nope/", b'{"title": "x"}', {**JSON, **BEARER}, 400),
    (POST_TODOS, b'{"completed": true}', {**JSON, **BEARER}, 422),
    (POST_TODOS, b"[]", {**JSON, **BEARER}, 422),
    (POST_TODOS, b'{"title": "x"}', JSON, 401),
    (f"POST /api/todos/{TODO}/", b'{"title": "x"}', {**JSON, **BEARER}, 405),
]


@pytest.mark.parametrize(
    ("target", "body", "headers", "status"),
    REST_CASES,
    ids=[
        "success", "wrong type", "unknown field", "bad JSON", "not JSON", "body too big", "no token",
        "wrong token", "allowed origin", "foreign origin", "no such todo", "bad id", "create: missing title",
        "create: not an object", "create: no token", "POST to an item",
    ],
)
def test_a_rest_write_gets_the_stacks_answer(
    server: Server, target: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    answer = _same_answers(server, target, body, headers)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    if "Origin" in headers:
        allowed = f"access-control-allow-origin: {ORIGIN}".encode()
        assert (allowed in answer) is (headers["Origin"] == ORIGIN)


def test_a_rest_create_gets_the_stacks_answer(server: Server) -> None:
    answer = _same_answers(server, POST_TODOS, b'{"title": "new"}', {**JSON, **BEARER}, varying=True)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert b"location: /api/todos/<id>/" in answer


def test_other_paths_and_a_delete_are_left_to_the_stack(server: Server) -> None:
    before = _taken(server)
    for target in (f"DELETE /api/todos/{TODO}/", "POST /api/todos", "POST /api/lists/"):
        _exchange(server, target, b"{}", {**JSON, **BEARER}, chunked=False)
    assert _taken(server) == before


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[tuple[Server, str]]:
    """A server with AUTH=accounts, and a signed-up person's session secret."""
    with serving(db_dsn, auth="accounts") as srv, httpx.Client(base_url=srv.url, headers={"Origin": srv.url}, timeout=10) as client:
        signed = client.post("/api/auth/sign-up", json={"username": "ann", "password": "correct horse battery"})
        assert signed.status_code == 201, signed.text
        made = client.post("/graphql", content=_query(CREATE, {"t": "warm"}), headers=JSON)
        assert made.status_code == 200 and b'"errors"' not in made.content, made.text
        yield srv, client.cookies[SESSION_COOKIE]


@pytest.mark.parametrize(
    ("origin", "status"), [(None, 403), ("https://evil.example", 403), ("own", 200)], ids=["no origin", "foreign", "own"]
)
@pytest.mark.parametrize("rest", [False, True], ids=["graphql", "rest"])
def test_a_cookie_write_is_judged_by_its_origin(
    accounts: tuple[Server, str], origin: str | None, status: int, rest: bool
) -> None:
    server, secret = accounts
    headers = {**JSON, "Cookie": f"{SESSION_COOKIE}={secret}"}
    if origin is not None:
        # Ours: the Host the request names (_exchange's).
        headers["Origin"] = "http://127.0.0.1" if origin == "own" else origin
    if rest:
        target, body = POST_TODOS, b'{"title": "mine"}'
        status = 201 if status == 200 else status
    else:
        target, body = "POST /graphql", _query(CREATE, {"t": "mine"})
    answer = _same_answers(server, target, body, headers, varying=True)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert (b"mine" in answer) is (status != 403)


def test_a_rest_writes_route_is_the_one_the_chains_match_every_time(server: Server) -> None:
    """The door's route for a REST write (its chains tried in the method's
    order, a path with no parameters kept) is what matching each chain in
    turn gives, on the first request and the next, with path parameters of
    its own each time."""
    door = server.app.state.writes
    chains = door.rest["POST"]
    item = f"/api/todos/{TODO}/"
    for method, path in (("POST", "/api/todos/"), ("PATCH", item), ("PUT", item), ("POST", item), ("PATCH", "/api/todos/")):
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [(b"content-length", b"2")]}
        expected = next(m for chain in chains if (m := write_door._matched(scope, chain)) is not None)
        expected[write_door._ORIGIN] = False
        routes = [door.rest_route(scope, _waiting) for _ in range(3)]
        assert routes == [expected] * 3, (method, path)
        assert len({id(route["path_params"]) for route in routes}) == 3


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"host", b"x"), (b"content-type", b"application/json"), (b"content-length", b"12"), (b"accept", b"*/*")],
        # The first Content-Type and Content-Length count, every Accept line does.
        [
            (b"accept", b"application/json"), (b"content-type", b"text/plain"), (b"content-length", b"7"),
            (b"content-type", b"application/json"), (b"accept", b"text/event-stream;q=0.5"),
            (b"content-length", b"9"), (b"accept", b"\xe9"),
        ],
        [(b"content-type", b""), (b"accept", b"")],
        [(b"origin", b"https://a.example"), (b"content-length", b"2"), (b"origin", b"https://b.example")],
    ],
)
def test_the_front_door_reads_a_posts_head_as_starlettes_headers_do(raw: list[tuple[bytes, bytes]]) -> None:
    headers = Headers(raw=raw)
    assert front._post_head(raw) == (
        headers.get("content-type", ""), headers.get("content-length", ""), accept_header(headers), "origin" in headers
    )


def test_a_declared_size_over_the_limit_is_refused_before_the_body(server: Server) -> None:
    # No body sent: the front door refuses on the declared size alone (the
    # guard behind it leaves a body read there unchecked), not after waiting
    # request_seconds for a body (a body_timeout counted, then the same 413).
    def refusals(limit: str) -> float:
        return REGISTRY.get_sample_value("graphql_todos_limit_refusals_total", {"limit": limit}) or 0.0

    timeouts, sizes = refusals("body_timeout"), refusals("body_size")
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {BEARER['Authorization']}\r\nContent-Length: 1001\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = raw_exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"PAYLOAD_TOO_LARGE" in answer
    assert (refusals("body_timeout"), refusals("body_size")) == (timeouts, sizes + 1)


def test_the_door_keeps_at_most_kept_routes_paths(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every todo's path is matched once and kept, until KEPT_ROUTES paths
    are kept: then all are forgotten, and matched again as they come."""
    door = server.app.state.writes
    monkeypatch.setattr(write_door, "KEPT_ROUTES", 3)
    door.literal.clear()
    paths = [f"/api/todos/{uuid.UUID(int=i)}/" for i in range(4)]
    scopes = [{"type": "http", "method": "PATCH", "path": p, "root_path": "", "headers": [(b"content-length", b"2")]} for p in paths]
    for scope in scopes[:3]:
        door.rest_route(scope, _waiting)
    assert sorted(key[1] for key in door.literal) == sorted(paths[:3])
    route = door.rest_route(scopes[3], _waiting)
    assert [key[1] for key in door.literal] == [paths[3]]
    assert route is not None and route["path_params"] == {"id": paths[3].split("/")[3]}
    # Each request its own path parameters: a route that changes them leaves the kept ones alone.
    route["path_params"]["id"] = "changed by its route"
    again = door.rest_route(scopes[3], _waiting)
    assert again is not None and again["path_params"] == {"id": paths[3].split("/")[3]}


async def _waiting() -> Message:
    """A receive() not uvicorn's: never taken for a body come whole."""
    return {"type": "http.request", "body": b"", "more_body": False}


def test_a_rest_body_come_whole_within_the_limit_is_marked_read_for_the_guard(server: Server) -> None:
    """One decision for the door and the guard: a declared body within
    max_body_bytes that has come whole needs no bounds (BODY_READ); one over
    the limit (the guard's 413), or not yet whole (the guard's bounds), is
    left to the guard."""
    door = server.app.state.writes
    event = asyncio.Event()
    event.set()
    cycle = lean_cycle(event)
    cycle.body = bytearray(b"{}")
    for length, whole, marked in (("2", True, True), ("1000", True, True), ("1001", True, False), ("2", False, False)):
        cycle.more_body = not whole
        scope = {"type": "http", "method": "POST", "path": "/api/todos/", "root_path": "", "headers": [(b"content-length", length.encode())]}
        route = door.rest_route(scope, cycle.receive)
        assert route is not None and (guard.BODY_READ in route) is marked, (length, whole)
        assert guard.BODY_READ not in (door.rest_route(scope, _waiting) or {})


class _Failing:
    """A route's ASGI app (a function would be taken as a request handler)
    that answers, or fails, as `case` says."""

    def __init__(self, case: str) -> None:
        self.case = case

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        case = self.case
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        if case == "answers":
            await send(start)
            await send({"type": "http.response.body", "body": b"<p>"})
        elif case == "refused":
            raise RequestError(ErrorCode.PAYLOAD_TOO_LARGE, "too big", headers={"Connection": "close"})
        elif case == "not found":
            raise NotFound(uuid.UUID(TODO))
        elif case == "405":
            raise HTTPException(405, headers={"Allow": "GET"})
        elif case == "client gone":
            raise ClientDisconnect()
        elif case == "fails":
            raise ValueError("a bug")
        elif case == "fails after its start":
            await send(start)
            raise ValueError("a bug")
        elif case == "a bad start":
            await send({**start, "headers": [b"not a pair"]})


@pytest.mark.parametrize(
    "case", ["answers", "refused", "not found", "405", "client gone", "fails", "fails after its start", "a bad start"]
)
@pytest.mark.parametrize("origin", [None, ORIGIN, "https://elsewhere.example"])
@pytest.mark.parametrize("path", ["/graphql", "/api/todos/"])
def test_the_doors_layers_answer_and_fail_as_the_stacks(case: str, origin: str | None, path: str) -> None:
    """The door's layers (one send wrapper: ExceptionMiddleware's and the
    guard's) against the stack's (the guard's, then error_handlers.answering's
    ExceptionMiddleware): the same messages sent, the same exception out."""
    settings = Settings(token=TOKEN, allowed_origins=(ORIGIN,))
    access, sockets = Access(settings), SocketGate(settings)
    door = write_door.WriteDoor(settings, access, sockets, cast(Intake, None), (), ())
    route = Route(path, _Failing(case))
    stack = guard.stacked(error_handlers.answering(route.handle), guard.middleware(settings, access, sockets))

    def outcome(app: ASGIApp) -> tuple[list[Message], str, dict[str, Any]]:
        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {TOKEN}".encode()), (b"content-type", b"application/json")]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "headers": headers + ([] if origin is None else [(b"origin", origin.encode())]),
            write_door._ROUTE: route,
        }
        async def answered() -> None:
            await app(scope, receive, send)

        try:
            asyncio.run(answered())
            raised = ""
        except Exception as exc:  # noqa: BLE001 - compared
            raised = f"{type(exc).__name__}: {exc}"
        # The handler tables compared by function (each middleware's methods are its own).
        exceptions, statuses = cast(tuple[dict[Any, Any], dict[int, Any]], scope.pop(HANDLERS))
        tables = ({kind: getattr(handler, "__func__", handler) for kind, handler in exceptions.items()}, statuses)
        return messages, raised, {**{k: v for k, v in scope.items() if k not in (write_door._ROUTE, PRINCIPAL)}, HANDLERS: tables}

    ours = outcome(door.layers if origin is not None else door.without_origin)
    assert ours == outcome(stack)
    if case in ("fails after its start", "a bad start"):
        assert ours[1].startswith("RuntimeError: Caught handled exception")
    elif case != "client gone":
        assert ours[0], case
