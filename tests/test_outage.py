"""PostgreSQL restarts under the running app (a server of the test's own):
requests fail fast with DATABASE_UNAVAILABLE, /healthz says 503, and no
subscription ends or misses a change."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.sync.client import connect as connect_sync
from websockets.typing import Subprotocol

from tests.gql import CHANGES, TransportWs, gql
from tests.helpers import Server, make_server, wait_until
from tests.pgserver import RestartablePostgres, restartable_postgres

# Short, so that the test sees requests fail within it (the default is 5 s).
DATABASE_TIMEOUT = 1.0
# What a request may take beyond it: the response's own trip, on a loaded machine.
MARGIN = 0.5
CREATE = 'mutation($t: String!) { createTodo(input: {title: $t}) { id } }'
LIST = "{ todos { title } }"


@pytest.fixture(scope="module")
def postgres() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as pg:
        yield pg


@pytest.fixture
def server(postgres: RestartablePostgres) -> Iterator[Server]:
    # A fresh database; the app migrates it as it starts.
    dsn = postgres.create_database(f"gt_{uuid.uuid4().hex[:12]}")
    srv = make_server(
        dsn,
        database_timeout_seconds=DATABASE_TIMEOUT,
        reconnect_max_seconds=0.5,
        heartbeat_seconds=0.5,
    )
    srv.start()
    yield srv
    srv.stop()


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """The block (a request) takes at most `seconds`."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started <= seconds, f"took {time.monotonic() - started:.2f}s, promised {seconds}s"


def health(server: Server) -> int:
    return httpx.get(server.url + "/healthz", timeout=10).status_code


def journal(server: Server) -> list[str]:
    with psycopg.connect(server.dsn) as conn:
        return [str(p) for (p,) in conn.execute("SELECT position FROM todo_changes ORDER BY position")]


def test_requests_fail_fast_and_subscriptions_outlive_a_restart(
    postgres: RestartablePostgres, server: Server
) -> None:
    # Bounded: a request that hung through the outage would fail here.
    client = httpx.Client(base_url=server.url, timeout=DATABASE_TIMEOUT + 10)
    with TransportWs(server.ws_url) as ws, connect_sync(server.ws_url + "/api/todos/?after=0") as rest:
        ws.subscribe(CHANGES, {"after": "0"})
        assert "errors" not in gql(client, CREATE, {"t": "before"})
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "before"
        assert json.loads(rest.recv(timeout=5))["todo"]["title"] == "before"
        # Kept by the response cache's front door (the second one a hit).
        hits = server.state("response_replies").hits
        for _ in range(2):
            assert gql(client, LIST)["data"]["todos"][0]["title"] == "before"
        assert server.state("response_replies").hits == hits + 1

        postgres.stop()
        try:
            wait_until(lambda: health(server) == 503, timeout=10)
            with within(DATABASE_TIMEOUT + MARGIN):
                body = gql(client, CREATE, {"t": "during"})
            assert [e["extensions"]["code"] for e in body["errors"]] == ["DATABASE_UNAVAILABLE"]
            # Where the journal stands cannot be asked: nothing kept is served.
            with within(DATABASE_TIMEOUT + MARGIN):
                listed = client.post("/graphql", json={"query": LIST, "variables": {}})
            assert "DATABASE_UNAVAILABLE" in listed.text and '"before"' not in listed.text
            with within(DATABASE_TIMEOUT + MARGIN):
                response = client.post("/api/todos/", json={"title": "during"})
            assert (response.status_code, response.json()["error"]["code"]) == (503, "DATABASE_UNAVAILABLE")
            with within(DATABASE_TIMEOUT + MARGIN):
                assert client.get("/api/todos/").status_code == 503
        finally:
            postgres.start()

        wait_until(lambda: health(server) == 200, timeout=20)
        # Back: the first requests work (no pooled connection the outage killed is used).
        assert gql(client, CREATE, {"t": "after"}).get("errors") is None
        assert client.get("/api/todos/").status_code == 200
        # Neither subscription ended; each got "after", and nothing twice.
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "after"
        while (message := json.loads(rest.recv(timeout=5)))["op"] == "keepalive":
            pass
        assert message["todo"]["title"] == "after"
    client.close()


def test_the_first_requests_after_a_restart_work(postgres: RestartablePostgres, server: Server) -> None:
    """Every pooled connection is cut by the restart, and no request during
    the outage takes one out: the first requests after it must not get them."""
    size = server.settings.pool_size
    with httpx.Client(base_url=server.url, timeout=10) as client, psycopg.connect(server.dsn) as locker:
        todo_id = client.post("/api/todos/", json={"title": "locked"}).json()["id"]
        # Requests that wait on a row lock, each holding a pooled connection: the pool grows to its size.
        locker.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", (todo_id,))
        url = f"/api/todos/{todo_id}/"
        with ThreadPoolExecutor(size) as pool:
            held = [pool.submit(client.patch, url, json={"completed": True}) for _ in range(size)]
            wait_until(lambda: server.pool_stats()["pool_size"] == size and server.pool_stats()["pool_available"] == 0)
            locker.rollback()
            assert [f.result().status_code for f in held] == [200] * size
        wait_until(lambda: server.pool_stats()["pool_available"] == size)

    postgres.stop()
    try:
        wait_until(lambda: health(server) == 503, timeout=10)
    finally:
        postgres.start()
    wait_until(lambda: health(server) == 200, timeout=20)
    with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(size) as pool:
        answers = list(pool.map(lambda n: client.post("/api/todos/", json={"title": f"after {n}"}), range(size)))
    assert [a.status_code for a in answers] == [201] * size, [a.text for a in answers if a.status_code != 201]


def test_a_write_queued_behind_a_batch_waiting_for_a_connection_fails_within_the_bound(
    postgres: RestartablePostgres, server: Server
) -> None:
    """Writes wait for the batch before theirs (core/write_batch.py): one
    arriving while that batch waits for a connection the database down
    cannot give must still be answered DATABASE_UNAVAILABLE within
    DATABASE_TIMEOUT_SECONDS of its own arrival, not after that batch's
    wait and then its own."""
    assert "errors" not in asyncio.run(_create_timed(server, "before"))[1]
    postgres.stop()
    try:
        wait_until(lambda: health(server) == 503, timeout=10)

        async def staggered() -> list[tuple[float, dict[str, Any]]]:
            # One every tenth of the timeout: most arrive while a batch waits.
            async def later(n: int) -> tuple[float, dict[str, Any]]:
                await asyncio.sleep(n * DATABASE_TIMEOUT / 10)
                return await _create_timed(server, f"during {n}")

            return await asyncio.gather(*(later(n) for n in range(15)))

        answered = asyncio.run(staggered())
    finally:
        postgres.start()
    codes = [[e["extensions"]["code"] for e in body.get("errors", [])] for _, body in answered]
    assert codes == [["DATABASE_UNAVAILABLE"]] * len(answered)
    took = [round(seconds, 2) for seconds, _ in answered]
    assert max(took) <= DATABASE_TIMEOUT + MARGIN, f"seconds to each answer: {took}"
    wait_until(lambda: health(server) == 200, timeout=20)
    assert _titles(server) == ["before"]  # none of them written since


async def _create_timed(server: Server, title: str) -> tuple[float, dict[str, Any]]:
    """A createTodo over HTTP: how long its answer took, and the answer."""
    async with httpx.AsyncClient(base_url=server.url, timeout=DATABASE_TIMEOUT + 10) as client:
        started = time.monotonic()
        response = await client.post("/graphql", json={"query": CREATE, "variables": {"t": title}})
        return time.monotonic() - started, response.json()


def _titles(server: Server) -> list[str]:
    with psycopg.connect(server.dsn) as conn:
        return [title for (title,) in conn.execute("SELECT title FROM todos ORDER BY title")]


# 100 subscribers (half GraphQL, half RESTSocket), 4 writers that retry.
SUBSCRIBERS = 100
WRITERS = 4
WRITES = 25


async def _graphql_subscriber(server: Server, received: list[str]) -> None:
    async with connect(server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { todoChanges(after: \"0\") { cursor } }"}}))
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message["type"] != "pong":
                assert message["type"] == "next", message
                received.append(message["payload"]["data"]["todoChanges"]["cursor"])


async def _rest_subscriber(server: Server, received: list[str]) -> None:
    ws: ClientConnection
    async with connect(server.ws_url + "/api/todos/?after=0") as ws:
        async for raw in ws:
            message = json.loads(raw)
            if message["op"] != "keepalive":
                received.append(message["cursor"])


async def _writer(server: Server, name: str, outcomes: dict[str, int], failures: list[tuple[float, float]]) -> None:
    """WRITES creates; one refused with DATABASE_UNAVAILABLE is made again
    (its start and end times kept in `failures`)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=DATABASE_TIMEOUT + 10) as client:
        done = 0
        while done < WRITES:
            started = time.monotonic()
            response = await client.post("/graphql", json={"query": CREATE, "variables": {"t": f"{name}-{done}"}})
            errors = response.json().get("errors")
            if errors is None:
                done += 1
                outcomes["ok"] += 1
            else:
                # The only failure allowed is the database being away: again.
                assert [e["extensions"]["code"] for e in errors] == ["DATABASE_UNAVAILABLE"], errors
                outcomes["unavailable"] += 1
                failures.append((started, time.monotonic()))


async def _restart_under_load(postgres: RestartablePostgres, server: Server) -> tuple[list[list[str]], dict[str, Any]]:
    received: list[list[str]] = [[] for _ in range(SUBSCRIBERS)]
    listeners = [
        asyncio.create_task((_graphql_subscriber if i % 2 else _rest_subscriber)(server, received[i]))
        for i in range(SUBSCRIBERS)
    ]
    deadline = time.monotonic() + 30
    while server.subscriber_count() < SUBSCRIBERS:
        assert time.monotonic() < deadline, "subscribers did not all arrive"
        await asyncio.sleep(0.05)
    outcomes = {"ok": 0, "unavailable": 0}
    failures: list[tuple[float, float]] = []
    writers = [asyncio.create_task(_writer(server, f"w{i}", outcomes, failures)) for i in range(WRITERS)]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        while outcomes["ok"] < WRITES:  # a quarter of the writes before the restart
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.to_thread(postgres.stop)
        healthz_during = (await client.get("/healthz")).status_code
        while outcomes["unavailable"] == 0:
            assert time.monotonic() < deadline + 30, "no write failed while the database was down"
            await asyncio.sleep(0.01)
        await asyncio.to_thread(postgres.start)
        while (await client.get("/healthz")).status_code != 200:
            assert time.monotonic() < deadline + 60, "not healthy again"
        recovered = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*writers), 120)
    expected = await asyncio.to_thread(journal, server)
    deadline = time.monotonic() + 60
    while any(len(r) < len(expected) for r in received):
        assert time.monotonic() < deadline, "some subscriber missed changes"
        await asyncio.sleep(0.05)
    ended = [task for task in listeners if task.done()]
    for task in listeners:
        task.cancel()
    facts = {"expected": expected, "outcomes": outcomes, "healthz": healthz_during, "ended": ended}
    return received, {**facts, "failures": failures, "recovered": recovered}


def test_every_subscriber_gets_every_change_once_through_a_restart_under_load(
    postgres: RestartablePostgres, server: Server
) -> None:
    received, facts = asyncio.run(_restart_under_load(postgres, server))
    expected = facts["expected"]
    # Every acknowledged write committed (one cut off between its commit and
    # its answer would be written again by its writer, hence at least).
    assert len(expected) >= WRITERS * WRITES
    assert facts["outcomes"]["unavailable"] > 0
    # Each refused within the bound, and none once healthy again.
    assert max(end - start for start, end in facts["failures"]) <= DATABASE_TIMEOUT + MARGIN
    assert [start for start, _ in facts["failures"] if start >= facts["recovered"]] == []
    assert facts["healthz"] == 503
    assert facts["ended"] == []  # no subscription ended
    assert all(r == expected for r in received)
