"""Bad input, tried: random GraphQL documents and variables over HTTP, random
WebSocket frames on both GraphQL protocols and on RESTSockets, and hostile
titles. The server answers each per protocol, never crashes, never shows a
traceback, and stays healthy with every PostgreSQL connection back in its pool.

Examples are bounded and derandomized, so every run tries the same ones."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from graphql_todos.core.errors import ErrorCode
from graphql_todos.core.service import MAX_TITLE_LENGTH
from tests.gql import TODO_FIELDS, LegacyWs, data, error_codes
from tests.helpers import Server, errors_logged, wait_until

BOUNDED = settings(max_examples=40, derandomize=True, database=None, deadline=None)
CODES = {code.name for code in ErrorCode} - {ErrorCode.INTERNAL_SERVER_ERROR.name}
FIELDS = ["todos", "todo", "todoList", "todoChanges", "createTodo", "updateTodo", "deleteTodo",
          "toggleAll", "clearCompleted", "id", "title", "completed", "cursor", "op", "__typename",
          "__schema", "nope"]
CREATE = f"mutation($t: String!) {{ createTodo(input: {{title: $t}}) {{ {TODO_FIELDS} }} }}"


@pytest.fixture
def watched(server: Server) -> Iterator[Server]:
    """The server, checked afterwards: healthy, no error logged (in the test
    or by these checks), and every pooled connection back (no more than the
    pool plus the listener open)."""
    with errors_logged() as errors:
        yield server
        assert httpx.get(server.url + "/healthz").status_code == 200
        _settled(server)
    # (The test's own WebSocket client logs a connection it was sending on
    # when the server closed it: see _converse.)
    assert [e for e in errors if not e.startswith("websockets.client: ")] == []


def _settled(server: Server) -> None:
    def settled() -> bool:
        stats = server.pool_stats()
        return stats["pool_available"] == stats["pool_size"] and _backends(server) == stats["pool_size"] + 1

    wait_until(settled)
    assert _backends(server) <= server.settings.pool_size + 1


def test_the_watched_server_fails_a_test_that_logged_an_error(
    pytester: pytest.Pytester, admin_dsn: str, template_db: str
) -> None:
    """The real fixture, in a pytest of its own (on this session's database):
    an error logged in the test body, by the app or by uvicorn (whose
    loggers do not propagate), fails it at teardown."""
    pytester.makepyfile(f"""
        import logging
        import pytest
        from tests.conftest import db_dsn, server
        from tests.test_bad_input import watched

        @pytest.fixture(scope="session")
        def admin_dsn():
            return {admin_dsn!r}

        @pytest.fixture(scope="session")
        def template_db():
            return {template_db!r}

        def test_quiet(watched):
            pass

        def test_app_error(watched):
            logging.getLogger("graphql_todos.app").error("boom")

        def test_uvicorn_error(watched):
            logging.getLogger("uvicorn.error").error("boom")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_app_error*", "*ERROR at teardown of test_uvicorn_error*"])


def _backends(server: Server) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


# Documents. Most are schema-valid queries and mutations whose arguments and
# variables are hostile (so that they reach execution, and the rules and SQL
# below it); the rest are near-GraphQL and noise, for parsing and validation.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
# Values each argument's type takes, hostile ones (blank, too long, NUL, SQL,
# malformed ids, sizes at and past the limits) among them; and values it
# does not take, which one argument in five documents gets instead.
_strings = st.one_of(
    st.sampled_from(["", " ", "x" * (MAX_TITLE_LENGTH + 1), "nul \x00", "lone \ud800", "'); DROP TABLE todos; --"]),
    st.text(max_size=30),
)
_ids = st.one_of(st.uuids().map(str), st.sampled_from(["", "nope", "x" * 300, "00000000-0000-0000-0000-00000000000g"]))
_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "ID!": _ids,
    "String!": _strings,
    "Boolean": st.sampled_from([True, False, None]),
    "Boolean!": st.booleans(),
    "Int": st.sampled_from([None, 0, 1, -1, 2**31 - 1, -(2**31), 10_000, 10_001]),
    "CreateTodoInput!": st.fixed_dictionaries({"title": _strings}, optional={"completed": st.booleans()}),
    "UpdateTodoInput!": st.fixed_dictionaries({}, optional={"title": _strings, "completed": st.booleans()}),
}
_WRONG = st.one_of(st.sampled_from([None, 2**31, 10**20, 1.5, "1", [True]]), _json)
_ARGUMENTS: dict[str, list[tuple[str, str]]] = {
    "todos": [("completed", "Boolean"), ("first", "Int"), ("offset", "Int")],
    "todoList": [("completed", "Boolean"), ("first", "Int"), ("offset", "Int")],
    "todo": [("id", "ID!")],
    "createTodo": [("input", "CreateTodoInput!")],
    "updateTodo": [("id", "ID!"), ("input", "UpdateTodoInput!")],
    "deleteTodo": [("id", "ID!")],
    "toggleAll": [("completed", "Boolean!")],
    "clearCompleted": [],
}
_SCALARS = {"ID!", "String!", "Boolean", "Boolean!", "Int"}


@st.composite
def _valid_documents(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A query or mutation (a mutation is sent over POST) of one to three
    root fields, each argument a literal or a variable."""
    mutation = draw(st.booleans())
    wrong = draw(st.integers(0, 4)) == 0
    roots: list[str] = []
    declared: list[str] = []
    variables: dict[str, Any] = {}
    names = ["createTodo", "updateTodo", "deleteTodo", "toggleAll", "clearCompleted"] if mutation else [
        "todos", "todoList", "todo"]
    for n in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(names))
        arguments = []
        for name, type_ in _ARGUMENTS[field]:
            if not type_.endswith("!") and draw(st.booleans()):
                continue  # optional, left out
            value = draw(_WRONG if wrong else _TYPES[type_])
            wrong = False
            if type_ in _SCALARS and draw(st.booleans()):
                arguments.append(f"{name}: {json.dumps(value)}")  # a literal: JSON's are GraphQL's, mostly
            else:
                variable = f"v{len(declared)}"
                declared.append(f"${variable}: {type_}")
                variables[variable] = value
                arguments.append(f"{name}: ${variable}")
        fields = TODO_FIELDS.split() + ["__typename"]
        selection = " ".join(draw(st.lists(st.sampled_from(fields), min_size=1, unique=True)))
        if field == "todoList":
            selection = f"cursor todos {{ {selection} }}"
        args = f"({', '.join(arguments)})" if arguments else ""
        roots.append(f"r{n}: {field}{args} {{ {selection} }}")
    header = ("mutation" if mutation else "query") + (f"({', '.join(declared)})" if declared else "")
    return f"{header} {{ {' '.join(roots)} }}", variables


_names = st.sampled_from(FIELDS)
_values = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.text(max_size=20).map(json.dumps),
    st.sampled_from(["true", "false", "null", "$v", "$t", "[1, 2]", "{title: \"x\"}", "ACTIVE", "1e999"]),
)
_args = st.lists(st.tuples(_names, _values), max_size=2).map(
    lambda pairs: "(" + ", ".join(f"{n}: {v}" for n, v in pairs) + ")" if pairs else ""
)


def _selection(depth: int) -> st.SearchStrategy[str]:
    leaf = st.tuples(_names, _args).map("".join)
    if depth == 0:
        return leaf
    nested = st.tuples(_names, _args, st.lists(_selection(depth - 1), min_size=1, max_size=3)).map(
        lambda t: f"{t[0]}{t[1]} {{ {' '.join(t[2])} }}"
    )
    return st.one_of(leaf, nested)


_near_documents = st.one_of(
    st.tuples(
        st.sampled_from(["", "query", "mutation", "subscription", "query Q($v: ID, $t: String)", "fragment F on Todo"]),
        st.lists(_selection(3), min_size=1, max_size=3),
    ).map(lambda t: f"{t[0]} {{ {' '.join(t[1])} }}"),
    st.text(max_size=200),
)
_variables = st.one_of(st.none(), st.dictionaries(st.sampled_from(["v", "t", "id", "x"]), _json, max_size=3), _json)
_requests = st.one_of(
    _valid_documents(), _valid_documents(), _valid_documents(), st.tuples(_near_documents, _variables)
)
# The share of drawn requests that must reach execution (a `data` entry in the answer).
EXECUTED_AT_LEAST = 0.5


def _outcome(body: Any) -> str:
    """How far a request got: executed, or the code it was refused with."""
    if "data" in body:
        return "executed"
    errors = body.get("errors") or [body.get("error", {})]
    return str(errors[0].get("extensions", {}).get("code") or errors[0].get("code"))


def test_random_graphql_over_http(watched: Server) -> None:
    outcomes: list[str] = []
    with httpx.Client(base_url=watched.url, timeout=10) as client:

        @given(request=_requests, get=st.booleans())
        @settings(BOUNDED, max_examples=60)
        def answers(request: tuple[str, Any], get: bool) -> None:
            document, variables = request
            if get and not document.startswith("mutation"):
                params = {"query": document, "variables": json.dumps(variables)}
                response = client.get("/graphql", params=params, headers={"Accept": "application/json"})
            else:  # json.dumps escapes lone surrogates, which httpx's json= cannot encode
                body = json.dumps({"query": document, "variables": variables}).encode()
                response = client.post("/graphql", content=body, headers={"Content-Type": "application/json", "Accept": "application/json"})
            _no_traceback(response.text)
            assert response.status_code in (200, 400, 405, 413, 414), response.text
            body = response.json()
            errors = body.get("errors") or ([body["error"]] if "error" in body else [])
            codes = {e.get("extensions", {}).get("code") or e.get("code") for e in errors}
            assert codes <= CODES, body
            outcome = _outcome(body)
            event(outcome)
            outcomes.append(outcome)

        answers()
    assert outcomes.count("executed") >= EXECUTED_AT_LEAST * len(outcomes), Counter(outcomes)


# WebSocket frames: each example is a short conversation on a fresh socket.
def _message(types: list[str]) -> st.SearchStrategy[Any]:
    query = st.sampled_from(
        ["subscription { todoChanges { cursor } }", "subscription {", "{ todos { id } }", "subscription { nope }", ""]
    )
    return st.fixed_dictionaries(
        {"type": st.sampled_from(types)},
        optional={
            "id": st.sampled_from(["1", "1", "2", "", "x" * 300]) | st.integers(),
            "payload": st.one_of(
                _json,
                st.fixed_dictionaries({"query": query}, optional={"variables": _variables}),
            ),
        },
    )


def _frames(types: list[str], limit: int) -> st.SearchStrategy[list[str | bytes]]:
    frame = st.one_of(
        _message(types).map(json.dumps),
        st.text(max_size=50),
        st.binary(max_size=50),
        st.just("x" * (limit + 1)),
        st.just(json.dumps({"type": "ping"})),
        st.just(json.dumps({"type": "connection_init"})),
    )
    return st.lists(frame, min_size=1, max_size=12)


TRANSPORT_TYPES = ["connection_init", "ping", "pong", "subscribe", "complete", "next", "error", "nope"]
LEGACY_TYPES = ["connection_init", "start", "stop", "connection_terminate", "ka", "data", "nope"]
# What each protocol may answer: message types, and close codes.
PROTOCOLS: dict[str, tuple[set[str], set[int]]] = {
    "graphql-transport-ws": (
        {"connection_ack", "next", "error", "complete", "ping", "pong"},
        {1000, 1009, 4400, 4401, 4403, 4408, 4409, 4429},
    ),
    "graphql-ws": (
        {"connection_ack", "connection_error", "data", "error", "complete", "ka"},
        {1000, 1002, 1009, 4400, 4401},
    ),
    "restsocket": ({"keepalive", "created", "updated", "deleted"}, {1000, 1009}),
}


# A conversation goes in lock-step: each frame, then a request the server
# must answer (graphql-transport-ws: a ping; graphql-ws: a query of its own;
# a RESTSocket, which takes no messages: a change made over HTTP), read up to
# its answer. It ends when every frame is answered, or with a close frame:
# the connection ending without one while we wait fails the test. (When we
# are still sending as the server closes, TCP may reset the connection and
# the client library drops the close frame it had received: that is ours,
# and rare, unless the server cuts connections: see the test.)
PROBE = "{ __typename }"


def _is_ping(frame: str | bytes) -> bool:
    """A ping graphql-transport-ws answers with a pong (its payload an object or null)."""
    try:
        message = json.loads(frame)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping" and isinstance(
        message.get("payload"), dict | None
    )


def _converse(server: Server, ws: Connection, frames: list[str | bytes], protocol: str) -> str:
    """How the conversation ended."""
    types, codes = PROTOCOLS[protocol]
    pongs_due = 0
    try:
        for n, frame in enumerate(frames):
            title = f"probe {n} {uuid.uuid4()}"
            try:
                ws.send(frame)
                if protocol == "graphql-transport-ws":
                    ws.send(json.dumps({"type": "ping"}))
                    pongs_due += 1 + _is_ping(frame)
                elif protocol == "graphql-ws":
                    ws.send(json.dumps({"type": "start", "id": title, "payload": {"query": PROBE}}))
            except ConnectionClosed as closed:
                if closed.rcvd is None and isinstance(closed.__cause__, OSError):
                    return "cut while we sent"
                raise
            if protocol == "restsocket":
                assert httpx.post(server.url + "/api/todos/", json={"title": title}).status_code == 201
            while True:
                text = ws.recv(timeout=10)  # the test's patience: the server answers or closes
                assert isinstance(text, str)
                _no_traceback(text)
                message = json.loads(text)
                kind = message.get("type", message.get("op"))
                assert kind in types, message
                pongs_due -= kind == "pong"
                if (
                    (protocol == "graphql-transport-ws" and pongs_due == 0)
                    or (message.get("id") == title and kind in ("complete", "error"))
                    or (kind == "created" and message["todo"]["title"] == title)
                ):
                    break
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the connection ended without a close frame"
        assert closed.rcvd.code in codes, closed.rcvd
        _no_traceback(closed.rcvd.reason)
        return f"closed {closed.rcvd.code}"
    return "every frame answered"


@pytest.mark.parametrize(
    ("protocol", "path", "types"),
    [
        ("graphql-transport-ws", "/graphql", TRANSPORT_TYPES),
        ("graphql-ws", "/graphql", LEGACY_TYPES),
        ("restsocket", "/api/todos/?after=0", TRANSPORT_TYPES),
    ],
)
def test_random_websocket_frames(watched: Server, protocol: str, path: str, types: list[str]) -> None:
    subprotocols = [Subprotocol(protocol)] if protocol != "restsocket" else None

    endings: list[str] = []

    @given(frames=_frames(types, watched.settings.ws_max_bytes))
    @settings(BOUNDED, max_examples=25)
    def answers(frames: list[str | bytes]) -> None:
        with connect(watched.ws_url + path, subprotocols=subprotocols, open_timeout=5) as ws:
            ending = _converse(watched, ws, frames, protocol)
        event(ending)
        endings.append(ending)

    answers()
    # A server that cut connections without a close frame would show here.
    assert endings.count("cut while we sent") < len(endings) / 4, Counter(endings)


MALFORMED_LEGACY = [
    1,
    ["start"],
    {"type": 7},
    {"type": "start", "payload": {"query": "{ todos { id } }"}},
    {"type": "start", "id": 1, "payload": {"query": "{ todos { id } }"}},
    {"type": "start", "id": "1"},
    {"type": "start", "id": "1", "payload": {"query": None}},
    {"type": "start", "id": "1", "payload": {"query": "{ todos { id } }", "variables": "x"}},
    {"type": "start", "id": "1", "payload": {"query": "{ todos { id } }", "operationName": 5}},
    {"type": "stop"},
]


@pytest.mark.parametrize("message", MALFORMED_LEGACY, ids=range(len(MALFORMED_LEGACY)))
def test_a_malformed_legacy_message_is_answered_and_the_socket_stays(watched: Server, message: Any) -> None:
    ws = LegacyWs(watched.ws_url)
    try:
        ws.ws.send(json.dumps(message))
        answer = ws.recv()
        assert answer["type"] == "error" and answer["payload"]["extensions"]["code"] == "BAD_REQUEST", answer
        assert answer["id"] == (message.get("id") if isinstance(message, dict) and message.get("id") == "1" else None)
        ws.send({"type": "start", "id": "2", "payload": {"query": "{ todos { id } }"}})
        assert (ws.recv()["type"], ws.recv()["type"]) == ("data", "complete")
    finally:
        ws.close()


_QUERY = "{ todos { id } }"
# Each broke Strawberry's handler (1011, or an operation never answered).
MALFORMED_TRANSPORT: list[tuple[Any, str]] = [
    ([1], "a message is an object with a string type"),
    ("subscribe", "a message is an object with a string type"),
    ({"type": 5}, "a message is an object with a string type"),
    ({"type": "ping", "payload": 5}, "ping payload must be an object or null"),
    ({"type": "complete", "id": {}}, "complete needs a non-empty string id"),
    ({"type": "subscribe", "id": {}, "payload": {"query": _QUERY}}, "subscribe needs a non-empty string id"),
    ({"type": "subscribe", "id": 5, "payload": {"query": _QUERY}}, "subscribe needs a non-empty string id"),
    ({"type": "subscribe", "id": "", "payload": {"query": _QUERY}}, "subscribe needs a non-empty string id"),
    ({"type": "subscribe", "id": "1", "payload": [_QUERY]}, "subscribe payload must be an object"),
    ({"type": "subscribe", "id": "1", "payload": None}, "subscribe payload must be an object"),
    ({"type": "subscribe", "id": "1", "payload": {"query": 5}}, "subscribe payload.query must be a string"),
    ({"type": "subscribe", "id": "1", "payload": {}}, "subscribe payload.query must be a string"),
    (
        {"type": "subscribe", "id": "1", "payload": {"query": _QUERY, "variables": "x"}},
        "subscribe payload.variables must be an object or null",
    ),
    (
        {"type": "subscribe", "id": "1", "payload": {"query": _QUERY, "operationName": 5}},
        "subscribe payload.operationName must be a string or null",
    ),
    (
        {"type": "subscribe", "id": "1", "payload": {"query": _QUERY, "extensions": "x"}},
        "subscribe payload.extensions must be an object or null",
    ),
]


@pytest.mark.parametrize(("message", "reason"), MALFORMED_TRANSPORT, ids=range(len(MALFORMED_TRANSPORT)))
def test_a_malformed_transport_message_closes_with_4400(watched: Server, message: Any, reason: str) -> None:
    """graphql-ws's PROTOCOL.md: a message of an unspecified format closes the socket with 4400."""
    with connect(watched.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        ws.send(json.dumps(message))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4400, reason)


def test_a_flood_of_pings_is_answered_and_the_socket_stays(watched: Server) -> None:
    with connect(watched.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        for _ in range(2000):
            ws.send(json.dumps({"type": "ping"}))
        pongs = 0
        while pongs < 2000:
            if json.loads(ws.recv(timeout=10))["type"] == "pong":
                pongs += 1
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ todos { id } }"}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "next"


# Titles: what a hostile or merely international user types.
HOSTILE_TITLES = [
    "'); DROP TABLE todos; --",
    "Robert'); SELECT pg_sleep(10); --",
    '<script>alert("x")</script><img src=x onerror=alert(1)>',
    "&lt;b&gt; &amp; &#x27;",
    "🎉 emoji 👩‍👩‍👧‍👦 and flags 🇫🇷",
    "שלום עולם مرحبا بالعالم",
    "\u202eright-to-left override\u202c",
    "e\u0301 Z\u0351\u0322a\u0335l\u0358g\u031ao",
    "é" * MAX_TITLE_LENGTH,
    "🎉" * MAX_TITLE_LENGTH,
]
_titles = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=MAX_TITLE_LENGTH
).filter(lambda t: t.strip() == t and t != "")


@pytest.mark.parametrize("title", HOSTILE_TITLES, ids=range(len(HOSTILE_TITLES)))
def test_hostile_titles_round_trip_through_graphql_and_rest(title: str, client: httpx.Client) -> None:
    created = data(client, CREATE, {"t": title})["createTodo"]
    assert created["title"] == title
    rest = client.get(f"/api/todos/{created['id']}/")
    assert rest.json()["title"] == title
    posted = client.post("/api/todos/", json={"title": title})
    assert posted.status_code == 201
    assert data(client, "query($id: ID!) { todo(id: $id) { title } }", {"id": posted.json()["id"]})["todo"] == {
        "title": title
    }


def test_random_titles_round_trip_exactly(client: httpx.Client) -> None:
    @given(title=_titles)
    @BOUNDED
    def round_trips(title: str) -> None:
        created = data(client, CREATE, {"t": title})["createTodo"]
        assert client.get(f"/api/todos/{created['id']}/").json()["title"] == title

    round_trips()


@pytest.mark.parametrize("title", ["nul \x00 inside", "lone \ud800 surrogate", "\udfff"], ids=["nul", "high", "low"])
def test_nul_and_lone_surrogates_are_bad_user_input(title: str, client: httpx.Client) -> None:
    # Both clients escape these in JSON (\u0000, \ud800): valid JSON, invalid text.
    document = json.dumps({"query": CREATE, "variables": {"t": title}}).encode()
    graphql = client.post("/graphql", content=document, headers={"Content-Type": "application/json"})
    assert error_codes(graphql.json()) == ["BAD_USER_INPUT"]
    body = json.dumps({"title": title}).encode()
    response = client.post("/api/todos/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert data(client, "{ todos { id } }")["todos"] == []
