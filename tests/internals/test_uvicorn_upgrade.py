"""What the WebSocket upgrade from the parsed request (internals/uvicorn_http.py's
handle_websocket_upgrade, uvicorn_websocket.py's upgrade_accept and open_upgraded) assumes
of uvicorn and websockets, and that it answers as their own path does."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import gc
import inspect
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidMessage, SecurityError
from websockets.frames import Frame
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS
from websockets.protocol import CONNECTING, OPEN
from websockets.server import ServerProtocol
from websockets.utils import accept_key

from graphql_todos.internals.uvicorn_close import close_seconds
from graphql_todos.internals.uvicorn_http import HttpProtocol, http_protocol
from graphql_todos.internals.uvicorn_websocket import (
    _EXTENSIONS,
    JsonRefusals,
    LeanEvent,
    LeanQueue,
    OpenedServer,
    WebSocketProtocol,
    upgrade_accept,
)
from tests.helpers import Server

# RFC 6455 1.3's example key and its accept value.
KEY, ACCEPT = b"dGhlIHNhbXBsZSBub25jZQ==", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
SOUND = [(b"host", b"h"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
         (b"sec-websocket-key", KEY), (b"sec-websocket-version", b"13")]
# websockets' limits, met exactly: a header line of MAX_LINE_LENGTH bytes, a target making one.
LONG = b"x" * (MAX_LINE_LENGTH - len(b"x-long: \r\n"))
LONG_TARGET = b"/" + b"x" * (MAX_LINE_LENGTH - len(b"GET / HTTP/1.1\r\n"))
# A client's wait for an answer: a refusal comes at once, a hang fails the test.
PROMPT_SECONDS = 5


def _head(target: str = "/", headers: list[tuple[bytes, bytes]] = SOUND, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode()] + [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _to(server: Server, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` as the app's server takes them: its Host, its Origin."""
    return [(b"host", f"127.0.0.1:{server.port}".encode()), (b"origin", server.url.encode()),
            *(h for h in headers if h[0] != b"host")]


def _answer(port: int, head: bytes) -> bytes:
    """The server's answer to `head` up to its blank line (and a refusal's body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        if not answer.startswith(b"HTTP/1.1 101 "):
            while chunk := sock.recv(4096):
                answer += chunk
    return answer


def test_uvicorn_hands_an_upgrade_over_as_ours_does() -> None:
    upgrade = inspect.getsource(HttpToolsProtocol.handle_websocket_upgrade)
    for line in (
        "self.connections.discard(self)",
        "config=self.config,",
        "server_state=self.server_state,",
        "app_state=self.app_state,",
        "protocol.connection_made(self.transport)",
        'protocol.data_received(b"".join(output))',
        "self.transport.set_protocol(protocol)",
    ):
        assert line in upgrade, line
    # The method, target and headers are what it serializes.
    assert 'method = self.scope["method"].encode()' in upgrade and "self.url" in upgrade
    assert 'for name, value in self.scope["headers"]:' in upgrade
    parsed = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert parsed.index('self.scope["http_version"] = http_version') < parsed.index("if self.parser.should_upgrade()")
    assert "self.headers.append((name, value))" in inspect.getsource(HttpToolsProtocol.on_header)
    begin = inspect.getsource(HttpToolsProtocol.on_message_begin)
    assert "self.headers = []" in begin and '"headers": self.headers,' in begin
    assert "name = name.lower()" in inspect.getsource(HttpToolsProtocol.on_header)


def test_uvicorn_connects_a_websocket_as_connection_handed_does() -> None:
    made = inspect.getsource(WebSocketsSansIOProtocol.connection_made)
    http = inspect.getsource(HttpToolsProtocol.connection_made)
    for line in ("self.connections.add(self)", "self.transport = transport", "self.server = get_local_addr(transport)",
                 "self.client = get_remote_addr(transport)"):
        assert line in made and line in http, line
    assert 'self.scheme = "wss" if is_ssl(transport) else "ws"' in made
    assert 'self.scheme = "https" if is_ssl(transport) else "http"' in http
    # And nothing else but a trace log.
    assignments = [line for line in made.splitlines() if line.strip().startswith("self.") and "logger" not in line]
    assert len(assignments) == 5, assignments


def test_websockets_reads_frames_once_open_and_refuses_in_any_state() -> None:
    parse = inspect.getsource(ServerProtocol.parse)
    assert "if self.state is CONNECTING:" in parse
    assert parse.rstrip().endswith("yield from super().parse()")
    send_response = inspect.getsource(ServerProtocol.send_response)
    assert "if response.status_code == 101:\n            assert self.state is CONNECTING" in send_response
    # What upgrade_accept checks as websockets does (and no more: no origins,
    # extensions or subprotocols of its own under uvicorn without deflate).
    checks = inspect.getsource(ServerProtocol.process_request)
    for check in ('headers["Sec-WebSocket-Key"]', "len(raw_key) != 16", 'if version != "13":', "validate=True"):
        assert check in checks, check
    assert "available_subprotocols" not in inspect.getsource(WebSocketsSansIOProtocol.__init__)


def test_upgrade_accept_takes_only_what_websockets_would_accept_as_it_is() -> None:
    assert upgrade_accept("GET", "1.1", b"/graphql?x=1", SOUND) == ACCEPT
    without = [h for h in SOUND if h[0] != b"sec-websocket-key"]
    for method, version, target, headers in (
        ("POST", "1.1", b"/", SOUND),
        ("GET", "1.0", b"/", SOUND),
        ("GET", "1.1", "/é".encode(), SOUND),
        ("GET", "1.1", b"/", without),
        ("GET", "1.1", b"/", [*without, (b"sec-websocket-key", b"c2hvcnQ=")]),  # 5 bytes
        ("GET", "1.1", b"/", [*without, (b"sec-websocket-key", b"not base64 at all!!!!!==")]),
        ("GET", "1.1", b"/", [*SOUND, (b"sec-websocket-key", KEY)]),
        ("GET", "1.1", b"/", [h for h in SOUND if h[0] != b"sec-websocket-version"]),
        ("GET", "1.1", b"/", [*SOUND[:4], (b"sec-websocket-version", b"8")]),
        ("GET", "1.1", b"/", [*SOUND, (b"sec-websocket-version", b"13")]),
        ("GET", "1.1", b"/", [*SOUND, (b"upgrade", b"websocket")]),
        ("GET", "1.1", b"/", [*SOUND, (b"content-length", b"3")]),
        ("GET", "1.1", b"/", [*SOUND, (b"transfer-encoding", b"chunked")]),
        ("GET", "1.1", b"/", [*SOUND, *[(b"x-%d" % i, b"1") for i in range(MAX_NUM_HEADERS - len(SOUND) + 1)]]),
        ("GET", "1.1", b"/", [*SOUND, (b"x-long", LONG + b"x")]),
        ("GET", "1.1", LONG_TARGET + b"x", SOUND),
    ):
        assert upgrade_accept(method, version, target, headers) is None, (method, version, target, headers)


@pytest.mark.parametrize(
    "key",
    [
        KEY, base64.b64encode(bytes(range(16))), base64.b64encode(b"\xff" * 16),
        pytest.param(base64.b64encode(os.urandom(16)), id="random"),  # one id in every xdist process
        b"", b"c2hvcnQ=", base64.b64encode(b"x" * 17), base64.b64encode(b"x" * 15),
        b"dGhlIHNhbXBsZSBub25jZQ", b"dGhlIHNhbXBsZSBub25jZQ=", b"dGhlIHNhbXBsZSBub25jZQ===",
        b"dGhlIHNhbXBsZSBub25j ZQ==", b"dGhlIHNhbXBsZSBub25jZQ==\n", b"dGhlIHNhbXBsZSBub25jZR==",
        b"dGhlIHNhbXBsZSBub25jZQ==AA", b"=GhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25jZQ-_",
    ],
)
def test_upgrade_accept_decodes_and_answers_a_key_as_websockets_does(key: bytes) -> None:
    # As websockets' ServerProtocol checks a key and accept_key answers it.
    try:
        sound = len(base64.b64decode(key.decode(), validate=True)) == 16
    except binascii.Error:
        sound = False
    expected = accept_key(key.decode()).encode() if sound else None
    headers = [*(h for h in SOUND if h[0] != b"sec-websocket-key"), (b"sec-websocket-key", key)]
    assert upgrade_accept("GET", "1.1", b"/", headers) == expected


_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("path")
CALLBACKS_SEE: list[list[str | None]] = []
STATES: list[Any] = []


@asynccontextmanager
async def _serving(deflate: bool, seen: list[dict[str, Any]]) -> AsyncIterator[int]:
    """uvicorn with our protocols: through our upgrade, or with deflate
    configured, uvicorn's own. The app accepts with a header and the
    client's last subprotocol, after noting its scope."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        seen.append({k: v for k, v in scope.items() if k != "state"})
        STATES.append(scope["state"])
        # What the socket's task's done callbacks see of the context it runs in.
        _PATH.set(scope["path"])
        CALLBACKS_SEE.append([context.get(_PATH) for _, context in asyncio.current_task()._callbacks])  # type: ignore[union-attr]
        await receive()
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1],
                    "headers": [(b"X-Extra", b"1")]})
        await receive()

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    options: dict[str, Any] = {"ws": WebSocketProtocol, "http": http_protocol(5.0), "ws_per_message_deflate": deflate}
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


def test_our_upgrade_gives_the_app_the_scope_and_the_client_the_101_of_uvicorns_own() -> None:
    headers = [*SOUND, (b"sec-websocket-protocol", b"graphql-ws, graphql-transport-ws"), (b"cookie", b"a=\xe9")]
    head = _head("/a%20b/graphql?x=1&y=%2F", headers)

    async def scenario(deflate: bool) -> tuple[dict[str, Any], list[bytes]]:
        seen: list[dict[str, Any]] = []
        async with _serving(deflate, seen) as port:
            answer = await asyncio.to_thread(_answer, port, head)
        lines = answer.partition(b"\r\n\r\n")[0].split(b"\r\n")
        scope = seen[0]
        # Ours a tuple (untracked by the collector), uvicorn's a list.
        assert type(scope["subprotocols"]) is (list if deflate else tuple)
        scope["subprotocols"] = list(scope["subprotocols"])
        # The addresses (the HTTP protocol's, handed over): this server's, and the client's host.
        assert scope.pop("server") == ("127.0.0.1", port) and scope.pop("client")[0] == "127.0.0.1"
        return scope, [line for line in lines if not line.lower().startswith(b"date: ")]

    CALLBACKS_SEE.clear()
    ours, theirs = asyncio.run(scenario(False)), asyncio.run(scenario(True))
    assert ours == theirs
    # Our socket task's one done callback (uvicorn's on_task_complete) runs
    # in the task's own context, not a copy of its own; uvicorn's path copies.
    assert CALLBACKS_SEE == [["/a b/graphql"], [None]]
    assert inspect.getsource(WebSocketsSansIOProtocol.on_task_complete).strip().endswith("self.tasks.discard(task)")
    scope, lines = ours
    assert scope["subprotocols"] == ["graphql-ws", "graphql-transport-ws"]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/a b/graphql", b"/a%20b/graphql", b"x=1&y=%2F")
    assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
    assert b"Sec-WebSocket-Accept: " + ACCEPT in lines
    assert lines[-1] == b"Sec-WebSocket-Protocol: graphql-transport-ws"


def test_our_sockets_share_the_app_state_read_only() -> None:
    # uvicorn copies the app's state into each socket's scope; ours share one
    # read-only view of it (the state and extensions are the scope's only
    # mappings every socket would otherwise have of its own).
    async def scenario() -> None:
        async with _serving(False, []) as port:
            for _ in range(2):
                await asyncio.to_thread(_answer, port, _head(headers=[*SOUND, (b"sec-websocket-protocol", b"x")]))

    STATES.clear()
    asyncio.run(scenario())
    first, second = STATES
    assert first is second and first == {}
    with pytest.raises(TypeError):
        first["written"] = True
    # Starlette reads a socket's extensions as a mapping, and writes none.
    websocket = WebSocket({"type": "websocket", "extensions": _EXTENSIONS, "state": first}, _nothing, _nothing)
    assert websocket.state._state is first
    assert "websocket.http.response" in _EXTENSIONS
    assert 'in self.scope.get("extensions", {})' in inspect.getsource(WebSocket.send_denial_response)


async def _nothing(*_: object) -> Any:
    raise AssertionError("not called")


def _refused(port: int, head: bytes) -> bytes:
    """The server's whole answer to `head`, which it must end by closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _no_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("method", "target", "headers", "status", "says"),
    [
        ("GET", "/graphql", [h for h in SOUND if h[0] != b"sec-websocket-key"], b"400",
         b"missing Sec-WebSocket-Key header"),
        ("GET", "/graphql", [*SOUND[:3], (b"sec-websocket-key", b"c2hvcnQ="), SOUND[4]], b"400",
         b"invalid Sec-WebSocket-Key header"),
        ("GET", "/graphql", [*SOUND[:4], (b"sec-websocket-version", b"8")], b"400",
         b"invalid Sec-WebSocket-Version header: 8"),
        ("GET", "/graphql", [h for h in SOUND if h[0] != b"sec-websocket-version"], b"400",
         b"missing Sec-WebSocket-Version header"),
        # What websockets cannot read at all (it only ends its side: a hang).
        ("POST", "/graphql", SOUND, b"400", b"unsupported HTTP method; expected GET; got POST"),
        ("PUT", "/graphql", [*SOUND, (b"content-length", b"2")], b"400", b"expected GET; got PUT"),
        ("GET", "/graphql", [*SOUND, (b"content-length", b"2")], b"400", b"unsupported request body"),
        ("GET", "/graphql", [*SOUND, (b"transfer-encoding", b"chunked")], b"400", b"transfer codings"),
        # websockets' limits, one past each.
        ("GET", "/graphql", [*SOUND, *[(b"x-%d" % i, b"1") for i in range(MAX_NUM_HEADERS - len(SOUND) + 1)]],
         b"431", b"too many HTTP headers"),
        ("GET", "/graphql", [*SOUND, (b"x-long", LONG + b"x")], b"431", b"line too long"),
        ("GET", LONG_TARGET.decode() + "x", SOUND, b"431", b"line too long"),
    ],
)
def test_a_bad_upgrade_is_refused_at_once_with_a_clear_4xx_and_nothing_logged_as_an_error(
    server: Server, caplog: pytest.LogCaptureFixture, method: str, target: str, headers: list[tuple[bytes, bytes]],
    status: bytes, says: bytes,
) -> None:
    caplog.set_level(logging.ERROR)
    body = b"{}" if (b"content-length", b"2") in headers else b""
    answer = _refused(server.port, _head(target, _to(server, headers), method) + body)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer
    assert says in answer.partition(b"\r\n\r\n")[2], answer
    assert _no_errors(caplog) == []


@pytest.mark.parametrize("key", [b"\xe9" * 24, KEY[:-1] + b"\xe9", b"\xc3\xa9" + KEY[2:]])
def test_a_key_not_ascii_is_refused_as_any_key_not_base64_with_nothing_logged_as_an_error(
    server: Server, caplog: pytest.LogCaptureFixture, key: bytes
) -> None:
    # upgrade_accept leaves it to uvicorn's path, where websockets (before
    # 17) reads the byte as a surrogate and its key check encodes it again:
    # it answered 500 and logged "opening handshake failed" with a traceback.
    caplog.set_level(logging.ERROR)
    headers = [*SOUND[:3], (b"sec-websocket-key", key), SOUND[4]]
    assert upgrade_accept("GET", "1.1", b"/graphql", headers) is None
    answer = _refused(server.port, _head("/graphql", _to(server, headers)))
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"invalid Sec-WebSocket-Key header" in answer.partition(b"\r\n\r\n")[2], answer
    assert _no_errors(caplog) == []


def test_an_upgrade_at_websockets_limits_opens() -> None:
    # Exactly MAX_NUM_HEADERS headers, one line of MAX_LINE_LENGTH: through
    # our upgrade and uvicorn's alike.
    headers = [*SOUND, *[(b"x-%d" % i, b"1") for i in range(MAX_NUM_HEADERS - len(SOUND) - 2)],
               (b"x-long", LONG), (b"sec-websocket-protocol", b"a")]
    assert len(headers) == MAX_NUM_HEADERS and upgrade_accept("GET", "1.1", b"/", headers) == ACCEPT
    assert upgrade_accept("GET", "1.1", LONG_TARGET, SOUND) == ACCEPT

    async def scenario(deflate: bool) -> bytes:
        async with _serving(deflate, []) as port:
            return await asyncio.to_thread(_answer, port, _head("/", headers))

    for deflate in (False, True):
        assert asyncio.run(scenario(deflate)).startswith(b"HTTP/1.1 101 "), deflate


def test_an_unreadable_upgrade_is_refused_through_uvicorns_path_too(caplog: pytest.LogCaptureFixture) -> None:
    # With deflate configured every upgrade goes through websockets' parse.
    caplog.set_level(logging.ERROR)

    async def scenario() -> list[bytes]:
        async with _serving(True, []) as port:
            return [await asyncio.to_thread(_refused, port, head) for head in (
                _head("/", SOUND, "POST"),
                _head("/", [*SOUND, *[(b"x-%d" % i, b"1") for i in range(MAX_NUM_HEADERS)]]),
            )]

    post, crowded = asyncio.run(scenario())
    assert post.startswith(b"HTTP/1.1 400 ") and post.endswith(b'expected GET; got POST"}}'), post
    assert crowded.startswith(b"HTTP/1.1 431 ") and crowded.endswith(b'too many HTTP headers"}}'), crowded
    assert _no_errors(caplog) == []


def test_websockets_leaves_a_request_it_cannot_read_unanswered() -> None:
    # What WebSocketProtocol._refuse_unparsed answers for: no Request event
    # (so no handle_connect), the parser's error as handshake_exc's cause,
    # and nothing to send but the end of the stream.
    conn = ServerProtocol()
    conn.receive_data(_head("/", SOUND, "POST"))
    assert conn.events_received() == [] and conn.data_to_send() == [b""]
    assert isinstance(conn.handshake_exc, InvalidMessage) and "got POST" in str(conn.handshake_exc.__cause__)
    conn = ServerProtocol()
    conn.receive_data(_head("/", [*SOUND, *[(b"x-%d" % i, b"1") for i in range(MAX_NUM_HEADERS)]]))
    assert conn.events_received() == [] and conn.handshake_exc is not None
    assert isinstance(conn.handshake_exc.__cause__, SecurityError)


def test_an_unknown_subprotocol_is_refused_with_4406_once_open(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # Strawberry's answer, as through uvicorn's own upgrade: no subprotocol in
    # the 101, then a close naming the refusal.
    caplog.set_level(logging.ERROR)
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT_SECONDS) as sock:
        sock.sendall(_head("/graphql", _to(server, [*SOUND, (b"sec-websocket-protocol", b"mqtt")])))
        reason = b"Subprotocol not acceptable"
        answer = b""
        # Up to the close frame (the server then awaits the client's).
        while not answer.endswith(reason) and (chunk := sock.recv(4096)):
            answer += chunk
    head, _, frames = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and b"sec-websocket-protocol" not in head.lower()
    assert frames == bytes([0x88, 2 + len(reason)]) + (4406).to_bytes(2) + reason
    assert _no_errors(caplog) == []


def test_a_graphql_socket_opens_through_our_upgrade(server: Server) -> None:
    headers = [*SOUND, (b"sec-websocket-protocol", b"graphql-transport-ws")]
    answer = _answer(server.port, _head("/graphql", _to(server, headers)))
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), answer
    assert b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\n" in answer
    assert b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n" in answer


@pytest.mark.parametrize("collector", [True, False])
def test_an_upgraded_connection_lets_its_http_protocol_go(collector: bool) -> None:
    # Its head timer (REQUEST_SECONDS, here 5 s) would hold it, its parser
    # and flow control beside every open socket, for the collector to walk;
    # and its parser, holding its callbacks, would keep it in a cycle only
    # the collector finds (without it: gone as the upgrade's read returns).
    async def scenario() -> tuple[bytes, list[object]]:
        async with _serving(False, []) as port:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                headers = [*SOUND, (b"sec-websocket-protocol", b"graphql-transport-ws")]
                sock.sendall(_head("/", headers))
                answer = await asyncio.to_thread(sock.recv, 4096)
                if collector:
                    gc.collect()
                # This server's alone: an in-process server another test left
                # alive in this worker holds its own (two failures, loaded run).
                left: list[object] = [
                    o for o in gc.get_objects() if isinstance(o, HttpProtocol) and o.server == ("127.0.0.1", port)
                ]
        return answer, left

    gc.collect()
    if not collector:
        gc.disable()
    try:
        answer, left = asyncio.run(scenario())
    finally:
        gc.enable()
    assert answer.startswith(b"HTTP/1.1 101 ") and left == []


@pytest.mark.parametrize("deflate", [False, True])
def test_our_protocol_starts_as_uvicorns_does(deflate: bool) -> None:
    # WebSocketProtocol._lean_init: every attribute uvicorn's __init__ sets,
    # to the same value (but the queue and event it replaces, and the
    # websockets protocol, alike but its own).
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    config = uvicorn.Config(app, ws=WebSocketProtocol, ws_per_message_deflate=deflate, lifespan="off")
    config.load()
    state = ServerState()
    loop = asyncio.new_event_loop()
    try:
        theirs = vars(WebSocketsSansIOProtocol(config, state, {"k": 1}, loop))
        ours = vars(WebSocketProtocol(config, state, {"k": 1}, loop))
    finally:
        loop.close()
    assert set(ours) == set(theirs)
    own = {"queue", "writable", "conn", "close_timeout"}
    assert {k: v for k, v in ours.items() if k not in own} == {k: v for k, v in theirs.items() if k not in own}
    # Ours refuses a handshake in JSON (JsonRefusals: tests/internals/test_uvicorn_refusals.py).
    assert (type(ours["conn"]), type(theirs["conn"])) == (JsonRefusals, ServerProtocol)
    for attribute in ("max_message_size", "max_fragment_size", "state", "side", "logger", "available_subprotocols",
                      "origins"):
        assert getattr(ours["conn"], attribute) == getattr(theirs["conn"], attribute), attribute
    extensions = [type(e) for e in ours["conn"].available_extensions]
    assert extensions == [type(e) for e in theirs["conn"].available_extensions] and bool(extensions) == deflate
    assert isinstance(ours["queue"], LeanQueue) and isinstance(ours["writable"], LeanEvent)
    assert ours["writable"].is_set() and ours["close_timeout"] == close_seconds({"k": 1})


def test_an_opened_server_starts_as_websockets_own_made_open() -> None:
    # OpenedServer: every attribute websockets' __init__ sets, to the same
    # value (but the reader and parser, alike but its own), its id made only
    # when read, and a parser that reads frames from the first byte.
    theirs = vars(ServerProtocol(extensions=[], max_size=1000, logger=logging.getLogger("uvicorn.error"), state=OPEN))
    opened = OpenedServer(1000, logging.getLogger("uvicorn.error"))
    ours = dict(vars(opened))
    assert "id" not in ours and isinstance(opened.id, uuid.UUID) and opened.id == opened.id
    assert opened.id != OpenedServer(1000, logging.getLogger("uvicorn.error")).id
    assert set(ours) == set(theirs) - {"id"}
    own = {"reader", "parser", "extensions", "available_extensions"}
    assert {k: v for k, v in ours.items() if k not in own} == {k: v for k, v in theirs.items() if k not in own and k != "id"}
    assert type(ours["reader"]) is type(theirs["reader"])
    # The extension lists, empty, as one shared tuple.
    assert ours["extensions"] == () and ours["available_extensions"] == ()
    assert theirs["extensions"] == [] and theirs["available_extensions"] == []
    opened.receive_data(b"\x81\x85\x00\x00\x00\x00hello")
    [frame] = opened.events_received()
    assert isinstance(frame, Frame) and frame.data == b"hello" and opened.state is OPEN


def test_an_opened_server_lives_and_closes_as_websockets_own() -> None:
    # OpenedServer's extensions a tuple and its parser Protocol's own: a
    # connection's whole life (messages both ways, fragments, a ping, a close
    # from the client, one too large) gives the same events and bytes as
    # websockets' own made open, which assumes websockets only reads the
    # extensions once open and ServerProtocol's parse adds nothing then.
    def life(protocol: ServerProtocol, size_limit: bool) -> list[object]:
        seen: list[object] = []
        inputs = [b"\x81\x82\x00\x00\x00\x00hi", b"\x01\x81\x00\x00\x00\x00a", b"\x80\x81\x00\x00\x00\x00b",
                  b"\x89\x80\x00\x00\x00\x00"]
        inputs.append(b"\x82\xfe\x04\x00" + b"\x00" * 4 + b"x" * 1024 if size_limit else b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        for data in inputs:
            protocol.receive_data(data)
            for event in protocol.events_received():
                assert isinstance(event, Frame)
                seen.append((event.opcode, bytes(event.data)))
            seen.append(b"".join(protocol.data_to_send()))
            if protocol.state is OPEN:
                protocol.send_text(b"back")
                seen.append(b"".join(protocol.data_to_send()))
        return [*seen, protocol.state, protocol.close_code]

    logger = logging.getLogger("uvicorn.error")
    for size_limit in (False, True):
        theirs = ServerProtocol(extensions=[], max_size=1000, logger=logger, state=OPEN)
        assert life(OpenedServer(1000, logger), size_limit) == life(theirs, size_limit)
    assert "yield from super().parse()" in inspect.getsource(ServerProtocol.parse)


def test_our_upgrade_makes_its_protocol_opened() -> None:
    # As uvicorn's WebSocketsSansIOProtocol makes it (an int for max_size, no
    # extensions), and open at once; without it, websockets' own, connecting.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    config = uvicorn.Config(app, ws=WebSocketProtocol, lifespan="off", ws_max_size=1234, ws_per_message_deflate=False)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        made = {opened: WebSocketProtocol(config, ServerState(), {}, loop, opened=opened).conn for opened in (True, False)}
    finally:
        loop.close()
    assert type(made[True]) is OpenedServer and made[True].state is OPEN and made[True].max_message_size == 1234
    assert type(made[False]) is JsonRefusals and made[False].state is CONNECTING
    assert "max_size=self.config.ws_max_size" in inspect.getsource(WebSocketsSansIOProtocol.__init__)
    upgrade = inspect.getsource(HttpProtocol.handle_websocket_upgrade)
    assert "opened=True" in upgrade and "config.ws_per_message_deflate" in upgrade
    # Made on the HTTP protocol's loop, not one asked of asyncio again; its
    # close timeout the one the HTTP protocol asked (close_seconds of the
    # same app state), or asked again when not given.
    assert "_loop=self.loop" in upgrade and "close_timeout=self._close_seconds" in upgrade
    loop = asyncio.new_event_loop()
    try:
        given = WebSocketProtocol(config, ServerState(), {}, loop, opened=True, close_timeout=2.5)
    finally:
        loop.close()
    assert given.close_timeout == 2.5


def test_an_upgrade_after_a_request_on_one_connection_opens(server: Server) -> None:
    # HttpProtocol._should_upgrade answers once per request: a request that
    # asked no upgrade does not answer for the next one that does.
    headers = _to(server, [*SOUND, (b"sec-websocket-protocol", b"graphql-transport-ws")])
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(_head("/healthz", headers[:2]))
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        sock.sendall(_head("/graphql", headers))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), answer


def test_uvicorn_asks_for_an_upgrade_only_once_a_head_is_complete() -> None:
    # What HttpProtocol._should_upgrade's memory of one request's headers assumes.
    asking = {name for name, method in vars(HttpToolsProtocol).items()
              if callable(method) and "self._should_upgrade()" in inspect.getsource(method)}
    assert asking == {"data_received", "on_headers_complete", "on_body", "on_message_complete"}
    upgrade = inspect.getsource(HttpToolsProtocol._should_upgrade)
    assert "self._get_upgrade()" in upgrade and "for name, value in self.headers:" in inspect.getsource(
        HttpToolsProtocol._get_upgrade)
    assert "except httptools.HttpParserUpgrade:\n            if self._should_upgrade():" in inspect.getsource(
        HttpToolsProtocol.data_received)


_CONNECTION_UPGRADE = (b"connection", b"Upgrade")


@pytest.mark.parametrize("headers", [
    [],
    [(b"upgrade", b"websocket"), _CONNECTION_UPGRADE],
    [(b"upgrade", b"WebSocket"), (b"connection", b"keep-alive, Upgrade")],
    [(b"upgrade", b"websocket"), (b"connection", b"keep-alive,\tupgrade \x0b")],
    [(b"upgrade", b"websocket"), (b"connection", b"upgrades")],
    [(b"upgrade", b"websocket"), (b"connection", b"keep-alive")],
    [(b"upgrade", b"h2c"), _CONNECTION_UPGRADE],
    [(b"upgrade", b"websocket")],
    [_CONNECTION_UPGRADE],
    [(b"upgrade", b"websocket"), _CONNECTION_UPGRADE, (b"connection", b"close")],
    [(b"upgrade", b"websocket"), (b"connection", b"close"), _CONNECTION_UPGRADE],
    [(b"upgrade", b"websocket"), (b"upgrade", b"h2c"), _CONNECTION_UPGRADE],
    [(b"upgrade", b"h2c"), (b"upgrade", b"websocket"), _CONNECTION_UPGRADE],
    [(b"upgrade", b" websocket"), _CONNECTION_UPGRADE],
    [(b"upgrade", b"websocket"), (b"connection", b"")],
])
@pytest.mark.parametrize("ws_protocol_class", [WebSocketProtocol, None])
def test_our_upgrade_question_answers_as_uvicorn_s(headers: list[tuple[bytes, bytes]], ws_protocol_class: object) -> None:
    protocol = HttpProtocol.__new__(HttpProtocol)
    protocol.headers = headers
    protocol.ws_protocol_class = ws_protocol_class  # type: ignore[assignment]
    assert protocol._asks_websocket(headers) is HttpToolsProtocol._should_upgrade(protocol)
    assert protocol._should_upgrade() is HttpToolsProtocol._should_upgrade(protocol)
