"""A person deleted by hand (psql's DELETE FROM people) costs the database
the same per person whether the statement deletes n people or 4n, in both
journal modes: each person with their default list and a second one, a few
todos in each (or none), a membership of a list that stays. Judged on the
backend's CPU time (its own process: neither the sequencer nor another
test's load counts), the deletion's statement and commit, where the
journal's deferred triggers run. Before sql/024, with three todos a list,
it grew 9.5 (trigger) and 10.7 (decoded) times on PostgreSQL 18, 9.8 and
8.8 on 15: every todo row copied and searched the list marks of every list
deleted before it (app.journal_todos). With none, on PostgreSQL 15 (make
test's second server), 9.3 and 8.5: each person's username kept by sql/023
in a setting of its own, whose new name sorted every setting of the
session again. Since: 3.0 to 4.8. The member entries still name each
person, once (sql/023)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Journaled
from tests.decoded import journaled

# Linear work grows 4 times from n to 4n, quadratic 16: between the two.
GROWTH = 8.0


def _crowd(conn: psycopg.Connection[Any], shared: uuid.UUID, people: int, todos: int, round_: int) -> dict[uuid.UUID, str]:
    """`people` people (ids and usernames), each with a second list, `todos`
    todos in it and in their default list, and an editor of `shared`."""
    made = dict(conn.execute(
        "INSERT INTO people (username) SELECT 'g' || %s || '_' || g FROM generate_series(1, %s) g RETURNING id, username",
        (round_, people),
    ).fetchall())
    conn.execute(
        "WITH second AS (INSERT INTO lists (owner_id, name) SELECT unnest(%s::uuid[]), 'second' RETURNING id, owner_id)"
        " INSERT INTO list_members (list_id, person_id, role) SELECT id, owner_id, 'owner' FROM second", (list(made),),
    )
    conn.execute(
        "INSERT INTO todos (title, list_id) SELECT 't' || g, id FROM lists, generate_series(1, %s) g"
        " WHERE owner_id = ANY(%s)", (todos, list(made)),
    )
    conn.execute(
        "INSERT INTO list_members (list_id, person_id, role) SELECT %s, unnest(%s::uuid[]), 'editor'",
        (shared, list(made)),
    )
    conn.execute("ANALYZE people, lists, list_members, todos")
    return made


def _backend_clock(conn: psycopg.Connection[Any]) -> Callable[[], float]:
    """The CPU time the connection's backend has used, in seconds, when the
    server runs on this machine (the suite's own do); else the wall clock."""
    stat = Path(f"/proc/{conn.info.backend_pid}/stat")
    if not stat.exists() or not Path(f"/proc/{conn.info.backend_pid}/comm").read_text().startswith("postgres"):
        return time.perf_counter
    tick = os.sysconf("SC_CLK_TCK")
    # utime and stime, the 14th and 15th fields (after the command's parenthesis).
    return lambda: sum(int(field) for field in stat.read_text().rsplit(")", 1)[1].split()[11:13]) / tick


def _deletion(dsn: str, usernames: str) -> float:
    """The deletion's statement and commit, on a connection of its own (the
    session's settings start empty): its backend's seconds."""
    with psycopg.connect(dsn) as conn:
        clock = _backend_clock(conn)
        start = clock()
        conn.execute("DELETE FROM people WHERE username LIKE %s", (usernames,))
        conn.commit()
        return clock() - start


# Three todos a list: the list marks' growth (sql/024). None, and more
# people: the usernames' (on PostgreSQL 15, make test's second server).
@pytest.mark.parametrize(("people", "todos"), [(800, 3), (2000, 0)])
def test_deleting_people_grows_linearly_with_them(journaled_db: Journaled, people: int, todos: int) -> None:
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        (owner,) = conn.execute("INSERT INTO people (username) VALUES ('owner') RETURNING id").fetchone()  # type: ignore[misc]
        (shared,) = conn.execute("SELECT id FROM lists WHERE owner_id = %s", (owner,)).fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO todos (title, list_id) SELECT 's' || g, %s FROM generate_series(1, 3) g", (shared,))
        spent: list[float] = []
        for round_, size in enumerate((people, 4 * people)):
            made = _crowd(conn, shared, size, todos, round_)
            journaled(conn)
            (after,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
            spent.append(_deletion(journaled_db.dsn, f"g{round_}\\_%"))
            journaled(conn, timeout=120)
            # Each person's three member entries (their two lists', the shared one's), named.
            named = conn.execute(
                "SELECT person_id, detail->>'username', count(*) FROM todo_changes"
                " WHERE position > %s AND op = 'member_removed' GROUP BY 1, 2", (after,),
            ).fetchall()
            assert sorted(named) == sorted((person, name, 3) for person, name in made.items())
        assert spent[1] < spent[0] * GROWTH, spent
