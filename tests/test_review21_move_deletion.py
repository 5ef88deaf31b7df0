"""A decoded moveTodo between two of a person's lists while psql deletes
them: the move takes its target list first (its member check, an initplan)
and its source list after (the row's), the deletion both in id order
(sql/021). With the target the greater and held FOR KEY SHARE (as any
member's write into it holds it during its statement), the deletion takes
the source and queues for the target, the move shares the target and
queues for the source: PostgreSQL ends one of them (40P01), the other
commits, nothing else is lost (docs/reliability.md, section 12, said both
commit in decoded mode)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from graphql_todos.core import writes
from tests.conftest import Journaled
from tests.helpers import wait_until
from tests.test_db_locks import DECODED, _ended


def _waits(dsn: str, waiting: psycopg.Connection[Any], on: psycopg.Connection[Any]) -> bool:
    """`waiting`'s session is blocked by `on`'s."""
    with psycopg.connect(dsn) as probe:
        (blocking,) = probe.execute("SELECT pg_blocking_pids(%s)", (waiting.info.backend_pid,)).fetchone()  # type: ignore[misc]
    return on.info.backend_pid in blocking


@DECODED
def test_a_move_to_the_greater_list_while_another_write_holds_it(journaled_db: Journaled) -> None:
    dsn = journaled_db.dsn
    source, target = sorted((uuid.uuid4(), uuid.uuid4()))
    with psycopg.connect(dsn, autocommit=True) as setup:
        (bob, todo) = setup.execute(  # type: ignore[misc]
            """WITH bob AS (INSERT INTO people (username) VALUES ('bob') RETURNING id),
            made AS (INSERT INTO lists (id, owner_id, name) SELECT l, bob.id, 'his' FROM bob, unnest(%(lists)s::uuid[]) l
                     RETURNING id, owner_id),
            owners AS (INSERT INTO list_members SELECT id, owner_id, 'owner' FROM made)
            SELECT bob.id, gen_random_uuid() FROM bob""", {"lists": [source, target]},
        ).fetchone()
        setup.execute("INSERT INTO todos (id, title, list_id) VALUES (%s, 'moved', %s)", (todo, source))
    outcomes: dict[str, str] = {}
    params = {"id": todo, "list": target, "title": None, "completed": None, "actor": bob}
    move = writes.statements("decoded").move.plain
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn) as deletion, psycopg.connect(dsn, autocommit=True) as mover:
        holder.execute("SELECT FROM lists WHERE id = %s FOR KEY SHARE", (target,))

        def delete() -> None:
            with deletion.transaction():
                deletion.execute("DELETE FROM people WHERE id = %s", (bob,))

        threads = [_ended(delete, outcomes, "deletion")]
        wait_until(lambda: _waits(dsn, deletion, holder), timeout=10)
        threads.append(_ended(lambda: mover.execute(move, params, prepare=True).fetchall(), outcomes, "write"))
        wait_until(lambda: _waits(dsn, mover, deletion), timeout=10)
        holder.rollback()
        for thread in threads:
            thread.join(20)
    assert sorted(outcomes.values()) == ["40P01", "committed"], outcomes
    with psycopg.connect(dsn) as probe:
        people = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
        moved = probe.execute("SELECT list_id FROM todos WHERE id = %s", (todo,)).fetchall()
    if outcomes["deletion"] == "committed":
        assert people == (0,) and moved == []
    else:
        assert people == (1,) and moved == [(target,)]
