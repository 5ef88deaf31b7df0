"""What internals/uvicorn_websocket.py assumes of uvicorn's websockets-sansio protocol."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import TypeVar

import pytest
import uvicorn
import websockets
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn._types import WebSocketReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from graphql_todos.internals.uvicorn_close import CLOSE_SECONDS
from graphql_todos.internals.uvicorn_websocket import (
    _BURST_FRAMES,
    Burst,
    LeanEvent,
    OpenedServer,
    WebSocketProtocol,
    _text_frame_header,
    _whole_text,
    _write_frame,
    _write_open,
    direct_write,
    open_write,
)
from tests.helpers import Server

T = TypeVar("T")


def test_uvicorn_sansio_protocol_has_what_direct_write_uses() -> None:
    init = inspect.getsource(WebSocketsSansIOProtocol.__init__)
    for attribute in ("self.conn =", "self.writable =", "self.disconnected =", "self.close_sent ="):
        assert attribute in init
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    # Its own frames: one synchronous transport.write each, after awaiting writable.
    assert send.index("await self.writable.wait()") < send.index("self.conn.send_text(text_data.encode())")
    assert "self.transport.write(b\"\".join(output))" in send
    assert "self.app(self.scope, self.receive, self.send)" in inspect.getsource(WebSocketsSansIOProtocol.run_asgi)


def test_our_frame_header_is_the_one_websockets_writes() -> None:
    for length in (0, 125, 126, 65535, 65536):
        data = b"x" * length
        theirs = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
        assert _text_frame_header(length) + data == theirs


def test_direct_write_is_used_under_the_server_config(server: Server) -> None:
    # The app's own server config picks the protocol direct_write knows.
    assert server._uvicorn is not None
    assert server._uvicorn.config.ws is WebSocketProtocol
    protocol = server._uvicorn.config.ws_protocol_class
    assert protocol is not None and issubclass(protocol, WebSocketsSansIOProtocol)


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


def _methods_using(attribute: str) -> dict[str, set[str]]:
    """Per method of uvicorn's protocol, what it calls on `self.<attribute>`."""
    used: dict[str, set[str]] = {}
    for name, method in inspect.getmembers(WebSocketsSansIOProtocol, inspect.isfunction):
        calls = set(re.findall(rf"self\.{attribute}\.(\w+)", inspect.getsource(method)))
        if calls:
            used[name] = calls
    return used


def test_uvicorn_uses_only_what_our_lighter_queue_and_event_have() -> None:
    used = _methods_using("queue")
    # Its one reader, `receive`, is ours (WebSocketProtocol.receive).
    assert used.pop("receive") == {"get", "empty"}
    queue_calls = set().union(*used.values())
    assert "put_nowait" in queue_calls and queue_calls <= {"put_nowait", "empty", "qsize"}, queue_calls
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


def _protocol() -> WebSocketProtocol:
    """Our protocol on the running loop, opened, reading through a transport that records pauses and resumes."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    config = uvicorn.Config(app, ws=WebSocketProtocol, ws_per_message_deflate=False, lifespan="off")
    config.load()
    protocol = WebSocketProtocol(config, ServerState(), {}, asyncio.get_running_loop(), opened=True)
    protocol.transport = _Reading()  # type: ignore[assignment]
    return protocol


def test_the_lean_queue_hands_out_every_item_in_order_to_waiting_receives() -> None:
    async def scenario() -> list[object]:
        protocol = _protocol()
        queue = protocol.queue

        def item(text: str) -> WebSocketReceiveEvent:
            return {"type": "websocket.receive", "text": text}

        first = asyncio.create_task(protocol.receive())
        second = asyncio.create_task(protocol.receive())
        cancelled = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        cancelled.cancel()
        for text in ("1", "2", "3"):
            queue.put_nowait(item(text))
        got: list[object] = [await first, await second]
        assert queue.qsize() == 1 and not queue.empty()
        got.append(await protocol.receive())
        # Empty, it keeps no list of items (an open socket's queue, nearly always), nor getters.
        assert queue.empty() and queue.qsize() == 0 and queue._items is None and queue._getters == []
        # None waiting: said so, and taken by the next receive.
        assert queue.handed(item("4")) is False
        got.append(await protocol.receive())
        waiting = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        assert queue.handed(item("5")) is True
        got.append(await waiting)
        return [message["text"] for message in got if isinstance(message, dict)]

    assert asyncio.run(scenario()) == ["1", "2", "3", "4", "5"]


def test_a_receive_cancelled_after_its_message_came_leaves_it_first_for_the_next() -> None:
    async def scenario() -> list[object]:
        protocol = _protocol()
        queue = protocol.queue
        waiting = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        assert queue.handed({"type": "websocket.receive", "text": "1"}) is True
        # Cancelled before it could return its message; another comes behind it.
        waiting.cancel()
        assert queue.handed({"type": "websocket.receive", "text": "2"}) is False
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert waiting.cancelled()
        got: list[object] = [await protocol.receive(), await protocol.receive()]
        # Cancelled while it waits: forgotten, and the next message is the next receive's.
        gone = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        assert queue._getters == [] and queue._items is None
        assert queue.handed({"type": "websocket.receive", "text": "3"}) is False
        got.append(await protocol.receive())
        return [message["text"] for message in got if isinstance(message, dict)]

    assert asyncio.run(scenario()) == ["1", "2", "3"]


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


def _statements(function: Callable[..., object]) -> list[str]:
    """A function's body, a line each, stripped, without comments."""
    lines = inspect.getsource(function).splitlines()[1:]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_uvicorn_queues_a_message_and_pauses_reading_as_ours_does_but_for_every_message() -> None:
    # WebSocketProtocol.send_receive_event_to_app is uvicorn's, whole (but
    # its UTF-8 answer, and no pause for a message a receive waits for).
    assert _statements(WebSocketsSansIOProtocol.send_receive_event_to_app) == [
        'data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)',
        "self.frames = []",
        "if self.close_sent:",
        "return",
        'if self.curr_msg_data_type == "text":',
        "try:",
        'self.queue.put_nowait({"type": "websocket.receive", "text": data.decode()})',
        "except UnicodeDecodeError:  # pragma: no cover",
        'self.logger.exception("Invalid UTF-8 sequence received from client.")',
        "self.conn.send_close(1007)",
        "self.handle_parser_exception()",
        "return",
        "else:",
        'self.queue.put_nowait({"type": "websocket.receive", "bytes": data})',
        "if not self.read_paused:",
        "self.read_paused = True",
        "self.transport.pause_reading()",
    ]
    # Once paused, reading resumes as the app takes the last message queued.
    assert _statements(WebSocketsSansIOProtocol.receive) == [
        "message = await self.queue.get()",
        "if self.read_paused and self.queue.empty():",
        "self.read_paused = False",
        "self.transport.resume_reading()",
        "return message",
    ]
    for handler in (WebSocketsSansIOProtocol.handle_text, WebSocketsSansIOProtocol.handle_cont):
        assert "self.send_receive_event_to_app()" in inspect.getsource(handler)
    assert "assert self.conn.close_sent is not None" in inspect.getsource(WebSocketsSansIOProtocol.handle_parser_exception)


class _Reading:
    """A transport that records pauses and resumes of reading."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


def test_reading_pauses_for_a_message_no_receive_waits_for_and_resumes_once_it_is_taken() -> None:
    async def scenario() -> list[tuple[object, list[str]]]:
        protocol = _protocol()
        transport = protocol.transport
        assert isinstance(transport, _Reading)
        seen: list[tuple[object, list[str]]] = []

        def arrives(kind: str, *frames: bytes) -> None:
            protocol.curr_msg_data_type = kind  # type: ignore[assignment]
            protocol.frames = list(frames)
            protocol.send_receive_event_to_app()
            assert protocol.frames == []

        # A receive waiting: taken at the next turn, reading never paused.
        waiting = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        arrives("text", b'{"type":', b'"ping"}')
        seen.append((await waiting, list(transport.calls)))
        # None waiting: paused until it is taken, then resumed; as uvicorn's.
        arrives("bytes", b"\x01")
        arrives("text", b"two")
        seen.append(("queued", list(transport.calls)))
        seen.append((await protocol.receive(), list(transport.calls)))
        seen.append((await protocol.receive(), list(transport.calls)))
        # Once the app has closed: dropped.
        protocol.close_sent = True
        arrives("text", b"late")
        seen.append((protocol.queue.qsize(), list(transport.calls)))
        return seen

    assert asyncio.run(scenario()) == [
        ({"type": "websocket.receive", "text": '{"type":"ping"}'}, []),
        ("queued", ["pause"]),
        ({"type": "websocket.receive", "bytes": b"\x01"}, ["pause"]),
        ({"type": "websocket.receive", "text": "two"}, ["pause", "resume"]),
        (0, ["pause", "resume"]),
    ]


def test_a_second_message_in_the_same_turn_pauses_reading_though_a_receive_was_waiting() -> None:
    # One socket read can bring many messages: the waiting receive takes the
    # first (at the loop's next turn); the rest pile up with no one waiting,
    # so reading pauses at the second, not after the whole burst.
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        protocol = _protocol()
        transport = protocol.transport
        assert isinstance(transport, _Reading)
        waiting = asyncio.create_task(protocol.receive())
        await asyncio.sleep(0)
        after: list[str] = []
        for text in (b"1", b"2", b"3"):
            protocol.curr_msg_data_type = "text"
            protocol.frames = [text]
            protocol.send_receive_event_to_app()
            after.append(",".join(transport.calls))
        got = [await waiting, await protocol.receive(), await protocol.receive()]
        return after, [str(message.get("text")) for message in got], transport.calls

    after, texts, calls = asyncio.run(scenario())
    assert after == ["", "pause", "pause"]
    assert texts == ["1", "2", "3"] and calls == ["pause", "resume"]


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


def _served(app: Callable[[Scope, Receive, Send], Awaitable[None]], client: Callable[[str], Awaitable[T]]) -> T:
    """client(url) against a real uvicorn with our protocol serving app."""

    async def scenario() -> T:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, ws=WebSocketProtocol, ws_per_message_deflate=False, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            return await client(f"ws://127.0.0.1:{listener.getsockname()[1]}/")
        finally:
            server.should_exit = True
            await serving

    return asyncio.run(scenario())


def test_a_burst_writes_its_frames_in_order_at_the_end_of_the_turn_and_drops_a_closed_ones() -> None:
    # Taken now, written once the turn ends (nothing on the wire before),
    # in order, before what a task woken in that turn writes; once the
    # app has closed, taken and dropped, as direct_write does.
    seen: dict[str, object] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        protocol = websocket._receive.__self__  # type: ignore[attr-defined]
        burst = Burst()
        framing = burst.writer(websocket)
        assert framing is not None
        # Each frame made of its head, body and tail: a body of 150 bytes
        # makes a frame whose header gives its length in two bytes more.
        write = framing(b'{"n":', b"}")
        written = protocol.transport.get_write_buffer_size()
        seen["taken"] = [write(b"1"), write(b'"' + b"2" * 150 + b'"')]
        seen["held"] = protocol.transport.get_write_buffer_size() == written and burst._frames != []
        woken = asyncio.get_running_loop().create_future()
        woken.add_done_callback(lambda _: asyncio.ensure_future(websocket.send_text('{"n":3}')))
        woken.set_result(None)
        await asyncio.sleep(0.05)
        await websocket.close(4000, "done")
        seen["closed"] = write(b"4")
        await asyncio.sleep(0)
        seen["left"] = burst._frames

    async def client(url: str) -> list[str | bytes]:
        async with websockets.connect(url) as ws:
            received = [await ws.recv() for _ in range(3)]
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()  # the app's close, and nothing before it
            return received

    messages = _served(app, client)
    assert messages == ['{"n":1}', '{"n":"' + "2" * 150 + '"}', '{"n":3}']
    assert seen == {"taken": [True, True], "held": True, "closed": True, "left": []}


def test_a_burst_flushes_without_failing_when_a_transport_closed_before_the_turn_ended() -> None:
    # Taken while open; the transport closes in the same turn (its
    # connection_lost not yet run, so the connection still looks open): the
    # transport takes the write without raising, which would lose the
    # other connections' frames of the burst.
    failures: list[dict[str, object]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        asyncio.get_running_loop().set_exception_handler(lambda _, context: failures.append(context))
        protocol = websocket._receive.__self__  # type: ignore[attr-defined]
        framing = Burst().writer(websocket)
        assert framing is not None and framing(b"", b"")(b'{"n":1}')
        protocol.transport.close()
        await asyncio.sleep(0.05)

    async def client(url: str) -> type[BaseException] | None:
        async with websockets.connect(url) as ws:
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return type(closed)
        return None

    assert _served(app, client) is not None
    assert failures == []


def _open_protocol(written: list[bytes]) -> SimpleNamespace:
    """What the writes read of an open, writable connection whose transport
    appends each write to `written`."""
    protocol = SimpleNamespace(
        disconnected=False, close_sent=False, conn=SimpleNamespace(_state=State.OPEN),
        writable=LeanEvent(), transport=SimpleNamespace(write=written.append),
    )
    protocol.writable.set()
    return protocol


def test_a_burst_holding_its_most_frames_writes_them_at_once_and_the_rest_at_the_end_of_the_turn() -> None:
    # A turn that takes many rows (the hub's reads of a big UPDATE) keeps
    # the sends going: the held frames go out as their count reaches
    # _BURST_FRAMES, in order, each once; what follows waits for the turn's end.
    written: list[bytes] = []
    protocol = _open_protocol(written)

    def frame(n: int) -> bytes:
        return _text_frame_header(len(b'{"n":%d}' % n)) + b'{"n":%d}' % n

    async def turn() -> list[int]:
        write = Burst()._framing(protocol, b'{"n":', b"}")  # type: ignore[arg-type]
        counts = []
        for n in range(_BURST_FRAMES + 1):
            assert write(b"%d" % n)
            counts.append(len(written))
        await asyncio.sleep(0)
        return [*counts, len(written)]

    counts = asyncio.run(turn())
    assert counts == [0] * (_BURST_FRAMES - 1) + [_BURST_FRAMES, _BURST_FRAMES, _BURST_FRAMES + 1]
    assert written == [frame(n) for n in range(_BURST_FRAMES + 1)]


def test_direct_and_open_writes_frame_a_message_as_websockets_does() -> None:
    written: list[bytes] = []
    protocol = _open_protocol(written)
    for length in (0, 1, 125, 126, 127, 65535, 65536):
        data = b"x" * length
        theirs = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
        for write in (_write_frame, _write_open):
            assert write(protocol, data) is True  # type: ignore[arg-type]
            assert written.pop() == theirs


def test_open_write_writes_to_an_open_socket_and_leaves_a_closed_one_to_the_asgi_send() -> None:
    # A real uvicorn with our protocol: written while open; once the app has
    # closed, open_write declines (the ASGI send raises, as on a lost
    # connection) where a broadcast's direct_write drops the frame.
    seen: dict[str, bool] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        write, drop = open_write(websocket), direct_write(websocket)
        assert write is not None and drop is not None
        seen["open"] = write(b'{"type":"connection_ack"}')
        await websocket.close(4000, "done")
        seen["closed"], seen["dropped"] = write(b"{}"), drop(b"{}")

    async def client(url: str) -> tuple[str | bytes, int | None]:
        async with websockets.connect(url) as ws:
            message = await ws.recv()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        return message, closed.value.rcvd.code if closed.value.rcvd else None

    message, code = _served(app, client)
    assert message == '{"type":"connection_ack"}' and code == 4000
    assert seen == {"open": True, "closed": False, "dropped": True}


def test_a_bursts_checks_read_what_the_state_property_and_is_set_return() -> None:
    # Burst, _write_frame and _write_open read `conn._state` for websockets' `state` property, and
    # `writable._value` for `is_set()` (ours, LeanEvent, and asyncio's Event).
    protocol = ServerProtocol()
    states = []
    for state in (State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED):
        protocol.state = state
        states.append((protocol.state, protocol._state))
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    protocol.send_close(CloseCode.NORMAL_CLOSURE)
    states.append((protocol.state, protocol._state))
    assert all(seen is read for seen, read in states) and states[-1][0] is State.CLOSING
    for event in (LeanEvent(), asyncio.Event()):
        values = [(event.is_set(), vars(event)["_value"])]
        event.set()
        values.append((event.is_set(), vars(event)["_value"]))
        event.clear()
        values.append((event.is_set(), vars(event)["_value"]))
        assert values == [(False, False), (True, True), (False, False)]


def _masked(head: int, payload: bytes, mask: bytes = b"\x12\x34\x56\x78", length: bytes | None = None) -> bytes:
    """A client's frame: `head` the first byte, `length` the length bytes (by default the shortest)."""
    if length is None:
        length = bytes([0x80 | len(payload)]) if len(payload) < 126 else b"\xfe" + len(payload).to_bytes(2)
    return bytes([head]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_whole_text_frame_read_without_the_parser_is_what_websockets_parser_reads() -> None:
    # Every frame _whole_text reads, websockets' parser reads as one final
    # text frame with the same payload, and nothing else; it reads a
    # client's messages (short, and 16-bit lengths), and leaves every other
    # frame, and any frame the parser is not idle for, to the parser.
    logger = logging.getLogger("uvicorn.error")
    message = b'{"type":"connection_init","payload":{}}'
    taken = {
        "short": _masked(0x81, message),
        "empty": _masked(0x81, b""),
        "16-bit length": _masked(0x81, b"x" * 300),
        "16-bit length of a short payload": _masked(0x81, message, length=b"\xfe" + len(message).to_bytes(2)),
        "not UTF-8 (uvicorn's check follows)": _masked(0x81, b"\xff\xfe"),
    }
    left = {
        "binary": _masked(0x82, message),
        "not final": _masked(0x01, message),
        "continuation": _masked(0x80, message),
        "ping": _masked(0x89, b""),
        "close": _masked(0x88, b"\x03\xe8"),
        "a reserved bit": _masked(0xC1, message),
        "unmasked": b"\x81" + bytes([len(message)]) + message,
        "64-bit length": _masked(0x81, message, length=b"\xff" + len(message).to_bytes(8)),
        "over the limit": _masked(0x81, b"x" * 1001),
        "two frames": _masked(0x81, b"a") + _masked(0x81, b"b"),
        "part of a frame": _masked(0x81, message)[:-1],
        "a frame and a part": _masked(0x81, b"a") + b"\x81",
        "a header alone": b"\x81",
    }
    for name, data in {**taken, **left}.items():
        theirs = OpenedServer(1000, logger)
        theirs.receive_data(data)
        frames = theirs.events_received()
        text = _whole_text(OpenedServer(1000, logger), data)
        assert (text is not None) is (name in taken), name
        if text is not None:
            assert frames == [Frame(Opcode.TEXT, text)] and theirs.parser_exc is None, name
            assert theirs.data_to_send() == [] and theirs.state is State.OPEN, name
    # Idle only: not after part of a frame, in a fragmented message, closing,
    # with extensions, or logging frames.
    busy = {
        "part of a frame": lambda conn: conn.receive_data(b"\x81\x85"),
        "fragmented": lambda conn: conn.receive_data(_masked(0x01, b"a")),
        "closing": lambda conn: conn.send_close(CloseCode.GOING_AWAY),
        "extensions": lambda conn: setattr(conn, "extensions", [object()]),
        "debug": lambda conn: setattr(conn, "debug", True),
    }
    for name, make_busy in busy.items():
        conn = OpenedServer(1000, logger)
        assert _whole_text(conn, taken["short"]) == message
        make_busy(conn)
        assert _whole_text(conn, taken["short"]) is None, name
    # Between frames, as at the start, it is idle again.
    conn = OpenedServer(1000, logger)
    conn.receive_data(_masked(0x89, b"") + _masked(0x81, b"a"))
    assert conn.events_received() == [Frame(Opcode.PING, b""), Frame(Opcode.TEXT, b"a")]
    assert _whole_text(conn, taken["short"]) == message
