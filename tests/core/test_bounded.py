from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from graphql_todos.core.bounded import LRU, bounded_send
from graphql_todos.core.errors import ClientStalled


def test_the_least_recently_used_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the oldest
    cache.put("c", 3)
    assert "b" not in cache
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)


def test_size_zero_keeps_nothing() -> None:
    cache: LRU[str, int] = LRU(0)
    cache.put("a", 1)
    assert len(cache) == 0
    assert cache.get("a", -1) == -1


def test_none_is_kept_and_made_once() -> None:
    cache: LRU[str, int | None] = LRU(4)
    made: list[str] = []

    def make() -> None:
        made.append("x")

    assert cache.get_or_make("x", make) is None
    assert cache.get_or_make("x", make) is None
    assert made == ["x"]
    assert "x" in cache and cache.get("x", 7) is None


def test_pop_and_clear_forget() -> None:
    cache: LRU[int, str] = LRU(3)
    cache.put(1, "one")
    cache.put(2, "two")
    assert cache.pop(1) == "one"
    assert cache.pop(1) is None
    cache.clear()
    assert len(cache) == 0


@asynccontextmanager
async def _peer(reads: bool) -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
    """A real TCP peer that reads everything, or nothing; yields a send to it (write, then drain)."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while reads and await reader.read(65536):
            pass
        await done.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer.transport.set_write_buffer_limits(high=4096)

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    try:
        yield send
    finally:
        done.set()
        writer.transport.abort()
        server.close()
        await server.wait_closed()


def test_a_send_the_peer_takes_goes_through() -> None:
    async def main() -> None:
        async with _peer(reads=True) as send:
            for _ in range(64):
                await bounded_send(send(b"x" * 65536), 5.0)

    asyncio.run(main())


def test_a_peer_that_stopped_reading_is_stalled() -> None:
    async def main() -> ClientStalled:
        async with _peer(reads=False) as send:
            with pytest.raises(ClientStalled) as stalled:
                # The kernel's buffers fill first; then drain waits, and the bound ends it.
                for _ in range(10_000):
                    await bounded_send(send(b"x" * 65536), 0.2)
        return stalled.value

    assert asyncio.run(main()).seconds == 0.2
