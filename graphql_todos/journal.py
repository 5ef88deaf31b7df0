"""The change journal as the hub and the live streams read it: where it
stands, what happened after a cursor, and whether the database answers."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from . import repository
from .database import connection
from .errors import BadUserInput, CursorExpired
from .models import Change


def parse_cursor(value: str) -> int:
    """Cursors are decimal journal positions; "0" is the very beginning."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise BadUserInput("after", f"is not a known cursor: {value!r}")
    return int(value)


class Journal:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def position(self) -> int:
        """The newest committed position."""
        async with connection(self.pool) as conn:
            return await repository.journal_position(conn)

    async def bounds(self) -> tuple[int, int]:
        """(pruned through, newest): the cursors from the first to the second can resume."""
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

    async def changes_between(self, after: int, upto: int, limit: int) -> list[Change]:
        """Entries with after < position <= upto, oldest first, at most limit;
        CursorExpired when some of them were pruned."""
        async with connection(self.pool) as conn:
            changes, through = await repository.changes_between(conn, after, upto, limit)
        if after < through:
            raise CursorExpired(after, through)
        return changes

    async def prune(self, below: int, keep_seconds: float, keep_rows: int, limit: int) -> int:
        """One batch of retention (see repository.PRUNE_JOURNAL); how many went."""
        async with connection(self.pool) as conn:
            return await repository.prune_journal(conn, below, keep_seconds, keep_rows, limit)

    async def ping(self, timeout: float) -> None:
        async with connection(self.pool, timeout) as conn:
            await repository.ping(conn)
