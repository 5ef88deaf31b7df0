"""SQL for writes to todos: each mutation one statement, acting for a person
(people.md section 5), unnumbered or numbered (offline.md section 1), and the
journal positions its commit told of. Small functions taking a connection;
nothing here commits or validates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Self

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.errors import Diagnostic

from graphql_todos.core.database import statement_rows
from graphql_todos.core.errors import TodoExists
from graphql_todos.core.models import Todo
from graphql_todos.core.mutations import Key
from graphql_todos.core.repository import TODO_COLUMNS
from graphql_todos.core.verdicts import key_params

_RETURNING = "RETURNING " + ", ".join(f"todos.{column}" for column in TODO_COLUMNS.split(", "))

# Writes act for a person: the statement sets app.person_id for the journal
# trigger, which judges the right again at the commit position, and keeps
# only rows of lists the person may edit. With no actor (the service token,
# psql's way) nothing is checked. Unnumbered, the setting is a subquery the
# statement joins (volatile: run once, before any row changes), so the
# statement still starts as the app's own; numbered, a CTE that also sets
# the mutation's key (_numbered).
_ACTING = "(SELECT set_config('app.person_id', coalesce(%(actor)s::text, ''), true)) AS acting"
_EDITABLE = """(%(actor)s::uuid IS NULL OR EXISTS (
    SELECT FROM list_members m WHERE m.list_id = todos.list_id AND m.person_id = %(actor)s::uuid AND m.role <> 'viewer'))"""
# Rows of the lists the actor may edit (or of `list` alone), and of `ids`
# alone when named: the rows a client saw, so an edit queued offline and
# sent later changes exactly those (docs/design/offline.md, section 3).
_IN_LISTS = f"""{_EDITABLE} AND (%(list)s::uuid IS NULL OR todos.list_id = %(list)s::uuid)
AND (%(ids)s::uuid[] IS NULL OR todos.id = ANY(%(ids)s::uuid[]))"""


# Each change, reading the acting person from `acting` (the subquery or the CTE).
# No list named: the actor's default list, or local's for the service.
def _insert(acting: str) -> str:
    return f"""INSERT INTO todos (id, title, completed, list_id)
SELECT coalesce(%(id)s, gen_random_uuid()), %(title)s, %(completed)s,
       coalesce(%(list)s::uuid, (SELECT id FROM lists WHERE owner_id = %(owner)s::uuid AND is_default))
FROM {acting}
{_RETURNING}"""


def _update(acting: str) -> str:
    return f"""UPDATE todos SET title = coalesce(%(title)s, title), completed = coalesce(%(completed)s, completed)
FROM {acting} WHERE id = %(id)s AND {_EDITABLE}
{_RETURNING}"""


def _delete(acting: str) -> str:
    return f"DELETE FROM todos USING {acting} WHERE id = %(id)s AND {_EDITABLE}\n{_RETURNING}"


def _set_all(acting: str) -> str:
    return f"""UPDATE todos SET completed = %(completed)s FROM {acting}
WHERE completed IS DISTINCT FROM %(completed)s AND {_IN_LISTS}
{_RETURNING}"""


def _delete_completed(acting: str) -> str:
    return f"DELETE FROM todos USING {acting} WHERE completed AND {_IN_LISTS}\n{_RETURNING}"


# ORDER BY inside the CTE is not guaranteed to survive RETURNING; sort after.
# A data-modifying CTE runs to completion whatever the LIMIT reads of it:
# every row changes, the first `limit` come back.
def _many(change: str) -> str:
    return f"WITH changed AS (\n{change}\n)\nSELECT * FROM changed ORDER BY created_time, id LIMIT %(limit)s"


# A numbered mutation: the change (reading `acting`, so the key and the
# person are set before its rows are written) and its verdict in one
# statement, so they commit or roll back together; the key set
# transaction-locally marks the journal entries the change makes at commit.
# A key used before meets the primary key (a concurrent duplicate waits for
# the first to commit) and the whole statement rolls back. The rows come back
# as the journal holds them (to_jsonb), so a retry answers from the same
# text; as text, which orjson reads in a fifth of the time psycopg's jsonb
# loader (the standard library's json) takes. `single`: the verdict is
# written only when the change found its row (one verdict per row of a
# change of one row or none), else the service records a rejection; with no
# order to keep, and no aggregate for the verdict: 40% of what numbering
# added to the statement (docs/bench-ab-writes.md).
def _numbered(change: str, single: bool) -> str:
    verdict = "%(principal)s, %(client)s, %(seq)s, %(fingerprint)s, 'applied'"
    recorded, order = (f"SELECT {verdict} FROM changed", "") if single else (
        f"VALUES ({verdict})", " ORDER BY created_time, id LIMIT %(limit)s"
    )
    return f"""
WITH acting AS (SELECT set_config('app.mutation', %(key)s, true),
                       set_config('app.person_id', coalesce(%(actor)s::text, ''), true)),
changed AS ({change}),
recorded AS (INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict) {recorded})
SELECT to_jsonb(changed)::text AS todo FROM changed{order}
"""


@dataclass(frozen=True, slots=True)
class Write:
    """A mutation's statement, unnumbered (rows as columns) and numbered
    (_numbered); `single`: it names one row by id."""

    plain: str
    numbered: str
    single: bool


def _write(change: Any, single: bool) -> Write:
    plain = change(_ACTING)
    return Write(plain if single else _many(plain), _numbered(change("acting"), single), single)


INSERT_WRITE = _write(_insert, True)
UPDATE_WRITE = _write(_update, True)
DELETE_WRITE = _write(_delete, True)
SET_ALL_COMPLETED_WRITE = _write(_set_all, False)
DELETE_COMPLETED_WRITE = _write(_delete_completed, False)
# A move needs the right to edit both lists.
MOVE_TODO = f"""UPDATE todos SET list_id = %(list)s FROM {_ACTING}
WHERE id = %(id)s AND {_EDITABLE} AND (%(actor)s::uuid IS NULL OR EXISTS (
    SELECT FROM list_members m WHERE m.list_id = %(list)s AND m.person_id = %(actor)s::uuid AND m.role <> 'viewer'))
{_RETURNING}"""
# Why a write found no row: the row's list and the actor's role in it
# (NULL: no such row, or not a member: NOT_FOUND; a viewer: FORBIDDEN).
SELECT_ROLE = "SELECT role FROM list_members WHERE list_id = %(list)s AND person_id = %(person)s"
SELECT_ROLE_OF_TODO = """
SELECT m.role FROM todos t JOIN list_members m ON m.list_id = t.list_id AND m.person_id = %(actor)s
WHERE t.id = %(id)s
"""


async def role_in_list(conn: AsyncConnection[Any], list_id: uuid.UUID, person: uuid.UUID) -> str | None:
    """The person's role in the list (None: not a member, or no such list)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ROLE, {"list": list_id, "person": person})
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def role_of_todo(conn: AsyncConnection[Any], todo_id: uuid.UUID, actor: uuid.UUID) -> str | None:
    """The actor's role in the list of the row (None: it sees no such row)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ROLE_OF_TODO, {"id": todo_id, "actor": actor})
        row = await cur.fetchone()
    return None if row is None else str(row[0])


# The journal trigger's NOTICE at commit (sql/006_mutations.sql, 007_lists.sql).
CURSOR_SQLSTATE = "01GT0"
_CURSOR_PREFIX = "graphql-todos cursor "


class CursorNotices:
    """The highest position the journal trigger named, by NOTICE, while one
    statement ran on a connection (None: it journaled nothing): psycopg
    calls the handler as each NOTICE arrives, before execute() returns.
    A class, not a generator's context manager: it is entered on every write."""

    __slots__ = ("conn", "position")

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn
        self.position: int | None = None

    def __enter__(self) -> Self:
        self.conn.add_notice_handler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.remove_notice_handler(self)

    def __call__(self, diagnostic: Diagnostic) -> None:
        message = diagnostic.message_primary or ""
        if diagnostic.sqlstate == CURSOR_SQLSTATE and message.startswith(_CURSOR_PREFIX):
            position = int(message.removeprefix(_CURSOR_PREFIX))
            if self.position is None or position > self.position:
                self.position = position


class _TakenId:
    """A create naming an id a todo has: TodoExists, not a database error."""

    __slots__ = ("params",)

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == "todos_pkey":
            raise TodoExists(self.params["id"]) from None


def _todo(values: Any) -> Todo:
    """A row as a Todo, by position: RETURNING names the columns in the
    order of Todo's fields (a test checks), so no statement's column names
    are read (psycopg's class_row reads them on every execute)."""
    return Todo(*values)


async def write(conn: AsyncConnection[Any], statement: str, params: dict[str, Any]) -> tuple[list[Todo], int | None]:
    """An unnumbered mutation (a Write's plain statement, or MOVE_TODO): its
    rows, and the position of its newest journal entry (None: it journaled nothing)."""
    with CursorNotices(conn) as notices, _TakenId(params):
        rows = await statement_rows(conn, statement, params, _todo)
    return rows, notices.position


async def write_numbered(
    conn: AsyncConnection[Any], statement: Write, params: dict[str, Any], key: Key
) -> tuple[list[dict[str, Any]], int | None] | None:
    """A numbered mutation and its verdict: its rows (as the journal holds
    them) and its newest entry's position (None: it journaled nothing); None
    when the key was used before (nothing changed)."""
    with CursorNotices(conn) as notices, _TakenId(params):
        try:
            rows = await statement_rows(conn, statement.numbered, {**params, **key_params(key), "key": key.text}, tuple)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "mutations_pkey":
                raise
            return None
    return [orjson.loads(row[0]) for row in rows], notices.position
