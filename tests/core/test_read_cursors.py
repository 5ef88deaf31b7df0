"""core/read_cursors.py: a decoded read's cursor, settled once the journal
holds every commit the read saw and none it did not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from graphql_todos.core.database import GatedPool, connection
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.read_cursors import LAST_PAUSE, ReadCursors, ReadLate
from graphql_todos.core.repository import SELECT_POSITION, TAKEN
from tests.decoded import Journaled, journaled

DECODED = pytest.mark.parametrize("journaled_db", ["decoded"], indirect=True)


def _cursor(dsn: str, seen: int, taken: str) -> int:
    async def run() -> int:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            return await ReadCursors(pool, 10.0).cursor(seen, taken)

    return asyncio.run(run())


@DECODED
def test_the_cursor_takes_a_commit_the_read_saw_and_not_one_after_it(journaled_db: Journaled) -> None:
    """A row committed before the read, journaled after it, is below the
    cursor; a row committed after the read (journaled before the cursor is
    settled) is above it: sent once by todoChanges(after: cursor), not lost."""
    with (
        psycopg.connect(journaled_db.dsn, autocommit=True) as conn,
        psycopg.connect(journaled_db.dsn, autocommit=True) as holder,
    ):
        conn.execute("INSERT INTO todos (title) VALUES ('journaled')")
        journaled(conn)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")  # the sequencer's INSERT waits
        conn.execute("INSERT INTO todos (title) VALUES ('seen')")
        seen, taken = conn.execute(f"SELECT ({SELECT_POSITION}), {TAKEN}").fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO todos (title) VALUES ('after the read')")
        holder.execute("COMMIT")
        journaled(conn)
        positions: dict[str, int] = dict(conn.execute("SELECT todo->>'title', position FROM todo_changes").fetchall())
    assert positions["seen"] == seen + 1
    assert _cursor(journaled_db.dsn, seen, taken) == positions["seen"] < positions["after the read"]


@DECODED
def test_reads_waiting_on_a_stuck_sequencer_share_one_look_and_leave_the_pool_to_the_rest(
    journaled_db: Journaled,
) -> None:
    """The sequencer held (its journal INSERT waits on a lock) behind a
    commit: 40 reads waiting for it (views and cursors) look at the slot
    through one poller, not a look each per pause, so a pool of two still
    serves writes at once; each read is DATABASE_UNAVAILABLE
    (ReadLate) at its timeout, none later."""
    timeout, waiters = 1.0, 40

    async def run(seen: int, taken: str) -> tuple[list[tuple[BaseException | int | None, float]], int, list[float]]:
        async with GatedPool(
            journaled_db.dsn, min_size=2, max_size=2, timeout=5, open=False, kwargs={"autocommit": True}
        ) as pool:
            read_cursors = ReadCursors(pool, timeout)
            loop = asyncio.get_running_loop()

            async def wait(n: int) -> tuple[BaseException | int | None, float]:
                started = loop.time()
                read = read_cursors.journaled() if n % 2 else read_cursors.cursor(seen, taken)
                answer = (await asyncio.gather(read, return_exceptions=True))[0]
                return answer, loop.time() - started

            async def others() -> list[float]:
                took = []
                while loop.time() < started + timeout:
                    asked = loop.time()
                    async with connection(pool) as conn:
                        await conn.execute("INSERT INTO todos (title) VALUES ('meanwhile')")
                    took.append(loop.time() - asked)
                    await asyncio.sleep(timeout / 20)
                return took

            checkouts = pool.get_stats().get("requests_num", 0)
            started = loop.time()
            answered, took = await asyncio.gather(asyncio.gather(*(wait(n) for n in range(waiters))), others())
            return list(answered), pool.get_stats().get("requests_num", 0) - checkouts - len(took), took

    with _sequencer_held(journaled_db.dsn) as (conn, _):
        seen, taken = conn.execute(f"SELECT ({SELECT_POSITION}), {TAKEN}").fetchone()  # type: ignore[misc]
        answered, looks, others = asyncio.run(run(seen, taken))
    assert all(isinstance(answer, ReadLate) for answer, _ in answered), answered
    # What breaks shows in whole timeouts: a read that misses its deadline
    # (waiting on the pool) takes the pool's 5 s, a wait that holds a pooled
    # connection keeps the writes below waiting for its whole second. Half a
    # timeout's slack leaves room for a loaded machine (CI: three test
    # processes on two cores stalled a write 165 ms against 0.1 s before).
    slack = timeout / 2
    assert all(timeout - 2 * LAST_PAUSE <= took < timeout + slack for _, took in answered), [
        took for _, took in answered
    ]
    # The marks (one for the reads that asked together, one more for any
    # that asked while it was read) and one poller's looks: at one a
    # pause, growing to LAST_PAUSE; a look each per pause is some 2,000.
    assert looks <= 2 + timeout / LAST_PAUSE + 10, looks
    assert max(others) < slack, others
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM todos WHERE title = 'meanwhile'").fetchone() == (len(others),)


class _LookFailsOnce(GatedPool):
    """The app's pool, whose next checkout by the poller (a look at the slot)
    waits until `arrived` is set, then fails as a pool timeout does: a look
    that fails while another read comes to wait."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_cursors: ReadCursors | None = None
        self.failing = False
        self.arrived = asyncio.Event()

    async def getconn(self, timeout: float | None = None) -> Any:
        if self.failing and self.read_cursors is not None and asyncio.current_task() is self.read_cursors._poller:
            self.failing = False
            await self.arrived.wait()
            raise PoolTimeout("the look's wait for a connection, over")
        return await super().getconn(timeout)


@DECODED
def test_a_read_that_came_to_wait_during_a_failed_look_waits_on_for_the_next(journaled_db: Journaled) -> None:
    """A look at the slot fails (DatabaseUnavailable): the reads it was for
    get the failure, as their own look would have; a read whose mark was
    committed while that look was under way was not looked for, and waits on
    for the next look, which finds it journaled once the sequencer goes on."""

    async def run() -> tuple[BaseException | None, BaseException | None]:
        async with _LookFailsOnce(
            journaled_db.dsn, min_size=2, max_size=2, timeout=5, open=False, kwargs={"autocommit": True}
        ) as pool:
            read_cursors = pool.read_cursors = ReadCursors(pool, 10.0)
            before = asyncio.create_task(read_cursors.journaled())
            await wait_for(lambda: len(read_cursors._waiting) == 1)
            pool.failing = True
            await wait_for(lambda: not pool.failing)  # the poller's look is under way
            during = asyncio.create_task(read_cursors.journaled())
            await wait_for(lambda: len(read_cursors._waiting) == 2)
            pool.arrived.set()
            await asyncio.gather(before, return_exceptions=True)
            holder.execute("COMMIT")  # the sequencer goes on
            answers = await asyncio.wait_for(asyncio.gather(before, during, return_exceptions=True), 5)
            return answers[0], answers[1]

    with _sequencer_held(journaled_db.dsn) as (_, holder):
        before, during = asyncio.run(run())
    assert isinstance(before, DatabaseUnavailable), before
    assert during is None, during


async def wait_for(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


@contextmanager
def _sequencer_held(dsn: str) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any]]]:
    """(conn, holder): a commit of conn's the sequencer cannot journal (its
    INSERT waits on a lock holder's transaction holds) until holder commits
    (at the block's end, if not before)."""
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as holder:
        journaled(conn)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")  # the sequencer's INSERT waits
        conn.execute("INSERT INTO todos (title) VALUES ('journaled late')")
        try:
            yield conn, holder
        finally:
            if holder.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                holder.execute("COMMIT")
