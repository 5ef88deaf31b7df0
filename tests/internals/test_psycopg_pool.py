"""One test per assumption internals/psycopg_pool.py makes of psycopg_pool,
and that its checkout leaves the pool as the pool's own getconn and putconn
do: after an upgrade, a failure here names what changed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection, OperationalError
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from graphql_todos.internals.psycopg_pool import Refusals, count_request, discard, reusable, shelve, take_idle

Pool = AsyncConnectionPool[Any]


def _run(dsn: str, test: Callable[[Pool], Awaitable[None]], size: int = 3, **kwargs: Any) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False, kwargs={"autocommit": True}, **kwargs)
        async with pool:
            await pool.wait()
            await test(pool)

    asyncio.run(main())


def _state(pool: Pool) -> tuple[list[AsyncConnection[Any]], int, int]:
    """What a checkout changes: the idle connections in order, their low mark, the requests counted."""
    return list(pool._pool), pool._nconns_min, pool.get_stats().get("requests_num", 0)


def _assert_taken(before: tuple[list[Any], int, int], after: tuple[list[Any], int, int], conn: Any, pool: Pool) -> None:
    idle, low, requests = before
    assert conn is idle[0] and conn._pool is pool
    assert after == (idle[1:], min(low, len(idle) - 1), requests + 1)


def _assert_put_back(before: tuple[list[Any], int, int], after: tuple[list[Any], int, int], conn: Any) -> None:
    idle, low, requests = before
    assert after == ([*idle, conn], low, requests) and conn._pool is None


def test_getconn_and_putconn_move_idle_connections_as_take_idle_and_shelve_do(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        pool._nconns_min = 3  # as when the shrinking worker last looked
        before = _state(pool)
        theirs = await pool.getconn()
        _assert_taken(before, _state(pool), theirs, pool)
        pool._nconns_min = 3
        before = _state(pool)
        ours = take_idle(pool)
        assert ours is not None
        _assert_taken(before, _state(pool), ours, pool)
        assert reusable(pool, theirs) and reusable(pool, ours)
        before = _state(pool)
        await pool.putconn(theirs)
        _assert_put_back(before, _state(pool), theirs)
        before = _state(pool)
        shelve(pool, ours)
        _assert_put_back(before, _state(pool), ours)

    _run(db_dsn, test)


def test_a_connection_handed_out_without_getconn_is_counted_as_getconn_counts_it(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        requests = pool.get_stats().get("requests_num", 0)
        await pool.putconn(await pool.getconn())
        count_request(pool)
        assert pool.get_stats()["requests_num"] == requests + 2

    _run(db_dsn, test)


def test_the_pools_lock_holds_back_its_getconn_and_putconn_and_ours(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        out = await pool.getconn()
        async with pool._lock:
            assert take_idle(pool) is None and not reusable(pool, out)
            taking = asyncio.create_task(pool.getconn())
            giving = asyncio.create_task(pool.putconn(out))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not taking.done() and not giving.done()
        await giving
        await pool.putconn(await taking)

    _run(db_dsn, test)


def test_putconn_hands_a_connection_to_a_client_queued_in_the_pool(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        out = await pool.getconn()
        queued = asyncio.create_task(pool.getconn())
        while not pool._waiting:
            await asyncio.sleep(0)
        assert not reusable(pool, out), "a client queued in the pool itself comes first"
        await pool.putconn(out)
        assert await queued is out and not pool._pool
        await pool.putconn(out)

    _run(db_dsn, test, size=1)


def test_putconn_sets_the_full_event_open_wait_waits_for(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        first, second = await pool.getconn(), await pool.getconn()
        waiting = asyncio.create_task(pool.wait())
        while pool._pool_full_event is None:
            await asyncio.sleep(0)
        await pool.putconn(first)
        await asyncio.sleep(0)
        assert not waiting.done()
        shelve(pool, second)
        await asyncio.wait_for(waiting, 5)

    _run(db_dsn, test, size=2)


def test_putconn_rolls_back_a_connection_in_a_transaction(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        conn = await pool.getconn()
        await conn.execute("BEGIN")
        assert not reusable(pool, conn)
        await pool.putconn(conn)
        assert conn.pgconn.transaction_status == TransactionStatus.IDLE

    _run(db_dsn, test)


def test_putconn_replaces_a_broken_connection(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        conn = await pool.getconn()
        await conn.close()
        assert not reusable(pool, conn)
        await pool.putconn(conn)
        assert conn not in pool._pool
        while len(pool._pool) < 3:
            await asyncio.sleep(0.01)  # the replacement, connecting

    _run(db_dsn, test)


def test_putconn_closes_a_connection_older_than_a_drain_or_past_its_lifetime(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        drained, expired = await pool.getconn(), await pool.getconn()
        await pool.drain()
        assert pool._drained_at >= drained._created_at and not reusable(pool, drained)
        await pool.putconn(drained)
        assert drained.closed
        fresh = await pool.getconn()
        assert reusable(pool, fresh)
        fresh._expire_at = 0.0
        assert not reusable(pool, fresh)
        await pool.putconn(fresh)
        assert fresh.closed
        await pool.putconn(expired)

    _run(db_dsn, test)


def test_a_reset_function_runs_at_every_putconn(db_dsn: str) -> None:
    resets: list[Any] = []

    async def reset(conn: Any) -> None:
        resets.append(conn)

    async def test(pool: Pool) -> None:
        conn = await pool.getconn()
        assert not reusable(pool, conn)
        await pool.putconn(conn)
        while not resets:
            await asyncio.sleep(0.01)  # a worker's
        assert resets == [conn]

    _run(db_dsn, test, reset=reset)


def test_a_check_function_runs_at_every_getconn(db_dsn: str) -> None:
    checks: list[Any] = []

    async def check(conn: Any) -> None:
        checks.append(conn)

    async def test(pool: Pool) -> None:
        assert take_idle(pool) is None
        conn = await pool.getconn()
        assert checks == [conn]
        await pool.putconn(conn)

    _run(db_dsn, test, check=check)


def test_a_closed_pool_hands_out_and_takes_back_nothing_as_it_is(db_dsn: str) -> None:
    async def test(pool: Pool) -> None:
        conn = await pool.getconn()
        await pool.close()
        assert take_idle(pool) is None and not reusable(pool, conn)
        await pool.putconn(conn)
        assert conn.closed

    _run(db_dsn, test)


def test_discard_takes_a_closed_connection_out_as_a_failed_check_does(db_dsn: str) -> None:
    """A connection handed out and closed since (its backend ended while it
    sat idle): out of the pool for good, counted lost, a new one made."""

    async def test(pool: Pool) -> None:
        conn = take_idle(pool)
        assert conn is not None
        conn.pgconn.finish()
        assert conn.pgconn.transaction_status == TransactionStatus.UNKNOWN
        await discard(pool, conn)
        assert conn not in pool._pool and pool.get_stats()["connections_lost"] == 1
        while len(pool._pool) < 3:
            await asyncio.sleep(0.01)  # the replacement, connecting
        assert pool.get_stats()["pool_size"] == 3

    _run(db_dsn, test)


def test_each_new_connection_the_pool_makes_goes_through_connect_and_a_failed_one_is_told() -> None:
    """A new connection (to fill the pool, here) made by `_connect`: an
    attempt that fails is told to `refused` as it fails, then retried."""
    told: list[Exception] = []

    class Told(Refusals):
        def refused(self, exc: Exception) -> None:
            told.append(exc)

    async def main() -> None:
        # Nothing listens on port 1.
        async with Told("host=127.0.0.1 port=1 connect_timeout=2", min_size=1, open=False) as pool:
            while not told:
                await asyncio.sleep(0.01)
            assert pool.get_stats()["connections_errors"] >= 1
        assert isinstance(told[0], OperationalError)

    asyncio.run(main())
