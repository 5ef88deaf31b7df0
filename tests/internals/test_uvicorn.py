"""Pins what graphql_todos/internals/uvicorn_*.py assume of uvicorn (the
behaviour itself, real clients of every transport on SIGTERM, is in
tests/test_cli.py and tests/test_subscriptions.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import socket

import pytest
from uvicorn.main import run as uvicorn_run
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server as UvicornServer
from uvicorn.supervisors import Multiprocess

from graphql_todos.internals.uvicorn_close import CLOSE_SECONDS, BoundedClose
from graphql_todos.internals.uvicorn_http import CONTINUE, HeadWithBody, HttpProtocol
from graphql_todos.internals.uvicorn_server import Supervisor
from graphql_todos.internals.uvicorn_websocket import LeanEvent, LeanQueue, WebSocketProtocol
from tests.helpers import Server


def test_uvicorn_tells_each_connection_to_shut_down_before_it_waits_and_before_the_lifespan() -> None:
    source = inspect.getsource(UvicornServer.shutdown)
    told = source.index("connection.shutdown()")
    assert told < source.index("self._wait_tasks_to_complete()") < source.index("self.lifespan.shutdown()")
    # Each protocol gets the lifespan state, where the hub is.
    assert "app_state=self.lifespan.state" in inspect.getsource(UvicornServer.startup)


def test_uvicorns_websocket_shutdown_is_the_one_ours_repeats_with_a_reason() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol.shutdown)
    assert "if self.close_sent:" in source
    assert 'self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})' in source
    assert "self.conn.send_close(1012)" in source
    assert "self.close_sent = True" not in source
    for attribute in ("self.app_state =", "self.handshake_complete =", "self.queue:"):
        assert attribute in inspect.getsource(WebSocketsSansIOProtocol.__init__)


def test_after_uvicorns_own_close_a_send_of_the_app_fails_as_on_a_lost_connection() -> None:
    closed_by_parser = inspect.getsource(WebSocketsSansIOProtocol.handle_parser_exception)
    assert "self.close_sent = True" in closed_by_parser and "self.transport.close()" in closed_by_parser
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    assert send.index("if self.disconnected:\n            raise ClientDisconnected()") < send.index("close_sent")


def test_uvicorns_http_shutdown_lets_a_response_in_progress_run_on() -> None:
    source = inspect.getsource(HttpToolsProtocol.shutdown)
    assert "self.cycle.keep_alive = False" in source
    assert "self.app_state =" in inspect.getsource(HttpToolsProtocol.__init__)


def test_the_server_config_uses_our_protocols(server: Server) -> None:
    assert server._uvicorn is not None
    config = server._uvicorn.config
    assert config.ws_protocol_class is WebSocketProtocol
    assert config.http_protocol_class.func is HttpProtocol  # type: ignore[attr-defined]


def test_each_request_cycle_writes_as_head_with_body_expects() -> None:
    made = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "self.cycle = RequestResponseCycle(" in made
    assert "transport=self.transport," in made
    cycle = inspect.getsource(RequestResponseCycle)
    assert set(re.findall(r"self\.transport\.(\w+)", cycle)) == {"write", "close", "is_closing"}
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert 'self.transport.write(b"HTTP/1.1 100 Continue\\r\\n\\r\\n")' in cycle
    # The head is one write, then every response but one to HEAD writes its body.
    assert 'self.transport.write(b"".join(content))' in cycle
    assert 'if self.scope["method"] == "HEAD":' in cycle


def test_a_request_waits_only_on_its_flow_and_once_disconnected_ends_quietly() -> None:
    made = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "flow=self.flow," in made
    cycle = inspect.getsource(RequestResponseCycle)
    assert set(re.findall(r"self\.flow\.(\w+)", cycle)) == {"write_paused", "drain", "resume_reading"}
    send = inspect.getsource(RequestResponseCycle.send)
    assert "if self.flow.write_paused and not self.disconnected:\n            await self.flow.drain()" in send
    assert send.count("await ") == 1
    assert send.index("await self.flow.drain()") < send.index("if self.disconnected:\n            return")
    run = inspect.getsource(RequestResponseCycle.run_asgi)
    assert "elif not self.response_complete and not self.disconnected:" in run
    assert "elif not self.response_started and not self.disconnected:" in run
    assert "self.cycle.disconnected = True" in inspect.getsource(HttpToolsProtocol.connection_lost)


def test_a_head_leaves_with_its_body_or_at_the_end_of_the_loop_turn() -> None:
    async def run() -> tuple[bytes, bytes, bytes, bytes]:
        """What the peer has after each write: nothing while the head is held."""
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        wrapped = HeadWithBody(transport, loop)  # type: ignore[arg-type]

        def received() -> bytes:
            try:
                return theirs.recv(65536)
            except BlockingIOError:
                return b""

        got = []
        for data in (CONTINUE, b"head", b"body", b"more"):
            wrapped.write(data)
            got.append(received())
        transport.close()
        theirs.close()
        return got[0], got[1], got[2], got[3]

    # 100 Continue comes before the response: it goes straight through.
    assert asyncio.run(run()) == (CONTINUE, b"", b"headbody", b"more")


def test_a_head_without_a_body_yet_leaves_at_the_end_of_the_loop_turn() -> None:
    async def run() -> tuple[bytes, bytes]:
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        wrapped = HeadWithBody(transport, loop)  # type: ignore[arg-type]
        wrapped.write(b"head")
        try:
            before = theirs.recv(65536)
        except BlockingIOError:
            before = b""
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        after = await loop.sock_recv(theirs, 65536)
        transport.close()
        theirs.close()
        return before, after

    assert asyncio.run(run()) == (b"", b"head")
def _methods_using(attribute: str) -> dict[str, set[str]]:
    """Per method of uvicorn's protocol, what it calls on `self.<attribute>`."""
    used: dict[str, set[str]] = {}
    for name, method in inspect.getmembers(WebSocketsSansIOProtocol, inspect.isfunction):
        calls = set(re.findall(rf"self\.{attribute}\.(\w+)", inspect.getsource(method)))
        if calls:
            used[name] = calls
    return used


def test_uvicorn_uses_only_what_our_lighter_queue_and_event_have() -> None:
    queue_calls = set().union(*_methods_using("queue").values())
    assert {"put_nowait", "get"} <= queue_calls <= {"put_nowait", "get", "empty", "qsize"}, queue_calls
    writable_calls = set().union(*_methods_using("writable").values())
    assert writable_calls <= {"set", "clear", "wait", "is_set"}, writable_calls
    init = inspect.getsource(WebSocketsSansIOProtocol.__init__)
    assert "asyncio.Queue()" in init and "asyncio.Event()" in init  # unbounded: put_nowait never waits


def test_uvicorn_reads_the_handshake_only_while_it_is_under_way() -> None:
    for attribute in ("request", "response"):
        users = {
            name
            for name, method in inspect.getmembers(WebSocketsSansIOProtocol, inspect.isfunction)
            if f"self.{attribute}" in inspect.getsource(method)
        }
        assert users <= {"handle_connect", "send"}, users
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    # In send: only in the accept branch, taken before the handshake is complete.
    assert send.index("if not self.handshake_complete and self.initial_response is None:") < send.index(
        "self.response"
    )
    assert send.rindex("self.response") < send.index("self.start_keepalive()")


def test_the_lean_queue_hands_out_every_item_in_order_to_waiting_getters() -> None:
    async def scenario() -> list[object]:
        queue: LeanQueue[int] = LeanQueue()
        first = asyncio.create_task(queue.get())
        second = asyncio.create_task(queue.get())
        cancelled = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        cancelled.cancel()
        for item in (1, 2, 3):
            queue.put_nowait(item)
        got: list[object] = [await first, await second]
        assert queue.qsize() == 1 and not queue.empty()
        got.append(await queue.get())
        assert queue.empty()
        return got

    assert asyncio.run(scenario()) == [1, 2, 3]


def test_the_lean_event_wakes_every_waiter_and_can_be_cleared() -> None:
    async def scenario() -> tuple[bool, bool]:
        event = LeanEvent()
        waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        event.set()
        assert all(await asyncio.gather(*waiters))
        event.clear()
        was_set = event.is_set()
        event.set()
        return was_set, await event.wait()

    assert asyncio.run(scenario()) == (False, True)


def test_a_refused_handshake_is_over_once_its_body_is_sent() -> None:
    # What WebSocketProtocol.send relies on to mark an HTTP refusal complete
    # (tests/test_errors.py test_refused_handshakes sees no error logged).
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    refusal = send[send.index('if message["type"] == "websocket.http.response.body":') :]
    assert "self.close_sent = True" in refusal
    run = inspect.getsource(WebSocketsSansIOProtocol.run_asgi)
    assert "if not self.handshake_complete:" in run
    assert "returned without completing handshake" in run
    assert "if self.initial_response or self.handshake_complete:" in inspect.getsource(
        WebSocketsSansIOProtocol.send_500_response
    )


def test_uvicorn_decodes_each_whole_text_message_where_ours_checks_it() -> None:
    # WebSocketProtocol.send_receive_event_to_app checks a text message first.
    source = inspect.getsource(WebSocketsSansIOProtocol.send_receive_event_to_app)
    assert 'data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)' in source
    assert 'if self.curr_msg_data_type == "text":' in source
    assert '"text": data.decode()' in source
    for handler in (WebSocketsSansIOProtocol.handle_text, WebSocketsSansIOProtocol.handle_cont):
        assert "self.send_receive_event_to_app()" in inspect.getsource(handler)
    assert "assert self.conn.close_sent is not None" in inspect.getsource(WebSocketsSansIOProtocol.handle_parser_exception)


def _client_frame(opcode: int, payload: bytes) -> bytes:
    # RFC 6455 5.2: FIN, the opcode, masked (a zero mask leaves the payload as it is).
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_a_text_message_that_is_not_utf8_closes_with_1007_and_logs_nothing(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    answers = []
    # Alone, and with the client's own close in the same read (uvicorn's
    # close then raised on a closing connection: "Fatal error on transport").
    for then in (b"", _client_frame(0x8, b"\x03\xe8")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"GET /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101 ")
            sock.sendall(_client_frame(0x1, b'{"op": "\xff"}') + then)
            received = head.partition(b"\r\n\r\n")[2]
            while chunk := sock.recv(4096):
                received += chunk
        answers.append(received)
    reason = b"a text message must be UTF-8"
    assert answers[0] == bytes([0x88, 2 + len(reason)]) + (1007).to_bytes(2) + reason
    assert answers[1].startswith(b"\x88")  # the close answering the client's
    assert [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR] == []


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


def test_uvicorn_closes_a_websocket_as_our_close_does_but_waits_for_the_buffer_first() -> None:
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    assert send.index("await self.writable.wait()") < send.index('elif message["type"] == "websocket.close":')
    close = send[send.index('elif message["type"] == "websocket.close":\n                    if not self.transport.is_closing():') :]
    for line in (
        'self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})',
        "self.conn.send_close(code, reason)",
        "self.close_sent = True",
        "self.transport.resume_reading()",
        "self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)",
    ):
        assert line in close, line
    assert "self.close_timeout = 10.0" in inspect.getsource(WebSocketsSansIOProtocol.__init__)
    assert CLOSE_SECONDS == 10.0
    handle_close = inspect.getsource(WebSocketsSansIOProtocol.handle_close)
    assert handle_close.index("if self.close_sent:") < handle_close.index("self.close_timer.cancel()")
    assert "if self.close_timer is None:" in inspect.getsource(WebSocketsSansIOProtocol.run_asgi)


def test_uvicorn_keeps_the_transport_it_is_given_and_hands_it_on() -> None:
    made = inspect.getsource(HttpToolsProtocol.connection_made)
    assert "self.transport = transport" in made
    upgrade = inspect.getsource(HttpToolsProtocol.handle_websocket_upgrade)
    assert "protocol.connection_made(self.transport)" in upgrade
    assert "self.transport.set_protocol(protocol)" in upgrade


def test_uvicorn_runs_workers_as_serve_does_and_replaces_them_where_the_supervisor_looks() -> None:
    run = inspect.getsource(uvicorn_run)
    assert "sock = config.bind_socket()\n            Multiprocess(config, sockets=[sock]).run()" in run
    loop = inspect.getsource(Multiprocess.run)
    assert "self.handle_signals()\n            self.keep_subprocess_alive()" in loop
    for method in (Multiprocess.keep_subprocess_alive, Multiprocess.restart_all):
        assert "self.processes[idx] = " in inspect.getsource(method)
    assert "self.processes.pop()" in inspect.getsource(Multiprocess.handle_ttou)
    assert "restart_all" in inspect.getsource(Multiprocess.handle_hup)
    assert issubclass(Supervisor, Multiprocess)


def test_uvicorn_raises_each_captured_signal_again_after_serving() -> None:
    """What uvicorn_server.Server assumes: dropping SIGTERM from the
    captured signals before capture_signals' yield returns spares the
    process from dying of it."""
    source = inspect.getsource(UvicornServer.capture_signals)
    assert source.index("yield") < source.index("for captured_signal in reversed(self._captured_signals)")
    assert "signal.raise_signal(captured_signal)" in source
    assert "self._captured_signals.append(sig)" in inspect.getsource(UvicornServer.handle_exit)
