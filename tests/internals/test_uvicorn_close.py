"""What internals/uvicorn_close.py assumes of uvicorn's shutdown, and closes that cannot wait
forever (the behaviour itself, real clients of every transport on SIGTERM, is in
tests/test_cli.py and tests/test_subscriptions.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import socket

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server as UvicornServer

from graphql_todos.internals.uvicorn_close import BoundedClose


def test_uvicorn_tells_each_connection_to_shut_down_before_it_waits_and_before_the_lifespan() -> None:
    source = inspect.getsource(UvicornServer.shutdown)
    told = source.index("connection.shutdown()")
    assert told < source.index("self._wait_tasks_to_complete()") < source.index("self.lifespan.shutdown()")
    # Each protocol gets the lifespan state, where the hub is.
    assert "app_state=self.lifespan.state" in inspect.getsource(UvicornServer.startup)


async def _connected(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Transport, socket.socket]:
    """A TCP connection: our transport, and the peer's socket (which reads
    only when the test says, through a 16 KiB receive buffer)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        peer = socket.socket()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        peer.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            peer.connect(listener.getsockname())
        ours, _ = listener.accept()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    return transport, peer


def test_every_transport_method_uvicorn_calls_is_bounded_closes_own() -> None:
    # Left to __getattr__, each call would first fail a lookup on
    # BoundedClose and format an AttributeError (the cost it spells them
    # out to spare); uvicorn's protocols call these on every connection.
    called = {
        name
        for protocol in (HttpToolsProtocol, WebSocketsSansIOProtocol, FlowControl)
        for name in re.findall(r"self\._?transport\.(\w+)", inspect.getsource(protocol))
    }
    assert called >= {"is_closing", "pause_reading", "resume_reading", "set_protocol", "write", "close"}
    own = set(vars(BoundedClose))
    assert called <= own, called - own
    # asyncio.Transport's every method is its own (none left to a
    # __getattr__, whose hook would slow every attribute read).
    api = {name for name in dir(asyncio.Transport) if not name.startswith("_")}
    assert api <= own, api - own
    assert not hasattr(BoundedClose, "__getattr__")


def test_a_bounded_transport_reads_closes_and_hands_over_as_its_transport() -> None:
    async def scenario() -> list[object]:
        loop = asyncio.get_running_loop()
        transport, peer = await _connected(loop)
        bounded = BoundedClose(transport, loop, 0.2)
        seen: list[object] = []
        bounded.pause_reading()
        seen.append(transport.is_reading())
        bounded.resume_reading()
        seen.append(transport.is_reading())
        handed = asyncio.Protocol()
        bounded.set_protocol(handed)
        seen.append(transport.get_protocol() is handed)
        seen.append(bounded.is_closing())
        bounded.close()
        seen.append(bounded.is_closing())
        peer.close()
        return seen

    assert asyncio.run(scenario()) == [False, True, True, False, True]


def test_a_bounded_transport_hands_every_other_method_to_its_transport() -> None:
    async def scenario() -> tuple[list[object], list[object], bytes]:
        loop = asyncio.get_running_loop()
        transport, peer = await _connected(loop)
        bounded = BoundedClose(transport, loop, 0.2)
        ours = [bounded.get_extra_info("peername"), bounded.get_extra_info("nothing", 7), bounded.get_protocol(),
                bounded.is_reading(), bounded.get_write_buffer_size(), bounded.can_write_eof()]
        theirs = [transport.get_extra_info("peername"), 7, transport.get_protocol(), transport.is_reading(),
                  transport.get_write_buffer_size(), transport.can_write_eof()]
        bounded.set_write_buffer_limits(high=4096, low=1024)
        ours.append(bounded.get_write_buffer_limits())
        theirs.append((1024, 4096))
        bounded.writelines([b"a", b"b"])
        bounded.write_eof()
        peer.settimeout(5)
        received = b""
        while chunk := peer.recv(100):
            received += chunk
        bounded.abort()
        await asyncio.sleep(0)
        ours.append(transport.is_closing())
        theirs.append(True)
        peer.close()
        return ours, theirs, received

    ours, theirs, received = asyncio.run(scenario())
    assert ours == theirs and received == b"ab"


def _peer_state(peer: socket.socket) -> int:
    return peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]


def test_a_closed_connection_whose_peer_reads_nothing_is_reset() -> None:
    async def scenario() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        transport, peer = await _connected(loop)
        bounded = BoundedClose(transport, loop, 0.2)
        bounded.write(b"x" * 8_000_000)  # far more than the kernel buffers take
        bounded.close()
        # asyncio's own close waits for the buffer to drain: forever here.
        await asyncio.sleep(0.1)
        before = _peer_state(peer)
        while not transport.is_closing() or transport.get_write_buffer_size():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        after = _peer_state(peer)
        peer.close()
        return before, after

    established, closed = 1, 7  # tcp_info's tcpi_state
    assert asyncio.run(scenario()) == (established, closed)  # an RST: no FIN waits for the data


def test_a_closed_connection_whose_peer_reads_slowly_is_left_to_drain() -> None:
    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        transport, peer = await _connected(loop)
        bounded = BoundedClose(transport, loop, 0.2)
        bounded.write(SLOWLY_READ)
        bounded.close()
        received = b""
        while chunk := await loop.sock_recv(peer, 65536):
            received += chunk
            # Slowly: the transport's own buffer moves only each time the
            # kernel's has half drained, which takes longer than the bound.
            await asyncio.sleep(0.004)
        peer.close()
        return received

    assert asyncio.run(scenario()) == SLOWLY_READ


SLOWLY_READ = bytes(range(256)) * 16_000  # 4 MB
