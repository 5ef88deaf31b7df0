"""The gated pool: callers beyond its size queue in front of it, are served
in turn, and give up within the timeout without losing a place."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import PoolClosed, PoolTimeout

from graphql_todos.core import database, writes
from graphql_todos.core.database import GatedPool, StatementConnection, connection
from graphql_todos.core.errors import DatabaseUnavailable, TodoExists
from graphql_todos.core.models import LOCAL_ID, Todo
from graphql_todos.core.repository import TODO_COLUMNS


def _pool(dsn: str, timeout: float = 5.0) -> GatedPool:
    return GatedPool(dsn, min_size=2, max_size=2, open=False, timeout=timeout, kwargs={"autocommit": True})


async def _query(pool: GatedPool) -> Any:
    """A statement that runs until the test's lock (see held()) is released: its backend's pid."""
    async with connection(pool) as conn:
        cursor = await conn.execute("SELECT pg_advisory_xact_lock_shared(1), pg_backend_pid()")
        row = await cursor.fetchone()
        assert row is not None
        return row[1]


@contextlib.asynccontextmanager
async def held(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The lock _query waits for, held until the block ends."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(1)")
        yield conn


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def _both_serve(pool: GatedPool, dsn: str) -> bool:
    """Whether both connections take a statement at once."""
    async with held(dsn):
        both = [asyncio.create_task(_query(pool)) for _ in range(2)]
        await _until(lambda: pool.get_stats()["pool_available"] == 0)
    return len(set(await asyncio.gather(*both))) == 2


def test_callers_beyond_the_size_wait_their_turn(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn) as pool:
            await pool.wait()
            async with held(db_dsn):
                tasks = [asyncio.create_task(_query(pool)) for _ in range(6)]
                await _until(lambda: pool.get_stats()["requests_waiting"] == 4)
                assert pool.get_stats()["pool_available"] == 0
            backends = await asyncio.gather(*tasks)
            assert len(set(backends)) == 2
            assert pool.get_stats()["requests_waiting"] == 0

    asyncio.run(main())


def test_a_caller_that_waits_too_long_gives_up_and_keeps_no_place(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn, timeout=0.3) as pool:
            await pool.wait()
            async with held(db_dsn):
                busy = [asyncio.create_task(_query(pool)) for _ in range(2)]
                await _until(lambda: pool.get_stats()["pool_available"] == 0)
                for _ in range(3):
                    with pytest.raises(DatabaseUnavailable):
                        await _query(pool)
            await asyncio.gather(*busy)
            # The ones that gave up hold nothing: both connections serve again.
            assert await _both_serve(pool, db_dsn)

    asyncio.run(main())


def test_a_failed_statement_gives_its_place_back(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn) as pool:
            await pool.wait()
            for _ in range(3):
                with pytest.raises(Exception, match="division by zero"):
                    async with connection(pool) as conn:
                        await conn.execute("SELECT 1 / 0")
            assert await _both_serve(pool, db_dsn)

    asyncio.run(main())



def test_a_caller_cancelled_as_a_connection_reaches_it_is_cancelled(db_dsn: str) -> None:
    """Python 3.11's asyncio.wait_for, which psycopg_pool waits with while
    the pool grows, returns the result when a cancellation comes as the
    result does, dropping the cancellation: a subscription stopped then
    would run on forever (and the graphql-ws handler, waiting for it, with
    it). Each turn of the event loop after the pool hands the connection
    over is tried: the same steps every run, no timing."""

    async def answer_to_cancel(turns: int) -> str:
        grown = asyncio.Event()

        async def configure(conn: Any) -> None:
            # The pool's second connection waits for the test.
            if opened:
                await grown.wait()
            opened.append(conn)

        opened: list[Any] = []
        pool = GatedPool(
            db_dsn, min_size=1, max_size=2, open=False, timeout=30, configure=configure, kwargs={"autocommit": True}
        )
        async with pool:
            await pool.wait()
            held = await pool.getconn()
            waiting = asyncio.create_task(pool.getconn())
            while not pool._waiting:
                await asyncio.sleep(0)  # it waits in the pool's own queue, the pool growing
            client = pool._waiting[0]
            grown.set()
            while client.conn is None:
                await asyncio.sleep(0)  # the pool's I/O goes on meanwhile
            for _ in range(turns):
                await asyncio.sleep(0)
            answer = "got it before the cancel" if waiting.done() else "got it though cancelled"
            waiting.cancel()
            try:
                await pool.putconn(await waiting)
            except asyncio.CancelledError:
                answer = "cancelled"
            await pool.putconn(held)
            return answer

    async def main() -> list[str]:
        return [await answer_to_cancel(turns) for turns in range(6)]

    answers = asyncio.run(main())
    assert "got it though cancelled" not in answers, answers
    assert "cancelled" in answers and answers[-1] == "got it before the cancel", answers


async def _queued(pool: GatedPool, count: int, timeout: float | None = None) -> list[asyncio.Task[Any]]:
    """`count` callers waiting at the gate, in order."""
    waiting, before = [], pool.get_stats()["requests_waiting"]
    for _ in range(count):
        waiting.append(asyncio.create_task(pool.getconn(timeout)))
        await asyncio.sleep(0)  # its first step: into the queue
    assert pool.get_stats()["requests_waiting"] == before + count
    return waiting


async def _serves_again(pool: GatedPool) -> bool:
    """Whether the pool of one hands its connection out again at once."""
    conn = await pool.getconn(0.5)
    await pool.putconn(conn)
    return pool.get_stats()["requests_waiting"] == 0


def _holding_the_one(dsn: str, test: Callable[[GatedPool, Any], Awaitable[None]]) -> None:
    """`test` run on a pool of one connection, given that one, held."""

    async def main() -> None:
        async with GatedPool(dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait()
            await test(pool, await pool.getconn())

    asyncio.run(main())


def test_a_connection_given_back_goes_to_the_first_caller_waiting(db_dsn: str) -> None:
    async def test(pool: GatedPool, held: Any) -> None:
        first, second = await _queued(pool, 2)
        await pool.putconn(held)
        assert await first is held and not second.done()
        await pool.putconn(held)
        assert await second is held
        await pool.putconn(held)
        assert pool.get_stats()["pool_available"] == 1 and pool.get_stats()["requests_waiting"] == 0

    _holding_the_one(db_dsn, test)


def test_a_caller_cancelled_as_a_connection_is_handed_to_it_passes_it_on(db_dsn: str) -> None:
    async def test(pool: GatedPool, held: Any) -> None:
        first, second = await _queued(pool, 2)
        await pool.putconn(held)  # handed to the first, which has yet to run
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second is held
        await pool.putconn(held)
        assert await _serves_again(pool)

    _holding_the_one(db_dsn, test)


def test_a_caller_with_a_shorter_timeout_gives_up_first(db_dsn: str) -> None:
    async def test(pool: GatedPool, held: Any) -> None:
        (patient,) = await _queued(pool, 1, timeout=30)
        (hasty,) = await _queued(pool, 1, timeout=0.2)
        with pytest.raises(PoolTimeout):
            await hasty
        assert not patient.done() and pool.get_stats()["requests_waiting"] == 1
        await pool.putconn(held)
        assert await patient is held
        await pool.putconn(held)

    _holding_the_one(db_dsn, test)


def test_a_broken_connection_given_back_lets_the_next_caller_in_to_a_new_one(db_dsn: str) -> None:
    async def test(pool: GatedPool, held: Any) -> None:
        (waiting,) = await _queued(pool, 1)
        await held.close()
        await pool.putconn(held)
        fresh = await waiting
        assert fresh is not held
        await fresh.execute("SELECT 1")
        await pool.putconn(fresh)
        assert await _serves_again(pool)

    _holding_the_one(db_dsn, test)


def test_a_closed_pool_turns_its_waiting_callers_away(db_dsn: str) -> None:
    async def test(pool: GatedPool, held: Any) -> None:
        (waiting,) = await _queued(pool, 1)
        closing = asyncio.create_task(pool.close())
        await _until(lambda: pool.closed)
        await pool.putconn(held)
        with pytest.raises(PoolClosed):
            await waiting
        await closing

    _holding_the_one(db_dsn, test)


def test_a_deadlocks_victim_runs_again_only_when_it_ran_alone(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement run alone (autocommit, no transaction open) that was a
    deadlock's victim committed nothing: it runs once more. In a transaction
    (which the deadlock aborted) the error is its caller's, not run again."""
    runs: list[str] = []

    async def first_a_victim(conn: object, statement: str, params: object, make_row: object) -> list[Any]:
        runs.append(statement)
        if len(runs) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return [("run again",)]

    monkeypatch.setattr(database, "_rows", first_a_victim)
    monkeypatch.setattr(database, "RETRY_PAUSE_SECONDS", 0.0)

    async def run() -> list[int]:
        counts = []
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            assert await database.statement_rows(conn, "alone", None, tuple) == [("run again",)]
            counts.append(len(runs))
            runs.clear()
            async with conn.transaction():
                with pytest.raises(psycopg.errors.DeadlockDetected):
                    await database.statement_rows(conn, "in a transaction", None, tuple)
            counts.append(len(runs))
        runs.clear()
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            with pytest.raises(psycopg.errors.DeadlockDetected):
                await database.statement_rows(conn, "not autocommit", None, tuple)
            counts.append(len(runs))
        return counts

    assert asyncio.run(run()) == [2, 1, 1]


def test_writes_return_the_columns_in_the_order_of_a_todos_fields() -> None:
    # writes._todo builds a Todo from a row by position.
    assert TODO_COLUMNS.split(", ") == [f.name for f in dataclasses.fields(Todo)]
    assert writes._RETURNING == "RETURNING " + ", ".join(f"todos.{f.name}" for f in dataclasses.fields(Todo))


def _create(title: str, todo_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {"id": todo_id, "title": title, "completed": False, "actor": None, "list": None, "owner": LOCAL_ID}


def test_the_pools_connections_keep_each_write_statement_prepared(db_dsn: str) -> None:
    """A write runs on the Prepared its connection keeps for the statement
    (StatementConnection): the same one, its adaptation context kept, from
    one write to the next. Parameters of other types (a new prepared
    statement), and a write that fails, leave it answering rightly."""

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            async with connection(pool) as conn:
                assert isinstance(conn, StatementConnection)
                first, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("one"))
                kept = conn.prepared(writes.TRIGGER.insert.plain)
                adaptation = kept.adapting
                named = uuid.uuid4()
                second, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("two", named))
                assert conn.prepared(writes.TRIGGER.insert.plain) is kept
                assert kept.adapting is adaptation
                assert len(kept.names) == 2, "an id or none: two sets of parameter types"
                with pytest.raises(TodoExists):
                    await writes.write(conn, writes.TRIGGER.insert.plain, _create("again", named))
                third, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("three"))
            assert [t.title for t in first + second + third] == ["one", "two", "three"]
            assert second[0].id == named
            assert len({first[0].id, second[0].id, third[0].id}) == 3

    asyncio.run(main())


async def _rolled_back_by_a_transaction_block(conn: psycopg.AsyncConnection[Any]) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        async with conn.transaction():
            await conn.execute("SELECT 1 / 0")


async def _rolled_back_to_a_savepoint(conn: psycopg.AsyncConnection[Any]) -> None:
    async with conn.transaction():
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with conn.transaction():
                await conn.execute("SELECT 1 / 0")


async def _rolled_back_by_rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("BEGIN")
    await conn.rollback()


async def _discarded_by_sql(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("DISCARD ALL")


@pytest.mark.parametrize(
    "drop",
    [_rolled_back_by_a_transaction_block, _rolled_back_to_a_savepoint, _rolled_back_by_rollback, _discarded_by_sql],
)
def test_a_kept_statement_runs_again_after_the_server_dropped_every_prepared_statement(
    db_dsn: str, drop: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
) -> None:
    """Once psycopg has prepared a statement of its own, each of its
    rollbacks (a transaction block that raises, a savepoint's, rollback())
    sends DEALLOCATE ALL, which drops the statements a pooled connection
    keeps prepared too (StatementConnection), as DISCARD ALL does: the
    writes after it still run, on the same connection."""

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            async with connection(pool) as conn:
                first, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("one"))
                await conn.execute("SELECT 1", prepare=True)  # psycopg's own
                await drop(conn)
                second, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("two"))
                third, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("three"))
            assert [t.title for t in first + second + third] == ["one", "two", "three"]

    asyncio.run(main())


def test_a_kept_statement_runs_again_after_the_pool_rolled_back_its_connection(db_dsn: str) -> None:
    """A connection given back in a failed transaction: the pool's putconn
    rolls it back (psycopg's rollback, DEALLOCATE ALL); the next caller's
    write on it still runs."""

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            async with connection(pool) as conn:
                first, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("one"))
                await conn.execute("SELECT 1", prepare=True)  # psycopg's own
                await conn.execute("BEGIN")
                with pytest.raises(psycopg.errors.DivisionByZero):
                    await conn.execute("SELECT 1 / 0")
                given_back = conn.info.backend_pid
            async with connection(pool) as conn:
                assert conn.info.backend_pid == given_back
                second, _ = await writes.write(conn, writes.TRIGGER.insert.plain, _create("two"))
            assert [t.title for t in first + second] == ["one", "two"]

    asyncio.run(main())


def test_a_batch_whose_connection_is_lost_ends_quietly_as_database_unavailable(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The backend of a pooled connection ended while its batch waits for
    the commit-order lock: DatabaseUnavailable, and of psycopg's only the
    pool's line for the connection it discards (a lost connection is an
    expected event)."""
    caplog.set_level(logging.WARNING)
    holder = psycopg.connect(db_dsn)
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (writes.COMMIT_ORDER_LOCK,))

    async def end_the_waiter() -> None:
        await asyncio.sleep(0.3)
        ended = await asyncio.to_thread(
            holder.execute, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        assert ended.fetchall() == [(True,)]

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            ending = asyncio.create_task(end_the_waiter())
            with pytest.raises(DatabaseUnavailable):
                async with connection(pool) as conn:
                    assert isinstance(conn, StatementConnection)
                    await writes.write_together(conn, [writes.Together.of(writes.TRIGGER.insert, _create("lost"), None)])
            await ending

    try:
        asyncio.run(main())
    finally:
        holder.close()
    logged = [(r.name, r.getMessage().split(":")[0]) for r in caplog.records if r.name.startswith("psycopg")]
    assert logged == [("psycopg.pool", "discarding closed connection")]


async def _end_backends(dsn: str, pids: list[int]) -> None:
    """The backends of `pids` terminated, and gone from the server."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as other:
        await other.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        while await (await other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))).fetchone():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("way", ["taken idle", "the pool's getconn"])
def test_connections_ended_while_idle_are_discarded_at_checkout_and_the_write_runs_on_another(
    db_dsn: str, way: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Backends of idle pooled connections terminated: the checkout finds
    each ended (one poll of its socket), discards it, and hands out a live
    one, taken idle at once, or (`the pool's getconn`: its lock held as the
    checkout starts, every idle one ended) from the pool's own getconn,
    which waits for a new one. The write runs once, on it."""
    caplog.set_level(logging.WARNING, logger="graphql_todos.core.database")

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=3, max_size=3, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait()
            pids = [conn.info.backend_pid for conn in pool._pool]
            ended = pids[:2] if way == "taken idle" else pids
            await _end_backends(db_dsn, ended)

            async def write() -> tuple[int, list[Todo]]:
                async with connection(pool) as conn:
                    return conn.info.backend_pid, (await writes.write(conn, writes.TRIGGER.insert.plain, _create("once")))[0]

            if way == "taken idle":
                pid, written = await write()
                assert pid == pids[2]
            else:
                await pool._lock.acquire()
                writing = asyncio.create_task(write())
                await asyncio.sleep(0.05)
                pool._lock.release()
                pid, written = await writing
                assert pid not in pids
            assert [todo.title for todo in written] == ["once"]
            assert pool.get_stats()["connections_lost"] == len(ended)

    asyncio.run(main())
    logged = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "graphql_todos.core.database"]
    assert logged == ["a pooled connection ended while idle, discarded"] * (2 if way == "taken idle" else 3)
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM todos WHERE title = 'once'").fetchone() == (1,)


def test_a_connection_found_ended_while_the_database_refuses_new_ones_fails_at_once(db_dsn: str) -> None:
    """Every backend cut and no new connection let in (a restart, as
    tests/core/test_errors.py takes the database away): the checkout that
    finds its idle connection ended is DatabaseUnavailable as soon as the
    pool's attempt at a new one is refused, not at the pool's timeout."""
    name = conninfo_to_dict(db_dsn)["dbname"]
    admin = make_conninfo(db_dsn, dbname="postgres")

    async def main() -> float:
        async with GatedPool(db_dsn, min_size=1, max_size=1, timeout=5, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait()
            pids = [conn.info.backend_pid for conn in pool._pool]
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # type: ignore[arg-type]
            await _end_backends(admin, pids)
            started = asyncio.get_running_loop().time()
            with pytest.raises(DatabaseUnavailable):
                async with connection(pool):
                    pass
            return asyncio.get_running_loop().time() - started

    try:
        took = asyncio.run(main())
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")  # type: ignore[arg-type]
    # What breaks waits out the pool's 5 s timeout: half of it, as a loaded
    # machine may add a second to the refusal's trip.
    assert took < 2.5


def test_a_caller_cancelled_as_its_replacement_connection_arrives_gives_it_back(db_dsn: str) -> None:
    """A checkout that found its idle connection ended waits for the pool's
    new one (GatedPool._replacement), and is cancelled (its client gone) in
    the same turn of the loop as the pool hands that one over: the
    connection goes back to the pool, not lost with the caller (the pool
    one connection short for good: every request on a pool of one then
    timing out)."""

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=2, max_size=2, timeout=3, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait()
            kept = await pool.getconn()
            await _end_backends(db_dsn, [conn.info.backend_pid for conn in pool._pool])
            caller = asyncio.create_task(pool.getconn())

            def pools_getconn() -> asyncio.Task[Any] | None:
                running = asyncio.all_tasks()
                return next((t for t in running if getattr(t.get_coro(), "__qualname__", "") == "AsyncConnectionPool.getconn"), None)

            # Found in the turn the caller starts it, long before it can connect.
            while (getting := pools_getconn()) is None:
                await asyncio.sleep(0)
            # After the caller's own wait is told, before the caller runs on.
            getting.add_done_callback(lambda _: caller.cancel())
            with pytest.raises(asyncio.CancelledError):
                await caller
            await pool.putconn(kept)
            await _until(lambda: pool.get_stats()["pool_available"] == 2)
            assert pool._through == 0

    asyncio.run(main())


def test_a_connection_ended_while_handed_from_caller_to_caller_at_the_gate_fails_no_request(db_dsn: str) -> None:
    """The pool at its size, a caller waiting at the gate: the connection
    given back is handed straight to it (GatedPool._hand_over), not put
    idle. Its backend ended meanwhile (pg_terminate_backend of the idle
    ones, say, while the previous request still held it): the caller finds
    it ended too, as one taken idle, and its statement runs on another."""

    async def main() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, timeout=5, open=False, kwargs={"autocommit": True}) as pool:
            await pool.wait()
            kept = await pool.getconn()
            pid = kept.info.backend_pid

            async def query() -> tuple[int, Any]:
                async with connection(pool) as conn:
                    return conn.info.backend_pid, await (await conn.execute("SELECT 1")).fetchone()

            waiting = asyncio.create_task(query())
            await _until(lambda: pool._gate_waiting == 1)
            await _end_backends(db_dsn, [pid])
            await pool.putconn(kept)
            took, row = await waiting
            assert (took != pid, row) == (True, (1,))
            assert pool.get_stats()["connections_lost"] == 1
            await _until(lambda: pool.get_stats()["pool_available"] == 1)
            assert pool._through == 0

    asyncio.run(main())
