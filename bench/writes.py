"""The database floor: raw NOTIFY latency, and INSERT rates with concurrent writers."""

from __future__ import annotations

import asyncio
import time

import psycopg


async def notify_latency(dsn: str, n: int, statement: str) -> list[float]:
    """Seconds from sending `statement` (formatted with {i}) to a plain psycopg listener having its NOTIFY."""
    samples = []
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as writer,
    ):
        await listener.execute("LISTEN bench_raw")
        await listener.execute('LISTEN "postgraphile:todos"')
        await listener.execute("LISTEN todo_changes")
        for i in range(n):
            start = time.perf_counter()
            await writer.execute(statement.format(i=i))  # type: ignore[arg-type]
            async for _ in listener.notifies(stop_after=1, timeout=5):
                samples.append(time.perf_counter() - start)
    return samples


async def insert_rate(dsn: str, writers: int, seconds: float) -> float:
    """Single-row autocommit INSERTs per second from `writers` connections at once."""
    deadline = time.monotonic() + seconds

    async def write() -> int:
        count = 0
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                await conn.execute("INSERT INTO todos (title) VALUES ('rate')")
                count += 1
        return count

    start = time.monotonic()
    counts = await asyncio.gather(*(write() for _ in range(writers)))
    return sum(counts) / (time.monotonic() - start)
