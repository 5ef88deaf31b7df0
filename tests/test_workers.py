"""Several processes on one database: `serve --workers 2` on one port, and two
`serve` on two ports. A change made through any reaches the subscribers of
all, exactly once each; a process killed with SIGKILL loses its clients, who
resume elsewhere with their cursor and miss nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import Serve, listening_workers, serve_env, wait_until
from tests.test_cli import alive, embedded, postmaster_pid

CREATE = 'mutation($t: String!) { createTodo(input: {title: $t}) { id } }'


class Follower:
    """A RESTSocket client that reconnects with its last cursor, to the next
    of its URLs, whenever its connection drops."""

    def __init__(self, ws_urls: list[str]) -> None:
        self.ws_urls = ws_urls
        self.received: list[str] = []
        self.connected = asyncio.Event()
        self.drops = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        cursor = "0"
        while True:
            url = self.ws_urls[self.drops % len(self.ws_urls)]
            try:
                async with connect(f"{url}/api/todos/?after={cursor}", open_timeout=5) as ws:
                    self.local_port = ws.local_address[1]
                    self.connected.set()
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["op"] != "keepalive":
                            self.received.append(message["cursor"])
                            cursor = message["cursor"]
            except (ConnectionClosed, OSError, TimeoutError):
                pass
            self.connected.clear()
            self.drops += 1
            await asyncio.sleep(0.1)


async def _write(urls: list[str], count: int, prefix: str) -> None:
    """`count` creates, spread over `urls` and (no keep-alive) over the
    processes behind each; retried until each is acknowledged."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        for n in range(count):
            while True:
                try:
                    response = await client.post(
                        urls[n % len(urls)] + "/graphql", json={"query": CREATE, "variables": {"t": f"{prefix}{n}"}}
                    )
                except httpx.TransportError:
                    continue  # the process behind this connection was just killed
                if "errors" not in response.json():
                    break


def _journal(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(p) for (p,) in conn.execute("SELECT position FROM todo_changes ORDER BY position")]


async def _all_caught_up(followers: list[Follower], dsn: str) -> list[str]:
    expected = await asyncio.to_thread(_journal, dsn)
    deadline = time.monotonic() + 60
    while any(len(f.received) < len(expected) for f in followers):
        assert time.monotonic() < deadline, "a follower missed changes"
        await asyncio.sleep(0.05)
    return expected


def _holders(serve: Serve, followers: list[Follower]) -> dict[int, list[Follower]]:
    """Worker pid -> the followers whose connection that worker accepted."""
    by_port = {f.local_port: f for f in followers if f.connected.is_set()}
    return {pid: [by_port[port] for port in ports] for pid, ports in serve.workers_of(by_port).items()}


@pytest.fixture
def env(db_dsn: str) -> Iterator[dict[str, str]]:
    yield serve_env(db_dsn)


def test_two_workers_on_one_port(env: dict[str, str], db_dsn: str) -> None:
    serve = Serve(env, args=["--workers", "2"])
    try:
        # One listening connection per worker (the second may still be starting).
        wait_until(lambda: listening_workers(db_dsn) == 2, timeout=30)
        asyncio.run(_two_workers(serve, db_dsn))
    finally:
        serve.stop(signal.SIGTERM)


async def _two_workers(serve: Serve, dsn: str) -> None:
    followers: list[Follower] = []
    deadline = time.monotonic() + 30
    # The kernel hands connections to whichever worker accepts first: open
    # them until both workers hold some.
    while len(_holders(serve, followers)) < 2 or len(followers) < 10:
        assert time.monotonic() < deadline and len(followers) < 100, "connections all went to one worker"
        follower = Follower([serve.ws_url])
        await asyncio.wait_for(follower.connected.wait(), 10)
        followers.append(follower)
    await _write([serve.url], 20, "before")
    expected = await _all_caught_up(followers, dsn)
    assert all(f.received == expected for f in followers)

    victim, victims = next(iter(_holders(serve, followers).items()))
    os.kill(victim, signal.SIGKILL)
    await _write([serve.url], 20, "after")  # uvicorn starts a new worker meanwhile
    expected = await _all_caught_up(followers, dsn)
    assert len(expected) == 40
    assert all(f.received == expected for f in followers)
    assert all(f.drops >= 1 for f in victims)
    for follower in followers:
        follower.task.cancel()


def test_two_serve_commands_on_two_ports(env: dict[str, str], db_dsn: str) -> None:
    first, second = Serve(env), Serve(env)
    try:
        asyncio.run(_two_ports(first, second, db_dsn))
    finally:
        second.stop(signal.SIGTERM)
        if first.process.poll() is None:
            first.stop(signal.SIGTERM)


async def _two_ports(first: Serve, second: Serve, dsn: str) -> None:
    # Each follower starts on one server and moves to the other when it drops.
    on_first = [Follower([first.ws_url, second.ws_url]) for _ in range(5)]
    on_second = [Follower([second.ws_url, first.ws_url]) for _ in range(5)]
    followers = on_first + on_second
    await asyncio.wait_for(asyncio.gather(*(f.connected.wait() for f in followers)), 10)
    await _write([first.url, second.url], 20, "both")
    expected = await _all_caught_up(followers, dsn)
    assert all(f.received == expected for f in followers)

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    await _write([second.url], 20, "after")
    expected = await _all_caught_up(followers, dsn)
    assert len(expected) == 40
    assert all(f.received == expected for f in followers)
    assert all(f.drops == 1 for f in on_first) and all(f.drops == 0 for f in on_second)
    for follower in followers:
        follower.task.cancel()


def test_workers_share_one_embedded_postgres_that_sigterm_stops(server_dir: Path) -> None:
    serve = Serve(embedded(server_dir), args=["--workers", "2"])
    pid = postmaster_pid(server_dir)
    wait_until(lambda: len(psutil.Process(serve.process.pid).children()) >= 2, timeout=30)
    assert serve.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=10)
