"""edge/guard.py's origin_allowed: a WebSocket handshake's Origin, read as Headers.get reads it."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from graphql_todos.edge.guard import origin_allowed

LISTED = ("https://app.example",)


@pytest.mark.parametrize(
    ("raw", "allowed"),
    [
        ([(b"host", b"127.0.0.1:8000")], True),  # no Origin: no browser
        ([], True),
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")], True),  # our own
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"HTTP://127.0.0.1:8000")], True),
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"https://app.example/")], True),  # listed
        # Either in any case: an Origin's scheme and host name are.
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"HTTPS://APP.example")], True),
        ([(b"host", b"LocalHost:8000"), (b"origin", b"http://LOCALHOST:8000")], True),
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"https://evil.example")], False),
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"null")], False),
        ([(b"origin", b"http://127.0.0.1:8000")], False),  # no Host to be ours
        # The first of each name, as Headers.get finds it.
        ([(b"host", b"127.0.0.1:8000"), (b"origin", b"https://evil.example"), (b"origin", b"https://app.example")], False),
        ([(b"host", b"evil.example"), (b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")], False),
        ([(b"origin", b"https://app.example"), (b"origin", b"https://evil.example")], True),
    ],
)
def test_an_origin_is_allowed_when_it_is_the_hosts_own_or_listed(raw: list[tuple[bytes, bytes]], allowed: bool) -> None:
    headers = Headers(raw=raw)
    assert origin_allowed(headers, LISTED) is allowed
    # As Starlette's Headers read it.
    origin = headers.get("origin")
    expected = origin is None or origin.lower().rstrip("/") in LISTED or (
        origin.lower().split("//", 1)[-1] == headers.get("host", "").lower()
    )
    assert expected is allowed
