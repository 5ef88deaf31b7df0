"""Load over time: many WebSocket subscribers, a few writers, every change
checked; the server's memory sampled throughout.

    make soak     (or: .venv/bin/python -m bench.soak --subscribers 1000 --changes 5000 --rounds 3)

Serves the app as a separate `graphql-todos serve` process on the embedded
PostgreSQL in .data/soak (or DATABASE_URL), runs the same load `--rounds`
times against it, and prints per round: lost, duplicated and out-of-order
positions, subscribers that failed, the time it took, the rate written and
delivered, the CPU the server and the clients used, the server's peak RSS and
the load average; it fails when anything was lost, duplicated, out of order
or failed. The subscribers are raw-frame clients spread over `--processes`
processes (bench/soak_clients.py); the writers start once every subscriber
has the first change. tests/test_soak.py runs a smaller size in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from bench.procstat import cpu_seconds
from bench.soak_clients import Tally, run_clients

ROOT = Path(__file__).resolve().parent.parent
CREATE = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"


@dataclass
class Round:
    subscribers: int
    changes: int
    lost: int
    duplicated: int
    out_of_order: int
    failures: int
    seconds: float
    writing_seconds: float
    peak_rss: int
    server_cpu: float
    clients_cpu: float

    def line(self) -> str:
        return (
            f"{self.subscribers} subscribers x {self.changes} changes: "
            f"lost {self.lost}, duplicated {self.duplicated}, out of order {self.out_of_order}, "
            f"failed subscribers {self.failures}; {self.seconds:.1f} s "
            f"({self.changes / self.writing_seconds:.1f} changes/s written, "
            f"{self.subscribers * self.changes / self.seconds:,.0f} frames/s delivered), "
            f"CPU: server {self.server_cpu:.1f} s, clients {self.clients_cpu:.1f} s; "
            f"server peak RSS {self.peak_rss / 2**20:.1f} MiB"
        )


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


async def _receive(conn: Connection) -> object:
    # A child's message, without blocking the writers' event loop.
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def run_round(
    http_url: str, pid: int, subscribers: int, writers: int, changes: int, processes: int = 2
) -> Round:
    """One load: `subscribers` (spread over `processes` client processes)
    follow todoChanges from a cursor while `writers` make `changes` creates
    between them; each subscriber must see exactly the changes after its
    cursor, in order."""
    async with httpx.AsyncClient(base_url=http_url, timeout=60) as client:
        body = (await client.post("/graphql", json={"query": "{ todoList { cursor } }"})).json()
    after = body["data"]["todoList"]["cursor"]
    port = urlsplit(http_url).port
    assert port is not None
    # Deadlines scale with the work: a slow machine is slow, not wrong.
    bound = 120 + subscribers * changes / 2_000
    spawn = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for n in range(processes):
        ours, theirs = spawn.Pipe()
        share = subscribers // processes + (n < subscribers % processes)
        child = spawn.Process(target=run_clients, args=(port, share, after, changes, 2 * bound, theirs), daemon=True)
        child.start()
        pipes.append(ours)
        children.append(child)
    peak = [0]
    sampler = asyncio.create_task(_sample_rss(pid, peak))
    try:
        for conn in pipes:
            assert await asyncio.wait_for(_receive(conn), 300) == "subscribed"
        # The first change, alone: every subscriber has it once registered.
        await _writer(http_url, 1, "first")
        for conn in pipes:
            assert await asyncio.wait_for(_receive(conn), bound) == "live"
        started, cpu_before = time.monotonic(), cpu_seconds(pid)
        share, extra = divmod(changes - 1, writers)
        await asyncio.wait_for(
            asyncio.gather(*(_writer(http_url, share + (i < extra), f"w{i}") for i in range(writers))), bound
        )
        writing_seconds = time.monotonic() - started
        tallies: list[Tally] = []
        for conn in pipes:
            tally = await asyncio.wait_for(_receive(conn), 3 * bound)
            assert isinstance(tally, Tally), tally
            tallies.append(tally)
        seconds, server_cpu = time.monotonic() - started, cpu_seconds(pid) - cpu_before
    finally:
        sampler.cancel()
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    return Round(
        subscribers=subscribers,
        changes=changes,
        lost=sum(t.lost for t in tallies),
        duplicated=sum(t.duplicated for t in tallies),
        out_of_order=sum(t.out_of_order for t in tallies),
        failures=sum(t.failures for t in tallies),
        seconds=seconds,
        writing_seconds=writing_seconds,
        peak_rss=peak[0],
        server_cpu=server_cpu,
        clients_cpu=sum(t.cpu_seconds for t in tallies),
    )


def _serve(port: int) -> subprocess.Popen[str]:
    # Every subscriber comes from 127.0.0.1: lift the per-address socket cap.
    env = {
        **os.environ, "PORT": str(port), "WEB_DIST": "", "LOG_LEVEL": "warning", "MAX_SOCKETS_PER_CLIENT": "100000",
    }
    env.setdefault("DATA_DIR", str(ROOT / ".data" / "soak"))
    return subprocess.Popen([sys.executable, "-m", "graphql_todos.cli", "serve"], env=env, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--changes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--processes", type=int, default=2, help="client processes the subscribers are spread over")
    args = parser.parse_args()
    server = _serve(args.port)
    http_url = f"http://127.0.0.1:{args.port}"
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
                run_round(http_url, server.pid, args.subscribers, args.writers, args.changes, args.processes)
            )
            rounds.append(result)
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"round {n + 1}: {result.line()}; load average {load}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    growth = rounds[-1].peak_rss - rounds[0].peak_rss
    print(f"peak RSS growth from round 1 to round {len(rounds)}: {growth / 2**20:+.1f} MiB")
    if any(r.lost or r.duplicated or r.out_of_order or r.failures for r in rounds):
        sys.exit("FAILED: changes lost, duplicated or out of order, or subscribers failed")


if __name__ == "__main__":
    main()
