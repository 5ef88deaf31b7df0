"""Shared journal-position reads: many subscribes, few queries, never stale."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from graphql_todos.errors import BadUserInput
from graphql_todos.journal import Journal
from graphql_todos.positions import Positions


def insert(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO todos (title) VALUES ('x')")


async def _check(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        positions = Positions(Journal(pool))
        insert(dsn)
        # Fifty at once: one read answers those that asked before it started,
        # one more the rest.
        answers = await asyncio.gather(*(positions.committed() for _ in range(50)))
        assert answers == [1] * 50
        assert positions.reads <= 2
        # A commit made before the call is always seen.
        for expected in (2, 3):
            await asyncio.to_thread(insert, dsn)
            assert await positions.committed() == expected
        assert await positions.start(None) == 3
        assert await positions.start("2") == 2
        with pytest.raises(BadUserInput):
            await positions.start("4")


def test_concurrent_calls_share_a_read_that_is_never_older_than_the_call(db_dsn: str) -> None:
    asyncio.run(_check(db_dsn))
