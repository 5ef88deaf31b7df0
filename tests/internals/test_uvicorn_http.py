"""What internals/uvicorn_http.py assumes of uvicorn's HTTP protocol."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from graphql_todos.internals.uvicorn_close import BoundedClose, close_seconds
from graphql_todos.internals.uvicorn_http import (
    CLEAN_KEPT,
    CONTINUE,
    CleanHeaders,
    HeadWithBody,
    HttpProtocol,
    LeanCycle,
    LeanFlow,
    _uvicorns_headers_complete,
    arrived,
    arrived_whole,
    http_protocol,
)
from tests.helpers import serving


def test_uvicorns_http_shutdown_lets_a_response_in_progress_run_on() -> None:
    source = inspect.getsource(HttpToolsProtocol.shutdown)
    assert "self.cycle.keep_alive = False" in source
    assert "self.app_state =" in inspect.getsource(HttpToolsProtocol.__init__)


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


def test_the_access_line_is_built_only_when_the_connections_access_log_is_on() -> None:
    assert "self.access_log = self.access_logger.hasHandlers()" in inspect.getsource(HttpToolsProtocol.__init__)
    assert "access_log=self.access_log," in inspect.getsource(HttpToolsProtocol.on_headers_complete)
    send = inspect.getsource(RequestResponseCycle.send)
    assert "if self.access_log:\n                self.access_logger.info(" in send
    assert send.count("get_path_with_query_string(") == 1


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


def test_uvicorn_keeps_the_transport_it_is_given_and_hands_it_on() -> None:
    made = inspect.getsource(HttpToolsProtocol.connection_made)
    assert "self.transport = transport" in made
    upgrade = inspect.getsource(HttpToolsProtocol.handle_websocket_upgrade)
    assert "protocol.connection_made(self.transport)" in upgrade
    assert "self.transport.set_protocol(protocol)" in upgrade


def test_uvicorn_checks_each_response_header_by_its_modules_two_patterns() -> None:
    send = inspect.getsource(RequestResponseCycle.send)
    assert 'if HEADER_RE.search(name):\n                    raise RuntimeError("Invalid HTTP header name.")' in send
    assert 'if HEADER_VALUE_RE.search(value):\n                    raise RuntimeError("Invalid HTTP header value.")' in send
    # Looked up where the door puts its CleanHeaders, at every response.
    assert RequestResponseCycle.send.__globals__ is vars(httptools_impl)
    assert isinstance(httptools_impl.HEADER_RE, CleanHeaders)
    assert isinstance(httptools_impl.HEADER_VALUE_RE, CleanHeaders)


def _head(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The head uvicorn's send writes for a 200 with `headers`."""
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

    class Flow:
        write_paused = False

    logger = logging.getLogger(__name__)
    cycle = RequestResponseCycle(
        scope={"method": "GET"},  # type: ignore[typeddict-item]
        transport=Transport(),  # type: ignore[arg-type]
        flow=Flow(),  # type: ignore[arg-type]
        logger=logger,
        access_logger=logger,
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )
    asyncio.run(cycle.send({"type": "http.response.start", "status": 200, "headers": headers}))
    return b"".join(written)


def test_a_bad_header_is_refused_every_time_and_a_clean_one_goes_out_as_it_is() -> None:
    clean = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    for _ in range(2):
        assert _head(clean) == b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"
        with pytest.raises(RuntimeError, match="Invalid HTTP header name"):
            _head([(b"x bad", b"1")])
        with pytest.raises(RuntimeError, match="Invalid HTTP header value"):
            _head([(b"x-bad", b"1\r\nset-cookie: a=b")])


def test_clean_headers_answer_as_the_pattern_and_keep_no_more_than_clean_kept() -> None:
    pattern = re.compile(b"[\x00-\x1f]")
    clean = CleanHeaders(pattern)
    values = [b"a", b"b\n", b"a", b"b\n", *(str(n).encode() for n in range(CLEAN_KEPT + 5)), b"a"]
    for value in values:
        found = clean.search(value)
        expected = pattern.search(value)
        assert (found is None) == (expected is None) and (found is None or found.group() == expected.group())  # type: ignore[union-attr]
    assert b"b\n" not in clean and 0 < len(clean) <= CLEAN_KEPT


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("not called")


def _loaded() -> uvicorn.Config:
    options: dict[str, Any] = {"http": http_protocol(5)}
    config = uvicorn.Config(_no_app, lifespan="off", **options)
    config.load()
    return config


def test_our_http_protocol_starts_as_uvicorns_does() -> None:
    # HttpProtocol._lean_init: every attribute uvicorn's __init__ sets, to the
    # same value (the parser alike but its own), and the access log on only
    # where the access logger takes info.
    config, state = _loaded(), ServerState()
    loop = asyncio.new_event_loop()
    try:
        theirs = vars(HttpToolsProtocol(config, state, {"k": 1}, loop))
        ours = vars(HttpProtocol(config, state, {"k": 1}, loop, request_seconds=5))
    finally:
        loop.close()
    assert set(ours) == {*theirs, "request_seconds"}
    own = {"parser", "access_log", "request_seconds"}
    assert {k: v for k, v in ours.items() if k not in own} == {k: v for k, v in theirs.items() if k not in own}
    assert type(ours["parser"]) is type(theirs["parser"])
    assert ours["access_log"] == (theirs["access_log"] and logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO))


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX], ids=["ipv4", "ipv6", "unix"])
def test_our_http_connection_is_made_as_uvicorns_is(
    family: socket.AddressFamily, loop_factory: Callable[[], asyncio.AbstractEventLoop], tmp_path: Path
) -> None:
    # connection_made: the same addresses (the transport's, where uvicorn
    # asks the socket), scheme and flow control as uvicorn's (its transport
    # our BoundedClose), and the connection counted.
    async def made() -> tuple[dict[str, Any], dict[str, Any], bool]:
        loop = asyncio.get_running_loop()
        config, state = _loaded(), ServerState()
        listener = socket.socket(family)
        address: Any = {socket.AF_UNIX: str(tmp_path / "s"), socket.AF_INET6: ("::1", 0)}.get(family, ("127.0.0.1", 0))
        listener.bind(address)
        listener.listen()
        client = socket.socket(family)
        client.connect(listener.getsockname())
        accepted, _ = listener.accept()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, accepted)
        try:
            theirs = HttpToolsProtocol(config, state, {}, loop)
            theirs.connection_made(transport)  # type: ignore[arg-type]
            ours = HttpProtocol(config, state, {}, loop, request_seconds=5)
            ours.connection_made(transport)  # type: ignore[arg-type]
            counted = ours in state.connections
            ours.connection_lost(None)
            return vars(theirs), vars(ours), counted
        finally:
            transport.close()
            client.close()
            listener.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        theirs, ours, counted = runner.run(made())
    assert counted
    for name in ("server", "client", "scheme"):
        assert ours[name] == theirs[name], name
    assert ours["server"] is not None and (family == socket.AF_UNIX) == (ours["client"] is None)
    assert isinstance(ours["transport"], BoundedClose) and ours["transport"]._transport is theirs["transport"]
    assert type(ours["flow"]) is LeanFlow and ours["flow"]._transport is ours["transport"]
    # The close timeout asked once, for the BoundedClose and a WebSocket upgraded from here.
    assert ours["_close_seconds"] == close_seconds({}) == ours["transport"]._seconds
    # uvicorn's connection_made sets no more than ours does.
    made_source = inspect.getsource(HttpToolsProtocol.connection_made)
    assert set(re.findall(r"self\.(\w+) = ", made_source)) == {"transport", "flow", "server", "client", "scheme"}


def test_a_lean_flow_pauses_and_drains_as_uvicorns_does() -> None:
    # LeanFlow makes its writable event only at a first pause: the same
    # answers as FlowControl's through pauses and resumes of both kinds,
    # a drain waiting exactly while writing is paused.
    async def life(flow_class: type[FlowControl]) -> list[object]:
        seen: list[object] = []
        transport = SimpleNamespace(pause_reading=lambda: seen.append("pause"), resume_reading=lambda: seen.append("resume"))
        flow = flow_class(transport)  # type: ignore[arg-type]

        async def drained() -> bool:
            drain = asyncio.ensure_future(flow.drain())
            for _ in range(3):
                await asyncio.sleep(0)
            done = drain.done()
            drain.cancel()
            return done

        seen.append(await drained())
        flow.resume_writing()
        flow.pause_reading()
        flow.pause_reading()
        flow.resume_reading()
        for _ in range(2):
            flow.pause_writing()
            flow.pause_writing()
            seen.append((flow.write_paused, await drained()))
            drain = asyncio.ensure_future(flow.drain())
            await asyncio.sleep(0)
            flow.resume_writing()
            await asyncio.wait_for(drain, 1)
            seen.append((flow.write_paused, await drained()))
        return [*seen, flow.read_paused]

    assert asyncio.run(life(LeanFlow)) == asyncio.run(life(FlowControl)) == [
        True, "pause", "resume", (True, False), (False, True), (True, False), (False, True), False]
    # FlowControl reads its event in these methods only, as LeanFlow's do.
    source = inspect.getsource(FlowControl)
    reads = {name for name, method in vars(FlowControl).items()
             if callable(method) and "self._is_writable_event" in inspect.getsource(method)}
    assert reads == {"__init__", "drain", "pause_writing", "resume_writing"}
    assert "await self._is_writable_event.wait()" in source
    resume = inspect.getsource(FlowControl.resume_writing)
    assert "if self.write_paused:" in resume and "self._is_writable_event.set()" in resume


def test_our_data_received_parses_as_uvicorns_does() -> None:
    # HttpProtocol.data_received does uvicorn's (after its head count)
    # inline: these steps, and no more.
    source = inspect.getsource(HttpToolsProtocol.data_received)
    steps = re.findall(r"^ {8}(\S.*)$", source, re.MULTILINE)
    assert steps == [
        "self._unset_keepalive_if_required()", "try:", "except httptools.HttpParserError:",
        "except httptools.HttpParserUpgrade:",
    ]
    inner = re.findall(r"^ {12}(\S.*)$", source, re.MULTILINE)
    assert inner == [
        "self.parser.feed_data(data)", 'msg = "Invalid HTTP request received."', "self.logger.warning(msg)",
        "self.send_400_response(msg)", "return", "if self._should_upgrade():", "else:",
    ]
    assert re.findall(r"^ {16}(\S.*)$", source, re.MULTILINE) == [
        "self.handle_websocket_upgrade()", "self._unsupported_upgrade_warning()"]
    unset = inspect.getsource(HttpToolsProtocol._unset_keepalive_if_required)
    assert "if self.timeout_keep_alive_task is not None:" in unset
    assert "self.timeout_keep_alive_task.cancel()" in unset and "self.timeout_keep_alive_task = None" in unset


def test_a_request_httptools_cannot_parse_is_answered_400_as_uvicorn_answers_it(db_dsn: str) -> None:
    with serving(db_dsn) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n")
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    # In the Error shape (_refuse_unparsed), naming what httptools found.
    assert answer.endswith(b'\r\n\r\n{"error": {"code": "BAD_REQUEST", "message": "invalid HTTP request: Invalid header token"}}'), answer


def test_each_connection_has_its_own_head_deadline(db_dsn: str) -> None:
    # HttpProtocol's HeadWatch: one timer for the loop's connections, each
    # cut off at its own deadline, in the order they were armed. A connection
    # that sends nothing is cut off at REQUEST_SECONDS (3 here); one that
    # connected 1.5 s later is still open then, and answers its request.
    with serving(db_dsn, request_seconds=3) as server, socket.create_connection(("127.0.0.1", server.port)) as first:
        time.sleep(1.5)
        with socket.create_connection(("127.0.0.1", server.port)) as second:
            first.settimeout(10)
            assert first.recv(1) == b""
            second.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            second.settimeout(10)
            assert second.recv(65536).startswith(b"HTTP/1.1 200")


_START = "http.response.start"
_BODY = "http.response.body"
# Responses as apps send them, the usual and every turn uvicorn's send takes.
_RESPONSES: list[list[dict[str, Any]]] = [
    [{"type": _START, "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]},
     {"type": _BODY, "body": b"{}"}],
    [{"type": _START, "status": 201, "headers": [(b"Content-Length", b"5"), (b"content-length", b"9")]},
     {"type": _BODY, "body": b"ab", "more_body": True}, {"type": _BODY, "body": b"cde"}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b" 3 ")]}, {"type": _BODY, "body": b"abc"}],
    [{"type": _START, "status": 200, "headers": [(b"content-type", b"text/event-stream")]},
     {"type": _BODY, "body": b"data: 1", "more_body": True}, {"type": _BODY, "body": b""}],
    [{"type": _START, "status": 204}, {"type": _BODY}],
    [{"type": _START, "status": 304, "headers": [(b"etag", b"x")]}, {"type": _BODY}],
    [{"type": _START, "status": 200, "headers": [(b"connection", b"close"), (b"content-length", b"0")]}, {"type": _BODY}],
    [{"type": _START, "status": 200, "headers": [(b"transfer-encoding", b"chunked")]}, {"type": _BODY, "body": b"x"}],
    [{"type": _START, "status": 200, "headers": [[b"content-length", b"1"]]}, {"type": _BODY, "body": b"x"}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b"x")]}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b"2")]}, {"type": _BODY, "body": b"abc"}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b"3")]}, {"type": _BODY, "body": b"ab"}],
    [{"type": _START, "status": 200, "headers": [(b"x bad", b"1")]}],
    [{"type": _START, "status": 200, "headers": [(b"x-bad", b"1\r\n")]}],
    [{"type": _START, "status": 600}],
    [{"type": _BODY, "body": b"x"}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b"1")]}, {"type": _START, "status": 200}],
    [{"type": _START, "status": 200, "headers": [(b"content-length", b"0")]}, {"type": _BODY}, {"type": _BODY}],
]


def _sent(cls: type[RequestResponseCycle], messages: list[dict[str, Any]], method: str, keep_alive: bool) -> list[Any]:
    """What a cycle of `cls` writes, closes, calls back and raises at each
    message, and its state after it."""
    seen: list[Any] = []

    class Transport:
        def write(self, data: bytes) -> None:
            seen.append(("write", data))

        def close(self) -> None:
            seen.append("close")

    class Flow:
        write_paused = False

    logger = logging.getLogger(__name__)
    cycle = cls(
        scope={"method": method},  # type: ignore[typeddict-item]
        transport=Transport(),  # type: ignore[arg-type]
        flow=Flow(),  # type: ignore[arg-type]
        logger=logger,
        access_logger=logger,
        access_log=False,
        default_headers=[(b"date", b"Sun, 06 Dec 2026 00:00:00 GMT"), (b"server", b"uvicorn")],
        message_event=asyncio.Event(),
        expect_100_continue=True,
        keep_alive=keep_alive,
        on_response=lambda: seen.append("response"),
    )
    for message in messages:
        try:
            asyncio.run(cycle.send(message))  # type: ignore[arg-type]
        except (RuntimeError, ValueError, KeyError) as exc:
            seen.append(repr(exc))
        state = {k: v for k, v in vars(cycle).items() if k not in ("transport", "flow", "on_response", "message_event")}
        seen.append((state, cycle.message_event.is_set()))
    return seen


@pytest.mark.parametrize("messages", _RESPONSES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close"])
def test_a_lean_cycle_sends_as_uvicorns_does(messages: list[dict[str, Any]], method: str, keep_alive: bool) -> None:
    # Twice: the second time from the lines HeadLines kept.
    for _ in range(2):
        assert _sent(LeanCycle, messages, method, keep_alive) == _sent(RequestResponseCycle, messages, method, keep_alive)


def test_our_protocol_makes_a_lean_cycle_by_uvicorns_own_code() -> None:
    # uvicorn's on_headers_complete, run with its module's names but for
    # the cycle's class; LeanCycle is uvicorn's cycle but for its send.
    code = HttpToolsProtocol.on_headers_complete.__code__
    assert _uvicorns_headers_complete.__code__ is code
    found = _uvicorns_headers_complete.__globals__
    for name in set(code.co_names) & set(vars(httptools_impl)):
        assert found[name] is (LeanCycle if name == "RequestResponseCycle" else vars(httptools_impl)[name]), name
    assert "RequestResponseCycle" in code.co_names
    assert "__init__" not in vars(LeanCycle) and "__slots__" not in vars(LeanCycle)
    # Python 3.13 gives every class __firstlineno__ and __static_attributes__.
    made = {"__doc__", "__module__", "__firstlineno__", "__static_attributes__"}
    assert set(vars(LeanCycle)) - set(vars(object)) <= {"send", "_head"} | made


def lean_cycle(event: asyncio.Event) -> LeanCycle:
    """A LeanCycle as uvicorn's on_headers_complete makes one, for a POST."""

    class Flow:
        write_paused = False

        def resume_reading(self) -> None:
            pass

    logger = logging.getLogger(__name__)
    return LeanCycle(
        scope={"method": "POST"},  # type: ignore[typeddict-item]
        transport=None,  # type: ignore[arg-type]
        flow=Flow(),  # type: ignore[arg-type]
        logger=logger,
        access_logger=logger,
        access_log=False,
        default_headers=[],
        message_event=event,
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )


def test_arrived_says_when_uvicorns_receive_answers_without_waiting() -> None:
    # uvicorn's receive() awaits nothing but the cycle's message_event, and
    # that only while the request is on; its message ends the request's
    # body when more_body is False (on_message_complete), or the request.
    source = inspect.getsource(RequestResponseCycle.receive)
    assert source.count("await ") == 1
    assert "if not self.disconnected and not self.response_complete:" in source
    assert "await self.message_event.wait()" in source
    assert '"more_body": self.more_body' in source

    def at_once(cycle: LeanCycle) -> dict[str, Any] | None:
        """receive()'s message if it answers without suspending, else None."""
        steps = cycle.receive().__await__()
        try:
            steps.send(None)
        except StopIteration as done:
            return cast(dict[str, Any], done.value)
        steps.close()
        return None

    async def run() -> list[tuple[bool, bool, bool, bool]]:
        seen = []
        for state in ("waiting", "part", "body", "disconnected", "complete"):
            event = asyncio.Event()
            cycle = lean_cycle(event)
            if state in ("part", "body"):
                # As on_body, then (for the whole body) on_message_complete, leave it.
                cycle.body, cycle.more_body = bytearray(b"{}"), state == "part"
                event.set()
            cycle.disconnected = state == "disconnected"
            cycle.response_complete = state == "complete"
            said = arrived(cycle.receive), arrived_whole(cycle.receive)
            message = at_once(cycle)
            seen.append((*said, message is not None, message is not None and not message.get("more_body", False)))
        return seen

    # arrived: receive() answers at once; arrived_whole: with the last message.
    assert asyncio.run(run()) == [
        (False, False, False, False), (True, False, True, False), (True, True, True, True),
        (True, True, True, True), (True, True, True, True),
    ]
    # Any other receive is never taken for arrived.
    event = asyncio.Event()
    event.set()

    async def receive() -> dict[str, Any]:
        return {}

    assert not arrived(receive) and not arrived_whole(receive)
    assert not arrived(_plain_cycle(event).receive) and not arrived_whole(_plain_cycle(event).receive)


def _plain_cycle(event: asyncio.Event) -> RequestResponseCycle:
    lean = lean_cycle(event)
    cycle = RequestResponseCycle.__new__(RequestResponseCycle)
    vars(cycle).update(vars(lean))
    return cycle


def test_uvicorn_reads_a_target_from_url_and_headers_in_lower_case() -> None:
    """What HttpProtocol._absolute_target rewrites before uvicorn's
    on_headers_complete reads them: `url` (the target, parsed there) and
    `headers` (the scope's own list, each name lowered by on_header)."""
    assert "httptools.parse_url(self.url)" in inspect.getsource(HttpToolsProtocol.on_headers_complete)
    header = inspect.getsource(HttpToolsProtocol.on_header)
    assert "name = name.lower()" in header and "self.headers.append((name, value))" in header
    assert '"headers": self.headers,' in inspect.getsource(HttpToolsProtocol.on_message_begin)
