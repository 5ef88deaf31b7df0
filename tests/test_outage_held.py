"""Every pooled connection held (the real app, a real server): a write's
waits together (its role check's wait for a connection, then its batch's)
end within DATABASE_TIMEOUT_SECONDS of its start, not one timeout each."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg

from tests.helpers import BEARER, TOKEN, Server, serving, wait_until

DATABASE_TIMEOUT = 1.0
# What a request may take beyond it: the response's own trip, on a loaded machine.
MARGIN = 0.3
PASSWORD = "correct horse battery"
CREATE = "mutation($t: String!, $l: ID) { createTodo(input: {title: $t, listId: $l}) { id } }"
WRITES = 5


def _blocked(server: Server) -> list[int]:
    """The backends of the app's statements waiting for the test's lock."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )]


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
        reads = ThreadPoolExecutor(4)
        with psycopg.connect(server.dsn) as locker:
            # Her token looked up now, trusted for a second (people.CACHE_SECONDS): the writes' first wait is the role check.
            assert client.get("/api/auth/me", headers=ann).status_code == 200
            locker.execute("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
            held = [reads.submit(client.get, "/api/todos/", headers=BEARER) for _ in range(2)]
            wait_until(lambda: len(_blocked(server)) == 2, timeout=5)
            first = _blocked(server)[0]

            async def write(writer: httpx.AsyncClient, n: int) -> tuple[float, dict[str, Any]]:
                started = time.monotonic()
                response = await writer.post("/graphql", json={"query": CREATE, "variables": {"t": f"w{n}", "l": str(own)}})
                return time.monotonic() - started, response.json()

            async def run() -> list[tuple[float, dict[str, Any]]]:
                # One client made before the clock starts (making one takes the test's thread, and the app's, for a while).
                async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=ann) as writer:
                    writing = asyncio.gather(*(write(writer, n) for n in range(WRITES)))
                    await asyncio.sleep(DATABASE_TIMEOUT / 10)  # the role checks queued at the gate
                    queued = [reads.submit(client.get, "/api/todos/", headers=BEARER) for _ in range(2)]
                    await asyncio.sleep(DATABASE_TIMEOUT * 0.7)
                    with psycopg.connect(server.dsn, autocommit=True) as conn:
                        conn.execute("SELECT pg_cancel_backend(%s)", (first,))
                    answered = await writing
                held.extend(queued)
                return list(answered)

            try:
                answered = asyncio.run(run())
            finally:
                locker.rollback()
        for read in held:
            read.result()
        reads.shutdown()
        codes = [[e["extensions"]["code"] for e in body.get("errors", [])] for _, body in answered]
        assert codes == [["DATABASE_UNAVAILABLE"]] * WRITES, answered
        took = [round(seconds, 2) for seconds, _ in answered]
        assert max(took) <= DATABASE_TIMEOUT + MARGIN, f"seconds to each answer: {took}"
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT title FROM todos").fetchall() == []
