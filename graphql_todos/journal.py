"""The change journal as the hub and the live streams read it: where it
stands, what happened after a cursor, and whether the database answers."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from . import repository
from .errors import BadUserInput
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
        async with self.pool.connection() as conn:
            return await repository.journal_position(conn)

    async def check_cursor(self, cursor: str) -> int:
        """The position a client cursor names, refusing one not yet written."""
        position = parse_cursor(cursor)
        if position > await self.position():
            raise BadUserInput("after", f"is not a known cursor: {cursor!r}")
        return position

    async def changes_between(self, after: int, upto: int, limit: int) -> list[Change]:
        """Entries with after < position <= upto, oldest first, at most limit."""
        async with self.pool.connection() as conn:
            return await repository.changes_between(conn, after, upto, limit)

    async def ping(self, timeout: float) -> None:
        async with self.pool.connection(timeout=timeout) as conn:
            await repository.ping(conn)
