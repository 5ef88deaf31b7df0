"""One JSON intake for every transport (json_intake.py): each hostile text
below, sent to every transport that takes JSON from a client, gets that
transport's clear error, nothing is logged as an error, and the transport
answers the next request. RESTSockets read no JSON: the text changes nothing."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from graphql_todos.core.errors import ErrorCode
from graphql_todos.edge.json_intake import RefusedJson, loads
from tests.gql import LegacyWs, TransportWs
from tests.helpers import Server, serving, wait_until

MALFORMED, VALUE = ErrorCode.MALFORMED_JSON, ErrorCode.BAD_USER_INPUT
QUERY = b'"query": "{ todos { id } }"'
DEEPEST = 100_000
# (name, text, why the intake refuses it)
HOSTILE: list[tuple[str, bytes, ErrorCode]] = [
    ("nesting 1,025", b"[" * 1025 + b"]" * 1025, MALFORMED),
    ("nesting 100,000", b"[" * DEEPEST + b"]" * DEEPEST, MALFORMED),
    ("nesting 100,000, open", b'{"a":' * DEEPEST, MALFORMED),
    ("invalid UTF-8", b"{" + QUERY + b', "v": "\xff\xfe"}', MALFORMED),
    ("lone surrogate", b"{" + QUERY + b', "v": "\\ud800"}', VALUE),
    ("lone low surrogate, a pair beside it", b"{" + QUERY + b', "v": "\\ud83d\\ude00 \\uDFFF"}', VALUE),
    ("lone surrogate in a truncated text", b"{" + QUERY + b', "v": "\\ud800"', MALFORMED),
    ("5,000 digits", b"{" + QUERY + b', "v": ' + b"9" * 5000 + b"}", MALFORMED),
    ("beyond a double", b"{" + QUERY + b', "v": -1e400}', MALFORMED),
    ("NaN", b"{" + QUERY + b', "v": NaN}', MALFORMED),
    ("Infinity", b"{" + QUERY + b', "v": Infinity}', MALFORMED),
    ("byte order mark", b"\xef\xbb\xbf{" + QUERY + b"}", MALFORMED),
    ("empty", b"", MALFORMED),
    ("blank", b" \r\n", MALFORMED),
    ("truncated", b"{" + QUERY, MALFORMED),
    ("not JSON", b"{ todos { id } }", MALFORMED),
]
IDS = [name for name, _, _ in HOSTILE]
# Big enough for the deepest text; the server's defaults refuse it unread.
LIMITS = {"max_body_bytes": 8 * DEEPEST, "ws_max_bytes": 8 * DEEPEST}
GRAPHQL_CODE = {MALFORMED: ErrorCode.BAD_REQUEST, VALUE: VALUE}


def _refusal(text: bytes | str) -> RefusedJson:
    with pytest.raises(RefusedJson) as refused:
        loads(text)
    return refused.value


@pytest.mark.parametrize(("text", "code"), [(text, code) for _, text, code in HOSTILE], ids=IDS)
def test_the_intake_refuses_each_with_its_code(text: bytes, code: ErrorCode) -> None:
    refused = _refusal(text)
    assert refused.code is code
    assert refused.status == code.http_status
    # A str (a WebSocket message, a GET parameter) the same as its bytes.
    try:
        as_text = text.decode()
    except UnicodeDecodeError:
        return
    assert _refusal(as_text).code is code


def test_the_messages_say_what_is_wrong() -> None:
    assert _refusal(b'{"v": "\xff"}').message == "malformed JSON: not UTF-8 (invalid start byte at byte 7)"
    assert _refusal(b'{"v": "\\ud800"}').message.startswith("must be Unicode text: the JSON escapes a lone surrogate")
    assert _refusal(b"[" * 1025 + b"]" * 1025).message.startswith("malformed JSON: depth limit exceeded")
    assert _refusal(b"").message.startswith("malformed JSON: ")


def test_what_it_takes() -> None:
    assert loads(b'{"a": 1, "a": 2}') == {"a": 2}  # the last of a key given twice
    assert loads(b"[" * 1024 + b"]" * 1024) is not None
    assert loads('{"v": "\\ud83d\\ude00"}') == {"v": "\U0001f600"}  # a pair is one character
    assert loads(b'{"v": 18446744073709551616}') == {"v": 2.0**64}  # beyond 64 bits: a double
    # An escaped backslash before "ud800" is text, not an escape.
    assert loads(b'{"v": "\\\\ud800"}') == {"v": "\\ud800"}


@pytest.fixture(scope="module")
def intake(admin_dsn: str, template_db: str) -> Iterator[Server]:
    """One server for every case here (each case sends one text and one
    request after it), with limits that let the deepest text through."""
    name = f"gt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")  # type: ignore[arg-type]
    dsn = make_conninfo(admin_dsn, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A change for the multipart subscription to deliver (_answers).
        conn.execute("INSERT INTO todos (title) VALUES ('seed')")
    try:
        with serving(dsn, **LIMITS) as server:
            yield server
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture
def server(intake: Server, caplog: pytest.LogCaptureFixture) -> Iterator[Server]:
    """The module's server; afterwards, nothing logged as an error during the test."""
    caplog.set_level(logging.ERROR)
    yield intake
    assert [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR] == []


def _graphql_refusal(response: httpx.Response, text: bytes) -> None:
    refused = _refusal(text)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "errors": [{"message": refused.message, "extensions": {"code": GRAPHQL_CODE[refused.code].name}}]
    }


ACCEPTS = ["application/json", "application/graphql-response+json", "text/event-stream",
           "multipart/mixed;subscriptionSpec=1.0"]


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize(("text", "code"), [(text, code) for _, text, code in HOSTILE], ids=IDS)
def test_graphql_post(server: Server, text: bytes, code: ErrorCode, accept: str) -> None:
    with httpx.Client(base_url=server.url, headers={"Accept": accept, "Content-Type": "application/json"}) as client:
        _graphql_refusal(client.post("/graphql", content=text), text)
        assert _answers(client, accept)


def _answers(client: httpx.Client, accept: str) -> bool:
    """The next request, as a client of that media type sends it."""
    if accept.startswith("multipart"):
        # A subscription: Strawberry's multipart path runs only those.
        document = 'subscription { todoChanges(after: "0") { cursor } }'
        with client.stream("POST", "/graphql", json={"query": document}) as response:
            return response.status_code == 200 and any(b'"payload"' in chunk for chunk in response.iter_raw())
    response = client.post("/graphql", json={"query": "{ todos { id } }"})
    return response.status_code == 200 and b'"data":{"todos":' in response.content


# A URL holds less (64 KiB of head, and quoting makes each byte three):
# the deepest texts as deep as one holds.
IN_URL = {"nesting 100,000": b"[" * 8000 + b"]" * 8000, "nesting 100,000, open": b'{"a":' * 4000}


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
@pytest.mark.parametrize(("name", "text"), [(name, text) for name, text, _ in HOSTILE], ids=IDS)
def test_graphql_get(server: Server, name: str, text: bytes, parameter: str) -> None:
    text = IN_URL.get(name, text)
    query = quote("{ todos { id } }")
    with httpx.Client(base_url=server.url) as client:
        response = client.get(f"/graphql?query={query}&{parameter}={quote(text)}")
        # The URL's percent-decoding makes bytes that are not UTF-8 U+FFFD
        # before any JSON is read: what the intake judges is that text.
        decoded = text.decode(errors="replace")
        if not decoded:
            # An empty parameter is read as no JSON at all, and refused by type.
            assert response.status_code == 400
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        elif _refused(decoded):
            _graphql_refusal(response, decoded.encode())
        else:
            assert response.status_code == 200, response.text
        assert _answers(client, "application/json")


def _refused(text: str) -> bool:
    try:
        loads(text)
    except RefusedJson:
        return True
    return False


def _closed(ws: Connection, text: bytes) -> tuple[int, str]:
    """The close that answers text, sent as a text message."""
    ws.send(text, text=True)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            message = json.loads(ws.recv(timeout=5))
            assert message.get("type", message.get("op")) in ("ka", "ping", "pong", "keepalive"), message
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def _socket_close(text: bytes) -> tuple[int, str]:
    try:
        text.decode()
    except UnicodeDecodeError:
        # RFC 6455: a text message that is not UTF-8 fails the connection
        # with 1007, before anything reads it.
        return 1007, "a text message must be UTF-8"
    refused = _refusal(text)
    return refused.code.close_code, refused.message


@pytest.mark.parametrize("text", [text for _, text, _ in HOSTILE], ids=IDS)
def test_graphql_transport_ws(server: Server, text: bytes) -> None:
    with TransportWs(server.ws_url) as ws:
        assert _closed(ws.ws, text) == _socket_close(text)
    with TransportWs(server.ws_url) as ws:
        ws.subscribe("{ todos { id } }")
        assert "todos" in ws.next_data()


@pytest.mark.parametrize("text", [text for _, text, _ in HOSTILE], ids=IDS)
def test_legacy_graphql_ws(server: Server, text: bytes) -> None:
    ws = LegacyWs(server.ws_url)
    try:
        assert _closed(ws.ws, text) == _socket_close(text)
    finally:
        ws.close()
    ws = LegacyWs(server.ws_url)
    try:
        ws.send({"type": "start", "id": "1", "payload": {"query": "{ todos { id } }"}})
        assert (ws.recv()["type"], ws.recv()["type"]) == ("data", "complete")
    finally:
        ws.close()


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("text", [text for _, text, _ in HOSTILE], ids=IDS)
def test_rest(server: Server, text: bytes, method: str) -> None:
    with httpx.Client(base_url=server.url, headers={"Content-Type": "application/json"}) as client:
        created = client.post("/api/todos/", json={"title": "a"})
        assert created.status_code == 201
        url = "/api/todos/" if method == "POST" else created.headers["location"]
        refused = _refusal(text)
        response = client.request(method, url, content=text)
        assert response.status_code == refused.status, response.text
        assert response.json() == {"error": {"code": refused.code.name, "message": refused.message}}
        assert client.request(method, url, json={"title": "b"}).status_code == (201 if method == "POST" else 200)


@pytest.mark.parametrize("text", [text for _, text, _ in HOSTILE], ids=IDS)
def test_restsockets_read_no_json(server: Server, text: bytes) -> None:
    cursor = httpx.get(server.url + "/graphql", params={"query": "{ todoList { cursor } }"}).json()
    after = cursor["data"]["todoList"]["cursor"]
    with connect(f"{server.ws_url}/api/todos/?after={after}") as ws:
        try:
            text.decode()
        except UnicodeDecodeError:
            assert _closed(ws, text) == _socket_close(text)
            return
        ws.send(text, text=True)
        created = httpx.post(server.url + "/api/todos/", json={"title": "after"}).json()
        message: dict[str, Any] = wait_until(lambda: _change(ws))
        assert (message["op"], message["todo"]["id"]) == ("created", created["id"])


def _change(ws: Connection) -> dict[str, Any] | None:
    message: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return None if message["op"] == "keepalive" else message


def test_a_key_given_twice_keeps_its_last_value_on_every_transport(server: Server) -> None:
    # One parser for every reader: no transport (nor the fast path beside
    # Strawberry's) can read another value than the rest.
    twice = b'{"query": "{ nope }", "query": "{ todos { title } }"}'
    with httpx.Client(base_url=server.url, headers={"Content-Type": "application/json"}) as client:
        for accept in ("application/json", "text/event-stream"):
            answer = client.post("/graphql", content=twice, headers={"Accept": accept})
            assert b'"data":{"todos":[' in answer.content, answer.text
        variables = quote('{"c": false, "c": true}')
        document = quote("query($c: Boolean) { todos(completed: $c) { title } }")
        assert client.get(f"/graphql?query={document}&variables={variables}").json() == {"data": {"todos": []}}
        created = client.post("/api/todos/", content=b'{"title": "first", "title": "last"}')
        assert created.json()["title"] == "last"
    message = b'{"id": "1", "type": "subscribe", "payload": {"query": "{ nope }", "query": "{ todos { title } }"}}'
    with TransportWs(server.ws_url) as ws:
        ws.ws.send(message.decode())
        assert "todos" in ws.next_data()
    legacy = LegacyWs(server.ws_url)
    try:
        legacy.ws.send(message.replace(b'"subscribe"', b'"start"').decode())
        assert "todos" in legacy.recv()["payload"]["data"]
    finally:
        legacy.close()
