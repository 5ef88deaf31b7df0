"""Pooled connections that fail fast: a database that cannot be reached (down,
restarting, every connection busy) is a DatabaseUnavailable within the pool's
timeout, for the service and the journal alike, never a hang."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from typing import Any

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from graphql_todos.core import metrics
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.internals.psycopg import Prepared, ended_while_idle, runs_short
from graphql_todos.internals.psycopg_pool import Refusals, count_request, discard, reusable, shelve, take_idle

logger = logging.getLogger(__name__)

# How long a statement rolled back as a deadlock's victim waits before it runs again.
RETRY_PAUSE_SECONDS = 0.05


class StatementConnection(psycopg.AsyncConnection[Any]):
    """psycopg's connection, keeping each statement that runs on every
    request (the writes: core/writes.py) prepared, with its parameters'
    adaptation, and run the short way (internals/psycopg.Prepared) rather
    than through a cursor's execute. The pool makes these by default (GatedPool)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[str, Prepared] = {}

    def prepared(self, statement: str) -> Prepared:
        """The connection's Prepared for `statement`, made on first use."""
        kept = self._kept.get(statement)
        if kept is None:
            kept = self._kept[statement] = Prepared(self, statement, len(self._kept))
        return kept


async def statement_rows(
    conn: psycopg.AsyncConnection[Any], statement: str, params: dict[str, Any] | None, make_row: RowMaker[Any]
) -> list[Any]:
    """The rows of a statement run on every request, each made by `make_row`
    from a tuple: on the pool's connections, the short way (StatementConnection),
    else through a cursor of its own. A statement run as a transaction of its
    own that PostgreSQL rolled back as a deadlock's victim is run once more."""
    try:
        return await _rows(conn, statement, params, make_row)
    except psycopg.errors.DeadlockDetected as exc:
        # Nothing of it committed (autocommit, no transaction open): run
        # again, it is the retry its client would send, answered as the
        # database now stands (a JOURNAL=decoded writer and a removal's
        # commit can deadlock: docs/reliability.md). A second time, the
        # caller's DatabaseUnavailable.
        if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise
        logger.warning("statement run again, its first run rolled back: %s", exc.diag.message_primary)
        # After the other transaction, which the rollback let on: run at
        # once, the statement takes the same locks first and deadlocks again.
        await asyncio.sleep(RETRY_PAUSE_SECONDS)
        return await _rows(conn, statement, params, make_row)


async def _rows(
    conn: psycopg.AsyncConnection[Any], statement: str, params: dict[str, Any] | None, make_row: RowMaker[Any]
) -> list[Any]:
    if isinstance(conn, StatementConnection) and runs_short(conn):
        return await conn.prepared(statement).rows(params, make_row)
    async with conn.cursor(row_factory=lambda _cursor: make_row) as cur:
        await cur.execute(statement, params)
        return await cur.fetchall()


class GatedPool(Refusals):
    """psycopg's pool, with the callers beyond its size waiting at a gate of
    that size rather than in the pool's own queue (a condition and a
    wait_for task per waiting caller, which under load cost more CPU than
    the query they wait for: bench, 20 concurrent list requests on 10
    connections), and the common checkout done without the pool's machinery
    (internals/psycopg_pool): a connection idle taken at once, and one given
    back handed straight to the next caller waiting at the gate (or put back
    idle). A caller waits on a future of its own; one timer for the whole
    queue, armed for its earliest deadline, turns the late ones away.
    Timeouts and get_stats() keep the pool's meaning."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connection_class", StatementConnection)
        super().__init__(*args, **kwargs)
        # Callers past the gate: holding a connection, or getting one.
        self._through = 0
        self._gate_waiting = 0
        self._queue: deque[_Waiter] = deque()
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf
        # Callers waiting for a connection in place of one found ended (_replacement).
        self._replacing: set[asyncio.Future[Exception]] = set()
        self._late: set[asyncio.Task[Any]] = set()

    async def getconn(self, timeout: float | None = None) -> Any:
        if self._through < self.max_size:
            self._through += 1
            conn = take_idle(self)
            ended = False
            while conn is not None and ended_while_idle(conn):
                await self._discard(conn)
                ended = True
                conn = take_idle(self)
            if conn is None:
                conn = await self._pooled(self.timeout if timeout is None else timeout, ended)
            return conn
        timeout = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = _Waiter(loop.create_future(), deadline, timeout)
        self._queue.append(waiter)
        if deadline < self._expiry_at:
            self._arm_expiry(loop, deadline)
        self._gate_waiting += 1
        try:
            conn = await waiter.future
        except asyncio.CancelledError:
            # Let in as the cancellation came: pass the place on.
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                if (handed := future.result()) is None:
                    self._let_next_in()
                else:
                    await self.putconn(handed)
            raise
        finally:
            self._gate_waiting -= 1
        if conn is None:
            # Let in with no connection to hand over: the pool's own getconn.
            return await self._pooled(deadline - loop.time())
        count_request(self)
        if ended_while_idle(conn):
            # Ended as it passed from caller to caller (killed between the
            # last one's statement and this one's): as one taken idle.
            await self._discard(conn)
            return await self._pooled(deadline - loop.time(), True)
        return conn

    async def _pooled(self, timeout: float, replacing: bool = False) -> Any:
        """A connection from the pool's own getconn, for a caller let in;
        `replacing`: in place of one found ended (_replacement)."""
        task = asyncio.current_task()
        cancels = 0 if task is None else task.cancelling()
        deadline = time.monotonic() + timeout
        try:
            conn = await (self._replacement(timeout) if replacing else super().getconn(timeout))
            while ended_while_idle(conn):
                await self._discard(conn)
                conn = await self._replacement(deadline - time.monotonic())
        except BaseException:
            self._let_next_in()
            raise
        if task is not None and task.cancelling() > cancels:
            # Python 3.11's asyncio.wait_for (the pool waits with it while it
            # grows) returns the result when a cancellation comes with it and
            # drops the cancellation (fixed in 3.12): a cancelled stream would
            # run on forever. Give the connection back and be cancelled.
            await self.putconn(conn)
            raise asyncio.CancelledError
        return conn

    async def _discard(self, conn: Any) -> None:
        """A connection taken from the idle ones, or handed over at the gate,
        that the server ended meanwhile (internals/psycopg.ended_while_idle): closed and
        replaced, as the pool does with one that fails its `check`, and the
        caller, who ran nothing on it, takes another."""
        logger.warning("a pooled connection ended while idle, discarded: %s", conn)
        await discard(self, conn)

    async def _replacement(self, timeout: float) -> Any:
        """The pool's getconn, for a caller whose idle connection was found
        ended: it waits for the connection the pool makes in its place. An
        attempt to make one that fails meanwhile (the database away: a
        restart, connections refused) fails the caller at once, as the ended
        connection's own error did before it was checked, not at its timeout."""
        refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        self._replacing.add(refused)
        getting = asyncio.ensure_future(super().getconn(timeout))
        try:
            await asyncio.wait((getting, refused), return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                return getting.result()
            raise psycopg.OperationalError(f"a new connection was refused: {refused.result()}")
        except BaseException:
            # Refused, or cancelled: perhaps as the pool handed the
            # connection over, in the turn before this caller ran on.
            getting.cancel()
            getting.add_done_callback(self._handed_late)
            raise
        finally:
            self._replacing.discard(refused)

    def _handed_late(self, getting: asyncio.Future[Any]) -> None:
        """A connection the pool handed to a _replacement given up: back to the pool."""
        if not getting.cancelled() and getting.exception() is None:
            task = asyncio.ensure_future(AsyncConnectionPool.putconn(self, getting.result()))
            self._late.add(task)
            task.add_done_callback(self._late.discard)

    def refused(self, exc: Exception) -> None:
        for waiting in self._replacing:
            if not waiting.done():
                waiting.set_result(exc)

    async def putconn(self, conn: Any) -> None:
        if reusable(self, conn):
            if not self._hand_over(conn):
                shelve(self, conn)
                self._through -= 1
            return
        try:
            await super().putconn(conn)
        finally:
            self._let_next_in()

    def _hand_over(self, conn: Any) -> bool:
        """Whether a caller waiting at the gate took `conn`."""
        queue = self._queue
        while queue:
            future = queue.popleft().future
            if not future.done():
                future.set_result(conn)
                return True
        return False

    def _let_next_in(self) -> None:
        """A place freed: the next caller waiting at the gate goes to the
        pool's own getconn, or the gate has one more free place."""
        if not self._hand_over(None):
            self._through -= 1

    def _arm_expiry(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = at
        self._expiry = loop.call_at(at, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The callers waiting past their deadline turned away; the timer
        armed again for the earliest deadline left."""
        self._expiry, self._expiry_at = None, math.inf
        now = loop.time()
        # The queue kept in order, less the callers gone (cancelled) and those turned away now.
        kept: deque[_Waiter] = deque()
        for waiter in self._queue:
            if waiter.future.done():
                continue
            if waiter.deadline <= now:
                waiter.future.set_exception(
                    PoolTimeout(f"couldn't get a connection after {waiter.timeout:.2f} sec")
                )
            else:
                kept.append(waiter)
        self._queue = kept
        if kept:
            self._arm_expiry(loop, min(waiter.deadline for waiter in self._queue))

    def get_stats(self) -> dict[str, int]:
        stats = super().get_stats()
        stats["requests_waiting"] = stats.get("requests_waiting", 0) + self._gate_waiting
        return stats


class _Waiter:
    """A caller waiting at the gate: the future it is handed a connection
    by (None: let in to get one), and when it gives up."""

    __slots__ = ("deadline", "future", "timeout")

    def __init__(self, future: asyncio.Future[Any], deadline: float, timeout: float) -> None:
        self.future = future
        self.deadline = deadline
        self.timeout = timeout


def connect_timeout(seconds: float) -> int:
    """libpq's connect_timeout for a wait of `seconds`: whole seconds, 2 at least."""
    return max(2, math.ceil(seconds))


def connection(pool: AsyncConnectionPool, timeout: float | None = None) -> Checkout:
    """A pooled connection; an unreachable database raises DatabaseUnavailable.
    Every connection is in autocommit, so there is no transaction to end on
    the way back (the pool's own connection() commits or rolls back through
    the connection's lock, a round of locking per request for nothing):
    putconn() still rolls back one left in a transaction block and discards
    a broken one."""
    return Checkout(pool, timeout)


def left(deadline: float | None) -> float | None:
    """What is left of a request's `deadline` (time.monotonic()) for
    connection()'s wait; None (no deadline): the pool's whole timeout."""
    return None if deadline is None else deadline - time.monotonic()


class Checkout:
    """connection()'s `async with`: a class, not an asynccontextmanager
    generator, as it is entered on every request."""

    __slots__ = ("conn", "pool", "timeout")

    def __init__(self, pool: AsyncConnectionPool, timeout: float | None) -> None:
        self.pool = pool
        self.timeout = timeout

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        try:
            self.conn: psycopg.AsyncConnection[Any] = await self.pool.getconn(self.timeout)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from _cause(exc)
        return self.conn

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            await self.pool.putconn(self.conn)
        except psycopg.OperationalError as failed:
            raise _unavailable(failed) from _cause(failed)
        if isinstance(exc, psycopg.OperationalError):
            raise _unavailable(exc) from _cause(exc)


def no_connection_in_time() -> DatabaseUnavailable:
    """A caller that got no connection within the pool's timeout (counted)."""
    metrics.refused("pool_timeout")
    return DatabaseUnavailable("no connection within the timeout")


def _unavailable(exc: psycopg.OperationalError) -> DatabaseUnavailable:
    """What an OperationalError means to a caller: no database now."""
    if isinstance(exc, PoolTimeout):
        return no_connection_in_time()
    # A lost connection, a server shutting down or refusing connections;
    # or a statement PostgreSQL cancelled at STATEMENT_TIMEOUT_SECONDS.
    if isinstance(exc, psycopg.errors.QueryCanceled):
        metrics.refused("statement_timeout")
    return DatabaseUnavailable(type(exc).__name__)


def _cause(exc: psycopg.OperationalError) -> BaseException | None:
    # The pool's timeout says nothing more than the answer does.
    return None if isinstance(exc, PoolTimeout) else exc
