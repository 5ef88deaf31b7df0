"""Pooled connections that fail fast: a database that cannot be reached (down,
restarting, every connection busy) is a DatabaseUnavailable within the pool's
timeout, for the service and the journal alike, never a hang."""

from __future__ import annotations

import asyncio
import math
from time import monotonic
from typing import Any

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from graphql_todos.core import metrics
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.internals.psycopg import Prepared, runs_short


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
    else through a cursor of its own."""
    if isinstance(conn, StatementConnection) and runs_short(conn):
        return await conn.prepared(statement).rows(params, make_row)
    async with conn.cursor(row_factory=lambda _cursor: make_row) as cur:
        await cur.execute(statement, params)
        return await cur.fetchall()


class GatedPool(AsyncConnectionPool):
    """psycopg's pool, with the callers beyond its size waiting on a
    semaphore of that size rather than in the pool's own queue (a condition
    and a wait_for task per waiting caller, which under load cost more CPU
    than the query they wait for: bench, 20 concurrent list requests on 10
    connections). Timeouts and get_stats() keep the pool's meaning."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connection_class", StatementConnection)
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(self.max_size)
        self._gate_waiting = 0

    async def getconn(self, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        deadline = monotonic() + timeout
        if self._gate.locked():
            await self._wait_for_gate(timeout)
        else:
            # Free: acquire() returns at once, no timeout to arm (a timer
            # scheduled and cancelled per request, for nothing).
            await self._gate.acquire()
        task = asyncio.current_task()
        cancels = 0 if task is None else task.cancelling()
        try:
            conn = await super().getconn(deadline - monotonic())
        except BaseException:
            self._gate.release()
            raise
        if task is not None and task.cancelling() > cancels:
            # Python 3.11's asyncio.wait_for (the pool waits with it while it
            # grows) returns the result when a cancellation comes with it and
            # drops the cancellation (fixed in 3.12): a cancelled stream would
            # run on forever. Give the connection back and be cancelled.
            await self.putconn(conn)
            raise asyncio.CancelledError
        return conn

    async def _wait_for_gate(self, timeout: float) -> None:
        self._gate_waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._gate.acquire()
        except TimeoutError:
            raise PoolTimeout(f"couldn't get a connection after {timeout:.2f} sec") from None
        finally:
            self._gate_waiting -= 1

    async def putconn(self, conn: Any) -> None:
        try:
            await super().putconn(conn)
        finally:
            self._gate.release()

    def get_stats(self) -> dict[str, int]:
        stats = super().get_stats()
        stats["requests_waiting"] = stats.get("requests_waiting", 0) + self._gate_waiting
        return stats


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


def _unavailable(exc: psycopg.OperationalError) -> DatabaseUnavailable:
    """What an OperationalError means to a caller: no database now."""
    if isinstance(exc, PoolTimeout):
        metrics.refused("pool_timeout")
        return DatabaseUnavailable("no connection within the timeout")
    # A lost connection, a server shutting down or refusing connections;
    # or a statement PostgreSQL cancelled at STATEMENT_TIMEOUT_SECONDS.
    if isinstance(exc, psycopg.errors.QueryCanceled):
        metrics.refused("statement_timeout")
    return DatabaseUnavailable(type(exc).__name__)


def _cause(exc: psycopg.OperationalError) -> BaseException | None:
    # The pool's timeout says nothing more than the answer does.
    return None if isinstance(exc, PoolTimeout) else exc
