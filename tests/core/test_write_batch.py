"""core/write_batch.py: writes waiting together, numbered or not, share one
transaction (trigger mode), each keeping its own answer, entries and
cursor; a batch that fails is rolled back and its writes run alone."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psycopg
import pytest

from graphql_todos.core import repository, writes
from graphql_todos.core.database import GatedPool, StatementConnection, connection
from graphql_todos.core.errors import (
    DatabaseUnavailable,
    ErrorCode,
    Forbidden,
    NotFound,
    Rejected,
    TodoExists,
)
from graphql_todos.core.models import LOCAL_ID, Todo
from graphql_todos.core.mutations import Key, Receipt, Verdict
from graphql_todos.core.service import MAX_TITLE_LENGTH, TodoService
from tests.core.test_database import _create
from tests.helpers import wait_until

T = TypeVar("T")


def _person(conn: psycopg.Connection[Any], name: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A new person and their default list."""
    row = conn.execute("INSERT INTO people (username) VALUES (%s) RETURNING id", (name,)).fetchone()
    assert row is not None
    default = conn.execute("SELECT id FROM lists WHERE owner_id = %s AND is_default", (row[0],)).fetchone()
    assert default is not None
    return row[0], default[0]


def _entries(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[int, str, str]]]:
    """Each row's journal entries: (position, the writer's xid, its title)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT todo_id, position, xmin::text, todo->>'title' FROM todo_changes WHERE todo_id = ANY(%s)"
            " ORDER BY position",
            (ids,),
        ).fetchall()
    found: dict[uuid.UUID, list[tuple[int, str, str]]] = {key: [] for key in ids}
    for todo_id, position, xid, title in rows:
        found[todo_id].append((position, xid, title))
    return found


def _pool(dsn: str) -> GatedPool:
    return GatedPool(dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})


async def _waiting_for_the_lock(dsn: str) -> None:
    """Until a session waits for the commit-order lock (sql/002): a batch
    sent, seen, not assumed after a pause a loaded machine may outlast."""
    def waiting(conn: psycopg.Connection[Any]) -> bool:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone() == (1,)

    with psycopg.connect(dsn, autocommit=True) as conn:
        await asyncio.to_thread(wait_until, lambda: waiting(conn), 10)


def _run_closing(run: Callable[[], Coroutine[Any, Any, T]], *conns: psycopg.Connection[Any]) -> T:
    """asyncio.run(run()), the test's own connections closed whatever happens."""
    try:
        return asyncio.run(run())
    finally:
        for conn in conns:
            conn.close()


def test_writes_of_two_people_together_each_judged_and_journaled_as_its_own(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, ann_list = _person(conn, "ann")
        bob, bob_list = _person(conn, "bob")

    async def run() -> tuple[list[Todo], list[Receipt]]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            mine = await service.create_todo("ann's", actor=ann)
            theirs = await service.create_todo("bob's", actor=bob)
            receipts = [Receipt(), Receipt(), Receipt()]
            # Started in one turn of the loop: one batch. Bob may not edit Ann's list:
            # each statement's journal trigger must read its own actor.
            done = await asyncio.gather(
                service.update_todo(str(mine.id), "ann's, renamed", receipt=receipts[0], actor=ann),
                service.update_todo(str(theirs.id), "bob's, renamed", receipt=receipts[1], actor=bob),
                service.create_todo("ann's second", receipt=receipts[2], actor=ann),
            )
            return list(done), receipts

    done, receipts = asyncio.run(run())
    assert [todo.title for todo in done] == ["ann's, renamed", "bob's, renamed", "ann's second"]
    entries = _entries(db_dsn, [todo.id for todo in done])
    newest = [found[-1] for found in entries.values()]
    # One transaction (one xid) for the three, each cursor its own entry's position, in order.
    assert len({xid for _, xid, _ in newest}) == 1
    assert [receipt.cursor for receipt in receipts] == [position for position, _, _ in newest]
    assert newest[0][0] + 2 == newest[1][0] + 1 == newest[2][0]
    assert [title for _, _, title in newest] == [todo.title for todo in done]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        lists: dict[uuid.UUID, uuid.UUID] = dict(conn.execute("SELECT id, list_id FROM todos WHERE id = ANY(%s)", ([t.id for t in done],)).fetchall())
    assert [lists[todo.id] for todo in done] == [ann_list, bob_list, ann_list]


def test_a_refused_write_rolls_its_batch_back_and_each_runs_alone(db_dsn: str) -> None:
    taken = uuid.uuid4()

    async def run() -> tuple[Any, ...]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            await service.create_todo("first", todo_id=str(taken))
            return await asyncio.gather(
                service.create_todo("good 1"),
                service.create_todo("taken again", todo_id=str(taken)),
                service.update_todo(str(uuid.uuid4()), "no such row"),
                service.create_todo("good 2"),
                return_exceptions=True,
            )

    good1, again, absent, good2 = asyncio.run(run())
    assert isinstance(again, TodoExists)
    assert isinstance(absent, NotFound)
    assert (good1.title, good2.title) == ("good 1", "good 2")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        titles = [row[0] for row in conn.execute("SELECT title FROM todos ORDER BY title").fetchall()]
    assert titles == ["first", "good 1", "good 2"]  # each applied once
    entries = _entries(db_dsn, [good1.id, good2.id, taken])
    assert [len(found) for found in entries.values()] == [1, 1, 1]


def test_a_batch_refused_while_it_is_sent_rolls_back_with_no_warning(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement's error read while the batch is still being sent (its
    first write's, many behind it): raised, nothing committed, the
    connection idle again (the ROLLBACK sent after the Sync, not skipped
    behind the error), and nothing logged by psycopg."""
    caplog.set_level(logging.WARNING)
    too_long = writes.Together.of(writes.TRIGGER.insert, _create("x" * (MAX_TITLE_LENGTH + 1)), None)
    batch = [too_long, *(writes.Together.of(writes.TRIGGER.insert, _create(f"w{n}"), None) for n in range(50))]

    async def run() -> None:
        async with _pool(db_dsn) as pool, connection(pool) as conn:
            assert isinstance(conn, StatementConnection)
            with pytest.raises(psycopg.errors.StringDataRightTruncation):
                await writes.write_together(conn, batch)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    asyncio.run(run())
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM todos").fetchone() == (0,)
    assert [record.getMessage() for record in caplog.records if record.name.startswith("psycopg")] == []


def test_a_write_that_finds_no_row_in_a_batch_is_refused_as_alone(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, ann_list = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
        conn.execute(
            "INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, 'viewer')", (ann_list, bob)
        )

    async def run() -> tuple[Any, ...]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            mine = await service.create_todo("ann's", actor=ann)
            return await asyncio.gather(
                service.update_todo(str(mine.id), "by bob", actor=bob),
                service.update_todo(str(mine.id), "by ann", actor=ann),
                return_exceptions=True,
            )

    refused, renamed = asyncio.run(run())
    assert isinstance(refused, Forbidden)
    assert renamed.title == "by ann"


def test_a_batch_waits_for_no_row_lock_while_it_holds_the_commit_order_lock(db_dsn: str) -> None:
    """A batch that would wait for a row another writer holds gives way at
    once (lock_timeout): rolled back, its writes run alone, and the other
    writer, which waits for the commit-order lock at its commit, is never
    made a deadlock's victim."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute("INSERT INTO todos (title) VALUES ('s'), ('r') RETURNING id")]
    held, other = psycopg.connect(db_dsn), psycopg.connect(db_dsn)
    # `held` locks row s and journals nothing (so takes no commit-order lock);
    # `other` changes row r and will wait for the lock at its commit.
    held.execute("SELECT FROM todos WHERE id = %s FOR UPDATE", (ids[0],))
    other.execute("UPDATE todos SET title = 'by another writer' WHERE id = %s", (ids[1],))
    committed: list[BaseException | None] = []

    def commit_other() -> None:
        try:
            other.commit()
            committed.append(None)
        except psycopg.Error as exc:
            committed.append(exc)

    async def run() -> tuple[Todo, Todo]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            writes = asyncio.gather(
                service.update_todo(str(ids[0]), "s renamed"), service.update_todo(str(ids[1]), "r renamed")
            )
            await asyncio.sleep(0.3)
            # The batch holds the commit-order lock, or has given way; `other` commits now.
            committing = threading.Thread(target=commit_other)
            committing.start()
            await asyncio.sleep(0.3)
            held.commit()
            done = await writes
            await asyncio.to_thread(committing.join)
            return done

    done = _run_closing(run, held, other)
    assert committed == [None]
    assert [todo.title for todo in done] == ["s renamed", "r renamed"]


def test_a_write_arriving_while_a_batch_runs_goes_in_the_next_in_commit_order(db_dsn: str) -> None:
    """A batch under way takes no one in (its statements are sent); the one
    queued meanwhile goes next, as a lone write goes at once: in their
    own transactions, positions in commit order."""
    lock = psycopg.connect(db_dsn)
    lock.execute("SELECT pg_advisory_xact_lock(7305202417)")  # the commit-order lock (sql/002)

    async def run() -> tuple[tuple[Todo, Todo], list[Receipt]]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            receipts = [Receipt(), Receipt()]
            first = asyncio.create_task(service.create_todo("first", receipt=receipts[0]))
            await _waiting_for_the_lock(db_dsn)  # its batch sent
            second = asyncio.create_task(service.create_todo("second", receipt=receipts[1]))
            await asyncio.sleep(0.2)
            assert not first.done() and not second.done()
            await asyncio.to_thread(lock.commit)
            return (await first, await second), receipts

    done, receipts = _run_closing(run, lock)
    entries = _entries(db_dsn, [todo.id for todo in done])
    (first,), (second,) = entries.values()
    assert first[1] != second[1]  # two transactions
    assert [receipt.cursor for receipt in receipts] == [first[0], second[0]] and first[0] < second[0]


@pytest.mark.parametrize("twice", [False, True])
def test_a_write_that_changes_nothing_in_a_batch_has_the_cursor_before_it(db_dsn: str, twice: bool) -> None:
    """Its cursor is where the journal stood after the writes before it in
    its batch. `twice`: the batch names a row twice and changes many (each
    statement's newest position read after it), else not (the batch's
    entries read once)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b') RETURNING id")]
        base = conn.execute("SELECT max(position) FROM todo_changes").fetchone()[0]  # type: ignore[index]

    async def run() -> list[Receipt]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            receipts = [Receipt() for _ in range(4)]
            await asyncio.gather(
                service.update_todo(str(ids[0]), "a, renamed", receipt=receipts[0]),
                # The same values again: journaled nothing.
                service.update_todo(str(ids[0]), "a, renamed", receipt=receipts[1])
                if twice else service.update_todo(str(ids[1]), "b", receipt=receipts[1]),
                service.create_todo("c", receipt=receipts[2]),
                service.toggle_all(True, receipt=receipts[3]) if twice else service.create_todo("d", receipt=receipts[3]),
            )
            return receipts

    receipts = asyncio.run(run())
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        xids = conn.execute("SELECT DISTINCT xmin::text FROM todo_changes WHERE position > %s", (base,)).fetchall()
    assert len(xids) == 1  # one batch
    # a renamed; nothing; c created; d created, or a, b and c completed.
    assert [receipt.cursor for receipt in receipts] == [base + 1, base + 1, base + 2, base + (5 if twice else 3)]


def test_a_batch_whose_connection_is_lost_answers_each_write_database_unavailable(db_dsn: str) -> None:
    """Its connection lost (here its backend ended while it waits for the
    commit-order lock): its commit may have happened for all the client
    can tell, so no write is run again; each is answered
    DATABASE_UNAVAILABLE, as a lone write whose connection is lost is."""
    lock = psycopg.connect(db_dsn)
    lock.execute("SELECT pg_advisory_xact_lock(7305202417)")  # the commit-order lock (sql/002)

    async def run() -> tuple[Any, ...]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            writes = asyncio.gather(service.create_todo("a"), service.create_todo("b"), return_exceptions=True)
            await _waiting_for_the_lock(db_dsn)
            ended = await asyncio.to_thread(
                lock.execute,
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            assert ended.fetchall() == [(True,)]
            done = tuple(await writes)
            await asyncio.to_thread(lock.commit)
            return done

    done = _run_closing(run, lock)
    assert [type(answer) for answer in done] == [DatabaseUnavailable, DatabaseUnavailable]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT title FROM todos").fetchall() == []


def _one_connection(dsn: str, timeout: float) -> GatedPool:
    return GatedPool(dsn, min_size=1, max_size=1, timeout=timeout, open=False, kwargs={"autocommit": True})


def _titles(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [title for (title,) in conn.execute("SELECT title FROM todos ORDER BY title")]


def test_writes_queued_while_a_batch_waits_for_a_connection_each_wait_their_own_timeout(db_dsn: str) -> None:
    """The pool's one connection held: the first write's batch waits for
    it, two more are queued meanwhile and make the next batch. That batch's
    wait ends at its older write's deadline, not a whole timeout after the
    first batch gave up: the older is answered DATABASE_UNAVAILABLE then,
    within its own timeout; the younger, unsent, waits on until its own,
    and the connection freed before that, it is written, once."""
    timeout = 0.5
    arrivals = [0.0, timeout / 5, timeout * 3 / 5]
    freed = timeout + timeout * 2 / 5  # after the second's deadline, before the third's

    async def run() -> list[tuple[Any, float]]:
        async with _one_connection(db_dsn, timeout) as pool:
            service = TodoService(pool)
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def create(n: int) -> tuple[Any, float]:
                await asyncio.sleep(arrivals[n])
                arrived = loop.time()
                answer = await asyncio.gather(service.create_todo(f"write {n}"), return_exceptions=True)
                return answer[0], loop.time() - arrived

            async with connection(pool):
                creating = asyncio.gather(*(create(n) for n in range(len(arrivals))))
                await asyncio.sleep(freed - (loop.time() - started))
            return list(await creating)

    (first, first_took), (second, second_took), (third, third_took) = asyncio.run(run())
    assert isinstance(first, DatabaseUnavailable) and timeout <= first_took < timeout + 0.15
    assert isinstance(second, DatabaseUnavailable) and timeout <= second_took < timeout + 0.15
    assert isinstance(third, Todo) and third_took < timeout
    assert _titles(db_dsn) == ["write 2"]


def test_a_write_whose_timeout_ends_behind_a_running_batch_is_answered_then_and_never_sent(db_dsn: str) -> None:
    """The batch before it waits for the commit-order lock past the second
    write's timeout: the second is answered DATABASE_UNAVAILABLE at its
    deadline, while that batch still waits, and is not sent once it ends;
    the first commits."""
    timeout = 0.3
    lock = psycopg.connect(db_dsn)
    lock.execute("SELECT pg_advisory_xact_lock(7305202417)")  # the commit-order lock (sql/002)

    async def run() -> tuple[Any, Any, float]:
        async with _one_connection(db_dsn, timeout) as pool:
            service = TodoService(pool)
            loop = asyncio.get_running_loop()
            first = asyncio.ensure_future(service.create_todo("first"))
            await _waiting_for_the_lock(db_dsn)  # its batch sent
            queued = loop.time()
            second = asyncio.ensure_future(service.create_todo("second"))
            # Bounded: unanswered, it would wait for the lock the test holds.
            await asyncio.wait([second], timeout=timeout + 1)
            took = loop.time() - queued
            assert not first.done()
            await asyncio.to_thread(lock.commit)
            return await first, (await asyncio.gather(second, return_exceptions=True))[0], took

    first, second, took = _run_closing(run, lock)
    assert isinstance(first, Todo) and isinstance(second, DatabaseUnavailable)
    assert timeout <= took < timeout + 0.15
    assert _titles(db_dsn) == ["first"]


async def _handed_on(pool: GatedPool, at: float, taken: asyncio.Event) -> None:
    """The pool's one connection (the caller's first wait queued now) held
    until `at` seconds from now, then handed on: to the callers queued at
    the gate before `_handed_on` queued its own (after a tenth of `at`), and
    then to that one, which keeps it until `taken` is set."""
    async def hold() -> None:
        async with connection(pool):
            await asyncio.sleep(at)

    async def take_after() -> None:
        await asyncio.sleep(at / 10)
        async with connection(pool, 10 * at):
            await taken.wait()

    await asyncio.gather(hold(), take_after())


async def _timed(write: Coroutine[Any, Any, T]) -> tuple[T | BaseException, float]:
    """What `write` gave (or raised) and the seconds it took."""
    started = asyncio.get_running_loop().time()
    answer = (await asyncio.gather(write, return_exceptions=True))[0]
    return answer, asyncio.get_running_loop().time() - started


def _late_connection(dsn: str, timeout: float, writes: Callable[[TodoService], Awaitable[T]]) -> T:
    """`writes` on a service whose pool's one connection is held until 0.8
    of `timeout`, passed to the callers queued for it by then, and then kept
    by another (_handed_on)."""
    async def run() -> T:
        async with _one_connection(dsn, timeout) as pool:
            taken = asyncio.Event()
            holding = asyncio.ensure_future(_handed_on(pool, timeout * 0.8, taken))
            await asyncio.sleep(0)  # the connection held
            try:
                return await writes(TodoService(pool))
            finally:
                taken.set()
                await holding

    return asyncio.run(run())


def test_a_write_whose_role_check_waited_waits_for_its_batch_only_what_is_left(db_dsn: str) -> None:
    """One deadline per request: a write to a list by a member waits for a
    connection for its role check, gets one late (at 0.8 of the timeout),
    and then its batch waits for a connection again. Both waits together
    end within the pool's timeout of the request's start, not one each."""
    timeout = 0.5
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, ann_list = _person(conn, "ann")

    answer, took = _late_connection(db_dsn, timeout, lambda service: _timed(
        service.create_todo("to ann's list", actor=ann, list_id=str(ann_list))
    ))
    assert isinstance(answer, DatabaseUnavailable)
    assert timeout <= took < timeout + 0.15, took
    assert _titles(db_dsn) == []


def test_the_lone_reruns_of_a_rolled_back_batch_wait_only_what_is_left(db_dsn: str) -> None:
    """A batch that waited for its connection (to 0.8 of the timeout) and
    rolled back (a taken id): its writes run alone, each waiting for a
    connection again, and are answered within the pool's timeout of their
    start, none written."""
    timeout = 0.5
    taken_id = uuid.uuid4()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (id, title) VALUES (%s, 'first')", (taken_id,))

    answered = _late_connection(db_dsn, timeout, lambda service: asyncio.gather(
        _timed(service.create_todo("good")),
        _timed(service.create_todo("taken again", todo_id=str(taken_id))),
    ))
    assert [type(answer) for answer, _ in answered] == [DatabaseUnavailable, DatabaseUnavailable]
    assert all(timeout <= took < timeout + 0.15 for _, took in answered), answered
    assert _titles(db_dsn) == ["first"]


def test_a_write_queued_with_less_time_left_than_those_before_it_is_answered_at_its_own_deadline(db_dsn: str) -> None:
    """Behind a batch waiting for the commit-order lock: a plain write
    queued first (its deadline late), then one whose role check waited for
    a connection (its deadline earlier). The second is answered at its own
    deadline, not at the first's; neither is sent."""
    timeout = 0.5
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, ann_list = _person(conn, "ann")
    lock = psycopg.connect(db_dsn)
    lock.execute("SELECT pg_advisory_xact_lock(7305202417)")  # the commit-order lock (sql/002)

    async def run() -> tuple[Any, tuple[Any, float], tuple[Any, float]]:
        async with GatedPool(
            db_dsn, min_size=2, max_size=2, timeout=timeout, open=False, kwargs={"autocommit": True}
        ) as pool:
            service = TodoService(pool)
            first = asyncio.ensure_future(service.create_todo("first"))
            await _waiting_for_the_lock(db_dsn)  # its batch sent, holding a connection
            taken = asyncio.Event()
            holding = asyncio.ensure_future(_handed_on(pool, timeout * 0.8, taken))
            await asyncio.sleep(0)  # the other connection held
            checked = asyncio.ensure_future(_timed(service.create_todo("checked", actor=ann, list_id=str(ann_list))))
            await asyncio.sleep(timeout / 2)
            plain = await _timed(service.create_todo("plain"))
            answered = await checked
            taken.set()
            await holding
            await asyncio.to_thread(lock.commit)
            return await first, answered, plain

    first, (checked, checked_took), (plain, plain_took) = _run_closing(run, lock)
    assert isinstance(first, Todo)
    assert isinstance(checked, DatabaseUnavailable) and timeout <= checked_took < timeout + 0.1, checked_took
    assert isinstance(plain, DatabaseUnavailable) and timeout <= plain_took < timeout + 0.1, plain_took
    assert _titles(db_dsn) == ["first"]


def test_a_connection_whose_batch_rolled_back_still_runs_the_statements_it_keeps_prepared(db_dsn: str) -> None:
    """A batch rolled back on the pool's connections (StatementConnection):
    its ROLLBACK is its own, not psycopg's, which deallocates every prepared
    statement once psycopg has prepared one; the statements the connection
    keeps prepared still run after it."""

    async def run() -> None:
        async with GatedPool(db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}) as pool:
            service = TodoService(pool)
            made = [await service.create_todo(f"row {n}") for n in range(6)]
            async with connection(pool) as conn:
                assert isinstance(conn, StatementConnection)
                await repository.journal_newest(conn)  # kept prepared
            with pytest.raises(TodoExists):
                await service.create_todo("again", todo_id=str(made[0].id))
            async with connection(pool) as conn:
                assert (await repository.journal_newest(conn))[0] == 6

    asyncio.run(run())


def _numbered(seq: int, client: uuid.UUID | None = None, principal: uuid.UUID = LOCAL_ID) -> Receipt:
    """A receipt numbered `seq` of `client` (a new one when None)."""
    return Receipt(Key(principal, client or uuid.uuid4(), seq, f"request {seq}".encode()))


def _keyed_entries(dsn: str, base: int) -> list[tuple[uuid.UUID, str, str | None]]:
    """The entries after `base`, in order: (row, the writer's xid, the key it carries)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT todo_id, xmin::text, mutation FROM todo_changes WHERE position > %s ORDER BY position", (base,)
        ).fetchall()


def _newest(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()[0]  # type: ignore[index]


def test_numbered_writes_of_two_clients_in_a_batch_each_carry_their_own_key(db_dsn: str) -> None:
    """Each numbered statement sets its key for its own entries only: the
    next numbered one sets its own, a plain one after them carries none."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, _ = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
    base = _newest(db_dsn)
    receipts = [_numbered(1, principal=ann), _numbered(1, principal=bob), Receipt()]

    async def run() -> tuple[Any, ...]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            return await asyncio.gather(
                service.create_todo("ann's", receipt=receipts[0], actor=ann),
                service.create_todo("bob's", receipt=receipts[1], actor=bob),
                service.create_todo("plain", receipt=receipts[2], actor=ann),
            )

    done = asyncio.run(run())
    entries = _keyed_entries(db_dsn, base)
    assert [todo_id for todo_id, _, _ in entries] == [todo.id for todo in done]
    assert len({xid for _, xid, _ in entries}) == 1  # one batch
    assert [key for _, _, key in entries] == [receipts[0].key.text, receipts[1].key.text, None]  # type: ignore[union-attr]
    assert [receipt.verdict for receipt in receipts] == [Verdict.APPLIED] * 3
    assert [receipt.cursor for receipt in receipts] == [base + 1, base + 2, base + 3]


def test_a_retry_in_a_batch_is_answered_from_its_record_and_rolls_nothing_back(db_dsn: str) -> None:
    """A key applied before meets no error in its batch (its statement looks
    the key up first): it changes nothing and is answered as the first time,
    and the new writes beside it are applied once, in the batch's transaction."""
    client = uuid.uuid4()
    first = _numbered(1, client)

    async def run() -> tuple[Todo, tuple[Any, ...], list[Receipt]]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            made = await service.create_todo("once", receipt=first)
            receipts = [_numbered(1, client), _numbered(2, client), Receipt()]
            done = await asyncio.gather(
                service.create_todo("new 1", receipt=receipts[1]),
                service.create_todo("once", receipt=receipts[0]),
                service.create_todo("new 2", receipt=receipts[2]),
            )
            return made, done, receipts

    base = _newest(db_dsn)
    made, (new1, again, new2), receipts = asyncio.run(run())
    assert again == made
    assert (receipts[0].verdict, receipts[0].cursor) == (first.verdict, first.cursor) == (Verdict.APPLIED, base + 1)
    entries = _keyed_entries(db_dsn, base + 1)
    assert [todo_id for todo_id, _, _ in entries] == [new1.id, new2.id]
    assert len({xid for _, xid, _ in entries}) == 1  # one batch, not rolled back and run alone
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM todos WHERE title = 'once'").fetchone() == (1,)


def test_a_refused_numbered_write_in_a_batch_is_recorded_as_rejected(db_dsn: str) -> None:
    """An update of no row and a viewer's update, numbered, beside good
    writes: each refusal recorded as its rejection (a retry reads it back),
    the others applied in the batch's transaction."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ann, ann_list = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
        conn.execute("INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, 'viewer')", (ann_list, bob))
    absent = uuid.uuid4()

    async def run() -> tuple[tuple[Any, ...], list[Receipt], Any]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            mine = await service.create_todo("ann's", actor=ann)
            receipts = [_numbered(1, principal=ann), _numbered(1, principal=bob), _numbered(2, principal=ann), Receipt()]
            done = await asyncio.gather(
                service.update_todo(str(absent), "no such row", receipt=receipts[0], actor=ann),
                service.update_todo(str(mine.id), "by bob", receipt=receipts[1], actor=bob),
                service.update_todo(str(mine.id), "by ann", receipt=receipts[2], actor=ann),
                service.create_todo("plain", receipt=receipts[3], actor=ann),
                return_exceptions=True,
            )
            retried = await asyncio.gather(
                service.update_todo(str(absent), "no such row", receipt=_numbered(1, receipts[0].key.client, ann), actor=ann),  # type: ignore[union-attr]
                return_exceptions=True,
            )
            return done, receipts, retried[0]

    base = _newest(db_dsn)
    (missing, forbidden, renamed, plain), receipts, retried = asyncio.run(run())
    assert isinstance(missing, Rejected) and missing.code == ErrorCode.NOT_FOUND
    assert isinstance(forbidden, Rejected) and forbidden.code == ErrorCode.FORBIDDEN
    assert isinstance(retried, Rejected) and retried.code == ErrorCode.NOT_FOUND
    assert [receipt.verdict for receipt in receipts] == [Verdict.REJECTED, Verdict.REJECTED, Verdict.APPLIED, Verdict.APPLIED]
    assert (renamed.title, plain.title) == ("by ann", "plain")
    entries = _keyed_entries(db_dsn, base + 1)  # after ann's create
    assert [todo_id for todo_id, _, _ in entries] == [renamed.id, plain.id]
    assert len({xid for _, xid, _ in entries}) == 1
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        verdicts = conn.execute("SELECT principal, seq, verdict FROM mutations ORDER BY verdict, principal = %s", (ann,)).fetchall()
    assert sorted(verdicts) == sorted([(ann, 2, "applied"), (ann, 1, "rejected"), (bob, 1, "rejected")])


@pytest.mark.parametrize("many", [False, True])
def test_a_numbered_write_that_changes_nothing_in_a_batch_keeps_its_answer(db_dsn: str, many: bool) -> None:
    """It journals nothing: its rows and cursor are kept with its verdict
    (verdicts.settle_unchanged), and a retry answers the same. `many`: a
    toggleAll that finds nothing to change (each statement's newest
    position read after it), else an update to the same values (the
    batch's entries read once)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        (row,) = [row[0] for row in conn.execute("INSERT INTO todos (title) VALUES ('same') RETURNING id")]
    client = uuid.uuid4()

    def unchanged(service: TodoService, receipt: Receipt) -> Coroutine[Any, Any, Any]:
        if many:
            return service.toggle_all(False, receipt=receipt)
        return service.update_todo(str(row), "same", receipt=receipt)

    async def run() -> tuple[tuple[Any, ...], list[Receipt], Any, Receipt]:
        async with _pool(db_dsn) as pool:
            service = TodoService(pool)
            receipts = [_numbered(1, client), Receipt()]
            done = await asyncio.gather(
                service.create_todo("before it"),
                unchanged(service, receipts[0]),
                service.create_todo("after it", receipt=receipts[1]),
            )
            retry = _numbered(1, client)
            return done, receipts, await unchanged(service, retry), retry

    base = _newest(db_dsn)
    (_, same, _), receipts, again, retry = asyncio.run(run())
    assert same == again
    assert same == [] if many else (same.id, same.title) == (row, "same")
    assert _newest(db_dsn) == base + 2  # two creates in one batch; the numbered write journaled nothing
    assert len({xid for _, xid, _ in _keyed_entries(db_dsn, base)}) == 1
    # Settled after its batch committed: the journal as it stood then, which covers what it saw.
    assert receipts[0].cursor == retry.cursor == base + 2
    assert receipts[1].cursor == base + 2
