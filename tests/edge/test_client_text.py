"""What a client wrote in a header comes back in an error's message as it
wrote it (edge/error_handlers.header_text): HTTP hands header values over as
latin-1, clients write UTF-8, and a JSON body is UTF-8 (RFC 8259). Sent as
raw bytes over a real socket, so nothing between re-encodes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import BEARER, TOKEN, Server, raw_exchange, serving

AUTH = f"Authorization: {BEARER['Authorization']}\r\n".encode()


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, token=TOKEN) as srv:
        yield srv


def _answer(server: Server, target: str, headers: bytes, method: str = "GET", body: bytes = b"") -> tuple[int, Any]:
    head = f"{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n".encode()
    reply = raw_exchange(server, head + headers + b"\r\n" + body)
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2].decode())


def _message(answer: Any) -> str:
    message: str = answer["error"]["message"] if "error" in answer else answer["errors"][0]["message"]
    return message


@pytest.mark.parametrize(
    ("target", "status"),
    [("/api/todos/", 406), ("/api/feed/", 406), ("/graphql?query=%7Btodos%7Bid%7D%7D", 406)],
)
def test_an_accept_is_quoted_as_sent(server: Server, target: str, status: int) -> None:
    code, answer = _answer(server, target, b"Host: localhost\r\n" + AUTH + "Accept: text/日本\r\n".encode())
    assert code == status
    assert "Accept: text/日本 " in _message(answer)


@pytest.mark.parametrize(("host", "named"), [("日本.example".encode(), "'日本.example'"), (b"caf\xe9.example", "'café.example'")])
def test_a_host_is_quoted_as_sent(server: Server, host: bytes, named: str) -> None:
    # (A value that is not UTF-8 is read as HTTP's own latin-1.)
    code, answer = _answer(server, "/api/todos/", b"Host: " + host + b"\r\n" + AUTH)
    assert code == 421
    assert named in _message(answer)


def test_a_last_event_id_is_quoted_as_sent(server: Server) -> None:
    headers = b"Host: localhost\r\n" + AUTH + "Accept: text/event-stream\r\nLast-Event-ID: é\r\n".encode()
    for target in ("/api/feed/", "/api/todos/"):
        code, answer = _answer(server, target, headers)
        assert (code, _message(answer)) == (400, "after is not a known cursor: 'é'"), target


def test_an_idempotency_key_is_quoted_as_sent(server: Server) -> None:
    headers = b"Host: localhost\r\n" + AUTH + "Content-Type: application/json\r\nIdempotency-Key: 日本\r\n".encode()
    code, answer = _answer(server, "/api/todos/", headers, "POST", b'{"title": "x"}')
    assert code == 400
    assert "'日本'" in _message(answer)


def test_a_sessions_user_agent_is_kept_as_sent(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts") as accounts, httpx.Client(base_url=accounts.url, timeout=20) as client:
        agent = "Navigateur été 日本"
        signed = client.post(
            "/api/auth/sign-up", json={"username": "ana", "password": "a long enough password"},
            headers={b"User-Agent": agent.encode()},
        )
        assert signed.status_code in (200, 201), signed.text
        assert [s["user_agent"] for s in client.get("/api/sessions/").json()] == [agent]
