"""Lists of todos written as JSON text by PostgreSQL, byte for byte as
orjson writes what Strawberry would answer for them: a list is read, aggregated
and written in one statement, and its text goes into the response as it is,
with no row built in Python.

A list's shape (which columns under which keys, and constants such as
__typename) comes from a compiled GraphQL plan. Its statement is built once per
shape from the closed set of columns below and keys and constants that are
GraphQL names, and psycopg prepares it once it recurs (a filtered list's,
never: see repository.SELECT_TODOS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from psycopg import AsyncConnection, sql

from graphql_todos.core.models import ALL, Viewer
from graphql_todos.core.repository import SELECT_POSITION, SELECT_TODOS, TAKEN, prepared

# What datetime.isoformat() writes, from a timestamptz `c` rendered in the
# session's time zone: microseconds only when there are some, and an offset
# with seconds only when it has some (local mean time, before about 1900).
_SESSION_TIME = """replace(to_char({c}, 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM'), '.000000', '')
|| CASE WHEN mod(extract(timezone FROM {c})::int, 60) = 0 THEN ''
   ELSE ':' || lpad(abs(mod(extract(timezone FROM {c})::int, 60))::text, 2, '0') END"""
# The same in UTC, for a session time zone psycopg cannot read: it then gives
# datetimes in UTC (and logs a warning).
_UTC_TIME = """replace(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || '+00:00'"""
# Each column's value as JSON text, as orjson writes the Python value
# Strawberry completes the field with, and whether it goes between quotes (ids
# and times are strings that need no escaping). PostgreSQL escapes text as
# orjson does (tests/core/test_list_statements.py checks every character).
_VALUES = {
    "id": ("t.id::text", True),
    "title": ("to_json(t.title)::text", False),
    "completed": ("t.completed::text", False),
    "created_time": ("{time}", True),
    "updated_time": ("{time}", True),
    "list_id": ("t.list_id::text", True),
}
COLUMNS = frozenset(_VALUES)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


@dataclass(frozen=True, slots=True)
class Constant:
    """A value every item carries (a GraphQL __typename)."""

    value: str


# One list's items: (key, column or constant) pairs, in order.
ItemShape = tuple[tuple[str, str | Constant], ...]


@dataclass(frozen=True, slots=True)
class JsonLists:
    """Lists read in one statement as JSON texts, the journal position they
    reflect (None when not asked for), how many rows each holds, and the
    read's snapshot (decoded, with the position: core/read_cursors.py)."""

    texts: list[str]
    position: int | None
    rows: int
    taken: str | None = None


class ListStatement:
    """The statement reading one snapshot of the todos (filtered by
    `completed`) as several JSON lists, one per item shape, and the journal
    position if asked for; built once, then run on any connection."""

    def __init__(self, items: tuple[ItemShape, ...], position: bool) -> None:
        self.items = items
        self.position = position
        # Keyed by (in UTC, filtered, every list), built when first needed:
        # times rendered in the session's zone or in UTC (which one a
        # connection needs is known only once it runs: see run), and the
        # viewer's membership condition or the service principal's none.
        # The first one now: a shape that is no statement fails here.
        self._statements = {
            (False, False, False): _statement(items, position, _SESSION_TIME, SELECT_TODOS[False, False])
        }
        # The same, decoded: with the read's snapshot when the position is asked for.
        self._decoded: dict[tuple[bool, bool, bool], bytes] = {}

    async def run(
        self,
        conn: AsyncConnection[Any],
        completed: bool | None,
        limit: int,
        offset: int,
        viewer: Viewer = ALL,
        decoded: bool = False,
    ) -> JsonLists:
        """At most `limit` rows the viewer sees from `offset` on, in list order
        (the service passes its caller's viewer; ALL reads every list)."""
        # psycopg converts times to the session's zone when it can load it,
        # else to UTC: the JSON must carry the offsets Strawberry would write.
        key = (not isinstance(conn.info.timezone, ZoneInfo), completed is not None, viewer.everything)
        taken = decoded and self.position
        statements = self._decoded if taken else self._statements
        if key not in statements:
            time = _UTC_TIME if key[0] else _SESSION_TIME
            statements[key] = _statement(self.items, self.position, time, SELECT_TODOS[key[1:]], taken)
        # Prepared once it has run a few times on a connection (psycopg's
        # automatic preparation), so one-off selections are not; a filtered
        # list never (repository.prepared).
        params = {"completed": completed, "limit": limit, "offset": offset, "viewer": viewer.person}
        cursor = await conn.execute(statements[key], params, prepare=prepared(completed))
        row = await cursor.fetchone()
        assert row is not None
        texts = list(row[: len(self.items)])
        if taken:
            return JsonLists(texts, int(row[-2]), int(row[len(texts)]), row[-1])
        return JsonLists(texts, int(row[-1]) if self.position else None, int(row[len(texts)]))


def _statement(items: tuple[ItemShape, ...], position: bool, time: str, rows: str, taken: bool = False) -> bytes:
    # One scan: every list aggregates the rows `rows` reads (filtered
    # and limited by the parameters run passes), in its order; an empty list
    # is "[]". Then the rows' count (a list asked for whole is refused over
    # MAX_LIST_ROWS, even when only its cursor is selected, as the resolvers
    # do) and, if asked for, the position, from the same snapshot, and
    # (decoded, `taken`) that snapshot.
    columns: list[sql.Composable] = [
        sql.SQL("'[' || coalesce(string_agg({}, ',' ORDER BY t.created_time, t.id), '') || ']'").format(
            _object(item, time)
        )
        for item in items
    ]
    columns.append(sql.SQL("count(*)"))
    if position:
        columns.append(sql.SQL("({})").format(sql.SQL(SELECT_POSITION)))
    if taken:
        columns.append(sql.SQL(TAKEN))
    return sql.SQL("SELECT {columns} FROM ({rows}) t").format(
        columns=sql.SQL(", ").join(columns), rows=sql.SQL(rows)
    ).as_bytes(None)


def _object(item: ItemShape, time: str) -> sql.Composable:
    """One todo as a JSON object: literal text (keys, constants) between
    column values."""
    parts: list[sql.Composable] = []
    text = "{"
    for n, (key, value) in enumerate(item):
        # Names need no JSON escaping, and hold no quote for the SQL literal
        # nor % for psycopg's placeholders.
        for name in (key, value.value) if isinstance(value, Constant) else (key,):
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a GraphQL name: {name!r}")
        text += ("," if n else "") + orjson.dumps(key).decode() + ":"
        if isinstance(value, Constant):
            text += orjson.dumps(value.value).decode()
            continue
        expression, quoted = _VALUES[value]
        parts += [sql.Literal(text + '"' * quoted), sql.SQL(expression.format(time=time.format(c=f"t.{value}")))]
        text = '"' * quoted
    parts.append(sql.Literal(text + "}"))
    return sql.SQL(" || ").join(parts)
