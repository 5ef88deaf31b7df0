"""A RESTSocket client that stops reading: the server stops waiting for it
after SEND_TIMEOUT_SECONDS, closes it with 4408, and it resumes by cursor;
meanwhile the others get every change."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from graphql_todos.core import metrics
from graphql_todos.core.errors import ErrorCode
from tests.core.test_metrics import SUBSCRIPTIONS, by_transport, scrape, value
from tests.helpers import Server, errors_logged, make_server, wait_until

# Enough 512-character changes to fill the kernel's buffers (the server's
# send buffer grows to 4 MiB here; the client's receive buffer is kept small).
CHANGES = 10_000
TCP_ESTABLISHED = 1  # tcp_info's tcpi_state (Linux)
# How long keepalives alone may take to fill a stalled client's buffers and
# then its send timeout to pass: thousands of them, one per wakeup of a 1 ms
# timer, so as slow as the scheduler on a loaded machine (4.4-6 s at load 9,
# over 10 s beside a parallel run). What breaks shows as never (a send that
# waits for good), so the bound is generous.
FILLED = 30


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    srv = make_server(db_dsn, send_timeout_seconds=1.0)
    srv.start()
    yield srv
    srv.stop()


def _stalling(server: Server, path: str, **options: Any) -> ClientConnection:
    """A client that takes one message and then stops reading from its socket
    (max_queue=1), with a small receive buffer: the kernel's buffers fill up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", server.port))
    return connect(server.ws_url + path, sock=sock, max_queue=1, **options)


def _flood_and_read_all(server: Server, healthy: Any) -> list[str]:
    """CHANGES big changes; the cursors the healthy RESTSocket gets, all of
    them, while the other client is stalled."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO todos (title) SELECT repeat('x', 507) || n FROM generate_series(1, %s) n", (CHANGES,)
        )
    cursors = [json.loads(healthy.recv(timeout=30))["cursor"] for _ in range(CHANGES)]
    assert cursors == [str(n) for n in range(1, CHANGES + 1)]
    return cursors


def test_a_stalled_graphql_client_is_closed_with_4408(server: Server) -> None:
    protocol = [Subprotocol("graphql-transport-ws")]
    with _stalling(server, "/graphql", subprotocols=protocol) as stalled, connect(
        server.ws_url + "/api/todos/?after=0"
    ) as healthy:
        stalled.send(json.dumps({"type": "connection_init"}))
        assert json.loads(stalled.recv(timeout=5))["type"] == "connection_ack"
        query = 'subscription { todoChanges(after: "0") { cursor todo { title } } }'
        stalled.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        wait_until(lambda: server.subscriber_count() == 2)
        _flood_and_read_all(server, healthy)
        wait_until(lambda: server.subscriber_count() == 1, timeout=30)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                stalled.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == ErrorCode.CLIENT_STALLED.close_code


def test_a_stalled_client_is_closed_with_4408_and_resumes_by_cursor(server: Server) -> None:
    with _stalling(server, "/api/todos/?after=0") as stalled, connect(
        server.ws_url + "/api/todos/?after=0"
    ) as healthy:
        wait_until(lambda: server.subscriber_count() == 2)
        cursors = _flood_and_read_all(server, healthy)
        # The stalled one is let go of, and its subscription with it.
        wait_until(lambda: server.subscriber_count() == 1, timeout=30)
        got: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = json.loads(stalled.recv(timeout=30))
                if message["op"] != "keepalive":
                    got.append(message["cursor"])
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == ErrorCode.CLIENT_STALLED.close_code
        assert 0 < len(got) < CHANGES
    # It resumes from its last cursor and misses nothing.
    with connect(server.ws_url + f"/api/todos/?after={got[-1]}") as resumed:
        rest = [json.loads(resumed.recv(timeout=30))["cursor"] for _ in range(CHANGES - len(got))]
    assert got + rest == cursors


GRAPHQL_EVENTS = "/graphql?" + urlencode({"query": 'subscription { todoChanges(after: "0") { cursor todo { title } } }'})


@pytest.mark.parametrize(("path", "transport"), [("/api/todos/?after=0", "rest-sse"), (GRAPHQL_EVENTS, "sse")])
def test_a_stalled_event_stream_is_ended(server: Server, path: str, transport: str) -> None:
    """Not only dropped from its group (to read the journal when it reads
    again): after SEND_TIMEOUT_SECONDS without a write, the stream ends. Read
    again, the response ends there, without the changes after. The client's
    stall is no error of the server's: nothing is logged as one."""
    before = by_transport(server.url, SUBSCRIPTIONS)[transport]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", server.port))
    # An event stream request, then nothing read.
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    try:
        with errors_logged() as errors, connect(server.ws_url + "/api/todos/?after=0") as healthy:
            wait_until(lambda: server.subscriber_count() == 2)
            _flood_and_read_all(server, healthy)
            wait_until(lambda: server.subscriber_count() == 1, timeout=30)
            # The stream's end, as the app counts it.
            wait_until(lambda: by_transport(server.url, SUBSCRIPTIONS)[transport] == before, timeout=30)
            received, reset = _read_until_closed(sock)
    finally:
        sock.close()
    assert errors == []
    assert received.startswith(b"HTTP/1.1 200 ")
    # Ended: what it had sent before it gave up, short of the last change,
    # whole events (unless the server cut the connection too: its unsent
    # bytes are then lost, wherever they stopped).
    assert f"id: {CHANGES}\n".encode() not in received
    assert reset or received.endswith((b"\n\n\r\n", b"\r\n0\r\n\r\n")), received[-200:]


def _read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sent up to its end of the connection, and
    whether that end was a reset (the test's patience: 30 s)."""
    sock.settimeout(30)
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        return received, True
    return received, False



def _socket_that_never_reads(server: Server) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", server.port))
    return sock


def _websocket_that_never_reads(server: Server, path: str, *messages: Any, subprotocol: str | None = None) -> socket.socket:
    """A WebSocket handshaken and sent `messages`, whose socket is never read
    again (websockets' sans-I/O client writes the bytes)."""
    sock = _socket_that_never_reads(server)
    client = ClientProtocol(parse_uri(server.ws_url + path), subprotocols=None if subprotocol is None else [Subprotocol(subprotocol)])
    client.send_request(client.connect())
    sock.sendall(b"".join(client.data_to_send()))
    while client.state is State.CONNECTING:
        client.receive_data(sock.recv(1))  # byte by byte: nothing after the handshake's end is read
    for message in messages:
        client.send_text(json.dumps(message).encode())
    sock.sendall(b"".join(client.data_to_send()))
    return sock


def _request_never_read(server: Server, path: str) -> socket.socket:
    sock = _socket_that_never_reads(server)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    return sock


def _gone(sock: socket.socket) -> bool:
    """The peer reset or closed the connection (seen without reading)."""
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state != TCP_ESTABLISHED


def _open_connections(server: Server) -> dict[str, float]:
    samples = scrape(server.url)
    return {t: value(samples, "graphql_todos_open_connections", transport=t) for t in metrics.TRANSPORTS}


def test_a_stalled_readers_connection_is_gone_within_the_timeouts(server: Server) -> None:
    """Readers that stop reading (a full TCP window) on the four transports:
    their streams end at SEND_TIMEOUT_SECONDS, and then their connections
    too, within the close's own timeout (the server resets them: closing
    would wait forever for the unsent data to drain), and nothing is logged
    as an error."""
    before = _open_connections(server)
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": 'subscription { todoChanges(after: "0") { cursor todo { title } } }'}}
    stalled = [
        _websocket_that_never_reads(server, "/api/todos/?after=0"),
        _websocket_that_never_reads(server, "/graphql", {"type": "connection_init"}, subscribe, subprotocol="graphql-transport-ws"),
        _request_never_read(server, "/api/todos/?after=0"),
        _request_never_read(server, GRAPHQL_EVENTS),
    ]
    try:
        with errors_logged() as errors:
            with connect(server.ws_url + "/api/todos/?after=0") as healthy:
                wait_until(lambda: server.subscriber_count() == 5)
                _flood_and_read_all(server, healthy)
            # The send timeout, then the close's (a second each here), and a margin.
            wait_until(lambda: all(_gone(sock) for sock in stalled), timeout=10)
            wait_until(lambda: _open_connections(server) == before)
    finally:
        for sock in stalled:
            sock.close()
    assert errors == []


@pytest.fixture
def chatty(db_dsn: str) -> Iterator[Server]:
    srv = make_server(db_dsn, send_timeout_seconds=1.0, keepalive_seconds=0.001)
    srv.start()
    yield srv
    srv.stop()


def _shrink_buffers(server: Server, client_port: int) -> None:
    """The server's end of the client's connection made to hold little (a
    4 KiB kernel send buffer, a 1 KiB write buffer): a few hundred
    keepalives fill it, where the defaults take megabytes."""

    def shrink() -> None:
        assert server._uvicorn is not None
        (transport,) = (
            c.transport for c in server._uvicorn.server_state.connections
            if c.transport.get_extra_info("peername")[1] == client_port
        )
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=1024)

    server.call(shrink)


def test_a_stalled_restsocket_on_a_quiet_stream_is_closed_with_4408(chatty: Server) -> None:
    """No change to send, only keepalives: they fill the buffers of a client
    that stopped reading, and the keepalive that cannot go out within
    SEND_TIMEOUT_SECONDS ends the stream and closes the socket with 4408, as
    a change's send does (before, the keepalive's send waited for good)."""
    with _stalling(chatty, "/api/todos/?after=0") as stalled:
        wait_until(lambda: chatty.subscriber_count() == 1)
        _shrink_buffers(chatty, stalled.socket.getsockname()[1])
        wait_until(lambda: chatty.subscriber_count() == 0, timeout=FILLED)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                assert json.loads(stalled.recv(timeout=10)) == {"op": "keepalive"}
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == ErrorCode.CLIENT_STALLED.close_code


def _refused_subscribes(protocol: str, count: int) -> list[dict[str, Any]]:
    """connection_init and `count` subscriptions refused at once (an unknown
    operation name): each answered with an `error`, nothing else to send."""
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    payload = {"query": 'subscription { todoChanges(after: "0") { cursor } }', "operationName": "Unknown"}
    return [{"type": "connection_init"}, *({"id": str(n), "type": kind, "payload": payload} for n in range(count))]


@pytest.mark.parametrize(
    "protocol",
    [
        # Its keepalives (`ka`) fill the buffers, and the one that cannot go
        # out within SEND_TIMEOUT_SECONDS closes the socket.
        "graphql-ws",
        # No keepalive of the app's on this protocol: once the server has
        # nothing more to send, no send waits (the refusals went into the
        # client's receive buffer), and only the ping notices the client
        # reads nothing: its timeout closes as a stalled client's
        # (internals.uvicorn_websocket's keepalive_timeout; uvicorn's is 1011).
        "graphql-transport-ws",
    ],
)
def test_a_stalled_graphql_client_with_only_refusals_queued_is_closed_with_4408(db_dsn: str, protocol: str) -> None:
    """A client that sent subscriptions the server refused, then stopped
    reading: nothing more to send it but keepalives, and uvicorn's pings
    (here every second, a second to answer; on graphql-ws the keepalives
    fill the buffers first: server at uvicorn's 20 s)."""
    server = make_server(db_dsn, send_timeout_seconds=1.0, keepalive_seconds=0.001)
    if protocol == "graphql-transport-ws":
        server.uvicorn_overrides = {"ws_ping_interval": 1.0, "ws_ping_timeout": 1.0}
    server.start()
    try:
        _stall_with_refusals(server, protocol)
    finally:
        server.stop()


def _stall_with_refusals(server: Server, protocol: str) -> None:
    before = _open_connections(server)[protocol]
    with _stalling(server, "/graphql", subprotocols=[Subprotocol(protocol)]) as stalled:
        _shrink_buffers(server, stalled.socket.getsockname()[1])
        for message in _refused_subscribes(protocol, 20):
            stalled.send(json.dumps(message))
        wait_until(lambda: _open_connections(server)[protocol] == before + 1)
        wait_until(lambda: _open_connections(server)[protocol] == before, timeout=FILLED)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                stalled.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == ErrorCode.CLIENT_STALLED.close_code
    assert closed.value.rcvd.reason.endswith("reconnect with your last cursor")
