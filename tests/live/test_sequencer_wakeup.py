"""A lone write whose commit the walsender slept through (PostgreSQL 16 to
18: graphql_todos/internals/psycopg2_replication.py, NUDGE_SECONDS) is
answered well inside DATABASE_TIMEOUT_SECONDS. Not among make test's
PostgreSQL 15 tests: its walsender has no such step to hold."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import psycopg

from graphql_todos.core.journal_mode import DECODED, slot_name
from tests.helpers import serving, wait_until
from tests.walsender import held_before_its_sleep


def test_a_write_committed_while_the_walsender_goes_to_sleep_is_answered_in_time(db_dsn: str, tmp_path: Path) -> None:
    with (
        serving(db_dsn, journal=DECODED, database_timeout_seconds=5.0) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
        psycopg.connect(db_dsn, autocommit=True) as conn,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        assert client.post("/api/todos/", json={"title": "first"}).status_code == 201
        pid = wait_until(lambda: conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot_name(conn.info.dbname),)
        ).fetchone(), timeout=10)[0]
        # A transaction of no table's wakes the walsender (and gives the sequencer nothing).
        with held_before_its_sleep(pid, tmp_path, lambda: conn.execute("SELECT pg_current_xact_id()")):
            reply = pool.submit(client.post, "/api/todos/", json={"title": "lone"})
            # Committed (and flushed) while the walsender is held: its wakeup is lost.
            wait_until(lambda: conn.execute("SELECT 1 FROM todos WHERE title = 'lone'").fetchone(), timeout=10)
            released = time.monotonic()
        answer = reply.result(timeout=10)
        assert answer.status_code == 201, answer.text
        # A wakeup lost waits for good (the write's DATABASE_TIMEOUT_SECONDS,
        # 5 s): half of it, as a loaded machine may add a second to the nudge's
        # 50 ms and the answer's trip.
        assert time.monotonic() - released < 2.5
