"""Behaviour of core/write_batch.py and core/writes.py no other test held:
each case kills a mutant of the code that the rest of the suite let live
(the mutation run's report names them)."""

from __future__ import annotations

import asyncio

import psycopg

from graphql_todos.core.models import Todo
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.service import TodoService
from tests.core.test_write_batch import _entries, _pool, _run_closing, _waiting_for_the_lock

COMMIT_ORDER_LOCK = "SELECT pg_advisory_xact_lock(7305202417)"  # sql/002


def _lock_waiters(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()
    assert row is not None
    return int(row[0])


def test_writes_arriving_one_by_one_while_a_batch_runs_wait_in_the_app_and_go_next_together(db_dsn: str) -> None:
    """One batch at a time (SLOTS): a write arriving while a batch waits for
    the commit-order lock starts no batch of its own (no second session
    waits for the lock), and one arriving a moment after it joins it in the
    next batch: one transaction for both. Two batches at once (the slot
    check off by one) send the second write alone, in a transaction of its
    own."""
    lock = psycopg.connect(db_dsn)
    lock.execute(COMMIT_ORDER_LOCK)

    async def run() -> tuple[int, list[Todo]]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            first = asyncio.create_task(service.create_todo("first"))
            await _waiting_for_the_lock(db_dsn)  # its batch sent
            second = asyncio.create_task(service.create_todo("second"))
            await asyncio.sleep(0.3)  # turns of the loop: a batch of its own would have taken it by now
            third = asyncio.create_task(service.create_todo("third"))
            await asyncio.sleep(0.1)
            waiters = await asyncio.to_thread(_lock_waiters, db_dsn)
            await asyncio.to_thread(lock.commit)
            return waiters, [await first, await second, await third]

    waiters, done = _run_closing(run, lock)
    assert waiters == 1
    (first,), (second,), (third,) = _entries(db_dsn, [todo.id for todo in done]).values()
    assert second[1] == third[1] != first[1]  # the writer's xid: second and third in one transaction
    assert first[0] < second[0] < third[0]



def test_a_write_whose_caller_is_gone_before_its_batch_starts_is_never_applied(db_dsn: str) -> None:
    """Queued behind a batch waiting for the commit-order lock, its caller
    cancelled (a client gone): its batch leaves it out, so a row the client
    was never told of is not written; the write queued beside it is."""
    lock = psycopg.connect(db_dsn)
    lock.execute(COMMIT_ORDER_LOCK)

    async def run() -> tuple[Todo, Todo]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            first = asyncio.create_task(service.create_todo("first"))
            await _waiting_for_the_lock(db_dsn)  # its batch sent
            gone = asyncio.create_task(service.create_todo("gone"))
            kept = asyncio.create_task(service.create_todo("kept"))
            await asyncio.sleep(0.1)
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
            await asyncio.to_thread(lock.commit)
            return await first, await kept

    _run_closing(run, lock)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert [title for (title,) in conn.execute("SELECT title FROM todos ORDER BY title")] == ["first", "kept"]


def test_writes_whose_batch_was_sent_are_answered_though_a_caller_before_them_has_gone(db_dsn: str) -> None:
    """Three writes in a batch waiting for the commit-order lock, the first
    one's caller cancelled meanwhile: its write commits with the others
    (it was sent), and the two after it are answered, not left waiting
    behind an answer that could not be given."""
    lock = psycopg.connect(db_dsn)
    lock.execute(COMMIT_ORDER_LOCK)

    async def run() -> list[str]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            writes = [asyncio.create_task(service.create_todo(title)) for title in ("gone", "second", "third")]
            await _waiting_for_the_lock(db_dsn)  # the batch of three sent
            writes[0].cancel()
            await asyncio.gather(writes[0], return_exceptions=True)
            await asyncio.to_thread(lock.commit)
            answered = await asyncio.wait_for(asyncio.gather(*writes[1:]), 5)
            return [todo.title for todo in answered]

    assert _run_closing(run, lock) == ["second", "third"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert [title for (title,) in conn.execute("SELECT title FROM todos ORDER BY title")] == ["gone", "second", "third"]


def test_two_writes_to_one_row_in_a_batch_each_have_their_own_entry_as_cursor(db_dsn: str) -> None:
    """A batch naming a row twice: each write's cursor is its own entry's
    position, read after its statement, not the row's last entry (which one
    read of the batch's entries, keyed by row, would give both)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        row = conn.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()
        base = conn.execute("SELECT max(position) FROM todo_changes").fetchone()
    assert row is not None and base is not None

    async def run() -> list[Receipt]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            receipts = [Receipt(), Receipt()]
            await asyncio.gather(
                service.update_todo(str(row[0]), "b", receipt=receipts[0]),
                service.update_todo(str(row[0]), "c", receipt=receipts[1]),
            )
            return receipts

    receipts = asyncio.run(run())
    assert [receipt.cursor for receipt in receipts] == [base[0] + 1, base[0] + 2]
