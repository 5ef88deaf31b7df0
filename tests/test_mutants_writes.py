"""Behaviour of core/writes.py's list-wide statements no other test held:
each case kills a mutant of the statement that the rest of the suite let
live (the mutation run's report names them)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from graphql_todos.core.models import LOCAL_ID
from graphql_todos.core.mutations import Key, Receipt
from graphql_todos.core.service import TodoService
from tests.core.test_write_batch import _pool

# Made in this order, each in its own transaction (so its own created_time),
# with ids that sort the other way: list order is created_time, then id.
_MADE = [
    ("oldest", "ffffffff-0000-4000-8000-000000000000", False),
    ("middle", "88888888-0000-4000-8000-000000000000", False),
    ("done before", "44444444-0000-4000-8000-000000000000", True),
    ("newest", "00000000-0000-4000-8000-000000000001", False),
]


def _made(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for title, todo_id, completed in _MADE:
            conn.execute("INSERT INTO todos (id, title, completed) VALUES (%s, %s, %s)", (todo_id, title, completed))


def _receipt(numbered: bool) -> Receipt:
    return Receipt(Key(LOCAL_ID, uuid.uuid4(), 1, b"toggle all")) if numbered else Receipt()


def _titles(rows: list[Any]) -> list[str]:
    return [row.title for row in rows]


@pytest.mark.parametrize("numbered", [False, True])
def test_toggle_all_answers_the_rows_it_changed_alone_in_list_order_up_to_the_limit(db_dsn: str, numbered: bool) -> None:
    """Its answer: the rows it changed (not one already so), in list order
    (created, then id), the first max_list_rows of them; every one changed."""
    _made(db_dsn)

    async def run() -> tuple[list[Any], list[Any]]:
        async with _pool(db_dsn) as pool:
            whole = await TodoService(pool).toggle_all(True, _receipt(numbered))
            first = await TodoService(pool, max_list_rows=2).toggle_all(False, _receipt(numbered))
            return whole, first

    whole, first = asyncio.run(run())
    assert _titles(whole) == ["oldest", "middle", "newest"]
    assert _titles(first) == ["oldest", "middle"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM todos WHERE completed").fetchone() == (0,)
