"""The console script as a user runs it: embedded PostgreSQL started and
stopped with the app, whatever ends it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.core.test_metrics import by_transport
from tests.gql import LegacyWs, TransportWs
from tests.helpers import Serve, wait_until
from tests.sse_client import events

SDL = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"
SHUTDOWN_SECONDS = 2.0
# What exiting may take beyond it (closing the pool, the listener, the
# embedded PostgreSQL), on a loaded machine.
EXIT_MARGIN = 1.5


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


def kill_if_running(serve: Serve) -> None:
    if serve.process.poll() is None:
        os.killpg(serve.process.pid, signal.SIGKILL)


@pytest.fixture
def data_dir(server_dir: Path) -> Path:
    # Deeper than a unix socket path may be (107 bytes), as a CI checkout
    # can be: the server must still start.
    deep = server_dir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    return deep


def embedded(data_dir: Path) -> dict[str, str]:
    """The environment of a run on the embedded PostgreSQL in data_dir."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "DATA_DIR": str(data_dir), "WEB_DIST": ""}


def test_serve_stops_its_embedded_postgres_on_sigterm_and_ctrl_c(data_dir: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        serve = Serve(embedded(data_dir))
        pid = postmaster_pid(data_dir)
        assert alive(pid)
        # A clean shutdown: SIGTERM exits 0 (make run ends quietly); Ctrl-C
        # is raised again once shut down, as a shell expects.
        assert serve.stop(sig) == (0 if sig == signal.SIGTERM else -sig)
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
    serve = Serve(embedded(data_dir))
    # Taken over: the same postgres ran on (nothing stops it after SIGKILL).
    assert postmaster_pid(data_dir) == pid and alive(pid)
    body = httpx.post(
        f"http://127.0.0.1:{serve.port}/graphql", json={"query": "{ todos { title } }"}
    ).json()
    assert body == {"data": {"todos": [{"title": "kept"}]}}
    assert serve.stop(signal.SIGTERM) == 0
    wait_until(lambda: not alive(pid), timeout=10)


def test_sigterm_ends_open_subscriptions_and_still_stops_postgres(data_dir: Path) -> None:
    serve = Serve({**embedded(data_dir), "SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS)})
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
        assert serve.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started <= SHUTDOWN_SECONDS + EXIT_MARGIN
    wait_until(lambda: not alive(pid), timeout=10)


def test_export_schema_prints_the_committed_sdl() -> None:
    assert cli("export-schema").stdout == SDL.read_text()


def test_migrate_reports_what_it_applied(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    assert cli("migrate", env=env).stdout.strip() == "applied: nothing, up to date"


def test_open_to_any_address_without_a_token_is_warned_of(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "LOG_FORMAT": "json"}
    for extra, warned in (
        ({"HOST": "0.0.0.0"}, True),
        ({"HOST": "0.0.0.0", "TODOS_TOKEN": "a-token-of-16-chars"}, False),
        ({"HOST": "0.0.0.0", "AUTH": "accounts"}, False),
        ({}, False),
    ):
        serve = Serve({**env, **extra})
        serve.stop(signal.SIGTERM)
        warnings = [e["message"] for e in map(json.loads, serve.output.splitlines()) if e["level"] == "warning"]
        assert any("AUTH=open and no TODOS_TOKEN" in w for w in warnings) == warned, extra


def test_json_logs_one_object_per_line_without_query_strings(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "LOG_FORMAT": "json"}
    serve = Serve(env)
    secret = "variables-stay-out-of-logs"
    httpx.get(f"{serve.url}/graphql", params={"query": "{ todos { id } }", "variables": f'{{"x": "{secret}"}}'})
    serve.stop(signal.SIGTERM)
    lines = serve.output.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"uvicorn.error", "uvicorn.access", "graphql_todos.app"} <= {e["logger"] for e in entries}
    assert any(e["message"].endswith('"GET /graphql HTTP/1.1" 200') for e in entries)
    assert secret not in "\n".join(lines)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_closes_every_socket_with_1012_and_a_reason_and_ends_every_stream(data_dir: Path, workers: str) -> None:
    # Long, so that a serve waiting for the subscriptions (until it is up)
    # shows apart from one that closes them at once, however loaded the machine.
    shutdown_seconds = 5 * SHUTDOWN_SECONDS
    serve = Serve({**embedded(data_dir), "SHUTDOWN_SECONDS": str(shutdown_seconds), "WORKERS": workers})
    pid = postmaster_pid(data_dir)
    ws_url, url = serve.ws_url, serve.url + "/graphql"
    todo = httpx.post(url, json={"query": 'mutation { createTodo(input: {title: "watched"}) { id } }'}).json()
    todo_id = todo["data"]["createTodo"]["id"]
    feed = {"query": "subscription { todoChanges { cursor } }"}
    multipart = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    with contextlib.ExitStack() as stack:
        # A failing test does not leave serve (and its postgres) running.
        stack.callback(kill_if_running, serve)
        transport_ws = stack.enter_context(TransportWs(ws_url))
        transport_ws.subscribe(feed["query"])
        transport_ws.subscribe("subscription { todos { id @include(if: true) } }")  # Strawberry's own path (a directive)
        legacy = LegacyWs(ws_url)
        stack.callback(legacy.close)
        legacy.send({"id": "1", "type": "start", "payload": feed})
        sockets = [transport_ws.ws, legacy.ws, *(
            stack.enter_context(connect(ws_url + path)) for path in ("/api/todos/", f"/api/todos/{todo_id}/")
        )]
        rest_stream = stack.enter_context(events(serve.url + "/api/todos/"))
        graphql_streams = [
            stack.enter_context(events(url, json=feed)),
            stack.enter_context(events(url, json={"query": "subscription { todos { id @include(if: true) } }"})),  # Strawberry's path
        ]
        parts = stack.enter_context(httpx.stream("POST", url, json=feed, headers=multipart, timeout=30))
        assert parts.status_code == 200
        wait_until(lambda: sum(by_transport(serve.url, "graphql_todos_subscriptions").values()) == 9, timeout=10)
        serve.process.send_signal(signal.SIGTERM)
        # Nothing but subscriptions runs: serve does not wait for them (one
        # that did would exit only once SHUTDOWN_SECONDS are up).
        assert serve.process.wait(shutdown_seconds / 2) == 0
        closes = []
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None
            closes.append((closed.value.rcvd.code, closed.value.rcvd.reason))
        # The streams end well-formed (httpx would raise). The GraphQL ones
        # send no `complete`: graphql-sse clients retry a stream that ends
        # without it, and would give up after it.
        list(rest_stream)
        for stream in graphql_streams:
            assert [e.get("event") for e in stream if "comment" not in e] in ([], ["next"])
        body = b"".join(parts.iter_bytes())
        assert body.endswith(b"--graphql--\r\n"), body[-100:]
    # A clean shutdown: nothing failed on the way.
    assert serve.process.stdout is not None
    output = serve.process.stdout.read()
    assert "Traceback" not in output and "ERROR" not in output, output
    # 1012 (service restart), and what to do: clients reconnect and resume with their cursor.
    assert closes == [(1012, "server restarting: resume from your cursor")] * 4
    wait_until(lambda: not alive(pid), timeout=10)



def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_gives_running_requests_shutdown_seconds_and_exits_within_them(db_dsn: str) -> None:
    """Two requests wait on row locks held from psql when SIGTERM comes: the
    one whose lock is released in time answers; the other is cut when
    SHUTDOWN_SECONDS are up, and the process exits then."""
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS)}
    serve = Serve(env)
    try:
        ids = [httpx.post(f"{serve.url}/api/todos/", json={"title": t}).json()["id"] for t in ("a", "b")]
        with (
            psycopg.connect(db_dsn) as finishes,
            psycopg.connect(db_dsn) as never,
            psycopg.connect(db_dsn, autocommit=True) as observer,
            ThreadPoolExecutor(2) as pool,
        ):
            for locker, todo_id in zip((finishes, never), ids, strict=True):
                locker.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", (todo_id,))
            patches = [
                pool.submit(httpx.patch, f"{serve.url}/api/todos/{i}/", json={"completed": True}, timeout=30)
                for i in ids
            ]
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'graphql-todos' AND wait_event_type = 'Lock'"
            )
            wait_until(lambda: observer.execute(waiting).fetchone() == (2,), timeout=10)
            serve.process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            wait_until(lambda: _refused(serve.port), timeout=SHUTDOWN_SECONDS)  # shutting down
            finishes.rollback()
            answered = patches[0].result(timeout=SHUTDOWN_SECONDS)
            assert (answered.status_code, answered.json()["completed"]) == (200, True)
            cut = patches[1].result(timeout=SHUTDOWN_SECONDS + EXIT_MARGIN)
            # Cut, with a code to act on (no bare 500, no traceback).
            assert (cut.status_code, cut.json()["error"]["code"]) == (503, "SHUTTING_DOWN")
            assert serve.process.wait(SHUTDOWN_SECONDS + EXIT_MARGIN) == 0
            took = time.monotonic() - sent
            never.rollback()
        # Not before SHUTDOWN_SECONDS, and not a second SHUTDOWN_SECONDS on:
        # a shutdown that waited on the uncut request would wait for `never`,
        # released only above, that is forever. The cut and the exit each had
        # SHUTDOWN_SECONDS + EXIT_MARGIN above; together on a loaded machine
        # (load average 16) they took 3.64 s, past that one bound's 3.5.
        assert SHUTDOWN_SECONDS - 0.2 <= took < 2 * SHUTDOWN_SECONDS, took
        assert serve.process.stdout is not None
        assert "Traceback" not in serve.process.stdout.read()
    finally:
        kill_if_running(serve)
