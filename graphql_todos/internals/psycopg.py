"""psycopg, with a statement run on every request (the writes) sent the short
way: prepared once per connection and parameter types, its parameters
adapted by a PostgresQuery kept for it, its result read by psycopg's own
generator on the connection's lock, waiting on the socket without a timer.
A cursor's execute does the same through its bookkeeping for every case (a
new PostgresQuery and query conversion per call, the prepared-statement
cache's lookup, entry and check, generators three deep per wait, the
results' and the fetch's checks): a third of a write's Python calls went
there (docs/bench-ab-writes.md). Statements run together in one transaction
(a batch of writes: `in_one_transaction`) go the same way in one pipeline
of libpq's, where psycopg's `pipeline()` and `transaction()` made a cursor,
a cache lookup and a turn of the loop per statement: a quarter of a
write's instructions (docs/bench-ab-writes.md, sixteenth sitting).

Assumes (tests/internals/test_psycopg.py pins each):
- `PostgresQuery(Transformer(conn))` converts a statement with named
  parameters once (`convert`), and `dump(params)` adapts each new set of
  values for it, leaving `params`, `types` and `formats` as libpq takes them
  (the way psycopg's executemany runs one statement again);
- that `dump` of a dict is its values in the converted statement's order
  of names (`_order`, each name once), adapted by the Transformer's
  `dump_sequence` with the formats the conversion wants (`_want_formats`),
  then `types` (a tuple) and `formats` read off the Transformer; a name
  missing is its ProgrammingError. A Prepared of two or more names takes
  those steps itself (`_dump`): the values by one itemgetter, in C, where
  `dump` checks the parameters' kind and lists them in four Python calls
  (some 150 bytecodes a write, docs/bench-ab-writes.md, seventeenth
  sitting); anything else (one name, none, not a dict, a name missing)
  goes through `dump`;
- `psycopg.generators.execute(pgconn)` flushes what was sent and returns
  every result of it, yielding a `Wait` and taking a `Ready` whenever it
  would block (as the connection's `wait` runs it);
- `errors.error_from_result` is the exception a cursor raises for a failed
  result (the same class and diagnostics: a unique violation's constraint);
- the connection's notice handlers see the NOTICEs of a statement sent on
  its `pgconn` (psycopg sets libpq's notice receiver per connection);
- a connection in autocommit starts no transaction of its own before a
  statement (the only case taken here: `runs_short`);
- the connection's `wait` arms a timer (`loop.call_later`, psycopg's 0.1 s
  `_WAIT_INTERVAL`, for interrupts a synchronous wait could not see) on
  every wait that blocks, one to three per statement: 1% of a write's
  instructions under uvloop. Under asyncio an interruption reaches the
  waiting task anyway, so `_waited` waits on the socket without one; an
  interruption (a cancelled task) is handed to the connection's `wait`,
  raised at its generator's first step, and psycopg's wait does what it does
  when interrupted itself: cancels the statement on the server and reads its
  end, or closes the connection, then raises it again;
- in libpq's pipeline mode (`enter_pipeline_mode`), commands queued by
  `send_query_params`, `send_prepare` and `send_query_prepared` and a
  `pipeline_sync` are flushed by `psycopg.generators.send` and answered in
  order, `fetch_many` reading each command's one result (then the Sync's
  PIPELINE_SYNC alone); after a failure, every command up to the Sync
  answers PIPELINE_ABORTED (a prepare among them not made), and an open
  transaction block is left failed until a ROLLBACK; a prepared statement
  made in a transaction outlives its rollback.

A Prepared's statements may vanish from the server under it: psycopg's
rollback (`rollback()`, a `transaction()` block, a savepoint's too, ended
by an exception; the pool's putconn of a connection left in a transaction)
sends DEALLOCATE ALL once psycopg has prepared a statement of its own (its
cache: a cursor's `prepare=True`, or a statement's sixth run), and anyone's
DISCARD ALL does the same. A Prepared watches none of them: outside a
transaction block, a kept statement whose run fails as
`invalid_sql_statement_name` (26000, refused at Bind, before anything ran)
is prepared again under a new name and run, once. Inside a block the
failure is raised, as a cursor would, and the next run after it heals
(in_one_transaction's: every step's Prepared prepares again).

For a pooled connection taken after it sat idle (`ended_while_idle`): a
backend that ends (pg_terminate_backend, idle_session_timeout, a shutdown)
sends a FATAL ErrorResponse and closes its socket, which the client reads
only with its next statement: that statement fails although nothing ran.
Assumes that on an idle connection nothing arrives unasked but such an
ending, or rarely a NOTICE or ParameterStatus (a pooled connection never
LISTENs), so its socket is not readable (one `poll` with no wait, a
syscall). A socket with anything to read is not trusted: the FATAL can come
a moment before the end (PostgreSQL 15 here: some 10 ms after the backend
left pg_stat_activity), and telling a FATAL from a NOTICE would take a
round trip that may wait on a backend still exiting. It is closed
(`pgconn.finish()`, the connection then BAD, as libpq leaves one it lost)
and a new one made; a live one lost so costs one connect.

And, for the hub's LISTEN connection (`payloads`), taking each socket read's
notifications as one list of payloads where `AsyncConnection.notifies`
makes a `Notify` of each (its channel's name decoded too) and yields it by
a step of its async generator, with a deadline check:
- `psycopg.generators.notifies(pgconn)`, run by the connection's `wait`
  with a timeout, waits for the socket, reads it once (`consume_input`)
  and returns every notification the read brought (`pgconn.notifies()`
  until None: `PGnotify`, the payload in `extra`, bytes in the
  connection's encoding, which `Notify.payload` is decoded from), in
  order, handing each to `pgconn.notify_handler` as it goes; with nothing
  within the timeout, `wait` raises `errors._WaitTimeout` and the
  connection goes on as before. `_read` is that generator, the payloads
  left as the bytes they came as (their reader, orjson, takes UTF-8
  bytes as it takes text: a decode per row saved), and reading again
  while a read brings notifications (`consume_input` with nothing on the
  socket reads nothing and returns, the connection as it was);
- that handler (psycopg's, per connection) makes a `Notify` of each
  (its channel and payload decoded) for the connection's
  `_notify_handlers`, or, with none, for its `_notifies_backlog` when that
  is not None: while `payloads` runs (the backlog None) and no handler is
  registered it keeps nothing, and `_read` does not call it (a `Notify`
  made and dropped per row: some 5% of the hub's samples,
  docs/bench-ab-rows.md); with a handler registered, it does;
- while no `notifies()` runs, psycopg keeps what arrives (with a
  statement's results) in the connection's `_notifies_backlog`, a deque of
  `Notify`, and a `notifies()` takes it (sets it to None while it runs, so
  that nothing is kept twice) and yields it first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_, itemgetter
from select import POLLIN, poll
from time import monotonic
from types import TracebackType
from typing import Any, TypeVar

from psycopg import AsyncConnection, errors, pq
from psycopg._encodings import conn_encoding
from psycopg._queries import PostgresQuery
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import execute, fetch_many, send
from psycopg.rows import RowMaker
from psycopg.waiting import Ready, Wait

T = TypeVar("T")

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_ABORTED = pq.ExecStatus.PIPELINE_ABORTED
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
# A pipeline's results all of which are these: every command done.
_DONE = frozenset((_TUPLES_OK, _COMMAND_OK))
_status = attrgetter("status")
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_IDLE = pq.TransactionStatus.IDLE
_IN_BLOCK = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)
_BEGIN, _COMMIT, _ROLLBACK = b"BEGIN", b"COMMIT", b"ROLLBACK"
# invalid_sql_statement_name: "prepared statement ... does not exist".
_NO_SUCH_STATEMENT = b"26000"
_BAD = pq.ConnStatus.BAD
_WAIT_R = Wait.R
# Socket reads a wait of the LISTEN connection takes at most (_read): some
# 250 kB, the loop's other work not held up longer than that many rows' worth.
_READS = 16


def runs_short(conn: AsyncConnection[Any]) -> bool:
    """Whether a Prepared may run on `conn`: in autocommit and outside a
    pipeline, where a cursor's execute sends the statement alone too."""
    return conn.autocommit and conn._pipeline is None


def ended_while_idle(conn: AsyncConnection[Any]) -> bool:
    """Whether `conn`, idle in the pool, is not to be handed out: anything
    came on its socket unasked (module docstring). Then it is closed. One
    poll of the socket when nothing came."""
    pgconn = conn.pgconn
    # poll, not select: a server holding thousands of sockets gives its
    # pool's new connections descriptors past select's 1024 (FD_SETSIZE).
    readable = poll()
    readable.register(pgconn.socket, POLLIN)
    if not readable.poll(0):
        return False
    pgconn.finish()
    return True


class Prepared:
    """One statement on one connection, run again and again; names of
    its own for the server's prepared statements (psycopg's are `_pg3_N`),
    one per set of parameter types (None has a type of its own), as
    psycopg's cache keys them. A name is never tried twice: a prepare
    interrupted after the server took it must not meet it again. Those the
    server dropped are prepared again (module docstring)."""

    __slots__ = ("adapting", "conn", "converted", "names", "ordered", "prefix", "prepares", "query", "statement", "wants")

    def __init__(self, conn: AsyncConnection[Any], statement: str, number: int) -> None:
        self.conn = conn
        self.statement = statement
        self.adapting = Transformer(conn)
        self.query = PostgresQuery(self.adapting)
        self.converted = False
        # After the conversion, for two or more names: their values in the
        # statement's order, and the formats it wants (_dump).
        self.ordered: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        self.wants: list[PyFormat] = []
        self.names: dict[tuple[int, ...], bytes] = {}
        self.prefix = f"graphql_todos_{number}_"
        self.prepares = 0

    async def rows(self, params: Mapping[str, Any] | None, make_row: RowMaker[Any]) -> list[Any]:
        """The statement's rows for `params`, each made by `make_row` from a
        tuple of its values; a failure raises what a cursor would."""
        conn, query = self.conn, self.query
        pgconn = conn.pgconn
        async with conn.lock:
            self._dump(params)
            name = self.names.get(query.types)
            kept = name is not None
            while True:
                if name is None:
                    name = self._new_name()
                    pgconn.send_prepare(name, query.query, param_types=query.types)
                    _checked(conn, await _waited(conn, execute(pgconn)))
                    self.names[query.types] = name
                pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
                results = await _waited(conn, execute(pgconn))
                if not (kept and self._dropped(results)):
                    break
                # The server has none of ours any more (module docstring):
                # nothing ran, and each is prepared again as it comes, once.
                self.names.clear()
                name, kept = None, False
            result = _checked(conn, results)
        return self.loaded(result, make_row)

    def loaded(self, result: pq.abc.PGresult, make_row: RowMaker[T]) -> list[T]:
        """A result of this statement's, its rows each made by `make_row`."""
        adapting = self.adapting
        adapting.set_pgresult(result)
        return adapting.load_rows(0, result.ntuples, make_row)

    def _dump(self, params: Mapping[str, Any] | None) -> None:
        """`params` adapted into the query's `params`, `types` and
        `formats`, as PostgresQuery's `dump` leaves them (module docstring)."""
        query = self.query
        ordered = self.ordered
        if ordered is not None and type(params) is dict:
            try:
                values = ordered(params)
            except KeyError:
                pass  # dump's ProgrammingError, naming what is missing
            else:
                adapting = self.adapting
                query.params = adapting.dump_sequence(values, self.wants)
                query.types = adapting.types or ()
                query.formats = adapting.formats
                return
        if self.converted:
            query.dump(params)
        else:
            query.convert(self.statement, params)
            self.converted = True
            order, wants = query._order, query._want_formats
            if order is not None and len(order) > 1 and wants is not None:
                self.ordered, self.wants = itemgetter(*order), wants

    def _new_name(self) -> bytes:
        name = f"{self.prefix}{self.prepares}".encode()
        self.prepares += 1
        return name

    def _unqueued(self, name: bytes) -> None:
        """A prepare queued in a pipeline (in_one_transaction) that the
        server did not take, or whose answer never came: its name no longer
        stands for its types, and is never tried again."""
        for types, named in list(self.names.items()):
            if named == name:
                del self.names[types]

    def _dropped(self, results: list[pq.abc.PGresult]) -> bool:
        """Whether a kept statement's run failed only because the server has
        no statement of its name, outside a transaction block: it ran nothing
        and the connection is idle, so it may be prepared and run again."""
        return (
            len(results) == 1
            and results[0].status == _FATAL_ERROR
            and results[0].error_field(_SQLSTATE) == _NO_SUCH_STATEMENT
            and self.conn.pgconn.transaction_status == _IDLE
        )


def _checked(conn: AsyncConnection[Any], results: list[pq.abc.PGresult]) -> pq.abc.PGresult:
    """The statement's one result; a failed one raised as psycopg would."""
    for result in results:
        status = result.status
        if status == _FATAL_ERROR:
            raise errors.error_from_result(result, encoding=conn_encoding(conn))
        if status != _TUPLES_OK and status != _COMMAND_OK:
            raise errors.InternalError(f"unexpected result status: {pq.ExecStatus(status).name}")
    if len(results) != 1:
        raise errors.InternalError(f"{len(results)} results from one statement")
    return results[0]


async def in_one_transaction(
    conn: AsyncConnection[Any], steps: Sequence[tuple[Prepared, Mapping[str, Any] | None]]
) -> list[pq.abc.PGresult]:
    """Each step's statement (a Prepared of `conn`'s and its parameters) run
    in order in one transaction: BEGIN, the steps (each prepared first where
    its types have no name yet) and COMMIT queued in one pipeline and read
    after its one Sync, as psycopg's `pipeline()` and `transaction()` run a
    cursor's executes but with no cursor, no cache lookup and no wait per
    statement. Each step's result. A failure, the server's (the first) or
    a value the dumpers could not send (nothing after it sent, nor COMMIT),
    is raised as a cursor would raise it, and anything else (an
    interruption) goes on, once the transaction is rolled back and the
    connection out of pipeline mode. Needs `runs_short(conn)`."""
    async with conn.lock:
        try:
            results = await _pipelined(conn, steps)
        except BaseException:
            with contextlib.suppress(errors.Error):
                await _rolled_back(conn)
            raise
    return results


async def _pipelined(
    conn: AsyncConnection[Any], steps: Sequence[tuple[Prepared, Mapping[str, Any] | None]]
) -> list[pq.abc.PGresult]:
    """in_one_transaction's pipeline, on the connection's lock."""
    pgconn = conn.pgconn
    pgconn.enter_pipeline_mode()
    # What each queued command answers: a step (its index), a prepare
    # (its Prepared and name), or BEGIN and COMMIT (None).
    answers: list[int | tuple[Prepared, bytes] | None] = [None]
    unconfirmed: list[tuple[Prepared, bytes]] = []
    unsent: Exception | None = None
    try:
        pgconn.send_query_params(_BEGIN, None)
        try:
            for index, (prepared, params) in enumerate(steps):
                prepared._dump(params)
                query = prepared.query
                name = prepared.names.get(query.types)
                if name is None:
                    # The types' name from now on, so that a second run in
                    # the pipeline does not prepare it again.
                    name = prepared.names[query.types] = prepared._new_name()
                    unconfirmed.append((prepared, name))
                    pgconn.send_prepare(name, query.query, param_types=query.types)
                    answers.append((prepared, name))
                pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
                answers.append(index)
            pgconn.send_query_params(_COMMIT, None)
            answers.append(None)
        except Exception as exc:  # noqa: BLE001 - raised after the Sync
            # A value not sent (a dumper's error: psycopg's, or the
            # encoder's UnicodeEncodeError a cursor raises as it is): what
            # was queued is synced and rolled back, the connection kept.
            unsent = exc
        pgconn.pipeline_sync()
        fetched, synced = await _waited(conn, _read_pipeline(pgconn, len(answers)))
        if pgconn.status == _BAD or [result.status for result in synced] != [_PIPELINE_SYNC]:
            raise _lost(conn, synced)
        if len(fetched) != len(answers):
            raise errors.InternalError(f"{len(fetched)} results for a pipeline of {len(answers)} commands")
        results: list[pq.abc.PGresult] = []
        failed = None
        if set(map(_status, fetched)) <= _DONE:
            # The usual case, every command done: each prepare made, and the
            # steps' results picked out in C (the loop below took some 30
            # bytecodes a command: docs/bench-ab-writes.md, seventeenth sitting).
            unconfirmed.clear()
            results = list(compress(fetched, map(is_, map(type, answers), repeat(int))))
        else:
            for answer, result in zip(answers, fetched, strict=True):
                status = result.status
                if status == _FATAL_ERROR:
                    failed = result if failed is None else failed
                elif status != _TUPLES_OK and status != _COMMAND_OK and status != _PIPELINE_ABORTED:
                    raise errors.InternalError(f"unexpected result status: {pq.ExecStatus(status).name}")
                elif isinstance(answer, int):
                    results.append(result)
                elif answer is not None and status == _COMMAND_OK:
                    unconfirmed.remove(answer)
    finally:
        for prepared, name in unconfirmed:
            prepared._unqueued(name)
        if pgconn.status != _BAD:
            try:
                pgconn.exit_pipeline_mode()
            except errors.OperationalError:
                # Results left unread (an interruption psycopg's wait did not
                # see through): a connection in an unknown state, which the
                # pool discards.
                pgconn.finish()
    if failed is not None:
        if failed.error_field(_SQLSTATE) == _NO_SUCH_STATEMENT:
            # The server dropped ours (module docstring): each prepared again as it comes.
            for prepared, _ in steps:
                prepared.names.clear()
        raise errors.error_from_result(failed, encoding=conn_encoding(conn))
    if unsent is not None:
        raise unsent
    return results


def _lost(conn: AsyncConnection[Any], synced: list[pq.abc.PGresult]) -> errors.OperationalError:
    """A pipeline's connection ending under it: lost, or its backend's
    FATAL (terminated) come in the Sync's place, after a COMMIT that may
    have been answered. The commit may have happened, so the connection is
    closed (its caller must see it broken, not take the error for a
    rollback) and the error is an OperationalError: the backend's, or
    psycopg's for a lost connection."""
    ending = next((result for result in synced if result.status == _FATAL_ERROR), None)
    error = None if ending is None else errors.error_from_result(ending, encoding=conn_encoding(conn))
    conn.pgconn.finish()
    return error if isinstance(error, errors.OperationalError) else errors.OperationalError("the connection is lost")


async def _rolled_back(conn: AsyncConnection[Any]) -> None:
    """The connection's transaction block, if one is left open, rolled back."""
    pgconn = conn.pgconn
    if pgconn.status != _BAD and pgconn.transaction_status in _IN_BLOCK:
        pgconn.send_query(_ROLLBACK)
        _checked(conn, await _waited(conn, execute(pgconn)))


def _read_pipeline(pgconn: pq.abc.PGconn, count: int) -> PQGen[tuple[list[pq.abc.PGresult], list[pq.abc.PGresult]]]:
    """A pipeline of `count` commands and its Sync flushed: each command's
    one result (a failure's, a skipped one's too), and what came for the Sync."""
    yield from send(pgconn)
    results: list[pq.abc.PGresult] = []
    for _ in range(count):
        results.extend((yield from fetch_many(pgconn)))
    return results, (yield from fetch_many(pgconn))


async def payloads(conn: AsyncConnection[Any], timeout: float) -> AsyncGenerator[list[bytes], None]:
    """The payloads of the notifications `conn` receives until `timeout`
    seconds from now, a list per wait (what up to `_READS` socket reads
    brought), as `conn.notifies(timeout=...)`
    yields them one by one (module docstring) but as bytes, in the
    connection's encoding, not decoded: first those kept while no one
    was waiting for them, then each wait's; it stops when a read ends past
    the deadline, or none comes before it. Holds the connection's lock while
    it runs (close it before the connection is used for anything else). What
    is left of a list when the caller stops is gone, as the rest of a read
    is when a `notifies()` is closed."""
    deadline = monotonic() + timeout
    async with conn.lock:
        encoding = conn_encoding(conn)
        conn._notifies_backlog, backlog = None, conn._notifies_backlog
        try:
            while True:
                if backlog:
                    read = [notify.payload.encode(encoding) for notify in backlog]
                    backlog.clear()
                else:
                    pgconn = conn.pgconn
                    # psycopg's handler only when someone listens to it (module docstring).
                    handler = pgconn.notify_handler if conn._notify_handlers else None
                    try:
                        read = await conn.wait(_read(pgconn, handler), timeout=max(0.0, deadline - monotonic()))
                    except errors._WaitTimeout:
                        return
                yield read
                # After the read, as psycopg's: a timeout of 0 polls once.
                if monotonic() > deadline:
                    return
        finally:
            conn._notifies_backlog = backlog


def _read(pgconn: pq.abc.PGconn, handler: Callable[[pq.PGnotify], None] | None) -> PQGen[list[bytes]]:
    """psycopg's `notifies(pgconn)`, each notification's payload as it
    came, and handed to `handler` only when there is one (module docstring);
    but reading the socket again while a read brings notifications,
    `_READS` times at most: libpq reads its 16 kB buffer's worth a call
    (some 28 rows of an UPDATE), and each wait is a turn of the loop."""
    while not (yield _WAIT_R):
        continue
    read: list[bytes] = []
    for _ in range(_READS):
        pgconn.consume_input()
        had = len(read)
        while notify := pgconn.notifies():
            if handler is not None:
                handler(notify)
            read.append(notify.extra)
        if len(read) == had:
            break
    return read


async def _waited(conn: AsyncConnection[Any], gen: PQGen[T]) -> T:
    """`gen` run to its end on the connection's socket, as the connection's
    `wait` runs it but with no timer per wait; an interruption goes through
    psycopg's own handling (module docstring)."""
    fileno = conn.pgconn.socket
    loop = asyncio.get_running_loop()
    try:
        state = next(gen)
        while True:
            reading, writing = state & Wait.R, state & Wait.W
            if not (reading or writing):
                raise errors.InternalError(f"bad poll status: {state}")
            woken = _Woken(loop.create_future())
            if reading:
                loop.add_reader(fileno, woken, Ready.R)
            if writing:
                loop.add_writer(fileno, woken, Ready.W)
            try:
                await woken.future
            finally:
                if reading:
                    loop.remove_reader(fileno)
                if writing:
                    loop.remove_writer(fileno)
            state = gen.send(woken.ready)
    except StopIteration as done:
        result: T = done.value
        return result
    except OSError as exc:
        raise errors.OperationalError("connection socket closed") from exc
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as interruption:
        return await conn.wait(_Interrupted(interruption, gen))


class _Woken:
    """The socket's readiness, gathered until the waiting task runs (both
    directions may be ready by then), as psycopg's wait gathers it."""

    __slots__ = ("future", "ready")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.ready = 0

    def __call__(self, ready: Ready) -> None:
        self.ready |= ready
        if not self.future.done():
            self.future.set_result(None)


class _Interrupted(Generator[Wait, Ready | int, T]):
    """`gen`, raising `interruption` at its first step and going on as `gen`
    after it: what the connection's `wait` sees when interrupted itself."""

    def __init__(self, interruption: BaseException, gen: PQGen[T]) -> None:
        self.interruption: BaseException | None = interruption
        self.gen = gen

    def send(self, value: Ready | int | None) -> Wait:
        if self.interruption is not None:
            interruption, self.interruption = self.interruption, None
            raise interruption
        return self.gen.send(value)  # type: ignore[arg-type] # psycopg's next() sends None

    def throw(
        self, kind: Any, value: Any = None, tb: TracebackType | None = None
    ) -> Wait:
        return self.gen.throw(kind, value, tb)
