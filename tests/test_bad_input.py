"""Bad input, tried: random GraphQL documents and variables over HTTP, random
WebSocket frames on both GraphQL protocols and on RESTSockets, and hostile
titles. The server answers each per protocol, never crashes, never shows a
traceback, and stays healthy with every PostgreSQL connection back in its pool.

Examples are bounded and derandomized, so every run tries the same ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from graphql_todos.errors import ErrorCode
from graphql_todos.service import MAX_TITLE_LENGTH
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
    assert errors == []


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


# Documents: mostly near-GraphQL (so parsing, validation and execution are all
# reached), some plain noise.
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


_documents = st.one_of(
    st.tuples(
        st.sampled_from(["", "query", "mutation", "subscription", "query Q($v: ID, $t: String)", "fragment F on Todo"]),
        st.lists(_selection(3), min_size=1, max_size=3),
    ).map(lambda t: f"{t[0]} {{ {' '.join(t[1])} }}"),
    st.text(max_size=200),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
_variables = st.one_of(st.none(), st.dictionaries(st.sampled_from(["v", "t", "id", "x"]), _json, max_size=3), _json)


def test_random_graphql_over_http(watched: Server) -> None:
    with httpx.Client(base_url=watched.url, timeout=10) as client:

        @given(document=_documents, variables=_variables, get=st.booleans())
        @BOUNDED
        def answers(document: str, variables: Any, get: bool) -> None:
            if get:
                params = {"query": document, "variables": json.dumps(variables)}
                response = client.get("/graphql", params=params, headers={"Accept": "application/json"})
            else:
                response = client.post("/graphql", json={"query": document, "variables": variables})
            _no_traceback(response.text)
            assert response.status_code in (200, 400, 405, 413, 414), response.text
            body = response.json()
            errors = body.get("errors") or ([body["error"]] if "error" in body else [])
            codes = {e.get("extensions", {}).get("code") or e.get("code") for e in errors}
            assert codes <= CODES, body

        answers()


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
        {1000, 1002, 1009, 4401},
    ),
    "restsocket": ({"keepalive", "created", "updated", "deleted"}, {1000, 1009}),
}


def _converse(ws: Connection, frames: list[str | bytes], protocol: str) -> None:
    types, codes = PROTOCOLS[protocol]
    try:
        for frame in frames:
            ws.send(frame)
        while True:
            text = ws.recv(timeout=0.3)
            assert isinstance(text, str)
            _no_traceback(text)
            message = json.loads(text)
            assert message.get("type", message.get("op")) in types, message
    except TimeoutError:
        return  # quiet: the server has nothing more to say
    except ConnectionClosed as closed:
        if closed.rcvd is not None:
            assert closed.rcvd.code in codes, closed.rcvd
            _no_traceback(closed.rcvd.reason)


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

    @given(frames=_frames(types, watched.settings.ws_max_bytes))
    @settings(BOUNDED, max_examples=25)
    def answers(frames: list[str | bytes]) -> None:
        with connect(watched.ws_url + path, subprotocols=subprotocols, open_timeout=5) as ws:
            _converse(ws, frames, protocol)

    answers()


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
