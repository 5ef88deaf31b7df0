"""One test per assumption internals/psycopg.py makes of psycopg, and that a
Prepared answers as a cursor's execute does: after an upgrade, a failure
here names what changed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection, pq
from psycopg._encodings import conn_encoding
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer
from psycopg.conninfo import make_conninfo
from psycopg.errors import Diagnostic
from psycopg.generators import execute

from graphql_todos.internals import psycopg as internal_psycopg
from graphql_todos.internals.psycopg import Prepared, payloads, runs_short

STATEMENT = "SELECT %(a)s::uuid AS a, %(b)s::text AS b, %(a)s::uuid IS NULL AS none, %(n)s::int + 1 AS n"


def _with_connection(dsn: str, test: Callable[[AsyncConnection[Any]], Awaitable[None]], autocommit: bool = True) -> None:
    async def main() -> None:
        async with await AsyncConnection.connect(dsn, autocommit=autocommit) as conn:
            await test(conn)

    asyncio.run(main())


def test_a_query_converted_once_takes_each_new_set_of_values_by_dump(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        query = PostgresQuery(Transformer(conn))
        query.convert(STATEMENT, {"a": None, "b": "x", "n": 1})
        # One placeholder per name, however often it is used.
        assert query.query == b"SELECT $1::uuid AS a, $2::text AS b, $1::uuid IS NULL AS none, $3::int + 1 AS n"
        assert query.params is not None and query.params[:2] == [None, b"x"]
        none_types = query.types
        values = {"n": 2, "b": "y", "a": uuid.uuid4()}
        query.dump(values)
        fresh = PostgresQuery(Transformer(conn))
        fresh.convert(STATEMENT, values)
        assert (query.query, query.params, query.types, query.formats) == (fresh.query, fresh.params, fresh.types, fresh.formats)
        # The types key the prepared statements: a UUID's differs from None's.
        assert query.types[0] == psycopg.adapters.types["uuid"].oid != none_types[0]

    _with_connection(db_dsn, test)


def test_a_prepared_dumps_a_dict_as_postgresquerys_dump_leaves_it(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        prepared = Prepared(conn, STATEMENT, 0)
        prepared._dump({"a": None, "b": "x", "n": 1})
        # Three names: the values taken by one itemgetter, in the statement's order.
        assert prepared.ordered is not None
        kept = PostgresQuery(Transformer(conn))
        kept.convert(STATEMENT, {"a": None, "b": "x", "n": 1})
        for values in (
            {"n": 2, "b": "y", "a": uuid.uuid4()},
            {"a": None, "b": None, "n": None, "extra": 5},
            {"b": "z", "a": uuid.uuid4(), "n": 10**12},
            {"a": None, "b": "", "n": -1},
        ):
            prepared._dump(values)
            kept.dump(values)
            query = prepared.query
            assert (query.params, query.types, query.formats) == (kept.params, kept.types, kept.formats)
            assert type(query.types) is tuple
        # What dump refuses, refused as dump refuses it.
        for refused in ({"a": None, "n": 1}, [None, "x", 1]):
            with pytest.raises(Exception) as ours:
                prepared._dump(refused)  # type: ignore[arg-type]
            with pytest.raises(Exception) as theirs:
                kept.dump(refused)  # type: ignore[arg-type]
            assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))
        prepared._dump(None)
        kept.dump(None)
        assert (prepared.query.params, prepared.query.types, prepared.query.formats) == (None, (), None)
        # One name, or none: dump's own way.
        for statement in ("SELECT %(a)s::int", "SELECT 1"):
            alone = Prepared(conn, statement, 1)
            alone._dump({"a": 1} if "%" in statement else None)
            assert alone.ordered is None

    _with_connection(db_dsn, test)


def test_execute_flushes_what_was_sent_and_returns_its_results(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        conn.pgconn.send_query_params(b"SELECT $1::int + 1", [b"41"])
        results = await conn.wait(execute(conn.pgconn))
        assert [r.status for r in results] == [pq.ExecStatus.TUPLES_OK]
        assert results[0].get_value(0, 0) == b"42"

    _with_connection(db_dsn, test)


def test_a_prepared_statement_answers_as_a_cursor_does(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        prepared = Prepared(conn, STATEMENT, 0)
        for params in ({"a": None, "b": "x", "n": 1}, {"a": uuid.uuid4(), "b": None, "n": 2}, {"a": None, "b": "z", "n": 3}):
            async with conn.cursor() as cur:
                await cur.execute(STATEMENT, params)
                expected = await cur.fetchall()
            assert await prepared.rows(params, tuple) == expected
        # A UUID and None are two sets of types: two statements, as psycopg's cache keys them.
        assert len(prepared.names) == 2
        # No parameters at all, as a cursor takes them (None).
        assert await Prepared(conn, "SELECT 1, '%s'", 1).rows(None, tuple) == [(1, "%s")]

    _with_connection(db_dsn, test)


def test_a_failed_result_raises_what_a_cursor_raises(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("CREATE TEMPORARY TABLE taken (id int CONSTRAINT taken_pkey PRIMARY KEY)")
        insert = "INSERT INTO taken VALUES (%(id)s) RETURNING id"
        prepared = Prepared(conn, insert, 0)
        assert await prepared.rows({"id": 1}, tuple) == [(1,)]
        with pytest.raises(psycopg.errors.UniqueViolation) as cursor:
            await conn.execute(insert, {"id": 1})
        with pytest.raises(psycopg.errors.UniqueViolation) as short:
            await prepared.rows({"id": 1}, tuple)
        assert short.value.diag.constraint_name == cursor.value.diag.constraint_name == "taken_pkey"
        assert str(short.value) == str(cursor.value)
        # The connection goes on, as after a cursor's failure.
        assert await prepared.rows({"id": 2}, tuple) == [(2,)]
        # A statement the server refuses to prepare: psycopg's class for it, and nothing kept.
        bad = Prepared(conn, "SELEC %(id)s", 1)
        with pytest.raises(psycopg.errors.SyntaxError):
            await bad.rows({"id": 1}, tuple)
        assert bad.names == {}

    _with_connection(db_dsn, test)


def test_the_connections_notice_handlers_see_a_prepared_statements_notices(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute(
            "CREATE FUNCTION pg_temp.told(n int) RETURNS int LANGUAGE plpgsql AS $$"
            " BEGIN RAISE NOTICE 'told %', n; RETURN n; END $$"
        )
        heard: list[str | None] = []

        def hear(diagnostic: Diagnostic) -> None:
            heard.append(diagnostic.message_primary)

        conn.add_notice_handler(hear)
        assert await Prepared(conn, "SELECT pg_temp.told(%(n)s)", 0).rows({"n": 7}, tuple) == [(7,)]
        assert heard == ["told 7"]

    _with_connection(db_dsn, test)


def test_autocommit_starts_no_transaction_and_others_are_not_taken(db_dsn: str) -> None:
    async def short(conn: AsyncConnection[Any]) -> None:
        assert runs_short(conn)
        await Prepared(conn, "SELECT %(n)s::int", 0).rows({"n": 1}, tuple)
        assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        async with conn.pipeline():
            assert not runs_short(conn)

    async def not_short(conn: AsyncConnection[Any]) -> None:
        # A cursor would begin a transaction here, which a Prepared does not.
        assert not runs_short(conn)

    _with_connection(db_dsn, short)
    _with_connection(db_dsn, not_short, autocommit=False)


def _counting_timers(loop: asyncio.AbstractEventLoop) -> list[float]:
    """The delays of the timers armed on `loop` from now on."""
    armed: list[float] = []
    call_later = loop.call_later

    def counted(delay: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        armed.append(delay)
        return call_later(delay, *args, **kwargs)

    loop.call_later = counted  # type: ignore[method-assign,assignment]
    return armed


def test_the_connections_wait_arms_a_timer_per_wait_and_a_prepared_statement_none(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        prepared = Prepared(conn, "SELECT pg_sleep(0.01), %(n)s::int", 0)
        await prepared.rows({"n": 1}, tuple)  # prepared
        armed = _counting_timers(asyncio.get_running_loop())
        async with conn.cursor() as cur:
            await cur.execute("SELECT pg_sleep(0.01), %(n)s::int", {"n": 1})
        assert armed and set(armed) == {0.1}, "psycopg's wait armed no timer of its interval"
        armed.clear()
        assert await prepared.rows({"n": 2}, tuple) == [("", 2)]
        assert armed == []

    _with_connection(db_dsn, test)


async def _cancelled_while_it_runs(statement: Coroutine[Any, Any, Any]) -> None:
    """`statement`'s task cancelled 0.3 s after it starts: CancelledError, within 5 s."""
    sleeping = asyncio.create_task(statement)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    assert time.monotonic() - started < 5


def test_a_cancelled_statement_is_cancelled_on_the_server_by_psycopgs_wait(db_dsn: str) -> None:
    """A task cancelled while its statement runs: psycopg's wait, handed the
    interruption, cancels the statement on the server and reads its end, so
    the connection is idle and answers the next statement at once."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _cancelled_while_it_runs(Prepared(conn, "SELECT pg_sleep(%(s)s)", 0).rows({"s": 30}, tuple))
        assert not conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        assert await Prepared(conn, "SELECT %(n)s::int", 1).rows({"n": 3}, tuple) == [(3,)]

    _with_connection(db_dsn, test)


def test_an_interrupted_prepare_leaves_its_name_behind(db_dsn: str) -> None:
    """A prepare cancelled while the server works on it (here: waiting for a
    lock on the table the statement reads) may or may not have been taken
    by the server: the next one uses another name and succeeds."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("CREATE TABLE locked (id int)")
        prepared = Prepared(conn, "SELECT count(*) FROM locked WHERE id = %(id)s", 0)
        async with await AsyncConnection.connect(db_dsn) as holder:
            await holder.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
            waiting = asyncio.create_task(prepared.rows({"id": 1}, tuple))
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert prepared.names == {}
        assert await prepared.rows({"id": 1}, tuple) == [(0,)]
        assert list(prepared.names.values()) == [b"graphql_todos_0_1"]

    _with_connection(db_dsn, test)


async def _ours(conn: AsyncConnection[Any]) -> list[str]:
    """The names of the server's prepared statements on `conn` made by a Prepared."""
    cur = await conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'graphql\\_todos\\_%' ORDER BY name")
    return [row[0] for row in await cur.fetchall()]


async def _block_raising(conn: AsyncConnection[Any]) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        async with conn.transaction():
            await conn.execute("SELECT 1 / 0")


async def _savepoint_raising(conn: AsyncConnection[Any]) -> None:
    async with conn.transaction():
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with conn.transaction():
                await conn.execute("SELECT 1 / 0")


async def _rollback(conn: AsyncConnection[Any]) -> None:
    await conn.execute("BEGIN")
    await conn.rollback()


@pytest.mark.parametrize("rollback", [_block_raising, _savepoint_raising, _rollback])
def test_psycopgs_rollback_drops_every_prepared_statement_once_it_prepared_one(
    db_dsn: str, rollback: Callable[[AsyncConnection[Any]], Awaitable[None]]
) -> None:
    """psycopg's rollbacks send DEALLOCATE ALL once its cache holds a
    statement, a Prepared's too: why a Prepared prepares again what the
    server dropped (module docstring). Before psycopg prepared one, they
    leave them be."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await Prepared(conn, "SELECT %(n)s::int", 0).rows({"n": 1}, tuple)
        await rollback(conn)
        assert await _ours(conn) == ["graphql_todos_0_0"]
        await conn.execute("SELECT 2", prepare=True)
        await rollback(conn)
        assert await _ours(conn) == []

    _with_connection(db_dsn, test)


def test_a_statement_the_server_dropped_is_prepared_again_and_run_once(db_dsn: str) -> None:
    """Outside a transaction block, a run of a statement the server no
    longer has fails at Bind, having run nothing, and leaves the connection
    idle: the Prepared prepares it again under a new name and runs it once.
    Inside a block it is raised as a cursor raises it (invalid_sql_statement_name),
    and the run after the block prepares it again."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("CREATE TABLE runs (n int)")
        prepared = Prepared(conn, "INSERT INTO runs VALUES (%(n)s) RETURNING n", 0)
        assert await prepared.rows({"n": 1}, tuple) == [(1,)]
        await conn.execute("DEALLOCATE ALL")
        assert await prepared.rows({"n": 2}, tuple) == [(2,)]
        assert list(prepared.names.values()) == [b"graphql_todos_0_1"]
        assert await _ours(conn) == ["graphql_todos_0_1"]
        await conn.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName) as short:
            async with conn.transaction():
                await prepared.rows({"n": 3}, tuple)
        with pytest.raises(psycopg.errors.InvalidSqlStatementName) as cursor:
            async with conn.transaction():
                await conn.execute("EXECUTE graphql_todos_0_1 (3)")
        assert short.value.sqlstate == cursor.value.sqlstate == "26000"
        assert await prepared.rows({"n": 4}, tuple) == [(4,)]
        assert list(prepared.names.values()) == [b"graphql_todos_0_2"]
        assert await (await conn.execute("SELECT n FROM runs ORDER BY n")).fetchall() == [(1,), (2,), (4,)]

    _with_connection(db_dsn, test)


TAKE = "INSERT INTO taken VALUES (%(id)s, %(note)s) RETURNING id, note"
A, B, C = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


async def _taken_table(conn: AsyncConnection[Any]) -> None:
    await conn.execute("CREATE TEMPORARY TABLE taken (id int CONSTRAINT taken_pkey PRIMARY KEY, note uuid)")


async def _taken(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    return await (await conn.execute("SELECT id, note FROM taken ORDER BY id")).fetchall()


def _after_the_block(conn: AsyncConnection[Any]) -> None:
    """The connection as a Prepared needs it: idle, autocommit, out of pipeline mode."""
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
    assert runs_short(conn)


def test_statements_in_one_transaction_answer_as_cursors_in_psycopgs_pipeline_and_transaction(db_dsn: str) -> None:
    """Each step's result read as a cursor's rows; one prepare per set of
    types, however often a statement runs in the pipeline; committed once."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _taken_table(conn)
        take, status = Prepared(conn, TAKE, 0), Prepared(conn, "SELECT now() = statement_timestamp() AS alone", 1)
        steps: list[tuple[Prepared, dict[str, Any] | None]] = [
            (take, {"id": 1, "note": A}), (take, {"id": 2, "note": None}), (take, {"id": 3, "note": C}), (status, None)
        ]
        results = await internal_psycopg.in_one_transaction(conn, steps)
        assert [prepared.loaded(result, tuple) for (prepared, _), result in zip(steps, results, strict=True)] == [
            [(1, A)], [(2, None)], [(3, C)], [(False,)]  # one transaction: its now() is the first statement's
        ]
        assert len(take.names) == 2 and len(status.names) == 1  # a UUID and None: two sets of types
        _after_the_block(conn)
        async with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
            await cur.execute(TAKE, {"id": 4, "note": C})
            expected = await cur.fetchall()
        results = await internal_psycopg.in_one_transaction(conn, [(take, {"id": 5, "note": C})])
        assert take.loaded(results[0], tuple)[0][1:] == expected[0][1:]
        assert await _taken(conn) == [(1, A), (2, None), (3, C), (4, C), (5, C)]
        assert await _ours(conn) == ["graphql_todos_0_0", "graphql_todos_0_1", "graphql_todos_1_0"]

    _with_connection(db_dsn, test)


def test_a_failure_in_one_transaction_is_raised_as_a_cursors_once_it_is_rolled_back(db_dsn: str) -> None:
    """The first error raised as a cursor raises it; nothing committed, the
    steps after it skipped (a prepare among them not kept), the connection
    idle and out of pipeline mode, and the statements prepared before the
    error still run."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _taken_table(conn)
        take, later = Prepared(conn, TAKE, 0), Prepared(conn, "SELECT %(n)s::int", 1)
        with pytest.raises(psycopg.errors.UniqueViolation) as short:
            await internal_psycopg.in_one_transaction(
                conn, [(take, {"id": 1, "note": A}), (take, {"id": 1, "note": B}), (later, {"n": 1})]
            )
        with pytest.raises(psycopg.errors.UniqueViolation) as cursor:
            async with conn.transaction():
                await conn.execute(TAKE, {"id": 1, "note": A})
                await conn.execute(TAKE, {"id": 1, "note": B})
        assert str(short.value) == str(cursor.value) and short.value.diag.constraint_name == "taken_pkey"
        _after_the_block(conn)
        assert await _taken(conn) == []
        assert later.names == {} and list(take.names.values()) == [b"graphql_todos_0_0"]
        results = await internal_psycopg.in_one_transaction(conn, [(take, {"id": 1, "note": A}), (later, {"n": 2})])
        assert later.loaded(results[1], tuple) == [(2,)]
        assert await _taken(conn) == [(1, A)]

    _with_connection(db_dsn, test)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (object(), psycopg.ProgrammingError, "cannot adapt type 'object'"),
        # Not a psycopg error: the encoder's, which a cursor's execute raises as it is.
        ("\ud800", UnicodeEncodeError, "surrogates not allowed"),
    ],
    ids=["no dumper", "not encodable"],
)
def test_a_value_that_cannot_be_sent_ends_the_transaction_before_its_commit(
    db_dsn: str, value: object, error: type[Exception], message: str
) -> None:
    """A parameter that cannot be sent: the error a cursor's execute raises
    for it, the steps sent before it rolled back, not committed, and the
    connection kept, as the cursor keeps it."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _taken_table(conn)
        take = Prepared(conn, TAKE, 0)
        with pytest.raises(error, match=message):
            await internal_psycopg.in_one_transaction(conn, [(take, {"id": 1, "note": A}), (take, {"id": 2, "note": value})])
        with pytest.raises(error, match=message):
            await conn.execute(TAKE, {"id": 2, "note": value})
        _after_the_block(conn)
        assert await _taken(conn) == []

    _with_connection(db_dsn, test)


def test_a_failed_commit_is_raised_and_leaves_no_block(db_dsn: str) -> None:
    """A deferred constraint refused at COMMIT: the error, nothing kept, no ROLLBACK needed."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute(
            "CREATE TEMPORARY TABLE deferred (id int CONSTRAINT deferred_pkey PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)"
        )
        twice = Prepared(conn, "INSERT INTO deferred VALUES (1)", 0)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await internal_psycopg.in_one_transaction(conn, [(twice, None), (twice, None)])
        _after_the_block(conn)
        assert await (await conn.execute("SELECT count(*) FROM deferred")).fetchone() == (0,)

    _with_connection(db_dsn, test)


def test_statements_the_server_dropped_fail_one_transaction_and_are_prepared_again_after(db_dsn: str) -> None:
    """In a block, a statement the server no longer has is raised as a
    cursor raises it (invalid_sql_statement_name); every step's Prepared
    then prepares again, so the next transaction runs."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _taken_table(conn)
        take, count = Prepared(conn, TAKE, 0), Prepared(conn, "SELECT count(*) FROM taken", 1)
        await internal_psycopg.in_one_transaction(conn, [(take, {"id": 1, "note": A}), (count, None)])
        await conn.execute("DEALLOCATE ALL")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            await internal_psycopg.in_one_transaction(conn, [(take, {"id": 2, "note": B}), (count, None)])
        _after_the_block(conn)
        results = await internal_psycopg.in_one_transaction(conn, [(take, {"id": 2, "note": B}), (count, None)])
        assert count.loaded(results[1], tuple) == [(2,)]
        assert await _ours(conn) == ["graphql_todos_0_1", "graphql_todos_1_1"]

    _with_connection(db_dsn, test)


def test_one_transaction_cancelled_is_cancelled_on_the_server_and_rolled_back(db_dsn: str) -> None:
    """A task cancelled while its pipeline runs: psycopg's wait cancels it
    on the server and reads its end, the transaction is rolled back, and the
    connection answers the next statement at once; a prepare whose answer
    may not have come is not used again."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _taken_table(conn)
        take, sleep = Prepared(conn, TAKE, 0), Prepared(conn, "SELECT pg_sleep(%(s)s)", 1)
        steps: list[tuple[Prepared, dict[str, Any] | None]] = [(take, {"id": 1, "note": A}), (sleep, {"s": 30})]
        await _cancelled_while_it_runs(internal_psycopg.in_one_transaction(conn, steps))
        _after_the_block(conn)
        assert await _taken(conn) == []
        assert sleep.names == {}
        assert await sleep.rows({"s": 0}, tuple) == [("",)]

    _with_connection(db_dsn, test)


async def _gathered(conn: AsyncConnection[Any], timeout: float, count: int | None = None) -> list[list[str]]:
    """payloads' lists until `count` payloads came (all of them: None),
    each payload decoded: bytes in the connection's encoding."""
    reads: list[list[str]] = []
    encoding = conn_encoding(conn)
    async for read in payloads(conn, timeout):
        assert all(type(payload) is bytes for payload in read)
        reads.append([payload.decode(encoding) for payload in read])
        if count is not None and sum(map(len, reads)) >= count:
            break
    return reads


def test_payloads_gives_every_notification_of_a_read_in_order(db_dsn: str) -> None:
    """notifies(pgconn) under the connection's wait returns what a read
    brought, payloads (`extra`) in the connection's encoding, in order."""
    sent = [f"{i} \u00e9\U0001f600" for i in range(500)]

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN payloads_test")
        with psycopg.connect(db_dsn) as writer:  # one transaction: the lot arrive together
            for payload in sent:
                writer.execute("SELECT pg_notify('payloads_test', %s)", (payload,))
        reads = await _gathered(conn, 5.0, len(sent))
        assert [payload for read in reads for payload in read] == sent
        assert len(reads) < len(sent)  # some read brought more than one

    _with_connection(db_dsn, test)


def test_a_wait_of_payloads_reads_the_socket_again_while_reads_bring_notifications(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq reads 16 kB a call: 100 payloads of 500 bytes (50 kB) waiting
    on the socket come in one list (one wait, one turn of the loop), and
    in more than one with two reads a wait (_READS); each once, in order."""
    sent = [f"{i:03d}" + "x" * 497 for i in range(100)]

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN payloads_test")
        for reads_a_wait, lists in ((16, 1), (2, 2)):
            monkeypatch.setattr(internal_psycopg, "_READS", reads_a_wait)
            with psycopg.connect(db_dsn) as writer:  # one transaction: the lot arrive together
                for payload in sent:
                    writer.execute("SELECT pg_notify('payloads_test', %s)", (payload,))
            await asyncio.sleep(0.3)  # all of it on the socket before the first read
            reads = await _gathered(conn, 5.0, len(sent))
            assert [payload for read in reads for payload in read] == sent
            assert len(reads) == 1 if lists == 1 else len(reads) >= lists

    _with_connection(db_dsn, test)


def test_payloads_near_the_size_limit_split_across_reads_come_whole_and_in_order(db_dsn: str) -> None:
    """Payloads just short of PostgreSQL's 8000 bytes, of two- to four-byte
    characters, 200 in one transaction (1.6 MB: a notification split across
    socket reads) and 50 in transactions of their own: each given once,
    whole, in order."""
    batch = [f"{i:03d}" + "\u00e9\u4e2d\U0001f600"[i % 3] * (7996 // (2 + i % 3)) for i in range(200)]
    singles = [f"single {i} \u00e9" for i in range(50)]

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN payloads_test")
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            with writer.transaction():
                for payload in batch:
                    writer.execute("SELECT pg_notify('payloads_test', %s)", (payload,))
            for payload in singles:
                writer.execute("SELECT pg_notify('payloads_test', %s)", (payload,))
        reads = await _gathered(conn, 5.0, len(batch) + len(singles))
        assert [payload for read in reads for payload in read] == batch + singles

    _with_connection(db_dsn, test)


def test_payloads_stop_at_the_timeout_and_the_connection_goes_on(db_dsn: str) -> None:
    """With nothing to read, the connection's wait raises _WaitTimeout at the
    timeout; the connection answers after it, and what comes later arrives."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN payloads_test")
        started = time.monotonic()
        assert await _gathered(conn, 0.3) == []
        assert 0.25 < time.monotonic() - started < 2.0
        assert await (await conn.execute("SELECT 1")).fetchall() == [(1,)]
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            writer.execute("NOTIFY payloads_test, 'later'")
        assert await _gathered(conn, 5.0, 1) == [["later"]]

    _with_connection(db_dsn, test)


def test_payloads_give_first_what_came_with_a_statement(db_dsn: str) -> None:
    """What arrives with a statement's results is kept in _notifies_backlog
    (None while payloads runs, so nothing is kept twice), given first."""

    async def test(conn: AsyncConnection[Any]) -> None:
        # Not UTF-8: the payloads come in the connection's encoding, kept ones too.
        await conn.execute("SET client_encoding TO 'LATIN1'")
        await conn.execute("LISTEN payloads_test")
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            writer.execute("NOTIFY payloads_test, 'kept \u00e9'")
        await asyncio.sleep(0.2)
        await conn.execute("SELECT 1")  # reads the notification with its result
        assert [n.payload for n in conn._notifies_backlog or ()] == ["kept \u00e9"]
        with psycopg.connect(db_dsn, autocommit=True) as writer:
            writer.execute("NOTIFY payloads_test, 'read \u00e9'")
        async with contextlib.aclosing(payloads(conn, 5.0)) as reads:
            assert await anext(reads) == ["kept \u00e9".encode("latin-1")]  # as it came
            assert conn._notifies_backlog is None
            assert await anext(reads) == ["read \u00e9".encode("latin-1")]
        assert conn._notifies_backlog is not None and not conn._notifies_backlog
        assert await _gathered(conn, 0.1) == []

    _with_connection(db_dsn, test)


def test_psycopgs_notify_handler_keeps_nothing_with_no_handler_and_the_backlog_taken(db_dsn: str) -> None:
    """The connection's libpq notify handler keeps a Notify in the backlog,
    or gives it to the registered handlers; with neither (the backlog None
    while payloads runs, no handler) it keeps nothing: payloads' read does
    not call it then."""

    async def test(conn: AsyncConnection[Any]) -> None:
        pgnotify = pq.PGnotify(b"payloads_test", conn.info.backend_pid, b"x")
        handler = conn.pgconn.notify_handler
        assert handler is not None
        handler(pgnotify)
        assert [(n.channel, n.payload) for n in conn._notifies_backlog or ()] == [("payloads_test", "x")]
        conn._notifies_backlog, backlog = None, conn._notifies_backlog
        handler(pgnotify)
        assert conn._notifies_backlog is None
        assert backlog is not None and len(backlog) == 1
        handled: list[psycopg.Notify] = []
        conn.add_notify_handler(handled.append)
        handler(pgnotify)
        assert [n.payload for n in handled] == ["x"]

    _with_connection(db_dsn, test)


def test_payloads_read_as_psycopgs_notifies_and_hand_each_to_a_registered_handler(db_dsn: str) -> None:
    """payloads gives what psycopg's own notifies() gives, and a handler
    registered on the connection still sees each notification, in order."""
    sent = [f"{i} \u00e9" for i in range(300)]

    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN payloads_test")

        def notify_all() -> None:
            with psycopg.connect(db_dsn) as writer:
                for payload in sent:
                    writer.execute("SELECT pg_notify('payloads_test', %s)", (payload,))

        notify_all()
        assert [n.payload async for n in conn.notifies(timeout=5.0, stop_after=len(sent))] == sent
        notify_all()
        assert [payload for read in await _gathered(conn, 5.0, len(sent)) for payload in read] == sent
        handled: list[psycopg.Notify] = []
        conn.add_notify_handler(handled.append)
        notify_all()
        assert [payload for read in await _gathered(conn, 5.0, len(sent)) for payload in read] == sent
        assert [(n.channel, n.payload) for n in handled] == [("payloads_test", p) for p in sent]

    _with_connection(db_dsn, test)


async def _gone(conn: AsyncConnection[Any], ending: str) -> None:
    """`conn`'s backend ended by `ending` (SQL run on another connection
    taking the pid), and gone from the server."""
    pid = conn.info.backend_pid
    async with await AsyncConnection.connect(conn.info.dsn, autocommit=True) as other:
        await other.execute(ending, (pid,))
        while await (await other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))).fetchone():
            await asyncio.sleep(0.01)


def test_a_connection_whose_backend_was_terminated_while_idle_is_found_ended_and_closed(db_dsn: str) -> None:
    """The FATAL the backend sent while no command ran is read, and the
    EOF after it closes the connection."""

    async def test(conn: AsyncConnection[Any]) -> None:
        await _gone(conn, "SELECT pg_terminate_backend(%s)")
        assert internal_psycopg.ended_while_idle(conn)
        assert conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.UNKNOWN

    _with_connection(db_dsn, test)


@contextlib.contextmanager
def _end_held_back(dsn: str) -> Iterator[tuple[str, threading.Event]]:
    """A relay to the server at `dsn` (a dsn through it) that passes every
    byte but holds the server's end of a connection (its FIN) back until
    the event is set: a backend's FATAL read before its socket closes."""
    with psycopg.connect(dsn) as probe:  # where the server is: a TCP port or a Unix socket
        host, port = probe.info.host, probe.info.port
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def relay() -> None:
        client, _ = listener.accept()
        if host.startswith("/"):
            server = socket.socket(socket.AF_UNIX)
            server.connect(f"{host}/.s.PGSQL.{port}")
        else:
            server = socket.create_connection((host, port))

        def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    server.sendall(data)

        threading.Thread(target=upstream, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
        release.wait(10)
        client.close()
        server.close()

    threading.Thread(target=relay, daemon=True).start()
    try:
        yield make_conninfo(dsn, host="127.0.0.1", port=listener.getsockname()[1], sslmode="disable"), release
    finally:
        release.set()
        listener.close()


def test_a_connection_whose_fatal_came_before_its_end_is_found_ended(db_dsn: str) -> None:
    """The backend sends its FATAL, then exits: a check between the two
    reads something and no end. Not handed out: closed."""
    with _end_held_back(db_dsn) as (relayed, release):

        async def main() -> None:
            async with await AsyncConnection.connect(relayed, autocommit=True) as conn:
                pid = conn.info.backend_pid
                async with await AsyncConnection.connect(db_dsn, autocommit=True) as other:
                    await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    while await (await other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))).fetchone():
                        await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)  # the FATAL through the relay
                assert internal_psycopg.ended_while_idle(conn)
                assert conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.UNKNOWN
                release.set()

        asyncio.run(main())


def test_a_connection_past_idle_session_timeout_is_found_ended(db_dsn: str) -> None:
    async def test(conn: AsyncConnection[Any]) -> None:
        await conn.execute("SET idle_session_timeout = '50ms'")
        await asyncio.sleep(0.5)
        assert internal_psycopg.ended_while_idle(conn)
        assert conn.closed

    _with_connection(db_dsn, test)


def test_a_connection_whose_socket_is_numbered_past_select_s_limit_is_checked_too(db_dsn: str) -> None:
    """A server holding thousands of sockets makes its pool's replacements
    with descriptors past 1024, where select() cannot look (FD_SETSIZE):
    the check must still find an ended connection, and a live one alive."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.fail(f"RLIMIT_NOFILE's hard limit {hard} leaves no room past 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]

    async def test(conn: AsyncConnection[Any]) -> None:
        assert conn.pgconn.socket > 1024
        assert not internal_psycopg.ended_while_idle(conn)
        await _gone(conn, "SELECT pg_terminate_backend(%s)")
        assert internal_psycopg.ended_while_idle(conn)

    try:
        _with_connection(db_dsn, test)
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_alive_is_handed_out_and_one_that_got_anything_unasked_is_not(db_dsn: str) -> None:
    """Nothing came: it runs on. Something came with no end behind it (a
    notification here; a FATAL before its end looks the same): closed."""

    async def test(conn: AsyncConnection[Any]) -> None:
        assert not internal_psycopg.ended_while_idle(conn)
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
        await conn.execute("LISTEN idle_test")
        async with await AsyncConnection.connect(conn.info.dsn, autocommit=True) as other:
            await other.execute("NOTIFY idle_test, 'while idle'")
        await asyncio.sleep(0.2)
        assert internal_psycopg.ended_while_idle(conn)
        assert conn.closed

    _with_connection(db_dsn, test)
