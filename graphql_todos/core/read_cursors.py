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
The wait holds no pooled connection; past the deadline the read is a clear
DATABASE_UNAVAILABLE (the sequencer is not running), never a hang.

The same wait, with no cursor to settle, is `journaled`: a reader's view at
a cursor (Journal.view_at) reads the person's memberships, then waits for
it, so that the journal holds the entries of every membership change that
read saw (docs/design/people.md section 2)."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.database import connection
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.journal import Coalesced
from graphql_todos.core.journal_mode import slot_name

# A commit after the reads that asked for it: the LSN the sequencer's
# confirmation must pass (the message is skipped: it is no entry).
MARK = "SELECT pg_logical_emit_message(true, 'graphql_todos_read', '')::text"
# The read's cursor once the slot is confirmed past the mark (NULL: not
# yet). Entries up to `seen` were visible to the read already; the ones
# after it that are not are commits after the read.
CURSOR = """
SELECT CASE WHEN (SELECT confirmed_flush_lsn > %(mark)s::pg_lsn FROM pg_replication_slots WHERE slot_name = %(slot)s)
THEN coalesce(
    (SELECT min(position) - 1 FROM todo_changes
     WHERE position > %(seen)s AND NOT pg_visible_in_snapshot(xid, %(taken)s::pg_snapshot)),
    (SELECT coalesce(max(position), 0) FROM todo_changes)
) END
"""
# Whether the slot is confirmed past the mark: everything committed before it is journaled.
PASSED = """
SELECT CASE WHEN (SELECT confirmed_flush_lsn > %(mark)s::pg_lsn FROM pg_replication_slots WHERE slot_name = %(slot)s)
THEN true END
"""
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

    async def _read_mark(self) -> tuple[str, str]:
        async with connection(self.pool) as conn:
            cursor = await conn.execute(MARK)
            row = await cursor.fetchone()
            assert row is not None
            return row[0], slot_name(conn.info.dbname)

    async def cursor(self, seen: int, taken: str) -> int:
        """The cursor of a read whose snapshot `taken` saw the journal up to `seen`."""
        found = await self._settled(CURSOR, {"seen": seen, "taken": taken}, "this read")
        return int(found)

    async def journaled(self) -> None:
        """Once everything committed before the call is journaled."""
        await self._settled(PASSED, {}, "the memberships read")

    async def _settled(self, statement: str, params: dict[str, Any], what: str) -> Any:
        """What `statement` reads once the slot is confirmed past a mark
        committed after the call (it reads NULL until then)."""
        mark, slot = await self._mark()
        params = {**params, "mark": mark, "slot": slot}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds
        pause = FIRST_PAUSE
        while loop.time() + pause < deadline:
            await asyncio.sleep(pause)
            async with connection(self.pool) as conn:
                cursor = await conn.execute(statement, params)
                row = await cursor.fetchone()
            if row is not None and row[0] is not None:
                return row[0]
            pause = min(pause * 2, LAST_PAUSE)
        raise ReadLate(
            f"the journal has not caught up with {what} in {self.timeout_seconds:g} s: is the sequencer running?"
        )
