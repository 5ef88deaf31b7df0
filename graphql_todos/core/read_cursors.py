"""A read's cursor with the journal fed by logical decoding (JOURNAL=decoded;
docs/reliability.md, section 12).

In trigger mode a read's cursor is the newest position its snapshot sees:
positions are taken under the commit-order lock, so a commit is visible
only with its entry. Decoded, the sequencer journals a commit after it, so
a read can see a row whose entry is not there yet, and the newest position
is below that entry: `todoChanges(after: cursor)` would send the change
again. So the read also returns its snapshot, and its cursor is settled
after it: a transactional message committed after the read (shared by the
reads that asked before it began, as journal.Coalesced) is confirmed by the
sequencer once everything committed before it is journaled, every commit
the read saw among it; the cursor is then the entry before the first one
the read's snapshot cannot see (a commit after the read), else the newest.
The wait holds no pooled connection: one poller per process (per
ReadCursors) reads the slot's confirmed LSN once a pause, on one pooled
connection, and wakes every waiter whose mark it passed, so waiters many
(streams opening while the sequencer is stuck) take no more of the pool
than one; past the deadline the read is a clear DATABASE_UNAVAILABLE (the
sequencer is not running), never a hang.

The same wait, with no cursor to settle, is `journaled`: a reader's view at
a cursor (Journal.view_at) reads the person's memberships, then waits for
it, so that the journal holds the entries of every membership change that
read saw (docs/design/people.md section 2)."""

from __future__ import annotations

import asyncio
import time

from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.database import connection, left
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.journal import Coalesced
from graphql_todos.core.journal_mode import slot_name

# A commit after the reads that asked for it: the LSN the sequencer's
# confirmation must pass (the message is skipped: it is no entry).
MARK = "SELECT pg_logical_emit_message(true, 'graphql_todos_read', '')::text"
# The read's cursor, once the slot is confirmed past the mark. Entries up
# to `seen` were visible to the read already; the ones after it that are
# not are commits after the read.
CURSOR = """
SELECT coalesce(
    (SELECT min(position) - 1 FROM todo_changes
     WHERE position > %(seen)s AND NOT pg_visible_in_snapshot(xid, %(taken)s::pg_snapshot)),
    (SELECT coalesce(max(position), 0) FROM todo_changes)
)
"""
# How far the sequencer has confirmed: everything committed before it is journaled.
CONFIRMED = "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %(slot)s"
# The pauses between looks at the slot: the sequencer's round (walsender,
# batch, confirmation) takes about a millisecond when idle, more under load.
FIRST_PAUSE, LAST_PAUSE = 0.001, 0.02


class ReadLate(DatabaseUnavailable):
    """The journal did not catch up with a read in time."""


class ReadCursors:
    """The cursors of a process's decoded reads (one per service)."""

    def __init__(self, pool: AsyncConnectionPool, timeout_seconds: float) -> None:
        self.pool = pool
        self.timeout_seconds = timeout_seconds
        self._mark = Coalesced(self._read_mark)
        # The calls waiting for the slot to pass their marks, and the one poller looking for them.
        self._waiting: list[_Waiting] = []
        self._poller: asyncio.Task[None] | None = None
        self._pause = FIRST_PAUSE

    async def _read_mark(self) -> tuple[str, str]:
        async with connection(self.pool) as conn:
            cursor = await conn.execute(MARK)
            row = await cursor.fetchone()
            assert row is not None
            return row[0], slot_name(conn.info.dbname)

    async def cursor(self, seen: int, taken: str) -> int:
        """The cursor of a read whose snapshot `taken` saw the journal up to `seen`."""
        deadline = await self._passed("this read")
        async with connection(self.pool, left(deadline)) as conn:
            cursor = await conn.execute(CURSOR, {"seen": seen, "taken": taken})
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def journaled(self) -> None:
        """Once everything committed before the call is journaled."""
        await self._passed("the memberships read")

    async def _passed(self, what: str) -> float:
        """Once the slot is confirmed past a mark committed after the call,
        its deadline (time.monotonic()); ReadLate past it."""
        deadline = time.monotonic() + self.timeout_seconds
        mark, slot = await self._mark()
        loop = asyncio.get_running_loop()
        waiting = _Waiting(_lsn(mark), loop.create_future())
        late = loop.call_later(deadline - time.monotonic(), _late, waiting.woken, ReadLate(
            f"the journal has not caught up with {what} in {self.timeout_seconds:g} s: is the sequencer running?"
        ))
        self._waiting.append(waiting)
        # A new mark: looked for soon, whatever the pause the poller came to.
        self._pause = FIRST_PAUSE
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(slot))
        try:
            await waiting.woken
        finally:
            late.cancel()
        return deadline

    async def _poll(self, slot: str) -> None:
        """While calls wait: the slot's confirmed LSN read once a pause, and
        every waiter whose mark it passed woken. A look that fails fails
        the waiters it was for with what it raised, as each one's own look
        would."""
        try:
            while self._waiting:
                await asyncio.sleep(self._pause)
                self._pause = min(self._pause * 2, LAST_PAUSE)
                self._waiting = [waiting for waiting in self._waiting if not waiting.woken.done()]
                if not self._waiting:
                    break
                # A copy: those who come during the look join self._waiting, not it.
                looking = self._waiting.copy()
                try:
                    async with connection(self.pool) as conn:
                        cursor = await conn.execute(CONFIRMED, {"slot": slot})
                        row = await cursor.fetchone()
                except Exception as exc:  # noqa: BLE001 - each waiter gets it
                    # Those who came during the look wait on for the next.
                    for waiting in looking:
                        if not waiting.woken.done():
                            waiting.woken.set_exception(exc)
                    self._waiting = [waiting for waiting in self._waiting if not waiting.woken.done()]
                    continue
                if row is None or row[0] is None:
                    continue  # no slot: nothing is journaled (the waiters end at their deadlines)
                confirmed = _lsn(row[0])
                for waiting in self._waiting:
                    if waiting.mark < confirmed and not waiting.woken.done():
                        waiting.woken.set_result(None)
        finally:
            self._poller = None


class _Waiting:
    """A call waiting for the slot to be confirmed past its mark."""

    __slots__ = ("mark", "woken")

    def __init__(self, mark: int, woken: asyncio.Future[None]) -> None:
        self.mark = mark
        self.woken = woken


def _late(woken: asyncio.Future[None], exc: ReadLate) -> None:
    if not woken.done():
        woken.set_exception(exc)


def _lsn(text: str) -> int:
    """A pg_lsn's text ('16/B374D848') as the number it stands for."""
    high, _, low = text.partition("/")
    return int(high, 16) << 32 | int(low, 16)
