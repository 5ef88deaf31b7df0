"""What internals/uvicorn_http.py assumes of uvicorn's HTTP protocol."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket

import pytest
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from graphql_todos.internals.uvicorn_http import CLEAN_KEPT, CONTINUE, CleanHeaders, HeadWithBody


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
