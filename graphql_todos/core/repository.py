"""SQL for the todos table and its journal: small functions taking a connection.

Nothing here commits or validates; the service owns transactions and rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from graphql_todos.core.database import statement_rows
from graphql_todos.core.models import Chunk, Entry, Todo, Viewer
from graphql_todos.core.verdicts import ENTRIES_ANSWER

TODO_COLUMNS = "id, title, completed, created_time, updated_time, list_id"

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
# Reads enforce visibility in SQL (people.md section 4): a person's
# statements carry the membership condition; the service principal's (ALL)
# are the unconditioned ones. Keyed by (filtered, every list).
def _member(person: str) -> str:
    """The condition that a row is in a list `person` (an SQL expression) is a member of."""
    return f"list_id IN (SELECT list_id FROM list_members WHERE person_id = {person})"


_MINE = _member("%(viewer)s")


def _todos_where(filtered: bool, everything: bool) -> str:
    conditions = ([] if everything else [_MINE]) + (["completed = %(completed)s"] if filtered else [])
    return f"WHERE {' AND '.join(conditions)} " if conditions else ""


SELECT_TODOS = {
    (filtered, everything): f"SELECT {TODO_COLUMNS} FROM todos {_todos_where(filtered, everything)}{_PAGE}"
    for filtered in (False, True)
    for everything in (False, True)
}


# One list's rows (GET /api/lists/<id>/todos/), if the viewer is a member
# (the service principal, viewer NULL, reads any list); keyed by filtered.
SELECT_LIST_TODOS = {
    filtered: f"""SELECT {TODO_COLUMNS} FROM todos WHERE list_id = %(list)s AND (%(viewer)s::uuid IS NULL OR EXISTS (
    SELECT FROM list_members m WHERE m.list_id = %(list)s AND m.person_id = %(viewer)s::uuid))
"""
    + ("AND completed = %(completed)s " if filtered else "")
    + _PAGE
    for filtered in (False, True)
}


def prepared(completed: bool | None) -> bool | None:
    """psycopg's `prepare` for a list read: as it decides (None), or never
    for a filtered one (False)."""
    return None if completed is None else False

SELECT_TODO = {
    everything: f"SELECT {TODO_COLUMNS} FROM todos WHERE id = %(id)s" + ("" if everything else f" AND {_MINE}")
    for everything in (False, True)
}

# A read's snapshot, as a column of its statement (JOURNAL=decoded: core/read_cursors.py).
TAKEN = "pg_current_snapshot()::text"


def _snapshot(rows: str, taken: bool, order: str = "ORDER BY t.created_time, t.id") -> str:
    return f"""
WITH now AS (SELECT coalesce(max(position), 0) AS position{f", {TAKEN} AS taken" if taken else ""} FROM todo_changes)
SELECT now.position{", now.taken" if taken else ""}, t.* FROM now LEFT JOIN LATERAL ({rows}) t ON true
{order}"""


# One statement sees one snapshot: the rows and the journal position they
# reflect come back together, with no transaction around them. An empty list
# still yields one row (all NULL but the position). Decoded (JOURNAL=decoded),
# also the snapshot itself, from which read_cursors settles the cursor.
SELECT_SNAPSHOT = {key: _snapshot(rows, False) for key, rows in SELECT_TODOS.items()}
SELECT_DECODED_SNAPSHOT = {key: _snapshot(rows, True) for key, rows in SELECT_TODOS.items()}
# Rows by id (those of them there are), for watchers starting together:
# each asked for by a person (NULL: the service principal, who sees every
# row), and found for that person if theirs to see. Keyed by whether every
# asker is the service principal (the persons' statement judges each pair).
_ASKED_ROWS = {
    True: f"SELECT NULL::uuid AS asker, {TODO_COLUMNS} FROM todos WHERE id = ANY(%(ids)s)",
    False: f"""SELECT asker, {TODO_COLUMNS} FROM unnest(%(ids)s::uuid[], %(askers)s::uuid[]) AS asked(asked_id, asker)
    JOIN todos ON id = asked_id
    WHERE asker IS NULL OR {_member("asker")}""",
}
# With the position (and, decoded, the read's snapshot), keyed by (decoded, every asker the principal).
SELECT_TODOS_SNAPSHOT = {
    (taken, everything): _snapshot(rows, taken, order="") for everything, rows in _ASKED_ROWS.items() for taken in (False, True)
}
SELECT_POSITION = "SELECT coalesce(max(position), 0) AS position FROM todo_changes"
# The newest entry, never pruned: where the journal stands, and when that
# entry committed (journal.Mark). No row: the journal is empty.
SELECT_NEWEST = "SELECT position, changed_at FROM todo_changes ORDER BY position DESC LIMIT 1"
# Journal entries as one JSON array of the bodies of notifications that
# carry each whole (the keys of sql/010's journal_write, every one of them,
# nulls too, and a detail as stored), for the hub to read as it reads its
# notifications (live/notifications.py). One text a batch: the entries'
# columns cost the app their loaders and a Todo from a dict each, and a text
# a row psycopg's work a row, against what their notifications cost; a row's
# json (row_to_json's keys) costs the backend less than json_build_object's
# (docs/bench-ab-rows.md, "The hub's read-back as cheap as a notification").
# How far the journal was pruned comes back with the entries: the two
# subqueries share the statement's snapshot, so a prune between them cannot
# pass unnoticed.
SELECT_NOTIFIED_CHANGES = """
SELECT (SELECT through FROM todo_changes_pruned) AS through, (
    SELECT json_agg(batch ORDER BY position)::text FROM (
        SELECT position, op, todo_id AS id, changed_at, list_before, list_after, person_id AS person, todo, detail,
               before
        FROM todo_changes
        WHERE position > %(after)s AND position <= %(upto)s
        ORDER BY position
        LIMIT %(limit)s
    ) batch
) AS notified
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
# one process prune at a time; the others skip their turn. A numbered
# mutation whose entries go keeps its answer with its verdict: its rows and
# cursor, from all its entries (the statement's snapshot still holds those
# it deletes; a transaction's entries are journaled together), so a retry
# is answered as the first reply was while the verdict is kept. A verdict
# that stores its answer already (a no-op's, a rejection's) has no entries.
PRUNE_JOURNAL = f"""
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
    RETURNING position, mutation
), answered AS (
    UPDATE mutations m SET result = e.rows, position = e.position
    FROM (SELECT DISTINCT mutation FROM pruned WHERE mutation IS NOT NULL) k
    CROSS JOIN LATERAL (SELECT {ENTRIES_ANSWER} FROM todo_changes c WHERE c.mutation = k.mutation) e
    WHERE (m.principal, m.client_id, m.seq)
          = (split_part(k.mutation, ':', 1)::uuid, split_part(k.mutation, ':', 2)::uuid, split_part(k.mutation, ':', 3)::bigint)
      AND m.position IS NULL
)
UPDATE todo_changes_pruned SET through = greatest(through, (SELECT max(position) FROM pruned))
WHERE EXISTS (SELECT FROM pruned)
RETURNING (SELECT count(*) FROM pruned) AS count
"""


async def list_todos(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    completed: bool | None,
    limit: int,
    offset: int,
    list_id: uuid.UUID | None = None,
) -> list[Todo]:
    """`limit` rows of the (filtered) list the viewer sees from `offset` on,
    in list order; of one list (`list_id`) or of every list the viewer sees."""
    params = {"completed": completed, "limit": limit, "offset": offset, "viewer": viewer.person, "list": list_id}
    statement = (
        SELECT_TODOS[completed is not None, viewer.everything]
        if list_id is None
        else SELECT_LIST_TODOS[completed is not None]
    )
    async with conn.cursor(row_factory=class_row(Todo)) as cur:
        await cur.execute(statement, params, prepare=prepared(completed))
        return await cur.fetchall()


async def get_todo(conn: AsyncConnection[Any], viewer: Viewer, todo_id: uuid.UUID) -> Todo | None:
    async with conn.cursor(row_factory=class_row(Todo)) as cur:
        await cur.execute(SELECT_TODO[viewer.everything], {"id": todo_id, "viewer": viewer.person})
        return await cur.fetchone()


async def snapshot(
    conn: AsyncConnection[Any], viewer: Viewer, completed: bool | None, limit: int, offset: int, decoded: bool = False
) -> tuple[list[Todo], int, str | None]:
    """`limit` rows of the (filtered) list the viewer sees from `offset` on,
    the journal position they reflect, and (`decoded`) the read's snapshot."""
    params = {"completed": completed, "limit": limit, "offset": offset, "viewer": viewer.person}
    statements = SELECT_DECODED_SNAPSHOT if decoded else SELECT_SNAPSHOT
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statements[completed is not None, viewer.everything], params, prepare=prepared(completed))
        rows = await cur.fetchall()
    return [_todo(r) for r in rows if r["id"] is not None], int(rows[0]["position"]), rows[0].get("taken")


async def todo_snapshots(
    conn: AsyncConnection[Any], asked: Collection[tuple[uuid.UUID | None, uuid.UUID]], decoded: bool = False
) -> tuple[dict[tuple[uuid.UUID | None, uuid.UUID], Todo], int, str | None]:
    """The rows asked for, each by (person, id), that are there and the
    person's to see (person None: the service principal's, every row), by
    what asked for them, the journal position they reflect, and (`decoded`)
    the read's snapshot."""
    everything = all(person is None for person, _ in asked)
    params: dict[str, Any] = {"ids": [key for _, key in asked]}
    if not everything:
        params["askers"] = [person for person, _ in asked]
    rows = await statement_rows(conn, SELECT_TODOS_SNAPSHOT[decoded, everything], params, tuple)
    # (position, the snapshot if decoded, asker, then the row's columns in
    # Todo's order), or one row of NULLs but the position (and snapshot).
    asker = 2 if decoded else 1
    found = {(row[asker], row[asker + 1]): Todo(*row[asker + 1 :]) for row in rows if row[asker + 1] is not None}
    return found, int(rows[0][0]), rows[0][1] if decoded else None


def _todo(row: dict[str, Any]) -> Todo:
    return Todo(row["id"], row["title"], row["completed"], row["created_time"], row["updated_time"], row["list_id"])


async def ping(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT 1")


async def journal_newest(conn: AsyncConnection[Any]) -> tuple[int, datetime | None]:
    """The newest committed position visible to this transaction, and when
    its entry committed (0 and None: no entry)."""
    rows = await statement_rows(conn, SELECT_NEWEST, None, tuple)
    return (0, None) if not rows else (int(rows[0][0]), rows[0][1])


async def notified_changes(
    conn: AsyncConnection[Any], after: int, upto: int, limit: int, parse: Callable[[str], list[Entry]]
) -> tuple[Chunk, int]:
    """Journal entries with after < position <= upto, oldest first, read by
    `parse` from their text as notifications carrying each whole
    (SELECT_NOTIFIED_CHANGES), and the position the journal is pruned
    through (entries up to it are gone)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_NOTIFIED_CHANGES, {"after": after, "upto": upto, "limit": limit})
        ((through, text),) = await cur.fetchall()
    entries = [] if text is None else parse(text)
    last = entries[-1].position if entries else after
    return Chunk(entries, last, len(entries) == limit), int(through)


# A reader's lists at a cursor (people.md section 2, "a view at a cursor"):
# the lists the person is a member of now, less those whose first membership
# entry after the cursor is its member_added (not a member then), plus those
# whose first one is its member_removed (a member then). Those entries are
# found in todo_changes_members (sql/015), which holds them alone. "Now"
# must be a state of list_members the journal's entries account for:
# trigger mode reads both in one snapshot (the members and the entries that
# changed them commit together); decoded, the entries come after their
# commit, so the members are read first (SELECT_MEMBERS), and the entries
# once everything committed before that read is journaled (Journal.view_at).
SELECT_MEMBERS = "SELECT list_id FROM list_members WHERE person_id = %(person)s"


def _view_at(members: str) -> str:
    return f"""
WITH firsts AS (
    SELECT DISTINCT ON (list_id) list_id, op FROM todo_changes_members
    WHERE person_id = %(person)s AND position > %(after)s
    ORDER BY list_id, position
)
SELECT list_id FROM ({members}) now(list_id)
WHERE list_id NOT IN (SELECT list_id FROM firsts WHERE op = 'member_added')
UNION
SELECT list_id FROM firsts WHERE op = 'member_removed'
"""


# Keyed by whether the members now are given (decoded: read before the entries).
SELECT_VIEW_AT = {False: _view_at(SELECT_MEMBERS), True: _view_at("SELECT unnest(%(members)s::uuid[])")}


async def members_now(conn: AsyncConnection[Any], person: uuid.UUID) -> list[uuid.UUID]:
    """The lists the person is a member of now."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_MEMBERS, {"person": person})
        return [row[0] for row in await cur.fetchall()]


async def lists_at(
    conn: AsyncConnection[Any], person: uuid.UUID, after: int, members: list[uuid.UUID] | None = None
) -> set[uuid.UUID]:
    """The lists the person was a member of at journal position `after`;
    from `members`, the lists it is a member of in a state of list_members
    whose every change is journaled by now (None: read here, in this
    statement's snapshot, which holds their entries: trigger mode)."""
    params = {"person": person, "after": after, "members": members}
    async with conn.cursor() as cur:
        await cur.execute(SELECT_VIEW_AT[members is not None], params)
        return {row[0] for row in await cur.fetchall()}


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
