"""edge/access.py: the Authorization a request brings, read as Headers.get reads it."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import Headers

from graphql_todos.core.people import OPEN
from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import Access, authorization

TOKEN = "s3cret"


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"host", b"example")],
        [(b"authorization", b"Bearer s3cret")],
        [(b"authorization", b"bearer s3cret"), (b"host", b"example")],
        [(b"authorization", b"Bearer wrong")],
        # The first of the name, as Headers.get finds it.
        [(b"authorization", b"Bearer s3cret"), (b"authorization", b"Bearer wrong")],
        [(b"authorization", b"Bearer wrong"), (b"authorization", b"Bearer s3cret")],
        [(b"authorization", "Bearer s3cr\xe9t".encode("latin-1"))],
    ],
)
def test_the_token_is_read_from_the_first_authorization_as_headers_get_reads_it(raw: list[tuple[bytes, bytes]]) -> None:
    access = Access(Settings(token=TOKEN))
    headers = Headers(raw=raw)
    expected = OPEN if access.allows(headers.get("authorization")) else None
    scope = {"type": "websocket", "headers": raw}
    assert asyncio.run(access.authenticate(scope, headers)) is expected
    assert access.remembered(scope, headers) is expected
    # Without it, connection_init's payload may bring it.
    assert asyncio.run(access.authenticate(scope, headers, f"Bearer {TOKEN}")) is OPEN


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
        [(b"host", b"h"), (b"authorization", "Bearer \xe9\xff".encode("latin-1"))],
        [(b"authorization", "Bearer é".encode())],
        [(b"authorization", b"")],
    ],
)
def test_authorization_is_what_headers_get_finds(raw: list[tuple[bytes, bytes]]) -> None:
    # The header itself, not only the answer to it: a token is compared as
    # read (a byte past ASCII read otherwise than latin-1 passed the test above).
    assert authorization(raw) == Headers(raw=raw).get("authorization")
