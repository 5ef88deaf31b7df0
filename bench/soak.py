"""Load over time: many WebSocket subscribers, a few writers, every change
checked; the server's memory sampled throughout.

    make soak     (or: .venv/bin/python -m bench.soak --subscribers 1000 --changes 5000 --rounds 3)

Serves the app as a separate `graphql-todos serve` process on the embedded
PostgreSQL in .data/soak (or DATABASE_URL), runs the same load `--rounds`
times against it, and prints per round: changes delivered, lost, duplicated,
the time it took, and the server's peak RSS; it fails when any change is lost
or duplicated. tests/test_soak.py runs a smaller size in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
CREATE = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"
CHANGES = "subscription($after: String) { todoChanges(after: $after) { cursor } }"


@dataclass
class Round:
    subscribers: int
    changes: int
    lost: int
    duplicated: int
    out_of_order: int
    seconds: float
    peak_rss: int

    def line(self) -> str:
        return (
            f"{self.subscribers} subscribers x {self.changes} changes: "
            f"lost {self.lost}, duplicated {self.duplicated}, out of order {self.out_of_order}, "
            f"{self.seconds:.1f} s, server peak RSS {self.peak_rss / 2**20:.1f} MiB"
        )


async def _subscriber(ws_url: str, after: str, received: list[int], ready: asyncio.Event) -> None:
    ws: ClientConnection
    async with connect(
        ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=60, max_queue=None
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        payload = {"query": CHANGES, "variables": {"after": after}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                received.append(int(message["payload"]["data"]["todoChanges"]["cursor"]))
            elif message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))


async def _writer(http_url: str, count: int, name: str) -> None:
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as client:
        for n in range(count):
            response = await client.post("/graphql", json={"query": CREATE, "variables": {"t": f"{name}-{n}"}})
            assert "errors" not in response.json(), response.text


async def _sample_rss(pid: int, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while True:
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.1)


async def run_round(http_url: str, ws_url: str, pid: int, subscribers: int, writers: int, changes: int) -> Round:
    """One load: `subscribers` follow todoChanges from now while `writers`
    make `changes` creates between them; each subscriber must see exactly the
    changes after its cursor, in order."""
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as client:
        body = (await client.post("/graphql", json={"query": "{ todoList { cursor } }"})).json()
    after = body["data"]["todoList"]["cursor"]
    expected = list(range(int(after) + 1, int(after) + 1 + changes))
    peak = [0]
    sampler = asyncio.create_task(_sample_rss(pid, peak))
    started = time.monotonic()
    received: list[list[int]] = [[] for _ in range(subscribers)]
    readies = [asyncio.Event() for _ in range(subscribers)]
    tasks = [asyncio.create_task(_subscriber(ws_url, after, r, e)) for r, e in zip(received, readies, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in readies)), 120)
    # Deadlines scale with the work: a slow machine is slow, not wrong.
    bound = 120 + subscribers * changes / 2_000
    share, extra = divmod(changes, writers)
    await asyncio.wait_for(
        asyncio.gather(*(_writer(http_url, share + (i < extra), f"w{i}") for i in range(writers))), bound
    )
    # Until every subscriber has as many as were made.
    deadline = time.monotonic() + bound
    while any(len(r) < changes for r in received) and time.monotonic() < deadline:
        failed = [t for t in tasks if t.done()]
        if failed:
            failed[0].result()  # a subscription that ended: raise why
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # anything more would be a duplicate: let it arrive
    seconds = time.monotonic() - started
    for task in [*tasks, sampler]:
        task.cancel()
    await asyncio.gather(*tasks, sampler, return_exceptions=True)
    return Round(
        subscribers=subscribers,
        changes=changes,
        lost=sum(len(set(expected) - set(r)) for r in received),
        duplicated=sum(len(r) - len(set(r)) for r in received),
        out_of_order=sum(r != sorted(r) for r in received),
        seconds=seconds,
        peak_rss=peak[0],
    )


def _serve(port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PORT": str(port), "WEB_DIST": "", "LOG_LEVEL": "warning"}
    env.setdefault("DATA_DIR", str(ROOT / ".data" / "soak"))
    return subprocess.Popen([sys.executable, "-m", "graphql_todos.cli", "serve"], env=env, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--changes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = _serve(args.port)
    http_url, ws_url = f"http://127.0.0.1:{args.port}", f"ws://127.0.0.1:{args.port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(http_url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.2)
        rounds = []
        for n in range(args.rounds):
            result = asyncio.run(
                run_round(http_url, ws_url, server.pid, args.subscribers, args.writers, args.changes)
            )
            rounds.append(result)
            print(f"round {n + 1}: {result.line()}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    growth = rounds[-1].peak_rss - rounds[0].peak_rss
    print(f"peak RSS growth from round 1 to round {len(rounds)}: {growth / 2**20:+.1f} MiB")
    if any(r.lost or r.duplicated or r.out_of_order for r in rounds):
        sys.exit("FAILED: changes lost, duplicated or out of order")


if __name__ == "__main__":
    main()
