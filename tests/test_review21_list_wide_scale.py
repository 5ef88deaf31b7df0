"""A list-wide edit with no list named (completeAll, clearCompleted) reads
what grows with the actor's rows, not with the table: EXPLAIN (ANALYZE,
BUFFERS) of the statement, rolled back, with others' todos at n and at 4n
(counts, no timing). Before, decoded mode's statement checked the member
row of every todo of the table whose state differed (30,761 buffers on a
big table) and trigger mode's scanned the table whole."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from graphql_todos.core import writes
from tests.conftest import Journaled


def _crowd(conn: psycopg.Connection[Any], people: int, each: int, round_: int) -> None:
    """`people` others, each with `each` todos (half completed) in their default list."""
    conn.execute("INSERT INTO people (username) SELECT 'o' || %s || '_' || g FROM generate_series(1, %s) g", (round_, people))
    conn.execute(
        "INSERT INTO todos (title, completed, list_id) SELECT 'x', g %% 2 = 0, l.id FROM lists l"
        " JOIN people p ON p.id = l.owner_id AND p.username LIKE %s, generate_series(1, %s) g",
        (f"o{round_}_%", each),
    )


def _buffers(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any]) -> int:
    """Shared buffers hit and read by `statement` (its triggers' included), rolled back."""
    with conn.transaction(force_rollback=True):
        (plan,) = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement.encode(), params).fetchone()  # type: ignore[misc]
    top = plan[0]["Plan"]
    return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])


def _actor(conn: psycopg.Connection[Any]) -> uuid.UUID:
    """ann, with 20 todos in her default list and 20 in a second one, half completed."""
    (ann,) = conn.execute("INSERT INTO people (username) VALUES ('ann') RETURNING id").fetchone()  # type: ignore[misc]
    conn.execute("INSERT INTO lists (owner_id, name) VALUES (%s, 'second')", (ann,))
    conn.execute(
        "INSERT INTO todos (title, completed, list_id) SELECT 'a', g %% 2 = 0, id FROM lists, generate_series(1, 20) g"
        " WHERE owner_id = %s", (ann,),
    )
    return ann  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["set_all_completed", "delete_completed"])
def test_a_list_wide_edit_reads_the_actor_s_rows_not_the_table(journaled_db: Journaled, kind: str) -> None:
    statement = getattr(writes.statements(journaled_db.journal), kind).plain
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        ann = _actor(conn)
        params = {"actor": ann, "list": None, "ids": None, "limit": 500, "completed": True}
        read: list[int] = []
        for _ in range(2):
            _crowd(conn, 500, 20 if not read else 60, len(read))  # 10,000 others' todos, then 40,000
            conn.execute("ANALYZE todos, lists, list_members, people")
            read.append(_buffers(conn, statement, params))
        assert read[1] < read[0] * 1.5, read

