"""Group commit done by the app (trigger mode): the writes waiting at the
same moment, numbered or not, run as one transaction on one connection, pipelined in
one round trip, with one commit (one WAL flush, one hold of the
commit-order lock) for them all. Each is still its own statement with its
own journal entries and cursor (writes.write_together), and each caller is
answered only after that commit. A batch that fails is rolled back whole,
and its writes run alone, as without batches, each for its own answer.
A write's wait, in the queue and for its batch's connection, ends at the
deadline its request took as it first asked for the database (the pool's
timeout from then: its role check's wait for a connection counts against
it): DatabaseUnavailable, the write unsent (docs/reliability.md, section 2)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import cast

import psycopg
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core import writes
from graphql_todos.core.database import StatementConnection, connection, no_connection_in_time
from graphql_todos.core.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

# Batches under way at once. One: a write arriving while a batch runs joins
# the next, which starts as that one ends, with everything queued by then
# (a lone write goes at once, as a batch of one). Two were measured
# (docs/bench-ab-writes.md): a second batch waits for the commit-order lock
# the first holds.
SLOTS = 1


@dataclass(slots=True)
class _Queued:
    write: writes.Together
    answer: asyncio.Future[writes.Written | None]
    # Its request's (time.monotonic()): past it, the write is not sent.
    deadline: float


class WriteBatches:
    """The queue of writes and the batches that run them."""

    def __init__(self, pool: AsyncConnectionPool, slots: int = SLOTS) -> None:
        self.pool = pool
        self.slots = slots
        self._queue: list[_Queued] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Armed while writes wait behind a batch under way, for the earliest deadline among them.
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf

    def write(self, write: writes.Together, deadline: float) -> asyncio.Future[writes.Written | None]:
        """The write queued: its answer, the write's rows and cursor once its
        batch has committed; None: its batch was rolled back, so it is run
        alone by the caller. DatabaseUnavailable when the batch's commit may
        or may not have happened (a lost connection), as a lone write's would
        be. `deadline` (time.monotonic()) ends its waits. The future itself,
        awaited by the caller: no coroutine of its own between the caller and
        the batch, made and resumed at every write."""
        answer: asyncio.Future[writes.Written | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(write, answer, deadline))
        if self._running < self.slots:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif deadline < self._expiry_at:
            # Behind a batch under way, which may run long: answered at its deadline.
            self._arm(deadline)
        return answer

    def _arm(self, at: float) -> None:
        """The queue's one timer set for `at` (time.monotonic())."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = at
        self._expiry = asyncio.get_running_loop().call_later(at - time.monotonic(), self._expire)

    def _expire(self) -> None:
        """The queued writes whose deadline has come answered
        DatabaseUnavailable, unsent; armed again for the earliest left."""
        self._expiry, self._expiry_at = None, math.inf
        # Not in deadline order: a write whose role check waited came with
        # less of its time left than one queued before it.
        now = time.monotonic()
        late = [queued for queued in self._queue if queued.deadline <= now]
        if late:
            _answer(late, no_connection_in_time())
            self._queue = [queued for queued in self._queue if queued.deadline > now]
        if self._queue:
            self._arm(min(queued.deadline for queued in self._queue))

    async def _drain(self) -> None:
        """Run batches while writes are queued: each takes all of them."""
        try:
            while self._queue:
                # A caller gone (cancelled) or answered at its deadline (_expire)
                # before its batch started: its write is not run.
                batch = [queued for queued in self._queue if not queued.answer.done()]
                self._queue = []
                if batch:
                    await self._run(batch)
        finally:
            self._running -= 1

    async def _run(self, batch: list[_Queued]) -> None:
        # The wait for a connection ends at the earliest deadline in the
        # batch, not a whole timeout later: a write queued behind a batch
        # that waits (the database away, every connection busy) is answered
        # within its own.
        earliest = min(queued.deadline for queued in batch)
        taken = False
        try:
            async with connection(self.pool, earliest - time.monotonic()) as conn:
                taken = True
                try:
                    # The pool's connections are StatementConnections (GatedPool's).
                    done: list[writes.Written] | list[None] = await writes.write_together(
                        cast(StatementConnection, conn), [queued.write for queued in batch]
                    )
                except psycopg.Error as exc:
                    if conn.broken or conn.closed:
                        raise  # the connection lost: the commit may have happened
                    # Refused by the server (or a value psycopg could not send),
                    # on a connection still alive: rolled back, nothing committed.
                    if len(batch) > 1:
                        logger.debug("a batch of %d writes rolled back (%r): each runs alone", len(batch), exc)
                    done = [None] * len(batch)
        except Exception as exc:  # noqa: BLE001 - each waiting caller gets it
            if not taken and isinstance(exc, DatabaseUnavailable) and (now := time.monotonic()) >= earliest:
                # No connection by the earliest deadline: the writes whose
                # wait is over are answered; the others, sent nowhere, wait
                # on in the next batch, each until its own.
                self._queue[:0] = [queued for queued in batch if queued.deadline > now]
                batch = [queued for queued in batch if queued.deadline <= now]
            _answer(batch, exc)
            return
        except BaseException:
            # Cancelled (the loop ending): its callers wait no more.
            for queued in batch:
                queued.answer.cancel()
            raise
        for queued, result in zip(batch, done, strict=True):
            if not queued.answer.done():
                queued.answer.set_result(result)


def _answer(batch: list[_Queued], exc: Exception) -> None:
    """Each waiting caller in `batch` answered `exc`."""
    for queued in batch:
        if not queued.answer.done():
            queued.answer.set_exception(exc)
