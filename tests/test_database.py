"""The gated pool: callers beyond its size queue in front of it, are served
in turn, and give up within the timeout without losing a place."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphql_todos.database import GatedPool, connection
from graphql_todos.errors import DatabaseUnavailable


def _pool(dsn: str, timeout: float = 5.0) -> GatedPool:
    return GatedPool(dsn, min_size=2, max_size=2, open=False, timeout=timeout, kwargs={"autocommit": True})


async def _query(pool: GatedPool, seconds: float) -> Any:
    async with connection(pool) as conn:
        cursor = await conn.execute("SELECT pg_sleep(%s), pg_backend_pid()", (seconds,))
        row = await cursor.fetchone()
        assert row is not None
        return row[1]


def test_callers_beyond_the_size_wait_their_turn(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn) as pool:
            await pool.wait()
            tasks = [asyncio.create_task(_query(pool, 0.2)) for _ in range(6)]
            await asyncio.sleep(0.1)
            stats = pool.get_stats()
            assert (stats["pool_available"], stats["requests_waiting"]) == (0, 4)
            backends = await asyncio.gather(*tasks)
            assert len(set(backends)) == 2
            assert pool.get_stats()["requests_waiting"] == 0

    asyncio.run(main())


def test_a_caller_that_waits_too_long_gives_up_and_keeps_no_place(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn, timeout=0.3) as pool:
            await pool.wait()
            busy = [asyncio.create_task(_query(pool, 1.0)) for _ in range(2)]
            await asyncio.sleep(0.1)
            with pytest.raises(DatabaseUnavailable):
                await _query(pool, 0)
            await asyncio.gather(*busy)
            # The ones that gave up hold nothing: both connections serve again.
            assert len(set(await asyncio.gather(_query(pool, 0.1), _query(pool, 0.1)))) == 2

    asyncio.run(main())


def test_a_failed_statement_gives_its_place_back(db_dsn: str) -> None:
    async def main() -> None:
        async with _pool(db_dsn) as pool:
            await pool.wait()
            for _ in range(3):
                with pytest.raises(Exception, match="division by zero"):
                    async with connection(pool) as conn:
                        await conn.execute("SELECT 1 / 0")
            assert len(set(await asyncio.gather(_query(pool, 0.1), _query(pool, 0.1)))) == 2

    asyncio.run(main())
