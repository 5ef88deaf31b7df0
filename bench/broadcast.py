"""Fan-out to many graphql-transport-ws subscribers of one server process:
subscribe rate, memory per subscription, last-arrival latency of one INSERT
and server CPU per delivered event, read from /proc.

    python -m bench.broadcast --checkout . --database-url postgresql://... --sizes 1000 5000

Starts `<checkout>/.venv/bin/graphql-todos serve` on a fresh database, and
the subscribers in --clients separate processes (this module, `client` mode).
Quicker than `make bench` and one checkout against another (before/after a
change), where `make bench` compares with PostGraphile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import websockets
from psycopg.conninfo import make_conninfo

from graphql_todos.core.journal_mode import drop_slots

from .procstat import cpu_seconds, rss_bytes

QUERY = (
    "subscription($after: String) { todoChanges(after: $after) "
    "{ op cursor todo { id title completed createdTime updatedTime } } }"
)


async def client(url: str, count: int) -> None:
    """Open `count` subscriptions, then print, per event title, when the last
    of them received it."""
    arrivals: dict[str, list[float]] = {}
    sockets = []
    for _ in range(count):
        ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
        await ws.send('{"type":"connection_init"}')
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
        sockets.append(ws)

    async def read(ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] != "next":
                continue
            title = message["payload"]["data"]["todoChanges"]["todo"]["title"]
            seen = arrivals.setdefault(title, [])
            seen.append(time.time())
            if len(seen) == count:
                print(json.dumps({"title": title, "last": max(seen)}), flush=True)

    await asyncio.gather(*(read(ws) for ws in sockets))


async def _lines(process: asyncio.subprocess.Process, into: asyncio.Queue[dict[str, object]]) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        into.put_nowait(json.loads(line))


async def run_size(args: argparse.Namespace, n: int) -> dict[str, float]:
    admin = args.database_url
    name = f"bench_fanout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    dsn = make_conninfo(admin, dbname=name)
    port = 18000 + n % 1000
    checkout = Path(args.checkout).resolve()
    server = await asyncio.create_subprocess_exec(
        str(checkout / ".venv/bin/graphql-todos"), "serve", "--database-url", dsn, "--port", str(port),
        "--log-level", "warning", cwd=checkout,
    )
    clients: list[asyncio.subprocess.Process] = []
    try:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        rss0, cpu0, t0 = rss_bytes(server.pid), cpu_seconds(server.pid), time.monotonic()
        share = [n // args.clients + (i < n % args.clients) for i in range(args.clients)]
        clients = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.broadcast", "client", f"ws://127.0.0.1:{port}/graphql", str(k),
                stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent,
            )
            for k in share
        ]
        lines = [asyncio.Queue[dict[str, object]]() for _ in clients]
        readers = [asyncio.create_task(_lines(c, q)) for c, q in zip(clients, lines, strict=True)]
        with psycopg.connect(dsn, autocommit=True) as db:
            # Subscribed once a change reaches every subscriber: insert until
            # one does, slowly enough not to bury a slow server in changes.
            for k in range(10**6):
                db.execute("INSERT INTO todos (title) VALUES (%s)", (f"warm {k}",))
                await asyncio.sleep(2)
                if all(not q.empty() for q in lines):
                    break
            subscribe_seconds = time.monotonic() - t0
            subscribe_cpu = cpu_seconds(server.pid) - cpu0
            rss = rss_bytes(server.pid) - rss0
            await asyncio.sleep(1)
            for q in lines:
                while not q.empty():
                    q.get_nowait()
            lasts: list[float] = []
            cpu: list[float] = []
            for i in range(args.events):
                title = f"event {i}"
                before = cpu_seconds(server.pid)
                sent = time.time()
                db.execute("INSERT INTO todos (title) VALUES (%s)", (title,))
                arrived = []
                for q in lines:
                    line = await q.get()
                    assert line["title"] == title, line
                    arrived.append(float(line["last"]))  # type: ignore[arg-type]
                lasts.append(max(arrived) - sent)
                await asyncio.sleep(0.05)  # the last client's own CPU, not the server's
                cpu.append(cpu_seconds(server.pid) - before)
                await asyncio.sleep(args.gap)
        for r in readers:
            r.cancel()
        lasts.sort()
        return {
            "n": n,
            "subscribe_s": subscribe_seconds,
            "subscribe_cpu_ms_each": subscribe_cpu / n * 1000,
            "bytes_per_subscription": rss / n,
            "last_p50_ms": statistics.median(lasts) * 1000,
            "last_p99_ms": lasts[min(len(lasts) - 1, int(len(lasts) * 0.99))] * 1000,
            "cpu_us_per_delivery": statistics.median(cpu) / n * 1e6,
        }
    finally:
        for c in clients:
            c.kill()
            await c.wait()
        server.terminate()
        await server.wait()
        with psycopg.connect(admin, autocommit=True) as conn:
            drop_slots(conn, name)  # JOURNAL=decoded's (a slot blocks DROP DATABASE)
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


async def main() -> None:
    if sys.argv[1:2] == ["client"]:
        return await client(sys.argv[2], int(sys.argv[3]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", default=".")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.3)
    args = parser.parse_args()
    for n in args.sizes:
        result = await run_size(args, n)
        print(json.dumps({"checkout": args.checkout, **{k: round(v, 1) for k, v in result.items()}}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
