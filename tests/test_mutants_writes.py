"""Behaviour of core/writes.py's list-wide statements no other test held:
each case kills a mutant of the statement that the rest of the suite let
live (the mutation run's report names them)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from graphql_todos.core.database import GatedPool
from graphql_todos.core.errors import ErrorCode
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


def test_a_list_wide_write_run_alone_after_its_batch_rolled_back_has_its_newest_entry_as_cursor(db_dsn: str) -> None:
    """Its batch rolled back (a taken id beside it), toggleAll runs alone and
    is told each entry's position by a NOTICE, one per row: its cursor is
    the newest of them, so a read at it sees every row it changed."""
    _made(db_dsn)
    taken = _MADE[0][1]

    async def run() -> tuple[Receipt, Any]:
        # As the app's pool: the journal trigger tells a lone write its positions by NOTICE (app.py).
        async with GatedPool(
            db_dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True, "options": "-c app.cursor_notice=on"}
        ) as pool:
            service = TodoService(pool)
            receipt = Receipt()
            done = await asyncio.gather(
                service.create_todo("taken again", todo_id=taken),
                service.toggle_all(True, receipt),
                return_exceptions=True,
            )
            return receipt, done

    receipt, (again, changed) = asyncio.run(run())
    assert type(again).__name__ == "TodoExists" and len(changed) == 3
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        positions = [row[0] for row in conn.execute(
            "SELECT position FROM todo_changes WHERE op = 'updated' ORDER BY position"
        )]
    assert len(positions) == 3 and receipt.cursor == positions[-1]


def test_toggle_all_of_ids_changes_those_rows_alone(db_dsn: str) -> None:
    """`ids` (the rows a client saw, docs/design/offline.md section 3): the
    others are left as they are."""
    _made(db_dsn)
    named = [_MADE[0][1], _MADE[3][1]]

    async def run() -> list[Any]:
        async with _pool(db_dsn) as pool:
            return await TodoService(pool).toggle_all(True, ids=named)

    assert _titles(asyncio.run(run())) == ["oldest", "newest"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        done = conn.execute("SELECT title FROM todos WHERE completed ORDER BY title").fetchall()
    assert [title for (title,) in done] == ["done before", "newest", "oldest"]


def test_a_numbered_create_naming_a_taken_id_is_rejected_as_a_conflict_and_recorded(db_dsn: str) -> None:
    """Run alone (its batch rolled back), the id's unique violation is the
    create's CONFLICT, recorded as its rejection; only a violation of the
    verdicts' own key is a duplicate answered from its record."""
    _made(db_dsn)
    key = Key(LOCAL_ID, uuid.uuid4(), 1, b"create")

    async def run() -> BaseException:
        async with _pool(db_dsn) as pool:
            with pytest.raises(Exception) as refused:
                await TodoService(pool).create_todo("again", todo_id=_MADE[0][1], receipt=Receipt(key))
            return refused.value

    refused = asyncio.run(run())
    assert getattr(refused, "code", None) is ErrorCode.CONFLICT, refused
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT verdict, result->>'code' FROM mutations WHERE client_id = %s", (key.client,)).fetchone()
    assert row == ("rejected", "CONFLICT")
