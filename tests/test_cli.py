"""The console script as a user runs it: embedded PostgreSQL started and
stopped with the app, whatever ends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from tests.gql import TransportWs
from tests.helpers import free_port, wait_until

SDL = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphql_todos.cli", *args],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    # Deeper than a unix socket path may be (107 bytes), as a CI checkout
    # can be: the server must still start.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    yield deep
    pid_file = deep / "pg" / "postmaster.pid"
    if pid_file.exists() and alive(pid := postmaster_pid(deep)):
        os.kill(pid, signal.SIGQUIT)


def embedded(data_dir: Path) -> dict[str, str]:
    """The environment of a run on the embedded PostgreSQL in data_dir."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "DATA_DIR": str(data_dir), "WEB_DIST": ""}


class Serve:
    """`serve` (this checkout's unless told which) as a subprocess on a free
    port, once it answers /healthz."""

    def __init__(
        self,
        env: dict[str, str],
        program: Sequence[str | Path] = (sys.executable, "-m", "graphql_todos.cli"),
        cwd: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*program, "serve"], env={**env, "PORT": str(self.port)}, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        wait_until(self.healthy, timeout=90, interval=0.2)

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("serve exited: " + (self.process.stdout.read() if self.process.stdout else ""))
        try:
            return httpx.get(f"{self.url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        finally:
            if self.process.stdout:
                self.process.stdout.close()


def test_serve_stops_its_embedded_postgres_on_sigterm_and_ctrl_c(data_dir: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        serve = Serve(embedded(data_dir))
        pid = postmaster_pid(data_dir)
        assert alive(pid)
        # uvicorn shuts down gracefully, then re-raises the signal.
        assert serve.stop(sig) in (0, -sig)
        wait_until(lambda pid=pid: not alive(pid), timeout=10)


def test_a_killed_run_leaves_postgres_that_the_next_run_takes_over(data_dir: Path) -> None:
    serve = Serve(embedded(data_dir))
    created = httpx.post(
        f"http://127.0.0.1:{serve.port}/graphql",
        json={"query": 'mutation { createTodo(input: {title: "kept"}) { id } }'},
    ).json()
    assert "errors" not in created
    pid = postmaster_pid(data_dir)
    serve.stop(signal.SIGKILL)
    time.sleep(0.5)
    assert alive(pid), "nothing stops postgres after SIGKILL"
    serve = Serve(embedded(data_dir))
    body = httpx.post(
        f"http://127.0.0.1:{serve.port}/graphql", json={"query": "{ todos { title } }"}
    ).json()
    assert body == {"data": {"todos": [{"title": "kept"}]}}
    assert serve.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=10)


def test_sigterm_ends_open_subscriptions_and_still_stops_postgres(data_dir: Path) -> None:
    serve = Serve(embedded(data_dir))
    pid = postmaster_pid(data_dir)
    url = f"http://127.0.0.1:{serve.port}/graphql"
    headers = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    body = {"query": "subscription { todoChanges { cursor } }"}
    with TransportWs(f"ws://127.0.0.1:{serve.port}") as ws, httpx.stream(
        "POST", url, json=body, headers=headers, timeout=30
    ) as stream:
        ws.subscribe("subscription { todos { id } }")
        assert ws.next_data() == {"todos": []}
        assert stream.status_code == 200
        started = time.monotonic()
        assert serve.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 15
    wait_until(lambda: not alive(pid), timeout=10)


def test_export_schema_prints_the_committed_sdl() -> None:
    assert cli("export-schema").stdout == SDL.read_text()


def test_migrate_reports_what_it_applied(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    assert cli("migrate", env=env).stdout.strip() == "applied: nothing, up to date"
