"""review26's findings at the front door, provoked over raw sockets on a real
server: an absolute-form target's authority judged in HTTP/1.0 without Host
too, and refused with userinfo or a scheme not HTTP's; an upload answered
before its body was whole never refused as a head; the app's own handshake
refusals kept by no cache, as the ones before it are."""

from __future__ import annotations

import json
import socket
import time

import pytest

from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES
from tests.helpers import Server
from tests.rest import test_openapi_refusals as refusals
from tests.rest.test_openapi_refusals import Answer, _answer
from tests.test_refusals_before_the_app import SOCKETS, SOUND_HANDSHAKE, _unkept, _upgrade

server, ann, bearer, urls = refusals.server, refusals.ann, refusals.bearer, refusals.urls


def _all(sock: socket.socket) -> bytes:
    raw = b""
    while data := sock.recv(65536):
        raw += data
    return raw


def _once(server: Server, request: bytes) -> Answer:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        return Answer(_all(sock))


def test_an_http_1_0_target_for_another_host_is_refused_without_host(server: Server) -> None:
    """HTTP/1.0 needs no Host: the target's authority is the only one, and
    was ignored (the request answered as one with no Host)."""
    refused = _once(server, b"GET http://evil.example/healthz HTTP/1.0\r\n\r\n")
    assert refused.status == 421, refused.body
    assert "evil.example" in json.loads(refused.body)["error"]["message"]
    ours = _once(server, f"GET http://127.0.0.1:{server.port}/healthz HTTP/1.0\r\n\r\n".encode())
    assert ours.status == 200, ours.body
    # Without absolute form, as before: no Host, no authority to judge.
    assert _once(server, b"GET /healthz HTTP/1.0\r\n\r\n").status == 200


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://evil.example@{ours}/healthz", "userinfo"),  # RFC 9110 4.2.4: an error, a phisher's mask
        ("http://user:pass@{ours}/healthz", "userinfo"),
        ("ftp://{ours}/healthz", "ftp"),
        ("ws://{ours}/healthz", "ws"),
    ],
)
def test_a_target_with_userinfo_or_another_scheme_is_refused(server: Server, target: str, words: str) -> None:
    request = f"GET {target.format(ours=f'127.0.0.1:{server.port}')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _once(server, request.encode())
    assert answer.status == 400, answer.body
    body = json.loads(answer.body)
    assert body["error"]["code"] == "BAD_REQUEST" and words in body["error"]["message"], body
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("target", ["https://{ours}/healthz", "HTTPS://{ours}/healthz"])
def test_an_https_target_is_answered(server: Server, target: str) -> None:
    """Behind a proxy that ends TLS the URL is https's: not refused."""
    request = f"GET {target.format(ours=f'127.0.0.1:{server.port}')} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert _once(server, request.encode()).status == 200


@pytest.mark.parametrize("tail", [100_000, 20_000])
def test_an_upload_answered_before_its_body_is_whole_is_not_refused_as_a_head(server: Server, tail: int) -> None:
    """A POST refused (401) before its body came; its body then, and a GET:
    the GET is answered. Its body was counted as a head once the answer
    left (431 once over MAX_HEAD_BYTES: `tail` 20 KB of a 200 KB body),
    or the read that ended it (`tail` 100 KB) taken for the next head's."""
    size = 200_000
    head = (f"POST /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    then = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        assert _answer(sock).status == 401
        sock.sendall(b"x" * (size - tail))
        time.sleep(0.2)
        sock.sendall(b"x" * tail + then[:20])
        time.sleep(0.1)
        sock.sendall(then[20:])
        answer = Answer(_all(sock))
    assert answer.status == 200, (answer.status, answer.body)
    assert answer.body == b'{"status":"ok"}'


def test_a_head_over_the_limit_after_an_early_answered_upload_still_gets_431(server: Server) -> None:
    """The head begun in the read that ended such a body is counted from its
    lines the parser has whole (`_count_begun`): a line it holds unfinished
    there goes uncounted, at most that read; what follows counts."""
    head = (f"POST /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n").encode()
    big = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Big: ".encode() + b"x" * (40_000 + MAX_HEAD_BYTES)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        assert _answer(sock).status == 401
        sock.sendall(b"x" * 1000 + big[:40_000])
        time.sleep(0.1)
        sock.sendall(big[40_000:])
        answer = Answer(_all(sock))
    assert answer.status == 431, (answer.status, answer.body)


@pytest.mark.parametrize("path", SOCKETS)
def test_a_handshake_from_a_foreign_origin_is_refused_and_kept_by_no_cache(
    server: Server, bearer: str, urls: dict[str, str], path: str
) -> None:
    """edge/guard.py `_deny` (SocketGate, both sockets' doors): its 403 says
    what the refusals before the app say (Vary, Cache-Control: no-store)."""
    handshake = (*SOUND_HANDSHAKE, ("Authorization", bearer), ("Origin", "http://evil.example"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_upgrade(server, urls.get(path, path), "GET", "HTTP/1.1", handshake))
        answer = _answer(sock)
    assert answer.status == 403, (path, answer.body)
    assert json.loads(answer.body)["error"]["code"] == "FORBIDDEN"
    _unkept(answer, path)


@pytest.mark.parametrize("first", ["get", "chunked", "upgrade"])
def test_a_whole_head_over_the_limit_read_with_the_one_before_gets_431(server: Server, bearer: str, first: str) -> None:
    """One read: a request (a GET; a POST with a chunked body), then a whole
    head over the limit (or a handshake's): the count stopped at the first
    head's blank line, the second was answered 200 (upgraded)."""
    host = f"Host: 127.0.0.1:{server.port}\r\nAuthorization: {bearer}\r\n"
    before = {
        "get": f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode(),
        "chunked": (f"POST /api/todos/ HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n10\r\n{\"title\": \"big\"}\r\n0\r\n\r\n").encode(),
        "upgrade": f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode(),
    }[first]
    big = f"GET {'/api/feed/' if first == 'upgrade' else '/healthz'} HTTP/1.1\r\n{host}".encode()
    if first == "upgrade":
        big += b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        big += b"Sec-WebSocket-Version: 13\r\n"
    big += b"X-Big: " + b"x" * MAX_HEAD_BYTES + b"\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(before + big)
        raw = _all(sock)
    answer = Answer(raw)
    assert answer.status == (201 if first == "chunked" else 200), raw[:300]
    refused = Answer(answer.body[int(answer.headers["content-length"]):])
    assert refused.status == 431, (refused.status, refused.body[:200])
    assert json.loads(refused.body)["error"]["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    assert refused.headers["connection"] == "close"


def test_a_whole_head_over_the_limit_asked_by_head_gets_431_without_content(server: Server) -> None:
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    big = f"HEAD /healthz HTTP/1.1\r\n{host}X-Big: ".encode() + b"x" * MAX_HEAD_BYTES + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode() + big)
        raw = _all(sock)
    answer = Answer(raw)
    assert answer.status == 200, raw[:300]
    refused = Answer(answer.body[int(answer.headers["content-length"]):])
    assert refused.status == 431, refused.body
    assert int(refused.headers["content-length"]) > 0 and refused.body == b""
