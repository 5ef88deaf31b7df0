"""Headers a client sends, read in time linear in their length: a parse
quadratic in a header holds the one event loop (every client of the
process) for seconds from a single request of MAX_HEAD_BYTES. Each bound is
on growth, not on time: the same work at n and 4n bytes, the best of a few
runs each, takes about 4 times as long when linear and 16 when quadratic."""

from __future__ import annotations

import gc
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import SESSION_COOKIE, Access
from graphql_todos.edge.guard import origin_allowed
from tests.helpers import TOKEN, Server, errors_logged, serving

# Linear work grows 4 times from n to 4n, quadratic 16: between the two.
GROWTH = 8.0


def growth(work: Callable[[int], object], n: int, repeats: int = 3, clock: Callable[[], float] = time.thread_time) -> float:
    """How many times longer work(4 * n) takes than work(n), each the best of
    `repeats` (the best is the one least disturbed by a loaded machine), the
    collector off: a collection walks the whole heap of the test's process,
    which is no part of the work measured. In this thread's CPU time unless
    told (a server's work is its thread's: `server_cpu`), so neither another
    process nor another thread taking the CPU or the GIL counts."""

    def best(size: int) -> float:
        times = []
        for _ in range(repeats):
            start = clock()
            work(size)
            times.append(clock() - start)
        return min(times)

    collecting = gc.isenabled()
    gc.disable()
    try:
        small = best(n)
        return best(4 * n) / small
    finally:
        if collecting:
            gc.enable()


def server_cpu(server: Server) -> Callable[[], float]:
    """The clock of the CPU time the server's thread (its event loop) has used."""
    assert server._thread is not None and server._thread.ident is not None
    clock = time.pthread_getcpuclockid(server._thread.ident)
    return lambda: time.clock_gettime(clock)


def exchange(server: Server, head: bytes) -> bytes:
    """Send a request's head (Connection: close) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


def _request(path: str, *headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- Cookie: starlette's cookie_parser unquotes every value with
# http.cookies._unquote, quadratic in a quoted value's backslashes before
# Python 3.11.10 (CVE-2024-7592): 58 KB of `x="\a\a..."` held the loop 8 s.

def _backslashes(n: int, name: str = SESSION_COOKIE) -> str:
    return f'{name}="' + "\\a" * (n // 2) + '"'


def _secret(access: Access, cookie: str) -> str | None:
    return access.session_secret({"type": "http", "scheme": "http"}, Headers(raw=[(b"cookie", cookie.encode("latin-1"))]))


@pytest.mark.parametrize("name", [SESSION_COOKIE, "other"])
def test_the_session_cookie_is_read_in_time_linear_in_the_header(name: str) -> None:
    access = Access(Settings(auth="accounts"))
    assert _secret(access, _backslashes(10)) == "a" * 5
    # 16 KiB and the best of 7: at 4 KiB (0.35 ms of work) the best of 3
    # once read 8.2 on a loaded machine, where this parse grows 3.9 to 4.1.
    assert growth(lambda n: _secret(access, _backslashes(n, name)), 16384, repeats=7) < GROWTH


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(['"', "\\", ";", "=", " ", "\t", "0", "3", "7", "8", "a", SESSION_COOKIE]), max_size=40).map("".join))
def test_the_session_cookie_is_what_starlettes_cookie_parser_reads(cookie: str) -> None:
    access = Access(Settings(auth="accounts"))
    assert _secret(access, cookie) == (cookie_parser(cookie).get(SESSION_COOKIE) or None)


@pytest.fixture(scope="module")
def accounts(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, auth="accounts", token=TOKEN) as server:
        yield server


def test_a_cookie_of_backslashes_is_refused_in_time_linear_in_its_length(accounts: Server) -> None:
    def refused(n: int) -> None:
        assert exchange(accounts, _request("/api/todos/", f"Cookie: {_backslashes(n, 'x')}")).startswith(b"HTTP/1.1 401 ")

    assert growth(refused, 12_000, clock=server_cpu(accounts)) < GROWTH


# -- Origin: urlsplit raises ValueError on a bracket left open ("Invalid IPv6
# URL"): a WebSocket handshake's Origin of `http://[` was a 500 and a traceback.

@pytest.mark.parametrize("origin", [b"http://[", b"http://]", b"http://[::1", b"http://[" + b":" * 1000])
def test_an_origin_that_is_no_url_is_not_allowed(origin: bytes) -> None:
    assert origin_allowed(Headers(raw=[(b"host", b"127.0.0.1:8000"), (b"origin", origin)]), ()) is False


def test_a_websocket_handshake_with_an_origin_that_is_no_url_is_refused(accounts: Server) -> None:
    upgrade = (
        "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13", "Origin: http://[",
    )
    with errors_logged() as errors:
        for path in ("/graphql", "/api/todos/"):  # (a socket route: another path is 404 before any check)
            answer = exchange(accounts, _request(path, *upgrade))
            assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
            assert b"FORBIDDEN" in answer
    assert errors == []


def test_growth_tells_linear_from_quadratic() -> None:
    """The bound itself: a quadratic parse (the cookie's, as it was) fails it."""

    def quadratic(n: int) -> None:
        text = "a" * n
        for i in range(0, n, 8):
            text.find("b", i)

    assert growth(quadratic, 16384) > GROWTH
