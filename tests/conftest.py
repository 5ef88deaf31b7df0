"""Shared fixtures: one PostgreSQL per session (embedded, or DATABASE_URL),
a migrated template database, a fresh clone of it per test, and the real app
under uvicorn on a free port."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from psycopg.conninfo import make_conninfo

from graphql_todos.cli import server_config
from graphql_todos.config import Settings
from graphql_todos.embedded import embedded_postgres
from graphql_todos.hub import Hub
from graphql_todos.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
WEB_DIST = ROOT / "web" / "dist"


@pytest.fixture(scope="session")
def admin_dsn() -> Iterator[str]:
    """A superuser connection string to the session's PostgreSQL server."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with embedded_postgres(ROOT / ".data" / "test") as dsn:
        yield dsn


def _admin(admin_dsn: str, sql: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(admin_dsn: str) -> Iterator[str]:
    name = f"gt_template_{os.getpid()}"
    _admin(admin_dsn, f"DROP DATABASE IF EXISTS {name}")
    _admin(admin_dsn, f"CREATE DATABASE {name}")
    migrate(make_conninfo(admin_dsn, dbname=name))
    yield name
    _admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_dsn(admin_dsn: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    name = f"gt_{uuid.uuid4().hex[:12]}"
    _admin(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield make_conninfo(admin_dsn, dbname=name)
    _admin(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """The real app under uvicorn, in a thread of its own with its own loop."""

    settings: Settings
    port: int = field(default_factory=free_port)
    _uvicorn: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def dsn(self) -> str:
        assert self.settings.database_url is not None
        return self.settings.database_url

    @property
    def hub(self) -> Hub:
        assert self._uvicorn is not None
        hub: Hub = self._uvicorn.lifespan.state["hub"]
        return hub

    def subscriber_count(self) -> int:
        return int(self.call(lambda: self.hub.subscriber_count))

    def start(self) -> None:
        config = server_config(
            self.settings, port=self.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self._uvicorn = server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.call_soon(started.set)
            try:
                loop.run_until_complete(server.serve())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        deadline = time.monotonic() + 20
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(15)
            assert not self._thread.is_alive(), "uvicorn did not stop"
        self._uvicorn = None

    def restart(self) -> None:
        """Stop and start again on the same port, as a new process would."""
        self.stop()
        self.start()

    def call(self, fn: Any) -> Any:
        """Run fn() on the server's event loop (to look at the hub safely)."""
        assert self._loop is not None

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(5)


def make_server(dsn: str, **overrides: Any) -> Server:
    settings = Settings(
        database_url=dsn,
        heartbeat_seconds=1.0,
        web_dist=WEB_DIST if (WEB_DIST / "index.html").exists() else None,
        **overrides,
    )
    return Server(settings)


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    srv = make_server(db_dsn)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def wait_until(
    predicate: Any,
    timeout: float = 5.0,
    interval: float = 0.02,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Poll until predicate() is truthy; fail the test on timeout. A sync Playwright test
    passes a `sleep` that lets Playwright run its handlers meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        sleep(interval)
