"""The database floor: raw NOTIFY latency, INSERT rates with concurrent
writers, and writers at a set rate (the load beside a read benchmark)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import psycopg

PEER_SQL = Path(__file__).resolve().parent / "peer.sql"
# The tables whose INSERT rates make bench's database case compares, in its
# report's order: ours (the journal triggers), the peers' (bench/peer.sql:
# two plain NOTIFY triggers) and the peers' without its triggers.
INSERT_TABLES = ("ours", "peers", "none")
# And, where the server can decode, ours in JOURNAL=decoded, its sequencer journaling.
DECODED_INSERTS = "decoded"


def as_peer(dsn: str, notify: bool = True) -> None:
    """Make a database migrated as ours into the peers' (bench/peer.sql);
    without `notify`, with no trigger left on todos but todos_touch (which
    fires on UPDATE only)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PEER_SQL.read_text())  # type: ignore[call-overload]
        if not notify:
            conn.execute("DROP TRIGGER todos_notify ON todos; DROP TRIGGER todo_notify ON todos")


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


async def insert_rate(
    dsn: str,
    writers: int,
    seconds: float,
    statement: str = "INSERT INTO todos (title) VALUES ('rate')",
    params: Callable[[uuid.UUID, int], dict[str, Any]] | None = None,
) -> float:
    """Autocommit writes per second from `writers` connections at once:
    single-row INSERTs, or `statement` with `params` of each connection's
    client id and the write's number (from 1)."""
    deadline = time.monotonic() + seconds

    async def write() -> int:
        client, count = uuid.uuid4(), 0
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                count += 1
                await conn.execute(statement, None if params is None else params(client, count))  # type: ignore[arg-type]
        return count

    start = time.monotonic()
    counts = await asyncio.gather(*(write() for _ in range(writers)))
    return sum(counts) / (time.monotonic() - start)


class PacedWriters:
    """`writers` threads, each INSERTing `rate / writers` rows a second in
    autocommit, until stopped: the load beside a read benchmark."""

    def __init__(self, dsn: str, writers: int, rate: float) -> None:
        self._dsn, self._writers, self._interval = dsn, writers, writers / rate
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.inserted = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self._threads = [threading.Thread(target=self._write, daemon=True) for _ in range(self._writers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _write(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            due = time.monotonic()
            while not self._stop.is_set():
                conn.execute("INSERT INTO todos (title) VALUES ('paced')")
                with self._lock:
                    self.inserted += 1
                due += self._interval
                # Behind schedule (a slow commit): go on at once, but never
                # make up more than one interval's worth in a burst.
                due = max(due, time.monotonic() - self._interval)
                self._stop.wait(max(0.0, due - time.monotonic()))
