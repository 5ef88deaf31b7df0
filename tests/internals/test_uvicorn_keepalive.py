"""The keep-alive ping of internals/uvicorn_keepalive.py, under a real uvicorn with our WebSocket
protocol, and what it assumes of uvicorn's."""

from __future__ import annotations

import asyncio
import inspect
import socket
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event, State
from websockets.uri import parse_uri

from graphql_todos.core.errors import ErrorCode
from graphql_todos.internals.uvicorn_keepalive import Pinger, pinger
from graphql_todos.internals.uvicorn_websocket import WebSocketProtocol

INTERVAL = 0.4
TIMEOUT = 0.4


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    websocket = WebSocket(scope, receive, send)
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


@asynccontextmanager
async def _server(interval: float = INTERVAL, timeout: float = TIMEOUT) -> AsyncIterator[tuple[int, uvicorn.Server]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _app, ws=WebSocketProtocol, ws_per_message_deflate=False, log_level="warning", lifespan="off",
        ws_ping_interval=interval, ws_ping_timeout=timeout,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield listener.getsockname()[1], server
    finally:
        server.should_exit = True
        await serving


class _Client:
    """A WebSocket client on websockets' sans-I/O protocol, counting the pings
    it gets; `answer` False: it never sends their pongs (a hung peer)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bool, delay: float = 0.0
    ) -> None:
        self.reader, self.writer, self.answer, self.delay = reader, writer, answer, delay
        self.protocol = ClientProtocol(parse_uri("ws://localhost/"))
        self.pings = 0

    @classmethod
    async def connect(cls, port: int, answer: bool, delay: float = 0.0) -> _Client:
        """`delay`: seconds its pongs take."""
        client = cls(*await asyncio.open_connection("127.0.0.1", port), answer=answer, delay=delay)
        request = client.protocol.connect()
        client.protocol.send_request(request)
        client._flush()
        while not any(isinstance(event, Response) for event in await client._events()):
            pass
        return client

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            # The pong the protocol queues at each ping goes out only when answering.
            if not data or self.protocol.state is State.CONNECTING:
                self.writer.write(data)
            elif self.answer:
                asyncio.get_running_loop().call_later(self.delay, self.writer.write, data)

    async def _events(self) -> list[Event]:
        data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        events = self.protocol.events_received()
        self.pings += sum(1 for event in events if isinstance(event, Frame) and event.opcode is Opcode.PING)
        self._flush()
        return events

    async def closed_with(self, within: float) -> int | None:
        """The close code the server sends within `within` seconds (None: still open)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while self.protocol.close_rcvd is None and not self.reader.at_eof():
            try:
                await asyncio.wait_for(self._events(), end - loop.time())
            except TimeoutError:
                return None
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd else None


def _pinger() -> Pinger:
    return pinger(asyncio.get_running_loop(), INTERVAL, TIMEOUT)


def test_a_peer_that_never_answers_is_failed_within_interval_and_timeout_and_a_tick() -> None:
    async def scenario() -> tuple[int | None, float, int]:
        async with _server() as (port, _):
            client = await _Client.connect(port, answer=False)
            start = asyncio.get_running_loop().time()
            # Not before its ping's timeout is over.
            early = await client.closed_with(INTERVAL + TIMEOUT - 0.1)
            assert early is None
            code = await client.closed_with(0.1 + _pinger().tick + 0.15)
            elapsed = asyncio.get_running_loop().time() - start
            client.writer.close()
            return code, elapsed, len(_pinger().members)

    code, elapsed, members = asyncio.run(scenario())
    # A stalled client's close (uvicorn's is 1011, a server error).
    assert code == ErrorCode.CLIENT_STALLED.close_code
    assert INTERVAL + TIMEOUT - 0.1 <= elapsed
    assert members == 0


def test_a_peer_that_answers_stays_open_and_is_pinged_every_interval() -> None:
    async def scenario() -> tuple[int | None, int, int]:
        async with _server() as (port, _):
            client = await _Client.connect(port, answer=True)
            code = await client.closed_with(4 * INTERVAL + 0.2)
            members = len(_pinger().members)
            client.writer.close()
            return code, client.pings, members

    code, pings, members = asyncio.run(scenario())
    assert code is None
    assert pings in (4, 5)
    assert members == 1


def test_a_connection_closed_normally_leaves_the_pinger_as_it_ends() -> None:
    # Counted as soon as uvicorn has seen each connection end, not when the
    # pinger next comes to it.
    async def scenario() -> list[tuple[int, int]]:
        async with _server() as (port, server):
            connections = server.server_state.connections
            clients = [await _Client.connect(port, answer=True) for _ in range(3)]
            counts = [(len(connections), len(_pinger().members))]
            clients[0].protocol.send_close(1000)
            clients[0]._flush()
            await clients[0].closed_with(1.0)
            for left, client in ((2, None), (1, clients[1]), (0, clients[2])):
                if client is not None:
                    client.writer.close()
                while len(connections) > left:
                    await asyncio.sleep(0.001)
                counts.append((len(connections), len(_pinger().members)))
            return counts

    assert asyncio.run(scenario()) == [(3, 3), (2, 2), (1, 1), (0, 0)]


def test_a_pong_later_than_the_interval_brings_the_next_ping_as_it_comes() -> None:
    # As uvicorn's: the next ping follows a late pong (within the timeout) at
    # once, not never.
    async def scenario() -> tuple[int | None, int]:
        async with _server(interval=0.2, timeout=0.8) as (port, _):
            client = await _Client.connect(port, answer=True, delay=0.3)
            code = await client.closed_with(2.0)
            client.writer.close()
            return code, client.pings

    code, pings = asyncio.run(scenario())
    assert code is None
    assert pings >= 4


def test_uvicorn_keeps_alive_only_through_what_our_protocol_overrides() -> None:
    # Its timers are armed only by start_keepalive, handle_pong and the
    # ping itself; stop_keepalive is called where a connection ends.
    source = inspect.getsource(WebSocketsSansIOProtocol)
    for method in ("schedule_ping()", "call_later(self.ping_timeout"):
        callers = [
            name for name, member in vars(WebSocketsSansIOProtocol).items()
            if inspect.isfunction(member) and method in inspect.getsource(member)
        ]
        assert set(callers) <= {"start_keepalive", "handle_pong", "send_keepalive_ping"}, callers
    assert "self.stop_keepalive()" in inspect.getsource(WebSocketsSansIOProtocol.connection_lost)
    assert "self.stop_keepalive()" in inspect.getsource(WebSocketsSansIOProtocol.shutdown)
    assert "self.start_keepalive()" in inspect.getsource(WebSocketsSansIOProtocol.send)
    assert "self.handle_pong(event)" in source
    timeout = inspect.getsource(WebSocketsSansIOProtocol.keepalive_timeout)
    # Ours (WebSocketProtocol.keepalive_timeout) does this with another code,
    # and resets the state this resets but for the pinger-less pong_timer.
    assert 'self.conn.fail(1011, "keepalive ping timeout")' in timeout and "self.transport.close()" in timeout
    assert "self.pong_timer = None" in timeout and "self.pending_ping_payload = None" in timeout
    assert "self.close_sent = True" in timeout


def test_a_weak_key_dictionary_s_get_is_a_get_of_its_data_by_a_weak_reference() -> None:
    # pinger and uvicorn_http.head_watch read `data` so, asked at every open.
    assert "return self.data.get(ref(key),default)" in inspect.getsource(weakref.WeakKeyDictionary.get)
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        first, again, other = (pinger(loop, INTERVAL, TIMEOUT) for loop in (loops[0], loops[0], loops[1]))
        assert first is again and other is not first and first.loop is loops[0]
    finally:
        for loop in loops:
            loop.close()
