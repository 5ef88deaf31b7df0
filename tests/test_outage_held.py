"""Every pooled connection held (the real app, a real server): a write's
waits together (its role check's wait for a connection, then its batch's;
its batch's, then its lone rerun's) end within DATABASE_TIMEOUT_SECONDS of
its start, not one timeout each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import psycopg

from tests.helpers import BEARER, TOKEN, Server, serving, wait_until

DATABASE_TIMEOUT = 1.0
# What a request may take beyond it: the response's own trip, on a loaded machine.
MARGIN = 0.3
PASSWORD = "correct horse battery"
CREATE = "mutation($t: String!, $l: ID, $id: ID) { createTodo(input: {title: $t, listId: $l, id: $id}) { id } }"
WRITES = 5
Answer = tuple[float, dict[str, Any]]


def _blocked(server: Server) -> list[int]:
    """The backends of the app's statements waiting for the test's lock."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )]


def _writes_while_held(
    server: Server, table: str, hold: Callable[[int], Future[Any]], headers: dict[str, str],
    variables: Callable[[int], dict[str, Any]],
) -> list[Answer]:
    """WRITES createTodo (`variables(n)`, a fiftieth of the timeout apart),
    each one's seconds and answer, sent while `table` is locked and the
    pool's two connections held by `hold(0)`, `hold(1)` waiting for it;
    `hold(2)`, `hold(3)` are queued at the gate at a fifth of the timeout,
    and one held call is cancelled at 0.8 of it (its connection goes to the
    callers queued since, in order)."""
    with psycopg.connect(server.dsn) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        held = [hold(0), hold(1)]
        try:
            wait_until(lambda: len(_blocked(server)) == 2, timeout=5)
            first = _blocked(server)[0]

            async def write(writer: httpx.AsyncClient, n: int) -> Answer:
                await asyncio.sleep(n * DATABASE_TIMEOUT / 50)
                started = time.monotonic()
                response = await writer.post("/graphql", json={"query": CREATE, "variables": variables(n)})
                return time.monotonic() - started, response.json()

            async def run() -> list[Answer]:
                # One client made before the clock starts (making one takes the test's thread, and the app's, a while).
                async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=headers) as writer:
                    writing = asyncio.gather(*(write(writer, n) for n in range(WRITES)))
                    await asyncio.sleep(DATABASE_TIMEOUT / 5)
                    held.extend([hold(2), hold(3)])
                    await asyncio.sleep(DATABASE_TIMEOUT * 0.6)
                    with psycopg.connect(server.dsn, autocommit=True) as conn:
                        conn.execute("SELECT pg_cancel_backend(%s)", (first,))
                    return list(await writing)

            return asyncio.run(run())
        finally:
            locker.rollback()
            for call in held:
                call.result()


def _unavailable_in_time(answered: list[Answer]) -> None:
    codes = [[e["extensions"]["code"] for e in body.get("errors", [])] for _, body in answered]
    assert codes == [["DATABASE_UNAVAILABLE"]] * WRITES, answered
    took = [round(seconds, 2) for seconds, _ in answered]
    assert max(took) <= DATABASE_TIMEOUT + MARGIN, f"seconds to each answer: {took}"


def _titles(server: Server) -> list[str]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return [title for (title,) in conn.execute("SELECT title FROM todos")]


def test_a_write_whose_role_check_waited_is_answered_within_the_timeout_of_its_start(db_dsn: str) -> None:
    """POOL_SIZE=2, both connections held by reads waiting for a lock on
    todos. Writes to a list by its owner wait at the gate for their role
    checks; reads queued behind them will take the connection back. One
    held read is cancelled at 0.8 of the timeout: its connection passes
    through every role check to a read queued after them, which waits on the
    lock, and the writes' batch waits for a connection again. Each write is
    DATABASE_UNAVAILABLE within the timeout of its start, none written."""
    with serving(
        db_dsn, database_timeout_seconds=DATABASE_TIMEOUT, pool_size=2, auth="accounts", token=TOKEN
    ) as server, httpx.Client(base_url=server.url, timeout=10, headers={"Origin": server.url}) as client:
        person = client.post("/api/auth/sign-up", json={"username": "ann", "password": PASSWORD})
        assert person.status_code == 201, person.text
        secret = client.post("/api/tokens/", json={"name": "held"}).json()["secret"]
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            (own,) = conn.execute(
                "SELECT id FROM lists WHERE owner_id = %s AND is_default", (person.json()["person"]["id"],)
            ).fetchone()  # type: ignore[misc]
        ann = {"Authorization": f"Bearer {secret}"}
        # Her token looked up now, trusted for a second (people.CACHE_SECONDS): the writes' first wait is the role check.
        assert client.get("/api/auth/me", headers=ann).status_code == 200
        with ThreadPoolExecutor(4) as reads:
            answered = _writes_while_held(
                server, "todos", lambda _: reads.submit(client.get, "/api/todos/", headers=BEARER), ann,
                lambda n: {"t": f"w{n}", "l": str(own)},
            )
        _unavailable_in_time(answered)
        assert _titles(server) == []


def test_the_rerun_of_a_write_whose_batch_waited_is_answered_within_the_timeout_of_its_start(db_dsn: str) -> None:
    """POOL_SIZE=2, both connections held by sign-ins waiting for a lock
    (tokens never looked up, on access_tokens). A createTodo naming a taken
    id waits at the gate for its batch's connection; sign-ins queued behind
    it will take the connection back. One held sign-in is cancelled at 0.8
    of the timeout: the batch runs, is refused and rolled back, and the
    write's lone rerun waits for a connection again. It is
    DATABASE_UNAVAILABLE within the timeout of its start, as are the writes
    queued behind that batch, none written."""
    taken = "00000000-0000-4000-8000-000000000001"
    with serving(
        db_dsn, database_timeout_seconds=DATABASE_TIMEOUT, pool_size=2, auth="accounts", token=TOKEN
    ) as server, httpx.Client(base_url=server.url, timeout=10, headers={"Origin": server.url}) as client:
        assert client.post("/api/auth/sign-up", json={"username": "ann", "password": PASSWORD}).status_code == 201
        tokens = [client.post("/api/tokens/", json={"name": f"held {n}"}).json()["secret"] for n in range(4)]
        first = client.post("/graphql", headers=BEARER, json={"query": CREATE, "variables": {"t": "first", "id": taken}})
        assert "errors" not in first.json()
        with ThreadPoolExecutor(4) as signing_in:
            answered = _writes_while_held(
                server, "access_tokens",
                lambda n: signing_in.submit(client.get, "/api/auth/me", headers={"Authorization": f"Bearer {tokens[n]}"}),
                BEARER, lambda n: {"t": f"w{n}", "id": taken if n == 0 else None},
            )
        _unavailable_in_time(answered)
        assert _titles(server) == ["first"]
