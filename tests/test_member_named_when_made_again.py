"""A person deleted by hand and a person made with their id in the same
transaction (sql/028): each member entry names the person it is of, the one
deleted or the one made, however many times the id was deleted and made
again, and whether the entry waited for its list's deletion (sql/027).
Both journal modes; the journal replays as tests/test_review25_deletions.py
replays it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.test_review25_deletions import Conn, World, _scenario, _share, _show, _world


def _named(entries: list[dict[str, Any]], person: str) -> list[tuple[str, str, str]]:
    """A person id's member entries: op, list and the username they name, in order."""
    return [(e["op"], e["list_after"], e["detail"]["username"]) for e in entries
            if e["op"].startswith("member") and e["person_id"] == person]


def _made_again(tx: Conn, person: str, username: str) -> str:
    """`person`'s id made again for `username`: their new default list."""
    tx.execute("INSERT INTO people (id, username) VALUES (%s, %s)", (person, username))
    (default,) = tx.execute("SELECT id FROM lists WHERE owner_id = %s", (person,)).fetchone()  # type: ignore[misc]
    return str(default)


def test_a_person_deleted_and_their_id_made_again_for_another_username(journaled_db: Journaled) -> None:
    # ann's removals were named zed: read at commit from people, where the id stood again.
    made: dict[str, str] = {}

    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
        made["default"] = _made_again(tx, w.ann, "zed")
        _share(tx, w.cy_list, w.ann, "viewer")

    world, entries = _scenario(journaled_db, run)
    assert sorted(_named(entries, world.ann)) == sorted([
        ("member_removed", world.ann_list, "ann"), ("member_removed", world.bob_list, "ann"),
        ("member_removed", world.cy_list, "ann"), ("member_added", made["default"], "zed"),
        ("member_added", world.cy_list, "zed")]), _show(entries)


def _deleted_twice(w: World, tx: Conn, middle: str, last: str) -> None:
    tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
    _made_again(tx, w.ann, middle)
    _share(tx, w.cy_list, w.ann, "viewer")
    tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
    _made_again(tx, w.ann, last)
    _share(tx, w.bob_list, w.ann, "editor")


def test_a_person_deleted_made_again_and_deleted_again(journaled_db: Journaled) -> None:
    # Each era of the id named as it was; 024 named the first by the last name deleted.
    world, entries = _scenario(journaled_db, lambda w, tx: _deleted_twice(w, tx, "zed", "zed"))
    names = [name for _, _, name in _named(entries, world.ann)]
    # ann's three removals, zed's two arrivals and two removals, the second zed's two arrivals.
    assert names == ["ann"] * 3 + ["zed"] * 6, _show(entries)


@pytest.mark.parametrize("temporary", [True, False])
def test_three_people_of_one_id_each_named(journaled_db: Journaled, temporary: bool) -> None:
    # Not replayed: tests/test_review25_deletions.py's replay takes a member's name for the id's
    # first or last, and zed is neither. Without the TEMPORARY privilege the names are kept in
    # settings (sql/026), one per deletion.
    world = _world(journaled_db.dsn)
    role = f"r28_{uuid.uuid4().hex[:8]}"
    with world.conn as conn:
        (dbname,) = conn.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
        if not temporary:
            conn.execute(f"CREATE ROLE {role}")
            conn.execute(f"REVOKE TEMPORARY ON DATABASE {dbname} FROM PUBLIC")
            conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        journaled(conn)
        (after,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
        try:
            with psycopg.connect(journaled_db.dsn) as tx:
                if not temporary:
                    tx.execute(f"SET ROLE {role}")
                _deleted_twice(world, tx, "zed", "yan")
                assert tx.execute("SELECT to_regclass('pg_temp.people_deleted_names') IS NULL").fetchone() == (
                    not temporary,)
        finally:
            if not temporary:
                conn.execute(f"GRANT TEMPORARY ON DATABASE {dbname} TO PUBLIC")
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")
        journaled(conn)
        names = [name for (name,) in conn.execute(
            "SELECT detail->>'username' FROM todo_changes WHERE position > %s AND person_id = %s"
            " AND op LIKE 'member%%' ORDER BY position", (after, world.ann))]
    assert names == ["ann"] * 3 + ["zed"] * 4 + ["yan"] * 2


def test_a_member_removed_then_deleted_made_again_and_the_list_deleted(journaled_db: Journaled) -> None:
    # ann's removal waits for bob's list's deletion (027), past the id made again: still ann's.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.ann))
        tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
        _made_again(tx, w.ann, "zed")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    assert [(op, name) for op, lst, name in _named(entries, world.ann) if lst == world.bob_list] == [
        ("member_removed", "ann")], _show(entries)
    assert {name for op, lst, name in _named(entries, world.ann) if op == "member_added"} == {"zed"}


def test_a_person_deleted_and_another_id_made_for_their_username(journaled_db: Journaled) -> None:
    made: dict[str, str] = {}

    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM people WHERE id = %s", (w.ann,))
        (made["ann"],) = tx.execute("INSERT INTO people (username) VALUES ('ann') RETURNING id").fetchone()  # type: ignore[misc]
        _share(tx, w.cy_list, str(made["ann"]), "viewer")
        tx.execute("DELETE FROM people WHERE id = %s", (made["ann"],))

    world, entries = _scenario(journaled_db, run)
    assert {name for _, _, name in _named(entries, world.ann)} == {"ann"}, _show(entries)
    assert {name for _, _, name in _named(entries, str(made["ann"]))} == {"ann"}, _show(entries)
    assert len(_named(entries, str(made["ann"]))) == 4, _show(entries)
