"""A writer's cursor with the journal fed by logical decoding (JOURNAL=decoded;
docs/design/journal-decoding.md, "The writer's cursor").

The entry of a write is not there at its commit: the sequencer journals it
later. A write's statement returns its xid, the sequencer's batch NOTIFY
names each transaction's xid and last position, and the process's hub (its
one LISTEN) hands them to Cursors, which resolves the writer waiting for
that xid. The wait holds no pooled connection. A NOTIFY can come before its
writer asks (the writer's coroutine had not run yet, or the xid is another
process's): those are kept, the newest KEEP of them. A NOTIFY can also go
missing (the listener reconnecting): every CHECK_SECONDS a waiter reads
the journal itself, and past the deadline the reply is a clear
DATABASE_UNAVAILABLE (the sequencer is not running), never a hang."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from psycopg import AsyncConnection

from graphql_todos.core import metrics
from graphql_todos.core.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

# xids heard before their writer asked (every process's, as the NOTIFY
# reaches them all): seconds of writes at the rates measured (some 1,000/s,
# docs/bench-ab-journal.md), where a writer asks within milliseconds; about
# 2 MB. One evicted still gets its answer, by the journal read.
KEEP = 10_000
# How long a waiter trusts the NOTIFY alone before it reads the journal.
CHECK_SECONDS = 1.0


# A write's last entry, when its NOTIFY went missing: by the sequencer's xid
# column, past the highest position heard before the write (the primary
# key's range, not a scan of the journal).
SELECT_POSITION = """
SELECT max(position) FROM todo_changes WHERE position > %(floor)s AND xid = %(xid)s::xid8
"""


async def journaled_position(conn: AsyncConnection[Any], xid: str, floor: int) -> int | None:
    """The position of the last entry of transaction `xid` after `floor` (None: not journaled yet)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_POSITION, {"xid": xid, "floor": floor})
        row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


class JournalLate(DatabaseUnavailable):
    """The change committed, but no entry of it came in time."""


class Cursors:
    """The positions the sequencer told of, by writer's xid (one per process)."""

    def __init__(self, timeout_seconds: float, keep: int = KEEP) -> None:
        self.timeout_seconds = timeout_seconds
        self.keep = keep
        # The highest position heard: every entry after it is of a commit
        # that had not been journaled when it was heard.
        self.through = 0
        # Requests waiting for an entry now (writers and retries).
        self.waiters = 0
        self._waiting: dict[str, asyncio.Future[int]] = {}
        self._heard: OrderedDict[str, int] = OrderedDict()
        # Set (and replaced) at each batch heard: waiters for anything else wake to look again.
        self._batch = asyncio.Event()

    def heard(self, xids: Iterable[tuple[str, int]], through: int) -> None:
        """A batch NOTIFY's [xid, last position] pairs and its last position."""
        for xid, position in xids:
            waiter = self._waiting.pop(xid, None)
            if waiter is None:
                self._heard[xid] = position
                if len(self._heard) > self.keep:
                    self._heard.popitem(last=False)
            elif not waiter.done():
                waiter.set_result(position)
        self.through = max(self.through, through)
        self._batch.set()
        self._batch = asyncio.Event()

    async def position(self, xid: str, journaled: Callable[[], Awaitable[int | None]]) -> int:
        """The position of the last entry of transaction `xid`, once heard;
        `journaled` reads it from the journal (None: not there yet), for a
        NOTIFY that went missing. JournalLate past the timeout."""
        if (position := self._heard.pop(xid, None)) is not None:
            return position
        waiter = self._waiting[xid] = asyncio.get_running_loop().create_future()
        try:
            return await self._until(journaled, waiter)
        finally:
            if self._waiting.get(xid) is waiter:
                del self._waiting[xid]

    async def until(self, journaled: Callable[[], Awaitable[T | None]]) -> T:
        """What `journaled` reads once it reads something: read now, then
        after each batch heard (or CHECK_SECONDS); JournalLate past the timeout."""
        if (found := await journaled()) is not None:
            return found
        return await self._until(journaled, None)

    async def _until(self, journaled: Callable[[], Awaitable[T | None]], waiter: asyncio.Future[T] | None) -> T:
        self.waiters += 1
        started = asyncio.get_running_loop().time()
        try:
            found = await self._wait(journaled, waiter)
        finally:
            self.waiters -= 1
        metrics.CURSOR_WAIT.observe(asyncio.get_running_loop().time() - started)
        return found

    async def _wait(self, journaled: Callable[[], Awaitable[T | None]], waiter: asyncio.Future[T] | None) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds
        while (left := deadline - loop.time()) > 0:
            news = asyncio.ensure_future(self._batch.wait()) if waiter is None else waiter
            try:
                async with asyncio.timeout(min(left, CHECK_SECONDS)):
                    if waiter is not None:
                        return await asyncio.shield(waiter)
                    await news
            except TimeoutError:
                pass
            finally:
                if waiter is None:
                    news.cancel()
            if (found := await journaled()) is not None:
                return found
        logger.warning("no journal entry in %s s: is the sequencer running?", self.timeout_seconds)
        metrics.JOURNAL_LATE.inc()
        raise JournalLate(
            f"the change was made, but the journal has not recorded it in {self.timeout_seconds:g} s;"
            " a numbered mutation sent again is answered once it has"
        )
