"""edge/logs.py: uvicorn's lines, in the app's format and at the level their
cause deserves."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket

import httptools
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from graphql_todos.edge.logs import ClientFaultsAtInfo
from graphql_todos.internals.uvicorn_http import INVALID_HTTP_REQUEST
from tests.helpers import TOKEN, Serve

# Non-ASCII bytes in a request's target (RFC 9112 3.2: it is ASCII, anything
# else percent-encoded), on a RESTSocket upgrade, a plain GET and /graphql.
UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
MALFORMED = [
    b"GET /api/todos/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n" + UPGRADE,
    b"GET /api/todos/?after=\xff HTTP/1.1\r\nHost: x\r\n",
    b"GET /graphql?query=\xc3\xa9 HTTP/1.1\r\nHost: x\r\n",
    # A target the parser passes and uvicorn's parse of it, in a parser
    # callback, refuses (a callback's error, the parser's as its context).
    b"GET http://[::1 HTTP/1.1\r\nHost: x\r\n",
]


def _exchange(port: int, head: bytes) -> bytes:
    """What the server answers `head` with, to the connection's end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(("log_level", "logged"), [("info", ["info"] * len(MALFORMED)), ("warning", [])])
def test_a_request_the_parser_refuses_gets_a_400_and_logs_at_info(db_dsn: str, log_level: str, logged: list[str]) -> None:
    """A clear 400 (and the connection closed), logged as the client's fault:
    INFO, not uvicorn's WARNING; at LOG_LEVEL=warning, not at all."""
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "LOG_FORMAT": "json", "LOG_LEVEL": log_level}
    serve = Serve(env)
    try:
        for head in MALFORMED:
            answer = _exchange(serve.port, head)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
            assert b'\r\n\r\n{"error": {"code": "BAD_REQUEST", "message": "invalid HTTP request: ' in answer, answer
    finally:
        serve.stop(signal.SIGTERM)
    levels = [e["level"] for e in map(json.loads, serve.output.splitlines()) if e["message"] == INVALID_HTTP_REQUEST]
    assert levels == logged


@pytest.mark.parametrize(
    ("fault", "level"),
    [
        (httptools.HttpParserInvalidURLError("invalid url"), "INFO"),  # uvicorn's parse of the target: the client's
        (UnicodeEncodeError("ascii", "/\xe9", 1, 2, "ordinal not in range(128)"), "WARNING"),  # a root path not ASCII
        (KeyError("scope"), "WARNING"),  # a bug reading the head
    ],
)
def test_an_error_of_the_servers_own_in_a_parser_callback_stays_a_warning(fault: Exception, level: str) -> None:
    """uvicorn answers any exception of a parser callback as a malformed
    request (its line and a 400): at INFO only when it is the parser's own
    error, not the server's. Logged as uvicorn logs it, while handling the
    error feed_data raised; through a logger that takes INFO."""

    class Head:
        def on_headers_complete(self) -> None:
            raise fault

    logging.getLogger(__name__).setLevel(logging.INFO)
    record = logging.LogRecord(__name__, logging.WARNING, __file__, 1, INVALID_HTTP_REQUEST, None, None)
    try:
        httptools.HttpRequestParser(Head()).feed_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    except httptools.HttpParserError:
        assert ClientFaultsAtInfo().filter(record)
    assert record.levelname == level


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_only_that_line_is_moved(level: str) -> None:
    """Another uvicorn line keeps its level."""
    record = logging.LogRecord("uvicorn.error", getattr(logging, level), __file__, 1, "something else", None, None)
    assert ClientFaultsAtInfo().filter(record)
    assert record.levelname == level


def test_no_log_line_holds_a_rest_socket_s_token(db_dsn: str) -> None:
    """A RESTSocket takes its credential as `?token=` (browsers cannot set
    headers on a WebSocket), and uvicorn logs each WebSocket handshake with
    its target (internals/uvicorn_websocket.HANDSHAKE_LINE): no line the
    server logs may carry a query string."""
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "TODOS_TOKEN": TOKEN, "LOG_LEVEL": "info"}
    serve = Serve(env)
    try:
        with connect(f"{serve.ws_url}/api/todos/?after=0&token={TOKEN}", open_timeout=10):
            pass
        # Refused before the upgrade (another origin): logged with its target too.
        with pytest.raises(InvalidStatus):
            connect(f"{serve.ws_url}/api/todos/?token={TOKEN}", origin="http://evil.example", open_timeout=10)  # type: ignore[arg-type]
        # An HTTP request's query string is left out of its access line.
        assert httpx.get(f"{serve.url}/api/todos/?token={TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        serve.stop(signal.SIGTERM)
    assert '"WebSocket /api/todos/" 403' in serve.output  # the lines are there ...
    assert '"GET /api/todos/ HTTP/1.1" 200' in serve.output
    assert TOKEN not in serve.output  # ... without the token
