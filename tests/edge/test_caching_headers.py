"""negotiation.stamped and the Cached layer: what an answer tells caches,
joined to what it already says (tests/test_caching.py walks a real server)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from graphql_todos.edge.negotiation import (
    IMMUTABLE,
    LIVE,
    PAGE,
    PRIVATE,
    STATIC,
    STREAM,
    Cached,
    caching_of,
    stamped,
)

Headers = list[tuple[bytes, bytes]]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-type", b"application/json")], [
            (b"content-type", b"application/json"), (b"vary", b"Accept, Authorization, Cookie"), (b"cache-control", b"no-store"),
        ]),
        # CORS's Vary kept, the names joined to it (case does not make a name new).
        ([(b"vary", b"Origin"), (b"content-type", b"application/json")], [
            (b"vary", b"Origin, Accept, Authorization, Cookie"), (b"content-type", b"application/json"), (b"cache-control", b"no-store"),
        ]),
        ([(b"Vary", b"accept, Origin")], [(b"vary", b"accept, Origin, Authorization, Cookie"), (b"cache-control", b"no-store")]),
        # Several lines are one list: one line of each comes out.
        ([(b"vary", b"Accept"), (b"cache-control", b"no-cache"), (b"vary", b"Cookie"), (b"x", b"y")], [
            (b"vary", b"Accept, Cookie, Authorization"), (b"cache-control", b"no-cache, no-store"), (b"x", b"y"),
        ]),
        # no-store is put on whatever the answer said; one it says already is not said twice.
        ([(b"cache-control", b"public, max-age=60")], [(b"cache-control", b"public, max-age=60, no-store"), (b"vary", b"Accept, Authorization, Cookie")]),
        ([(b"cache-control", b"No-Store"), (b"vary", b"Accept, Authorization, Cookie")], [
            (b"cache-control", b"No-Store"), (b"vary", b"Accept, Authorization, Cookie"),
        ]),
    ],
)
def test_private_answers_say_who_chose_them_and_that_none_may_keep_them(headers: Headers, expected: Headers) -> None:
    assert stamped(headers, PRIVATE) == expected
    # Stamping twice changes nothing: a layer behind another that stamped leaves it be.
    assert stamped(expected, PRIVATE) == expected


def test_an_answer_that_says_its_own_cache_control_keeps_it_unless_forced() -> None:
    assert stamped([(b"cache-control", b"max-age=5")], PAGE) == [(b"cache-control", b"max-age=5"), (b"vary", b"Accept")]
    assert stamped([], STATIC) == [(b"cache-control", b"no-cache")]
    assert stamped([(b"cache-control", b"no-cache, no-transform")], STREAM)[0] == (
        b"cache-control", b"no-cache, no-transform, no-store"
    )


@pytest.mark.parametrize(
    ("path", "status", "headers", "caching"),
    [
        ("/assets/index-AbCd1234.js", 200, [], IMMUTABLE),
        ("/assets/index-AbCd1234.js", 304, [], IMMUTABLE),
        ("/assets/not-there.js", 404, [], LIVE),
        ("/", 200, [(b"content-type", b"text/html")], STATIC),
        ("/sw.js", 200, [], STATIC),
        ("/healthz", 503, [], LIVE),
        ("/graphql", 200, [(b"content-type", b"text/html; charset=utf-8")], PAGE),
        ("/graphql", 401, [(b"content-type", b"application/json")], PRIVATE),
        ("/api/todos/", 200, [], PRIVATE),
        ("/nowhere", 404, [], PRIVATE),
        ("/metrics", 200, [], PRIVATE),
    ],
)
def test_each_kind_of_answer_is_told_its_caching(path: str, status: int, headers: Headers, caching: object) -> None:
    assert caching_of(path, status, headers) is caching


def _through(method: str, path: str, start: Headers) -> list[Message]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(start)})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "method": method, "path": path, "headers": []}

    async def run() -> None:
        await Cached(app)(scope, receive, send)

    asyncio.run(run())
    return sent


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_layer_tells_every_read(method: str) -> None:
    start = _through(method, "/api/todos/", [(b"content-type", b"application/json"), (b"vary", b"Origin")])[0]
    assert start["headers"] == stamped([(b"content-type", b"application/json"), (b"vary", b"Origin")], PRIVATE)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_layer_leaves_other_methods_answers_as_they_are(method: str) -> None:
    # No cache keeps them (RFC 9111 section 3), and the write door
    # (graphql/fast/write_door.py), which this layer is not in front of,
    # must answer the writes it takes as the stack does.
    start = _through(method, "/api/todos/", [(b"content-type", b"application/json")])[0]
    assert start["headers"] == [(b"content-type", b"application/json")]
