"""PostgreSQL writes lists of todos as JSON byte for byte as orjson writes
what Strawberry completes them with: every character of a title, times in any
session time zone, keys that are GraphQL names only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphql_todos.core.list_statements import Constant, ListStatement

# Every character PostgreSQL text can hold: no NUL, no surrogates.
CHARACTERS = "".join(chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF)
TITLE_LENGTH = 512
# Every row: no limit short of the table, from the first on.
ALL = (2**31 - 1, 0)
BASE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ZONES = [
    "Etc/UTC",
    "Asia/Kolkata",  # +05:30
    "America/St_Johns",  # -03:30, with daylight saving time
    "Pacific/Chatham",  # +12:45
    "Africa/Monrovia",  # -00:44:30 until 1972: an offset with seconds
    "Asia/Kathmandu",  # local mean time +05:41:16 until 1920
    # Not Europe/Amsterdam: tzdata 2022b merged its history before 1970
    # into Brussels', so its old offsets depend on the tz database release,
    # and PostgreSQL (the embedded one brings its own) and Python may hold
    # different ones.
    "<+05:30>-05:30",  # a zone psycopg cannot read: it gives UTC times
]
TIMES = st.datetimes(min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 29), timezones=st.just(UTC))


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.AsyncConnection[Any]]:
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(psycopg.AsyncConnection.connect(db_dsn, autocommit=True))
    # The tests run their coroutines on this loop: see run().
    connection.loop = loop  # type: ignore[attr-defined]
    yield connection
    loop.run_until_complete(connection.close())
    loop.close()


def run(conn: psycopg.AsyncConnection[Any], coro: Any) -> Any:
    return conn.loop.run_until_complete(coro)  # type: ignore[attr-defined]


async def insert(conn: psycopg.AsyncConnection[Any], rows: list[tuple[str, bool, datetime, datetime]]) -> None:
    await conn.execute("DELETE FROM todos")
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO todos (title, completed, created_time, updated_time) VALUES (%s, %s, %s, %s)", rows
        )


async def in_order(conn: psycopg.AsyncConnection[Any], completed: bool | None = None) -> list[tuple[Any, ...]]:
    """The rows as psycopg reads them (what Strawberry completes), in list order."""
    cursor = await conn.execute(
        "SELECT id, title, completed, created_time, updated_time FROM todos"
        " WHERE %(c)s::boolean IS NULL OR completed = %(c)s ORDER BY created_time, id",
        {"c": completed},
    )
    return await cursor.fetchall()


def test_titles_are_escaped_as_orjson_escapes_them(conn: psycopg.AsyncConnection[Any]) -> None:
    titles = [CHARACTERS[n : n + TITLE_LENGTH] for n in range(0, len(CHARACTERS), TITLE_LENGTH)]
    times = [BASE + timedelta(seconds=n) for n in range(len(titles))]
    run(conn, insert(conn, [(title, False, t, t) for title, t in zip(titles, times, strict=True)]))
    lists = run(conn, ListStatement(((("title", "title"),),), position=False).run(conn, None, *ALL))
    assert lists.texts == [orjson.dumps([{"title": title} for title in titles]).decode()]


@pytest.mark.parametrize("zone", ZONES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.tuples(TIMES, TIMES), max_size=4))
def test_times_are_written_as_isoformat_in_the_session_time_zone(
    conn: psycopg.AsyncConnection[Any], zone: str, times: list[tuple[datetime, datetime]]
) -> None:
    run(conn, conn.execute(f"SET TimeZone TO '{zone}'"))  # type: ignore[arg-type]
    run(conn, insert(conn, [("t", False, created, updated) for created, updated in times]))
    item = (("c", "created_time"), ("u", "updated_time"))
    lists = run(conn, ListStatement((item,), position=False).run(conn, None, *ALL))
    # DateTime is serialized with datetime.isoformat.
    expected = [{"c": row[3].isoformat(), "u": row[4].isoformat()} for row in run(conn, in_order(conn))]
    assert lists.texts == [orjson.dumps(expected).decode()]


@pytest.mark.parametrize("completed", [None, True, False])
def test_one_statement_reads_every_list_and_the_position(
    conn: psycopg.AsyncConnection[Any], completed: bool | None
) -> None:
    rows = [(f"t{n}", n % 2 == 0, BASE - timedelta(seconds=n), BASE) for n in range(5)]
    run(conn, insert(conn, rows))
    ids = (("key", "id"), ("__typename", Constant("Todo")))
    flags = (("done", "completed"), ("title", "title"))
    lists = run(conn, ListStatement((ids, flags), position=True).run(conn, completed, *ALL))
    read = run(conn, in_order(conn, completed))
    assert [orjson.loads(text) for text in lists.texts] == [
        [{"key": str(row[0]), "__typename": "Todo"} for row in read],
        [{"done": row[2], "title": row[1]} for row in read],
    ]
    cursor = run(conn, conn.execute("SELECT max(position) FROM todo_changes"))
    assert lists.position == run(conn, cursor.fetchone())[0]


def test_a_page_is_its_rows_in_list_order_with_their_count(conn: psycopg.AsyncConnection[Any]) -> None:
    run(conn, insert(conn, [(f"t{n}", False, BASE + timedelta(seconds=n), BASE) for n in range(5)]))
    query = ListStatement(((("title", "title"),),), position=False)
    page = run(conn, query.run(conn, None, 2, 1))
    assert (orjson.loads(page.texts[0]), page.rows) == ([{"title": "t1"}, {"title": "t2"}], 2)
    assert run(conn, query.run(conn, None, *ALL)).rows == 5
    # No list selected (a todoList's cursor alone): the rows are still counted.
    assert run(conn, ListStatement((), position=True).run(conn, None, 3, 0)).rows == 3


def test_an_empty_list_is_an_empty_array(conn: psycopg.AsyncConnection[Any]) -> None:
    lists = run(conn, ListStatement(((("id", "id"),),), position=True).run(conn, None, *ALL))
    assert (lists.texts, lists.position) == (["[]"], 0)
    assert run(conn, ListStatement((), position=True).run(conn, None, *ALL)).position == 0


@pytest.mark.parametrize("name", ["a b", 'a"', "a'", "1a", "", "é", "a\\", "a%s"])
def test_keys_and_constants_are_graphql_names_only(name: str) -> None:
    with pytest.raises(ValueError, match="not a GraphQL name"):
        ListStatement((((name, "id"),),), position=False)
    with pytest.raises(ValueError, match="not a GraphQL name"):
        ListStatement(((("__typename", Constant(name)),),), position=False)


def test_ids_are_the_usual_spelling(conn: psycopg.AsyncConnection[Any]) -> None:
    run(conn, insert(conn, [("t", False, BASE, BASE)]))
    lists = run(conn, ListStatement(((("id", "id"),),), position=False).run(conn, None, *ALL))
    (todo,) = orjson.loads(lists.texts[0])
    assert str(uuid.UUID(todo["id"])) == todo["id"]
