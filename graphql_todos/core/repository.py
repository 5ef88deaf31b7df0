"""SQL for the todos table and its journal: small functions taking a connection.

Nothing here commits or validates; the service owns transactions and rules.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import Diagnostic
from psycopg.rows import class_row, dict_row

from graphql_todos.core.errors import TodoExists
from graphql_todos.core.models import Change, Op, Todo
from graphql_todos.core.mutations import Key
from graphql_todos.core.verdicts import key_params

TODO_COLUMNS = "id, title, completed, created_time, updated_time"


def _qualified(table: str) -> str:
    """TODO_COLUMNS of `table`, where a statement reads another table too."""
    return ", ".join(f"{table}.{column}" for column in TODO_COLUMNS.split(", "))

# A list's rows: one statement for the whole list and one for a filter, not
# one with `%(completed)s IS NULL OR completed = ...`. psycopg prepares a
# statement that recurs, and PostgreSQL then keeps one generic plan for it
# whatever the table's size. Not knowing which rows the filter keeps, the
# generic plan made while the table is small (and never analyzed) is a scan
# of every row and a sort, and it stays as the table grows: a page cost more
# and more (issue 16, item 9). The whole list's generic plan walks the index
# at any size; a filtered list is planned with its values each time (see
# prepared), as a generic plan cannot know how many rows the filter keeps.
_PAGE = "ORDER BY created_time, id LIMIT %(limit)s OFFSET %(offset)s"
SELECT_TODOS = {
    False: f"SELECT {TODO_COLUMNS} FROM todos {_PAGE}",
    True: f"SELECT {TODO_COLUMNS} FROM todos WHERE completed = %(completed)s {_PAGE}",
}


def prepared(completed: bool | None) -> bool | None:
    """psycopg's `prepare` for a list read: as it decides (None), or never
    for a filtered one (False)."""
    return None if completed is None else False

SELECT_TODO = f"SELECT {TODO_COLUMNS} FROM todos WHERE id = %(id)s"
INSERT_TODO = f"""
INSERT INTO todos (id, title, completed) VALUES (coalesce(%(id)s, gen_random_uuid()), %(title)s, %(completed)s)
RETURNING {TODO_COLUMNS}
"""
UPDATE_TODO = f"""
UPDATE todos SET title = coalesce(%(title)s, title),
                 completed = coalesce(%(completed)s, completed)
WHERE id = %(id)s
RETURNING {TODO_COLUMNS}
"""
DELETE_TODO = f"DELETE FROM todos WHERE id = %(id)s RETURNING {TODO_COLUMNS}"
# ORDER BY inside the CTE is not guaranteed to survive RETURNING; sort after.
# A data-modifying CTE runs to completion whatever the LIMIT reads of it:
# every row changes, the first `limit` come back.
SET_ALL_COMPLETED = f"""
WITH changed AS (
    UPDATE todos SET completed = %(completed)s
    WHERE completed IS DISTINCT FROM %(completed)s
    RETURNING {TODO_COLUMNS}
)
SELECT * FROM changed ORDER BY created_time, id LIMIT %(limit)s
"""
DELETE_COMPLETED = f"""
WITH deleted AS (DELETE FROM todos WHERE completed RETURNING {TODO_COLUMNS})
SELECT * FROM deleted ORDER BY created_time, id LIMIT %(limit)s
"""
# A numbered mutation: the change (reading `acting`, so the key is set
# before its rows are written) and its verdict in one statement, so they
# commit or roll back together; the key set transaction-locally marks the
# journal entries the change makes at commit. A key used before meets the
# primary key (a concurrent duplicate waits for the first to commit) and
# the whole statement rolls back. The rows come back as the journal holds
# them (to_jsonb), so a retry answers from the same text. `single`: the
# verdict is written only when the change found its row, else the service
# records a rejection.
def _numbered(change: str, single: bool) -> str:
    recorded = (
        "SELECT %(principal)s, %(client)s, %(seq)s, %(fingerprint)s, 'applied' FROM changed HAVING count(*) > 0"
        if single
        else "VALUES (%(principal)s, %(client)s, %(seq)s, %(fingerprint)s, 'applied')"
    )
    return f"""
WITH acting AS (SELECT set_config('app.mutation', %(key)s, true)),
changed AS ({change}),
recorded AS (INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict) {recorded})
SELECT to_jsonb(changed) AS todo FROM changed ORDER BY created_time, id LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class Write:
    """A mutation's statement, unnumbered (rows as columns) and numbered
    (_numbered); `single`: it names one row by id."""

    plain: str
    numbered: str
    single: bool


INSERT_WRITE = Write(
    INSERT_TODO,
    _numbered(
        "INSERT INTO todos (id, title, completed) SELECT coalesce(%(id)s, gen_random_uuid()), %(title)s, %(completed)s"
        f" FROM acting RETURNING {TODO_COLUMNS}",
        True,
    ),
    True,
)
UPDATE_WRITE = Write(
    UPDATE_TODO,
    _numbered(
        "UPDATE todos SET title = coalesce(%(title)s, title), completed = coalesce(%(completed)s, completed)"
        f" FROM acting WHERE id = %(id)s RETURNING {_qualified('todos')}",
        True,
    ),
    True,
)
DELETE_WRITE = Write(
    DELETE_TODO, _numbered(f"DELETE FROM todos USING acting WHERE id = %(id)s RETURNING {_qualified('todos')}", True), True
)
SET_ALL_COMPLETED_WRITE = Write(
    SET_ALL_COMPLETED,
    _numbered(
        "UPDATE todos SET completed = %(completed)s FROM acting WHERE completed IS DISTINCT FROM %(completed)s"
        f" RETURNING {_qualified('todos')}",
        False,
    ),
    False,
)
DELETE_COMPLETED_WRITE = Write(
    DELETE_COMPLETED,
    _numbered(f"DELETE FROM todos USING acting WHERE completed RETURNING {_qualified('todos')}", False),
    False,
)

# One statement sees one snapshot: the rows and the journal position they
# reflect come back together, with no transaction around them. An empty list
# still yields one row (all NULL but the position).
SELECT_SNAPSHOT = {
    filtered: f"""
WITH now AS (SELECT coalesce(max(position), 0) AS position FROM todo_changes)
SELECT now.position, t.* FROM now LEFT JOIN LATERAL ({rows}) t ON true
ORDER BY t.created_time, t.id
"""
    for filtered, rows in SELECT_TODOS.items()
}
SELECT_TODO_SNAPSHOT = f"""
WITH now AS (SELECT coalesce(max(position), 0) AS position FROM todo_changes)
SELECT now.position, t.* FROM now LEFT JOIN LATERAL (
    SELECT {TODO_COLUMNS} FROM todos WHERE id = %(id)s
) t ON true
"""
SELECT_POSITION = "SELECT coalesce(max(position), 0) AS position FROM todo_changes"
# The newest entry, never pruned: where the journal stands, and when that
# entry committed (journal.Mark). No row: the journal is empty.
SELECT_NEWEST = "SELECT position, changed_at FROM todo_changes ORDER BY position DESC LIMIT 1"
# How far the journal was pruned comes back with every row (and alone, with
# no row, when nothing follows `after`): one snapshot, so a prune between
# the two cannot pass unnoticed.
SELECT_CHANGES = """
SELECT p.through, c.position, c.op, c.todo, c.changed_at FROM todo_changes_pruned p LEFT JOIN LATERAL (
    SELECT position, op, todo, changed_at FROM todo_changes
    WHERE position > %(after)s AND position <= %(upto)s
    ORDER BY position
    LIMIT %(limit)s
) c ON true
ORDER BY c.position
"""
SELECT_BOUNDS = """
SELECT (SELECT through FROM todo_changes_pruned) AS through,
       (SELECT coalesce(max(position), 0) FROM todo_changes) AS newest
"""
# One batch of retention, in one statement (its own transaction): the oldest
# `limit` entries below `below`, as far as each is too old or beyond the
# newest `keep_rows`. Only a prefix goes (bool_and runs in position order),
# so the journal never has holes, and the newest entry always stays: it is
# what "now" is. The advisory lock, held until this statement commits, lets
# one process prune at a time; the others skip their turn.
PRUNE_JOURNAL = """
WITH newest AS (
    SELECT coalesce(max(position), 0) AS position FROM todo_changes
), batch AS (
    SELECT c.position, c.changed_at FROM todo_changes c, newest
    WHERE c.position < least(%(below)s, newest.position)
      AND (SELECT pg_try_advisory_xact_lock(7305202418))
    ORDER BY c.position
    LIMIT %(limit)s
), oldest AS (
    SELECT b.position,
           bool_and(b.position <= newest.position - %(keep_rows)s
                    OR b.changed_at < now() - %(keep_seconds)s * interval '1 second')
               OVER (ORDER BY b.position) AS expired
    FROM batch b, newest
), pruned AS (
    DELETE FROM todo_changes WHERE position IN (SELECT position FROM oldest WHERE expired)
    RETURNING position
)
UPDATE todo_changes_pruned SET through = greatest(through, (SELECT max(position) FROM pruned))
WHERE EXISTS (SELECT FROM pruned)
RETURNING (SELECT count(*) FROM pruned) AS count
"""


async def list_todos(
    conn: AsyncConnection[Any], completed: bool | None, limit: int, offset: int
) -> list[Todo]:
    """`limit` rows of the (filtered) list from `offset` on, in list order."""
    params = {"completed": completed, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=class_row(Todo)) as cur:
        await cur.execute(SELECT_TODOS[completed is not None], params, prepare=prepared(completed))
        return await cur.fetchall()


async def get_todo(conn: AsyncConnection[Any], todo_id: uuid.UUID) -> Todo | None:
    async with conn.cursor(row_factory=class_row(Todo)) as cur:
        await cur.execute(SELECT_TODO, {"id": todo_id})
        return await cur.fetchone()


async def snapshot(
    conn: AsyncConnection[Any], completed: bool | None, limit: int, offset: int
) -> tuple[list[Todo], int]:
    """`limit` rows of the (filtered) list from `offset` on, and the journal
    position they reflect."""
    params = {"completed": completed, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_SNAPSHOT[completed is not None], params, prepare=prepared(completed))
        rows = await cur.fetchall()
    return [_todo(r) for r in rows if r["id"] is not None], int(rows[0]["position"])


async def todo_snapshot(conn: AsyncConnection[Any], todo_id: uuid.UUID) -> tuple[Todo | None, int]:
    """One row (None when absent) and the journal position it reflects."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_TODO_SNAPSHOT, {"id": todo_id})
        row = await cur.fetchone()
    assert row is not None
    return (_todo(row) if row["id"] is not None else None), int(row["position"])


def _todo(row: dict[str, Any]) -> Todo:
    return Todo(row["id"], row["title"], row["completed"], row["created_time"], row["updated_time"])


async def ping(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT 1")


async def journal_newest(conn: AsyncConnection[Any]) -> tuple[int, datetime | None]:
    """The newest committed position visible to this transaction, and when
    its entry committed (0 and None: no entry)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_NEWEST)
        row = await cur.fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


async def changes_between(
    conn: AsyncConnection[Any], after: int, upto: int, limit: int
) -> tuple[list[Change], int]:
    """Journal entries with after < position <= upto, oldest first, and the
    position the journal is pruned through (entries up to it are gone)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_CHANGES, {"after": after, "upto": upto, "limit": limit})
        rows = await cur.fetchall()
    changes = [
        Change(int(r["position"]), Op(r["op"]), Todo.from_json(r["todo"]), r["changed_at"])
        for r in rows
        if r["position"] is not None
    ]
    return changes, int(rows[0]["through"])


async def journal_bounds(conn: AsyncConnection[Any]) -> tuple[int, int]:
    """(pruned through, newest): the cursors from the first to the second can resume."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_BOUNDS)
        row = await cur.fetchone()
    assert row is not None
    return int(row["through"]), int(row["newest"])


async def prune_journal(
    conn: AsyncConnection[Any], below: int, keep_seconds: float, keep_rows: int, limit: int
) -> int:
    """Delete one batch of expired entries before position `below`; how many
    went (0 also when another process holds the pruning lock)."""
    params = {"below": below, "keep_seconds": keep_seconds, "keep_rows": keep_rows, "limit": limit}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(PRUNE_JOURNAL, params)
        row = await cur.fetchone()
    return 0 if row is None else int(row["count"])


# The journal trigger's NOTICE at commit (sql/006_mutations.sql).
CURSOR_SQLSTATE = "01GT0"
_CURSOR_PREFIX = "graphql-todos cursor "


class CursorNotices:
    """The highest position the journal trigger named, by NOTICE, while one
    statement ran on a connection (None: it journaled nothing)."""

    __slots__ = ("position",)

    def __init__(self) -> None:
        self.position: int | None = None

    def __call__(self, diagnostic: Diagnostic) -> None:
        message = diagnostic.message_primary or ""
        if diagnostic.sqlstate == CURSOR_SQLSTATE and message.startswith(_CURSOR_PREFIX):
            position = int(message.removeprefix(_CURSOR_PREFIX))
            if self.position is None or position > self.position:
                self.position = position


@contextlib.contextmanager
def cursor_notices(conn: AsyncConnection[Any]) -> Iterator[CursorNotices]:
    """What the statements run inside tell of their journal positions. psycopg
    calls the handler as each NOTICE arrives, before execute() returns."""
    notices = CursorNotices()
    conn.add_notice_handler(notices)
    try:
        yield notices
    finally:
        conn.remove_notice_handler(notices)


@contextlib.contextmanager
def _taken_id(params: dict[str, Any]) -> Iterator[None]:
    """A create naming an id a todo has: TodoExists, not a database error."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "todos_pkey":
            raise
        raise TodoExists(params["id"]) from None


async def write(conn: AsyncConnection[Any], statement: Write, params: dict[str, Any]) -> tuple[list[Todo], int | None]:
    """An unnumbered mutation: its rows, and the position of its newest
    journal entry (None: it journaled nothing)."""
    with cursor_notices(conn) as notices, _taken_id(params):
        async with conn.cursor(row_factory=class_row(Todo)) as cur:
            await cur.execute(statement.plain, params)
            rows = await cur.fetchall()
    return rows, notices.position


async def write_numbered(
    conn: AsyncConnection[Any], statement: Write, params: dict[str, Any], key: Key
) -> tuple[list[dict[str, Any]], int | None] | None:
    """A numbered mutation and its verdict: its rows (as the journal holds
    them) and its newest entry's position (None: it journaled nothing); None
    when the key was used before (nothing changed)."""
    with cursor_notices(conn) as notices, _taken_id(params):
        async with conn.cursor() as cur:
            try:
                await cur.execute(statement.numbered, {**params, **key_params(key), "key": key.text})
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "mutations_pkey":
                    raise
                return None
            rows = await cur.fetchall()
    return [row[0] for row in rows], notices.position
