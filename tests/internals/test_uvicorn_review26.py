"""internals/uvicorn_http.py's head count, read by read (data_received called
with the reads a test chooses: over a socket the loopback cuts them at 64 KB):
the read that ends a body answered before it was whole, and begins a head."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from graphql_todos.internals.uvicorn_http import HttpProtocol, http_protocol


async def _unauthorized(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An answer without reading the body (as a 401 before any credential)."""
    await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"no"})


def test_the_read_ending_an_answered_body_is_not_counted_as_the_next_head() -> None:
    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        options: dict[str, Any] = {"http": http_protocol(5)}
        config = uvicorn.Config(_unauthorized, lifespan="off", **options)
        config.load()
        client, server = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, server)
        protocol = HttpProtocol(config, ServerState(), {}, loop, request_seconds=5)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        try:
            protocol.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + b"x" * 1000)
            await asyncio.sleep(0.05)  # answered: 401, its body not read
            protocol.data_received(b"x" * 99_000)
            # One read: 100 KB of that body (over MAX_HEAD_BYTES), then a head begun.
            protocol.data_received(b"x" * 100_000 + b"GET / HTTP/1.1\r\nHo")
            protocol.data_received(b"st: a\r\n\r\n")
            await asyncio.sleep(0.05)
            client.setblocking(False)
            return client.recv(65536)
        finally:
            transport.close()
            client.close()

    answers = asyncio.run(run())
    assert answers.count(b"HTTP/1.1 401 ") == 2, answers
    assert b" 431 " not in answers, answers
