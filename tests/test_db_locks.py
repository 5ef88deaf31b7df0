"""What a person's deletion by hand (psql's DELETE FROM people) reads and
locks, against real concurrent sessions: the lists it finds by index
(sql/022), and the orders of row locks it meets (docs/reliability.md,
section 12)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.decoded import Journaled

DECODED = pytest.mark.parametrize("journaled_db", ["decoded"], indirect=True)


def _crowded(dsn: str, people: int = 2_000, each: int = 4) -> uuid.UUID:
    """`people` others with `each` lists besides their default (10,000 lists
    by default), and bob, who owns one list more than his default and is a
    member of one other's; analyzed. Returns bob's id."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO people (username) SELECT 'p' || g FROM generate_series(1, %s) g", (people,))
        conn.execute(
            "INSERT INTO lists (owner_id, name) SELECT id, 'l' FROM people, generate_series(1, %s)"
            " WHERE username LIKE 'p%%'",
            (each,),
        )
        (bob,) = conn.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO lists (owner_id, name) VALUES (%s, 'his')", (bob,))
        conn.execute(
            "INSERT INTO list_members SELECT id, %s, 'editor' FROM lists WHERE owner_id <> %s LIMIT 1", (bob, bob)
        )
        conn.execute("ANALYZE lists, list_members, todos")
    return bob  # type: ignore[no-any-return]


def _plans(conn: psycopg.Connection[Any], statement: str, params: tuple[object, ...]) -> list[str]:
    """The plans of `statement` and of every statement its triggers and
    foreign keys run (auto_explain, sent to this session as NOTICEs)."""
    plans: list[str] = []
    conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        conn.execute(f"SET auto_explain.{setting}")  # type: ignore[arg-type]
    conn.execute(statement, params)  # type: ignore[arg-type]
    return [plan for plan in plans if "Query Text" in plan]


def _query(plan: str) -> str:
    """The statement an auto_explain plan is of (its Query Text line)."""
    return next(line for line in plan.splitlines() if line.startswith("Query Text:"))


def _plan_of(plans: list[str], text: str) -> str:
    [plan] = [plan for plan in plans if text in _query(plan)]
    return plan


def test_a_person_s_deletion_finds_their_lists_by_index(journaled_db: Journaled) -> None:
    """With 10,000 lists, the cascade's DELETE of the person's lists and (in
    decoded mode) sql/021's lock of them read lists_owner and the primary
    key, no whole table (sql/022; before, a Seq Scan on lists in each)."""
    bob = _crowded(journaled_db.dsn)
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        plans = _plans(conn, "DELETE FROM people WHERE id = %s", (bob,))
        assert conn.execute("SELECT count(*) FROM lists WHERE owner_id = %s", (bob,)).fetchone() == (0,)
    cascade = _plan_of(plans, 'DELETE FROM ONLY "public"."lists"')
    assert "Index Scan using lists_owner" in cascade or "Index Scan on lists_owner" in cascade, cascade
    lookups = [plan for plan in plans if "owner_id = OLD.id" in plan]
    if journaled_db.journal == "decoded":
        [lookup] = lookups
        assert "lists_owner" in lookup and "list_members_person" in lookup, lookup
        assert "Index Scan using lists_pkey on lists" in lookup, lookup
    else:
        assert lookups == []
    for plan in plans:
        assert "Seq Scan on lists" not in plan, plan
