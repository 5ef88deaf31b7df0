"""RFC 9112 3.2.2: a request whose target is in absolute form (`GET
http://host:port/path HTTP/1.1`) is judged by the target's authority, its
Host header ignored (internals/uvicorn_http.py `_absolute_target`): by the
Host check, the Origin checks (a WebSocket's, a cookie's write), and the
route. Over raw sockets, on a real server."""

from __future__ import annotations

import json
import socket

import pytest

from tests.helpers import Server
from tests.rest import test_openapi_refusals as refusals
from tests.rest.test_openapi_refusals import Answer, _answer
from tests.test_refusals_before_the_app import KEY

server, ann, bearer = refusals.server, refusals.ann, refusals.bearer


def _ask(server: Server, target: str, host: str, *headers: str, method: str = "GET", body: bytes = b"") -> Answer:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return _answer(sock)


def test_a_target_for_another_host_is_refused_whatever_host_says(server: Server) -> None:
    ours = f"127.0.0.1:{server.port}"
    answer = _ask(server, "http://evil.example/healthz", ours)
    assert answer.status == 421, answer.body
    assert "evil.example" in json.loads(answer.body)["error"]["message"]
    assert _ask(server, "http://evil.example:80/healthz?x=1", ours).status == 421


@pytest.mark.parametrize("target", ["http://{ours}/healthz", "http://{ours}/healthz?x=1", "HTTP://{ours}/healthz"])
def test_a_target_for_this_host_is_answered_whatever_host_says(server: Server, target: str) -> None:
    answer = _ask(server, target.format(ours=f"127.0.0.1:{server.port}"), "evil.example")
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"status": "ok"}


def test_a_target_without_a_path_is_the_root(server: Server, bearer: str) -> None:
    """http://host is http://host/ (RFC 9110 4.2.3): the page, not a 400."""
    answer = _ask(server, f"http://localhost:{server.port}", "evil.example")
    assert answer.status in (200, 503), answer.body  # the page, or the note that it is not built


def test_the_number_of_host_lines_still_counts(server: Server) -> None:
    """RFC 9112 3.2: several Host lines are refused, none in HTTP/1.1 too (400)."""
    target = f"http://127.0.0.1:{server.port}/healthz"
    assert _ask(server, target, "evil.example", "Host: other.example").status == 400
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        assert _answer(sock).status == 400


def test_a_write_by_cookie_is_from_our_origin_when_its_target_says_so(server: Server, ann: object) -> None:
    """The CSRF check compares Origin with the target's authority, not Host."""
    cookie = "; ".join(f"{name}={value}" for name, value in ann.http.cookies.items())  # type: ignore[attr-defined]
    ours = f"localhost:{server.port}"
    body = b'{"title": "by the target"}'
    headers = (f"Cookie: {cookie}", f"Origin: http://{ours}", "Content-Type: application/json")
    made = _ask(server, f"http://{ours}/api/lists/", f"127.0.0.1:{server.port}", *headers, method="POST",
                body=b'{"name": "by the target"}')
    assert made.status == 201, made.body
    # And the converse: Host is ours and the Origin's, the target another of ours.
    refused = _ask(server, f"http://127.0.0.1:{server.port}/api/lists/", ours, *headers, method="POST", body=body)
    assert refused.status == 403, refused.body


def test_a_handshake_is_upgraded_by_its_target_and_its_origin(server: Server, bearer: str) -> None:
    ours = f"localhost:{server.port}"
    handshake = ("Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13",
                 f"Authorization: {bearer}", f"Origin: http://{ours}")
    for target, host, status in [
        (f"http://{ours}/api/feed/", f"127.0.0.1:{server.port}", 101),
        (f"http://{ours}/api/feed/?x=1", "evil.example", 101),
        (f"http://127.0.0.1:{server.port}/api/feed/", ours, 403),  # Origin is not the target's
        ("http://evil.example/api/feed/", ours, 421),
    ]:
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", *handshake]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            assert _answer(sock).status == status, (target, host)
