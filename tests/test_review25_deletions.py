"""Review of sql/024 and sql/025 from psql: people and lists deleted by hand
in transactions that do other writes too, under savepoints rolled back,
inside functions, made again with the same id or username. Whatever commits,
the journal read back must replay, entry by entry in position order, into
the database as it stands: once for the rows (each todo created, changed and
deleted once), and once per person by the design's view
(docs/design/prototypes/visibility.py, as tests/oracle.py uses it): a row
arrives before it changes, leaves once, and each person ends with exactly
the rows and lists they may see. Both journal modes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.oracle import View

Conn = psycopg.Connection[Any]
REFUSED = "change the members of list .* and its todos in separate transactions"


@dataclass
class Start:
    """The database before a scenario: its journal's end, who sees which list, the rows."""

    position: int
    members: dict[str, set[str]]
    rows: dict[str, dict[str, tuple[str, bool]]]  # list -> todo id -> (title, completed)
    names: dict[str, str] = field(default_factory=dict)  # person -> username


def _state(conn: Conn) -> Start:
    journaled(conn)
    (position,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
    members: dict[str, set[str]] = {str(p): set() for (p,) in conn.execute("SELECT id FROM people")}
    for person, list_id in conn.execute("SELECT person_id, list_id FROM list_members"):
        members[str(person)].add(str(list_id))
    rows: dict[str, dict[str, tuple[str, bool]]] = {str(i): {} for (i,) in conn.execute("SELECT id FROM lists")}
    for todo, list_id, title, completed in conn.execute("SELECT id, list_id, title, completed FROM todos"):
        rows[str(list_id)][str(todo)] = (title, completed)
    names = {str(p): n for p, n in conn.execute("SELECT id, username FROM people")}
    return Start(position, members, rows, names)


def _values(row: dict[str, Any] | None) -> tuple[str, bool]:
    assert row is not None
    return (row["title"], row["completed"])


def _replay(conn: Conn, start: Start) -> list[dict[str, Any]]:
    """The journal since `start` replays into the database as it now stands;
    the entries, for a test's own checks."""
    journaled(conn)
    end = _state(conn)
    entries = [
        dict(zip(("position", "op", "todo_id", "todo", "list_before", "list_after", "person_id", "detail", "before"),
                 (pos, op, None if t is None else str(t), todo, None if lb is None else str(lb),
                  None if la is None else str(la), None if p is None else str(p), detail, before), strict=True))
        for pos, op, t, todo, lb, la, p, detail, before in conn.execute(
            "SELECT position, op, todo_id, todo, list_before, list_after, person_id, detail, before"
            " FROM todo_changes WHERE position > %s ORDER BY position", (start.position,))
    ]
    # The rows: each created, changed and deleted once, in order.
    rows = {todo: (lst, v) for lst, found in start.rows.items() for todo, v in found.items()}
    for e in entries:
        if e["op"] == "created":
            assert e["todo_id"] not in rows, e
            rows[e["todo_id"]] = (e["list_after"], _values(e["todo"]))
        elif e["op"] == "updated":
            assert rows.get(e["todo_id"], (None,))[0] == e["list_before"], e
            rows[e["todo_id"]] = (e["list_after"], _values(e["todo"]))
        elif e["op"] == "deleted":
            assert rows.pop(e["todo_id"], (None,))[0] == e["list_before"], e
    assert rows == {todo: (lst, v) for lst, found in end.rows.items() for todo, v in found.items()}
    # Each person: their view, entry by entry.
    for person in set(start.members) | set(end.members):
        view = View(person, set(start.members.get(person, set())))
        seen = {todo: v for lst in view.lists for todo, v in start.rows.get(lst, {}).items()}
        for e in entries:
            kind = view.step(e)
            todo = e["todo_id"]
            if kind == "update" and e["op"] == "created":
                assert todo not in seen, (person, e)
                seen[todo] = _values(e["todo"])
            elif kind == "update" and e["op"] == "updated":
                assert todo in seen, (person, e)
                seen[todo] = _values(e["todo"])
            elif kind == "update" and e["op"] == "deleted":
                assert seen.pop(todo, None) is not None, (person, e)
            elif kind == "arrival":
                assert todo not in seen, (person, e)
                seen[todo] = _values(e["todo"])
            elif kind == "removal":
                assert seen.pop(todo, None) is not None, (person, e)
            elif kind == "member":
                # Named as they were (made again with the id and another name and deleted again: their last name).
                named = {start.names.get(e["person_id"]), end.names.get(e["person_id"])} - {None}
                assert e["detail"]["username"] in named or (e["detail"]["username"] and not named), e
        if person in end.members:
            assert view.lists == end.members[person], person
            assert seen == {t: v for lst in end.members[person] for t, v in end.rows[lst].items()}, (person, _show(entries))
        else:
            assert seen == {} and view.lists == set(), (person, seen, view.lists, _show(entries))
    return entries


def _show(entries: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{e['position']} {e['op']} {e['todo_id'] and e['todo_id'][:4]} {e['list_before'] and e['list_before'][:4]}"
        f" {e['list_after'] and e['list_after'][:4]} {e['person_id'] and e['person_id'][:4]} {e['detail'] and e['detail'].get('username')}"
        for e in entries)


def _person(conn: Conn, name: str) -> tuple[str, str]:
    """A person (by psql, with their default list) and that list, with two todos."""
    (person,) = conn.execute("INSERT INTO people (username) VALUES (%s) RETURNING id", (name,)).fetchone()  # type: ignore[misc]
    (default,) = conn.execute("SELECT id FROM lists WHERE owner_id = %s", (person,)).fetchone()  # type: ignore[misc]
    conn.execute("INSERT INTO todos (title, list_id) VALUES (%s, %s), (%s, %s)",
                 (f"{name} 1", default, f"{name} 2", default))
    return str(person), str(default)


def _share(conn: Conn, list_id: str, person: str, role: str = "editor") -> None:
    conn.execute("INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, %s)", (list_id, person, role))


@dataclass
class World:
    conn: Conn
    dsn: str
    ann: str
    ann_list: str
    bob: str
    bob_list: str
    cy: str
    cy_list: str
    dee: str
    dee_list: str  # shared with no one: its todos change beside any deletion of the others'


def _world(dsn: str) -> World:
    """ann, bob and cy, each sharing their default list with the other two; dee."""
    conn = psycopg.connect(dsn, autocommit=True)
    (ann, ann_list), (bob, bob_list), (cy, cy_list), (dee, dee_list) = (
        _person(conn, n) for n in ("ann", "bob", "cy", "dee")
    )
    for owner_list, others in ((ann_list, (bob, cy)), (bob_list, (ann, cy)), (cy_list, (ann, bob))):
        for other in others:
            _share(conn, owner_list, other)
    return World(conn, dsn, ann, ann_list, bob, bob_list, cy, cy_list, dee, dee_list)


def _scenario(db: Journaled, run: Callable[[World, Conn], None]) -> tuple[World, list[dict[str, Any]]]:
    """`run` in one transaction of its own (psql's: no app settings), committed; the journal replayed."""
    world = _world(db.dsn)
    with world.conn:
        start = _state(world.conn)
        with psycopg.connect(db.dsn) as tx:
            run(world, tx)
            tx.commit()
            # The names' table goes with the transaction.
            assert tx.execute("SELECT to_regclass('pg_temp.people_deleted_names')").fetchone() == (None,)
        return world, _replay(world.conn, start)


def test_a_list_deletion_rolled_back_to_a_savepoint_leaves_its_list_marked(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("SAVEPOINT s")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.ann_list,))
        tx.execute("ROLLBACK TO SAVEPOINT s")
        assert tx.execute("SELECT current_setting('app.list_emptying', true)").fetchone() in ((""), ("",), (None,))
        tx.execute("UPDATE todos SET title = 'kept' WHERE list_id = %s", (w.ann_list,))
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.ann_list, w.bob))

    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=REFUSED):
        _scenario(journaled_db, run)


def test_a_person_deleted_under_a_savepoint_rolled_back_then_another(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("SAVEPOINT s")
        tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
        tx.execute("ROLLBACK TO SAVEPOINT s")
        assert tx.execute("SELECT to_regclass('pg_temp.people_deleted_names')").fetchone() == (None,)
        tx.execute("DELETE FROM people WHERE id = %s", (w.bob,))
        tx.execute("SAVEPOINT t")
        tx.execute("DELETE FROM people WHERE id = %s", (w.cy,))
        tx.execute("ROLLBACK TO SAVEPOINT t")
        tx.execute("UPDATE todos SET completed = true WHERE list_id = %s", (w.dee_list,))

    world, entries = _scenario(journaled_db, run)
    removed = {e["person_id"] for e in entries if e["op"] == "member_removed" and e["detail"]["reason"] is None}
    assert removed == {world.bob}


def test_people_deleted_and_made_again_with_their_usernames(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM people WHERE id IN (%s, %s)", (w.ann, w.bob))
        (ann,) = tx.execute("INSERT INTO people (username) VALUES ('ann') RETURNING id").fetchone()  # type: ignore[misc]
        _share(tx, w.cy_list, str(ann))
        tx.execute("DELETE FROM people WHERE id = %s", (ann,))
        tx.execute("INSERT INTO people (id, username) VALUES (%s, 'bob')", (w.bob,))
        _share(tx, w.cy_list, w.bob, "viewer")

    _, entries = _scenario(journaled_db, run)
    names = {e["detail"]["username"] for e in entries if e["op"].startswith("member")}
    assert names <= {"ann", "bob", "cy"}


def test_a_person_deleted_and_made_again_with_the_same_id(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
        tx.execute("INSERT INTO people (id, username) VALUES (%s, 'ann')", (w.ann,))
        _share(tx, w.cy_list, w.ann, "viewer")

    _, entries = _scenario(journaled_db, run)
    assert {e["detail"]["username"] for e in entries if e["op"].startswith("member")} == {"ann", "bob", "cy"}


def test_a_member_removed_then_their_list_deleted_in_one_transaction(journaled_db: Journaled) -> None:
    # cy's member_removed comes after the list's todos' deletions, which cy sees, and before its
    # list_deleted. Before sql/027, in trigger mode, it was written first (queued first, the list
    # gone at commit: "list_deleted", no removals) and cy's streams kept bob's rows.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    of_list = [(e["op"], e["person_id"]) for e in entries if world.bob_list in (e["list_before"], e["list_after"])]
    assert of_list[:2] == [("deleted", None), ("deleted", None)], _show(entries)
    assert of_list[-1] == ("list_deleted", None)
    assert ("member_removed", world.cy) in of_list[2:-1]
    removed = [e for e in entries if e["op"] == "member_removed" and e["person_id"] == world.cy]
    assert [(e["detail"]["reason"], e["detail"]["username"], e["detail"]["role_before"]) for e in removed] == [
        ("list_deleted", "cy", "editor")]


def test_owners_of_each_others_lists_deleted_in_one_statement_with_other_writes(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("UPDATE todos SET title = title || '!' WHERE list_id = %s", (w.ann_list,))
        tx.execute("INSERT INTO todos (title, list_id) VALUES ('late', %s)", (w.bob_list,))
        tx.execute("UPDATE todos SET list_id = %s WHERE title = 'ann 2'", (w.bob_list,))
        tx.execute("DELETE FROM people WHERE id IN (%s, %s)", (w.ann, w.bob))
        tx.execute("UPDATE todos SET completed = true WHERE list_id = %s", (w.dee_list,))

    _scenario(journaled_db, run)


def test_a_list_deleted_and_made_again_with_todos_is_refused(journaled_db: Journaled) -> None:
    # Its old members' removals are read at commit, where the list stands again with the new todos.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))
        tx.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'again')", (w.bob_list, w.bob))
        tx.execute("INSERT INTO todos (title, list_id) VALUES ('new', %s)", (w.bob_list,))

    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=REFUSED):
        _scenario(journaled_db, run)


def test_a_list_deleted_and_made_again_with_members_only(journaled_db: Journaled) -> None:
    # Refused in trigger mode (its deleted todos are marked at commit, where it stands again), let through in decoded mode.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))
        tx.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'again')", (w.bob_list, w.bob))
        _share(tx, w.bob_list, w.bob, "owner")
        _share(tx, w.bob_list, w.ann, "viewer")

    if journaled_db.journal == "trigger":
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=REFUSED):
            _scenario(journaled_db, run)
    else:
        _scenario(journaled_db, run)


def test_a_todo_moved_out_of_a_list_then_deleted_with_it(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("UPDATE todos SET list_id = %s WHERE title = 'ann 1'", (w.cy_list,))
        tx.execute("DELETE FROM lists WHERE id = %s", (w.ann_list,))
        tx.execute("UPDATE todos SET list_id = %s WHERE title = 'ann 1'", (w.bob_list,))

    _scenario(journaled_db, run)


def test_deletions_inside_a_function_with_an_exception_caught(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute(
            """DO $$
            BEGIN
                BEGIN
                    DELETE FROM people WHERE id = %(ann)s;
                    DELETE FROM lists WHERE id = %(bob_list)s;
                    RAISE EXCEPTION 'undone';
                EXCEPTION WHEN raise_exception THEN
                    NULL;
                END;
                UPDATE todos SET title = 'after' WHERE list_id = %(dee_list)s;
                DELETE FROM list_members WHERE list_id = %(bob_list)s AND person_id = %(cy)s;
                DELETE FROM people WHERE id = %(cy)s;
            END $$""".replace("%(ann)s", f"'{w.ann}'").replace("%(bob_list)s", f"'{w.bob_list}'")
            .replace("%(dee_list)s", f"'{w.dee_list}'").replace("%(cy)s", f"'{w.cy}'")
        )

    _scenario(journaled_db, run)


def test_a_deletion_whose_list_emptying_fails_midway_is_undone_whole(journaled_db: Journaled) -> None:
    # A member row that refuses its deletion (a trigger of the reader's own):
    # the list's todos were deleted, app.list_emptying set; the savepoint undoes both.
    def run(w: World, tx: Conn) -> None:
        tx.execute(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'kept'; END $$"
        )
        tx.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON list_members FOR EACH ROW"
            f" WHEN (OLD.person_id = '{w.cy}' AND OLD.list_id = '{w.ann_list}') EXECUTE FUNCTION pg_temp.refuse()"
        )
        tx.execute("SAVEPOINT s")
        with pytest.raises(psycopg.errors.RaiseException):
            tx.execute("DELETE FROM lists WHERE id = %s", (w.ann_list,))
        tx.execute("ROLLBACK TO SAVEPOINT s")
        tx.execute("DROP TRIGGER refuse ON list_members")
        tx.execute("UPDATE todos SET title = 'still here' WHERE list_id = %s", (w.ann_list,))
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.ann_list, w.bob))

    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=REFUSED):
        _scenario(journaled_db, run)


def test_a_role_without_temporary_deletes_people_named(journaled_db: Journaled) -> None:
    # 024's table of names needs the TEMPORARY privilege: without it, no person could be deleted.
    world = _world(journaled_db.dsn)
    role = f"r25_{uuid.uuid4().hex[:8]}"
    with world.conn as conn:
        (dbname,) = conn.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
        conn.execute(f"CREATE ROLE {role}")
        conn.execute(f"REVOKE TEMPORARY ON DATABASE {dbname} FROM PUBLIC")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        start = _state(conn)
        try:
            with psycopg.connect(journaled_db.dsn) as tx:
                tx.execute(f"SET ROLE {role}")
                tx.execute("DELETE FROM people WHERE id IN (%s, %s)", (world.ann, world.bob))
                tx.execute("UPDATE todos SET completed = true WHERE list_id = %s", (world.dee_list,))
                tx.commit()
        finally:
            conn.execute(f"GRANT TEMPORARY ON DATABASE {dbname} TO PUBLIC")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
        entries = _replay(conn, start)
    assert {e["detail"]["username"] for e in entries if e["op"] == "member_removed"} == {"ann", "bob", "cy"}
