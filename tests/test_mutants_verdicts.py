"""Behaviour of core/verdicts.py no other test held: each case kills a
mutant of its SQL that the rest of the suite let live (the mutation run's
report names them)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from graphql_todos.core import verdicts
from graphql_todos.core.errors import Rejected
from graphql_todos.core.mutations import Key, Receipt
from graphql_todos.core.service import TodoService
from tests.core.test_write_batch import _person, _pool


def test_a_rejection_keeps_no_row_its_principal_may_not_see(db_dsn: str) -> None:
    """Bob, no member of Ann's list, numbers an update of her row's id: it is
    refused NOT_FOUND, as if there were no such row, and the record of his
    rejection keeps no row (Ann's title would be told to him in his verdicts)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, _ = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
    client = uuid.uuid4()

    async def run() -> list[Any]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            hers = await service.create_todo("ann's secret", actor=ann)
            with pytest.raises(Rejected):
                await service.update_todo(
                    str(hers.id), "bob's", receipt=Receipt(Key(bob, client, 1, b"update")), actor=bob
                )
            return list(await service.verdicts(bob, str(client), "0"))

    (verdict,) = asyncio.run(run())
    assert (verdict.verdict.name, verdict.code, verdict.todo) == ("REJECTED", "NOT_FOUND", None)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT result ? 'row' FROM mutations WHERE principal = %s", (bob,)).fetchone() == (False,)


def test_a_no_op_is_settled_once_and_its_answer_kept(db_dsn: str) -> None:
    """settle_unchanged stores the rows and cursor of the first to settle; a
    second (a retry racing the first) changes nothing and is told so."""
    key = Key(uuid.UUID(int=0), uuid.uuid4(), 1, b"no-op")

    async def run() -> tuple[int | None, int | None]:
        async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict)"
                " VALUES (%s, %s, %s, %s, 'applied')", (key.principal, key.client, key.seq, key.fingerprint),
            )
            first = await verdicts.settle_unchanged(conn, key, [{"title": "first"}])
            await conn.execute("INSERT INTO todos (title) VALUES ('later')")
            second = await verdicts.settle_unchanged(conn, key, [{"title": "second"}])
            return first, second

    first, second = asyncio.run(run())
    assert first is not None and second is None
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT result, position FROM mutations").fetchone() == ([{"title": "first"}], first)
