"""Change latency: the raw NOTIFY floor, the trigger, and the app end to end.

    make bench            (or: .venv/bin/python bench/latency.py --out docs/benchmarks.md)

Starts the embedded PostgreSQL in .data/bench (or uses DATABASE_URL), a fresh
database, and the app as a separate `graphql-todos serve` process; all
traffic stays on this machine and every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import websockets
from psycopg.conninfo import make_conninfo

from graphql_todos.embedded import embedded_postgres
from graphql_todos.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "subscription { todoChanges { op cursor todo { id title completed } } }"


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    return f"p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms (n={len(ms)})"


@contextmanager
def database() -> Iterator[str]:
    with (
        contextmanager(lambda: (yield os.environ["DATABASE_URL"]))()
        if os.environ.get("DATABASE_URL")
        else embedded_postgres(ROOT / ".data" / "bench")
    ) as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gt_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE gt_bench")
        dsn = make_conninfo(admin, dbname="gt_bench")
        migrate(dsn)
        try:
            yield dsn
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS gt_bench WITH (FORCE)")


async def raw_floor(dsn: str, n: int, sql: str) -> list[float]:
    """Time from a statement's commit to a plain psycopg listener."""
    listener = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    writer = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await listener.execute("LISTEN bench_raw; LISTEN todo_changes")
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await writer.execute(sql.format(i=i))  # type: ignore[arg-type]
        async for _ in listener.notifies(stop_after=1, timeout=5):
            samples.append(time.perf_counter() - start)
    await listener.close()
    await writer.close()
    return samples


@contextmanager
def app(dsn: str) -> Iterator[str]:
    port = 18765
    # Every subscriber connects from this one address.
    env = {**os.environ, "DATABASE_URL": dsn, "PORT": str(port), "WEB_DIST": "", "MAX_SOCKETS_PER_CLIENT": "2000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphql_todos.cli", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


async def end_to_end(url: str, dsn: str, subscribers: int, changes: int) -> list[float]:
    """Time from INSERT commit until every subscriber has the change."""
    ws_url = url.replace("http", "ws") + "/graphql"
    sockets = []
    for _ in range(subscribers):
        ws = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], max_queue=None)
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        sockets.append(ws)
    await asyncio.sleep(0.5 + subscribers / 1000)
    writer = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    samples = []
    try:
        for i in range(changes):
            start = time.perf_counter()
            await writer.execute("INSERT INTO todos (title) VALUES (%s)", (f"bench {i}",))
            await asyncio.gather(*(asyncio.wait_for(ws.recv(), 10) for ws in sockets))
            samples.append(time.perf_counter() - start)
    finally:
        await writer.close()
        await asyncio.gather(*(ws.close() for ws in sockets))
    return samples


async def insert_rate(dsn: str, seconds: float) -> float:
    writer = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        await writer.execute("INSERT INTO todos (title) VALUES ('rate')")
        count += 1
    await writer.close()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    lines = [
        (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded PostgreSQL'}."
        ),
        "",
        "| path | latency |",
        "|---|---|",
    ]
    with database() as dsn:
        rows = [
            ("NOTIFY -> psycopg listener (floor)", asyncio.run(raw_floor(dsn, args.n, "NOTIFY bench_raw, '{i}'"))),
            ("INSERT -> trigger -> psycopg listener", asyncio.run(raw_floor(dsn, args.n, "INSERT INTO todos (title) VALUES ('raw {i}')"))),
        ]
        with app(dsn) as url:
            for subs in (1, 100, 1000):
                n = args.n if subs < 1000 else max(20, args.n // 10)
                samples = asyncio.run(end_to_end(url, dsn, subs, n))
                rows.append((f"INSERT -> app -> {subs} GraphQL WS subscriber(s), until all have it", samples))
        rate = asyncio.run(insert_rate(dsn, 5.0))
    lines += [f"| {name} | {percentiles(samples)} |" for name, samples in rows]
    lines += [
        "",
        f"Single-connection INSERT rate with the journal trigger: {rate:.0f}/s.",
        "",
        "The WebSocket clients are Python (`websockets`) on the same cores as the app and",
        "PostgreSQL, so at 1,000 subscribers their own receiving is part of the time measured.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        header = "# Benchmarks\n\nReproduce with `make bench` (writes this file).\n\n"
        args.out.write_text(header + text)


if __name__ == "__main__":
    main()
