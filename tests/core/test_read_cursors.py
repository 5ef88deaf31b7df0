"""core/read_cursors.py: a decoded read's cursor, settled once the journal
holds every commit the read saw and none it did not."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.read_cursors import ReadCursors
from graphql_todos.core.repository import SELECT_POSITION, TAKEN
from tests.decoded import Journaled, journaled

DECODED = pytest.mark.parametrize("journaled_db", ["decoded"], indirect=True)


def _cursor(dsn: str, seen: int, taken: str) -> int:
    async def run() -> int:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            return await ReadCursors(pool, 10.0).cursor(seen, taken)

    return asyncio.run(run())


@DECODED
def test_the_cursor_takes_a_commit_the_read_saw_and_not_one_after_it(journaled_db: Journaled) -> None:
    """A row committed before the read, journaled after it, is below the
    cursor; a row committed after the read (journaled before the cursor is
    settled) is above it: sent once by todoChanges(after: cursor), not lost."""
    with (
        psycopg.connect(journaled_db.dsn, autocommit=True) as conn,
        psycopg.connect(journaled_db.dsn, autocommit=True) as holder,
    ):
        conn.execute("INSERT INTO todos (title) VALUES ('journaled')")
        journaled(conn)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE todo_changes IN SHARE MODE")  # the sequencer's INSERT waits
        conn.execute("INSERT INTO todos (title) VALUES ('seen')")
        seen, taken = conn.execute(f"SELECT ({SELECT_POSITION}), {TAKEN}").fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO todos (title) VALUES ('after the read')")
        holder.execute("COMMIT")
        journaled(conn)
        positions: dict[str, int] = dict(conn.execute("SELECT todo->>'title', position FROM todo_changes").fetchall())
    assert positions["seen"] == seen + 1
    assert _cursor(journaled_db.dsn, seen, taken) == positions["seen"] < positions["after the read"]
