"""The change journal as the hub and the live streams read it: where it
stands, what happened after a cursor, and whether the database answers.

The consistency rule, stated once here for every reader:

- A position is an entry's place in commit order: writers take positions
  under one lock as they commit (sql/002_journal_at_commit.sql), so once
  position p is visible, every change at or below p is too, and no later
  commit gets one below it. A cursor is a position written in decimal.
- A `Mark` (position, changed_at) is where the journal stands: every change
  committed before it was read is at or below its position. The commit time
  tells a position apart from the same number reached again in another
  history (a restore, then as many writes).
- `Journal.mark` is `Coalesced`: the mark a caller gets was read after it
  asked, never an older one, so it covers whatever the caller has seen
  committed (its own writes included).
- What was read after the journal stood at mark m stays right exactly while
  it stands at m, since every change advances it. So the response cache
  (edge/response_cache.py) serves an entry only at the mark it was kept
  under and keeps nothing read at a mark older than one already asked; the
  front door's whole replies follow the same marks (graphql/fast/path.py's
  `Reading` carries a request's one mark through the stack).
- Delivery is by position: `Hub.position` is the newest delivered to this
  process's subscribers, `Group.position` the newest a broadcast group fanned
  out, `Member.last` and a subscriber's `last` the newest each was sent. Each
  gets every change after its own position once, in commit order, and reads
  from the journal whatever lies between it and the position it joins at.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from psycopg_pool import AsyncConnectionPool

from graphql_todos.core import repository, verdicts
from graphql_todos.core.database import connection
from graphql_todos.core.errors import BadUserInput, CursorExpired
from graphql_todos.core.models import Chunk, Entry, Viewer
from graphql_todos.core.visibility import View

T = TypeVar("T")
K = TypeVar("K")


class Mark(NamedTuple):
    """Where the journal stands (the module's rule); its commit time tells
    histories apart (docs/reliability.md, section 8)."""

    position: int
    changed_at: datetime | None  # None: the journal is empty


def parse_cursor(value: str) -> int:
    """Cursors are decimal journal positions; "0" is the very beginning."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise BadUserInput("after", f"is not a known cursor: {value!r}")
    return int(value)


class Coalesced(Generic[T]):
    """One read for many callers, never an older one: a caller joins the next
    read to start (one under way may have missed a commit made before it asked).

    Each caller waits on a future of its own, set as the read ends: one that
    gives up (cancelled) gives up alone, with no `asyncio.shield` per caller
    (its outer future, two callbacks and a turn of the loop more before the
    caller wakes: every subscribe asks where the journal stands)."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        # The callers of the next read to start.
        self._next: list[asyncio.Future[T]] | None = None
        self._reader: asyncio.Task[None] | None = None

    def __call__(self) -> asyncio.Future[T]:
        """The value of the next read to start, to await."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        if self._next is None:
            self._next = [waiter]
        else:
            self._next.append(waiter)
        if self._reader is None:
            self._reader = loop.create_task(self._run())
        return waiter

    async def _run(self) -> None:
        batch: list[asyncio.Future[T]] = []
        try:
            while self._next is not None:
                # Let the callers this turn of the loop brings in (subscribes
                # read from many sockets at once) join: each read is a round
                # trip, and one started now would leave them the next.
                await asyncio.sleep(0)
                # The read starts as its batch closes (no await between).
                batch, self._next = self._next, None
                try:
                    value = await self._read()
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets it
                    for waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                            # Its caller may have gone: don't log it as lost.
                            waiter.exception()
                else:
                    for waiter in batch:
                        if not waiter.done():
                            waiter.set_result(value)
        finally:
            self._reader = None
            # Cancelled (the loop ending): neither the read's callers nor those who
            # asked during it wait any more; later ones read anew.
            for waiter in [*batch, *(self._next or ())]:
                waiter.cancel()
            self._next = None


class Gathered(Coalesced[T], Generic[K, T]):
    """Coalesced, for callers that each ask for a key: a read is of the keys
    its own callers asked for (one statement for the rows of every watcher
    starting while the last read was under way), and each finds its own in
    the result."""

    def __init__(self, read: Callable[[set[K]], Awaitable[T]]) -> None:
        super().__init__(self._read_asked)
        self._read_keys = read
        self._keys: set[K] = set()

    def _read_asked(self) -> Awaitable[T]:
        # Called as the batch closes: the keys asked from now on are the next read's.
        keys, self._keys = self._keys, set()
        return self._read_keys(keys)

    async def ask(self, key: K) -> T:
        self._keys.add(key)
        return await self()


class Journal:
    def __init__(self, pool: AsyncConnectionPool, decoded: bool = False) -> None:
        """`decoded`: Settings.journal is (a view at a cursor waits for the sequencer: Hub.barrier)."""
        self.pool = pool
        self.decoded = decoded
        # Subscribes and cached reads all ask where the journal stands: under
        # load, one query answers every request that arrived before it.
        self.mark = Coalesced(self._read_mark)
        # (pruned through, newest): the cursors from the first to the second
        # can resume. Coalesced too: every subscribe with a cursor asks.
        self.bounds = Coalesced(self._read_bounds)

    async def position(self) -> int:
        """The newest committed position (the mark's, one read for both)."""
        return (await self.mark()).position

    async def _read_mark(self) -> Mark:
        async with connection(self.pool) as conn:
            return Mark(*await repository.journal_newest(conn))

    async def _read_bounds(self) -> tuple[int, int]:
        async with connection(self.pool) as conn:
            return await repository.journal_bounds(conn)

    async def check_cursor(self, cursor: str) -> int:
        """The position a client cursor names, refusing one not yet written
        and one the journal was pruned past."""
        position = parse_cursor(cursor)
        through, newest = await self.bounds()
        if position > newest:
            raise BadUserInput("after", f"is not a known cursor: {cursor!r}")
        if position < through:
            raise CursorExpired(position, through)
        return position

    async def changes_between(
        self, after: int, upto: int, limit: int, parse: Callable[[str], list[Entry]]
    ) -> Chunk:
        """Entries with after < position <= upto, oldest first, at most limit;
        CursorExpired when some of them were pruned. `parse`: read from their
        text as notifications carrying each whole (the hub's parse, which
        core cannot import)."""
        async with connection(self.pool) as conn:
            chunk, through = await repository.notified_changes(conn, after, upto, limit, parse)
        if after < through:
            raise CursorExpired(after, through)
        return chunk

    async def view_at(self, viewer: Viewer, position: int, members: list[uuid.UUID] | None = None) -> View:
        """The viewer's view at journal position `position` (visibility.py);
        from `members` (decoded: members_now's, read before every membership
        change it saw was journaled), or read in the same snapshot as the
        journal (trigger mode, where the two commit together)."""
        if viewer.everything:
            return View(None)
        assert viewer.person is not None
        async with connection(self.pool) as conn:
            return View(viewer.person, await repository.lists_at(conn, viewer.person, position, members))

    async def members_now(self, person: uuid.UUID) -> list[uuid.UUID]:
        """The lists the person is a member of now (decoded: for view_at,
        once the journal holds every change this read saw)."""
        async with connection(self.pool) as conn:
            return await repository.members_now(conn, person)

    async def prune(self, below: int, keep_seconds: float, keep_rows: int, limit: int) -> int:
        """One batch of retention (see repository.PRUNE_JOURNAL); how many went."""
        async with connection(self.pool) as conn:
            return await repository.prune_journal(conn, below, keep_seconds, keep_rows, limit)

    async def prune_mutations(self, keep_seconds: float, limit: int) -> int:
        """One batch of verdict retention (see verdicts.PRUNE_MUTATIONS); how many went."""
        async with connection(self.pool) as conn:
            return await verdicts.prune_mutations(conn, keep_seconds, limit)

    async def ping(self, timeout: float) -> None:
        async with connection(self.pool, timeout) as conn:
            await repository.ping(conn)
