"""Test helpers: the real app under uvicorn in a thread, and polling with a
deadline. Fixtures live in conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import httpx
import psutil
import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from graphql_todos.cli import server_config
from graphql_todos.core.settings import Settings
from graphql_todos.graphql.fast.path import FastPath
from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.live.hub import Hub
from graphql_todos.live.streams import LiveLists

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
WEB_DIST = ROOT / "web" / "dist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reachable(Protocol):
    """A running server, in process (Server) or not (Serve)."""

    @property
    def url(self) -> str: ...

    @property
    def ws_url(self) -> str: ...


@dataclass
class Server:
    """The real app under uvicorn, in a thread of its own with its own loop."""

    settings: Settings
    port: int = field(default_factory=free_port)
    # uvicorn settings beyond the app's own (another WebSocket protocol, say).
    uvicorn_overrides: dict[str, Any] = field(default_factory=dict)
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

    @property
    def live_lists(self) -> LiveLists:
        assert self._uvicorn is not None
        live_lists: LiveLists = self._uvicorn.lifespan.state["live_lists"]
        return live_lists

    def executions(self) -> int:
        """Subscription events executed so far (shared ones count once)."""
        assert self._uvicorn is not None
        return int(self.call(lambda: self._uvicorn.config.app.state.schema.shared_results.executions))  # type: ignore[union-attr]

    def pool_stats(self) -> dict[str, int]:
        """psycopg_pool's counters (pool_size, pool_available, ...)."""
        assert self._uvicorn is not None
        stats: dict[str, int] = self.call(self._uvicorn.lifespan.state["pool"].get_stats)
        return stats

    @property
    def app(self) -> Starlette:
        """The app as create_app built it (its routes and middleware)."""
        assert self._uvicorn is not None
        return cast(Starlette, self._uvicorn.config.app)

    def fast_path(self) -> FastPath:
        """The compiled fast path of the app's /graphql view (its counters)."""
        route = next(r for r in self.app.routes if isinstance(r, Route) and r.path == "/graphql")
        view = route.endpoint
        assert isinstance(view, TodoGraphQL)
        return view.fast

    def subscriber_count(self) -> int:
        return int(self.call(lambda: self.hub.subscriber_count))

    def start(self) -> None:
        config = server_config(
            self.settings, port=self.port, log_level="warning", timeout_graceful_shutdown=2, **self.uvicorn_overrides
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
            assert not self._thread.is_alive(), "uvicorn did not stop; where its tasks wait:\n" + self._waiting()
        self._uvicorn = None

    def _waiting(self) -> str:
        """The stacks of the server loop's tasks: what a shutdown that does not
        end is waiting for (read from this thread while the loop runs, so best
        effort)."""
        stacks = []
        try:
            for task in list(asyncio.all_tasks(self._loop)):
                out = io.StringIO()
                task.print_stack(limit=8, file=out)
                stacks.append(out.getvalue())
        except RuntimeError as exc:  # the set changed under us
            stacks.append(f"(could not list the tasks: {exc!r})")
        return "\n".join(stacks)

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

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's event loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def state(self, name: str) -> Any:
        """One of the app's lifespan objects (service, journal, retention...)."""
        assert self._uvicorn is not None
        return self._uvicorn.lifespan.state[name]


# The token of the `guarded` fixture's server, and its Authorization header.
TOKEN = "test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def raw_exchange(server: Server, head: bytes, body_chunks: Sequence[bytes] = (), pause: float = 0.0) -> bytes:
    """Send a request as bytes, body chunks `pause` seconds apart (stopping when the
    server hangs up), and return everything the server sent until it closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            time.sleep(pause)
            try:
                sock.sendall(chunk)
            except OSError:
                break  # closed on us: what it said is in the buffer
        received = b""
        while data := _recv(sock):
            received += data
        return received


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def make_server(dsn: str, **overrides: Any) -> Server:
    """The app on dsn; overrides are Settings fields."""
    defaults: dict[str, Any] = {
        "heartbeat_seconds": 1.0,
        "web_dist": WEB_DIST if (WEB_DIST / "index.html").exists() else None,
    }
    return Server(Settings(database_url=dsn, **{**defaults, **overrides}))


@contextmanager
def serving(dsn: str, **overrides: Any) -> Iterator[Server]:
    """make_server(dsn, **overrides), running for the block."""
    server = make_server(dsn, **overrides)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


@contextmanager
def errors_logged() -> Iterator[list[str]]:
    """What is logged at ERROR or above during the block, by any logger.

    Not caplog.records: pytest resets them at each phase of a test, so a
    fixture's teardown would see only the teardown's. The app's log config,
    applied as each server starts, replaces the handlers of the root logger
    and of uvicorn's (which do not propagate): enter it after the start."""
    handler = _Errors()
    manager = logging.root.manager
    loggers = [logging.root, *(
        logger for logger in manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    )]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


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


class Serve:
    """`serve` (this checkout's unless told which) as a subprocess on a free
    port, once it answers /healthz."""

    def __init__(
        self,
        env: dict[str, str],
        program: Sequence[str | Path] = (sys.executable, "-m", "graphql_todos.cli"),
        cwd: Path | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.output = ""
        # A session of its own: a serve that never gets healthy (workers that
        # crash and are started again, forever) is killed with its workers,
        # not left running after the test.
        self.process = subprocess.Popen(
            [*program, "serve", *args], env={**env, "PORT": str(self.port)}, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            wait_until(self.healthy, timeout=90, interval=0.2)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
            raise

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("serve exited: " + (self.process.stdout.read() if self.process.stdout else ""))
        try:
            return httpx.get(f"{self.url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def workers_of(self, client_ports: Iterable[int]) -> dict[int, list[int]]:
        """Worker pid -> which of these client ports' connections it accepted."""
        ports = set(client_ports)
        workers: dict[int, list[int]] = {}
        for worker in psutil.Process(self.process.pid).children():
            for conn in worker.net_connections(kind="tcp"):
                if conn.laddr.port == self.port and conn.raddr and conn.raddr.port in ports:
                    workers.setdefault(worker.pid, []).append(conn.raddr.port)
        return workers

    def stop(self, sig: signal.Signals) -> int:
        """Send sig; the exit status, once it exited (its output in self.output)."""
        self.process.send_signal(sig)
        self.output = self.process.communicate(timeout=30)[0] or ""
        return self.process.returncode


def serve_env(dsn: str, **settings: str) -> dict[str, str]:
    """A `serve` subprocess's environment on dsn's database: no web client,
    a heartbeat each second, and `settings` (JOURNAL, say)."""
    return {**os.environ, "DATABASE_URL": dsn, "WEB_DIST": "", "HEARTBEAT_SECONDS": "1", **settings}


def listening_workers(dsn: str) -> int:
    """The app processes listening on dsn's database (a worker is up once it is)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'graphql-todos listener' AND datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])
