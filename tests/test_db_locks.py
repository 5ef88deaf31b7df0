"""What a person's deletion by hand (psql's DELETE FROM people) reads and
locks, against real concurrent sessions: the lists it finds by index
(sql/022), and the orders of row locks it meets (docs/reliability.md,
section 12)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from graphql_todos.core import writes
from tests.decoded import Journaled, journaled
from tests.helpers import wait_until
from tests.test_lists_deleted_concurrently import member_row_free, queued_on

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
    """With 10,000 lists, the cascade's DELETE of the person's lists and
    sql/021's lock of them (decoded: those they are a member of too) read
    lists_owner (and list_members_person, the primary key), no whole table
    (sql/022; before, a Seq Scan on lists in each)."""
    bob = _crowded(journaled_db.dsn)
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        plans = _plans(conn, "DELETE FROM people WHERE id = %s", (bob,))
        assert conn.execute("SELECT count(*) FROM lists WHERE owner_id = %s", (bob,)).fetchone() == (0,)
    cascade = _plan_of(plans, 'DELETE FROM ONLY "public"."lists"')
    assert "Index Scan using lists_owner" in cascade or "Index Scan on lists_owner" in cascade, cascade
    [lookup] = [plan for plan in plans if "owner_id = OLD.id" in plan]
    assert "lists_owner" in lookup, lookup
    if journaled_db.journal == "decoded":
        assert "list_members_person" in lookup and "Index Scan using lists_pkey on lists" in lookup, lookup
    for plan in plans:
        assert "Seq Scan on lists" not in plan, plan


def _member_of_annes(dsn: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """bob, an editor of ann's default list, with a todo in his own: (bob, ann's list, his todo)."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        (ann,) = setup.execute("INSERT INTO people (username) VALUES ('ann') RETURNING id").fetchone()  # type: ignore[misc]
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        (shared,) = setup.execute("SELECT id FROM lists WHERE owner_id = %s", (ann,)).fetchone()  # type: ignore[misc]
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (shared, bob))
        (todo,) = setup.execute(  # type: ignore[misc]
            "INSERT INTO todos (title, list_id) SELECT 'his', id FROM lists WHERE owner_id = %s RETURNING id", (bob,)
        ).fetchone()
    return bob, shared, todo


def _ended(run: Callable[[], object], outcomes: dict[str, str], name: str) -> threading.Thread:
    """`run` in a thread of its own; its outcome in `outcomes[name]`: 'committed' or the SQLSTATE."""

    def go() -> None:
        try:
            run()
            outcomes[name] = "committed"
        except psycopg.Error as exc:
            outcomes[name] = exc.sqlstate or repr(exc)

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def test_psql_s_member_removal_and_the_member_s_deletion(journaled_db: Journaled) -> None:
    """Two transactions by hand: one deletes bob's member row of ann's list
    and holds it; the other deletes bob, whose cascade waits on that row,
    having taken ann's list FOR UPDATE first in decoded mode (sql/021). At
    the removal's commit, decoded mode's journal takes the list FOR UPDATE
    (sql/011) and waits for the deletion, which waits for it: PostgreSQL
    ends one (40P01; mostly the deletion, which waited first, but seen
    both) and the other commits, with nothing of bob's lost. No trigger can order the removal
    (the next test), and 021 cannot take the member row first without
    deadlocking the app's writes (docs/reliability.md, section 12). Trigger
    mode's commit takes no list: the deletion waits, then both commit."""
    bob, shared, todo = _member_of_annes(journaled_db.dsn)
    outcomes: dict[str, str] = {}
    with psycopg.connect(journaled_db.dsn) as removal, psycopg.connect(journaled_db.dsn, autocommit=True) as probe:
        removed = removal.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (shared, bob))
        assert removed.rowcount == 1

        def delete() -> None:
            with psycopg.connect(journaled_db.dsn) as deletion:
                deletion.execute("DELETE FROM people WHERE id = %s", (bob,))

        deleting = _ended(delete, outcomes, "deletion")
        wait_until(lambda: queued_on(probe, removal.info.backend_pid) == ["list_members"], timeout=10)
        _ended(removal.commit, outcomes, "removal").join(20)
        deleting.join(20)
        member = probe.execute("SELECT count(*) FROM list_members WHERE list_id = %s AND person_id = %s", (shared, bob))
        assert member.fetchone() == (0,)
        kept = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
        his = probe.execute("SELECT count(*) FROM todos WHERE id = %s", (todo,)).fetchone()
        journaled(probe)
        (entries,) = probe.execute(  # type: ignore[misc]
            "SELECT count(*) FROM todo_changes WHERE op = 'member_removed' AND person_id = %s AND list_before = %s",
            (bob, shared),
        ).fetchone()
        annes = probe.execute("SELECT count(*) FROM lists WHERE id = %s", (shared,)).fetchone()
    # Bob's removal is journaled once, by whichever committed; ann's list stays.
    assert entries == 1 and annes == (1,)
    if journaled_db.journal == "trigger":
        assert outcomes == {"removal": "committed", "deletion": "committed"}
        assert kept == his == (0,)
        return
    # Either may be the one ended: the other's work is all there.
    assert sorted(outcomes.values()) == ["40P01", "committed"], outcomes
    gone = (1,) if outcomes["deletion"] == "40P01" else (0,)
    assert kept == his == gone


def test_a_member_row_is_locked_before_its_before_delete_trigger_runs(db_dsn: str) -> None:
    """Why no trigger orders psql's member removal as the app's (the list
    first): a BEFORE DELETE ROW trigger of list_members runs with the row
    already locked (GetTupleForTrigger). The test's own trigger waits on an
    advisory lock the test holds; meanwhile the row cannot be locked."""
    bob, shared, _ = _member_of_annes(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        setup.execute(
            "CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_advisory_xact_lock(42); RETURN OLD; END $$;"
            " CREATE TRIGGER a_held BEFORE DELETE ON list_members FOR EACH ROW EXECUTE FUNCTION held()"
        )
    outcomes: dict[str, str] = {}
    with psycopg.connect(db_dsn) as holder, psycopg.connect(db_dsn) as probe:
        holder.execute("SELECT pg_advisory_xact_lock(42)")

        def remove() -> None:
            with psycopg.connect(db_dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (shared, bob))

        removing = _ended(remove, outcomes, "removal")
        wait_until(lambda: probe.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone() == (1,), timeout=10)
        probe.rollback()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            member_row_free(probe, str(shared), str(bob))
        holder.rollback()
        removing.join(10)
    assert outcomes == {"removal": "committed"}


def _across_two(dsn: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """bob, an editor of ann's and carl's default lists, with one open todo
    in each, the one in the list of the greater id written first (a scan of
    todos meets it first). Returns (bob, the list of the lesser id, the other)."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        shared = []
        for name in ("ann", "carl"):
            setup.execute("INSERT INTO people (username) VALUES (%s)", (name,))
            (listed,) = setup.execute(  # type: ignore[misc]
                "SELECT l.id FROM lists l JOIN people p ON p.id = l.owner_id WHERE p.username = %s", (name,)
            ).fetchone()
            setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (listed, bob))
            shared.append(listed)
        first, second = sorted(shared)
        for listed in (second, first):
            setup.execute("INSERT INTO todos (title, list_id) VALUES ('open', %s)", (listed,))
    return bob, first, second


def _behind_deletion(
    journaled_db: Journaled, bob: uuid.UUID, held: tuple[str, uuid.UUID], write: str = "set_all_completed",
    params: dict[str, object] | None = None, plan: str = "auto",
) -> dict[str, str]:
    """The row `held` (table, id) locked by a transaction by hand; psql's
    DELETE FROM people of bob queued for it; then bob's `write` (the app's
    statement, prepared; by default completeAll with no list named) queued
    behind the deletion; then the held row let go. How each ended."""
    table, row = held
    outcomes: dict[str, str] = {}
    dsn = journaled_db.dsn
    with (
        psycopg.connect(dsn) as holder,
        psycopg.connect(dsn) as deletion,
        psycopg.connect(dsn, autocommit=True) as writer,
        psycopg.connect(dsn, autocommit=True) as probe,
    ):
        holder.execute(f"SELECT FROM {table} WHERE id = %s FOR UPDATE", (row,))  # type: ignore[arg-type]
        writer.execute(f"SET plan_cache_mode = {plan}")  # type: ignore[arg-type]

        def delete() -> None:
            deletion.execute("DELETE FROM people WHERE id = %s", (bob,))
            deletion.commit()

        deleting = _ended(delete, outcomes, "deletion")
        wait_until(lambda: queued_on(probe, holder.info.backend_pid) == [table], timeout=10)
        values = params or {"completed": True, "ids": None, "actor": bob, "list": None, "limit": 100}
        statement = getattr(writes.statements(journaled_db.journal), write).plain
        writing = _ended(lambda: writer.execute(statement, values, prepare=True).fetchall(), outcomes, "write")

        def behind_the_deletion() -> bool:
            blocking = probe.execute("SELECT pg_blocking_pids(%s)", (writer.info.backend_pid,)).fetchone()
            return blocking is not None and deletion.info.backend_pid in blocking[0]

        wait_until(behind_the_deletion, timeout=10)
        holder.rollback()
        deleting.join(20)
        writing.join(20)
    return outcomes


@DECODED
@pytest.mark.parametrize("plan", ["auto", "force_generic_plan"])
def test_a_statement_across_lists_takes_them_in_id_order(journaled_db: Journaled, plan: str) -> None:
    """psql's DELETE FROM people takes the person's lists in id order
    (sql/021); bob's own completeAll with no list named (core/writes.py)
    across two of them takes them in id order too, before any row, so it
    queues behind the deletion holding nothing. The lesser list is held (a
    transaction by hand) so that the deletion waits for it first, then the
    write. Before, the write took its lists as its scan of todos met them:
    the greater first, then it queued for the lesser behind the deletion,
    which then waited for the greater: one of them ended with 40P01. The
    same with the statement prepared and planned for any parameters (the
    app prepares it, core/writes.py), where the lists' lock is a Param."""
    bob, first, _ = _across_two(journaled_db.dsn)
    outcomes = _behind_deletion(journaled_db, bob, ("lists", first), plan=plan)
    with psycopg.connect(journaled_db.dsn) as probe:
        people = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
        done = probe.execute("SELECT count(*) FROM todos WHERE completed").fetchone()
    assert outcomes == {"deletion": "committed", "write": "committed"}
    # The write ran after the deletion: bob was nobody's editor any more.
    assert people == (0,) and done == (0,)


def _owning_two(dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    """bob, the owner of two lists besides his default, the earlier made
    of the greater id (a cascade meets it first, an id order last), with one
    open todo in each, the one of the later list written first. Returns
    (bob, the todo of the earlier list)."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        made = sorted((uuid.uuid4(), uuid.uuid4()), reverse=True)
        for listed in made:
            setup.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'his')", (listed, bob))
            setup.execute("INSERT INTO list_members VALUES (%s, %s, 'owner')", (listed, bob))
        setup.execute("INSERT INTO todos (title, list_id) VALUES ('open', %s)", (made[1],))
        (earlier,) = setup.execute(  # type: ignore[misc]
            "INSERT INTO todos (title, list_id) VALUES ('open', %s) RETURNING id", (made[0],)
        ).fetchone()
    return bob, earlier


def test_a_statement_across_own_lists_and_their_owner_s_deletion(journaled_db: Journaled) -> None:
    """bob's completeAll across two lists of his own, while psql deletes
    him: the deletion's cascade deletes his lists' todos list by list. The
    todo of his first list is held (a transaction by hand), so the deletion
    queues for it first, then the write. Both take his lists in id order
    before any todo (sql/022 in trigger mode too, core/writes.py): the write
    waits for the deletion holding nothing, and then finds nothing. Before,
    in trigger mode, neither took a list: the write changed the todo of his
    second list, queued for the first's behind the deletion, which then
    waited for the second's: the write ended with 40P01."""
    bob, earlier = _owning_two(journaled_db.dsn)
    outcomes = _behind_deletion(journaled_db, bob, ("todos", earlier))
    with psycopg.connect(journaled_db.dsn) as probe:
        people = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
        todos = probe.execute("SELECT count(*) FROM todos").fetchone()
    assert outcomes == {"deletion": "committed", "write": "committed"}
    assert people == (0,) and todos == (0,)


def test_a_move_between_two_of_a_person_s_lists_at_their_deletion(journaled_db: Journaled) -> None:
    """bob's moveTodo from one list of his to another, while psql deletes
    him, with the target list held so that the deletion (which takes his
    lists in id order, sql/021 and 022) waits for it first. In trigger mode
    the move takes its row first and the target list at the statement's
    end (its foreign key); the deletion, holding the lists, then waits on
    the row in its cascade: PostgreSQL ends one (40P01), the other commits,
    and nothing else is lost (the app runs its statement once more,
    core/database.statement_rows). Left so: taking the two lists first
    costs every move 8 to 10 buffers, 1.5 times its execution
    (docs/reliability.md, section 12). Decoded, the move's plan checks its
    lists (and waits for the deletion, holding nothing) before it locks its
    row: in this order both commit, the move finding nothing; with the
    target's id the greater and another member's write holding it, decoded
    mode can end one of them too (tests/test_review21_move_deletion.py)."""
    with psycopg.connect(journaled_db.dsn, autocommit=True) as setup:
        (bob,) = setup.execute("INSERT INTO people (username) VALUES ('bob') RETURNING id").fetchone()  # type: ignore[misc]
        source, target = sorted((uuid.uuid4(), uuid.uuid4()))
        for listed in (source, target):
            setup.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'his')", (listed, bob))
            setup.execute("INSERT INTO list_members VALUES (%s, %s, 'owner')", (listed, bob))
        (todo,) = setup.execute(  # type: ignore[misc]
            "INSERT INTO todos (title, list_id) VALUES ('moved', %s) RETURNING id", (source,)
        ).fetchone()
    params = {"id": todo, "list": target, "title": None, "completed": None, "actor": bob}
    outcomes = _behind_deletion(journaled_db, bob, ("lists", target), "move", params)
    with psycopg.connect(journaled_db.dsn) as probe:
        people = probe.execute("SELECT count(*) FROM people WHERE id = %s", (bob,)).fetchone()
        moved = probe.execute("SELECT list_id FROM todos WHERE id = %s", (todo,)).fetchall()
    if journaled_db.journal == "trigger":
        assert sorted(outcomes.values()) == ["40P01", "committed"], outcomes
    else:
        assert "committed" in outcomes.values() and set(outcomes.values()) <= {"40P01", "committed"}, outcomes
    if outcomes["deletion"] == "committed":
        assert people == (0,) and moved == []
    else:
        assert people == (1,) and moved == [(target,)]
