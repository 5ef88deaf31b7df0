"""Members removed by hand and their lists then deleted in the same
transaction (sql/027), in both journal modes: each removed member's
member_removed comes after the list's todos' deletions and before its
list_deleted, once, named, and the journal replays into each person's view
as tests/test_review25_deletions.py replays it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Journaled
from tests.test_review25_deletions import Conn, World, _scenario, _share, _show


def _order(entries: list[dict[str, Any]], list_id: str) -> list[tuple[str, str | None]]:
    """The entries of one list (its rows' and its own), op and person, in position order."""
    return [(e["op"], e["person_id"]) for e in entries if list_id in (e["list_before"], e["list_after"])]


def _removed_after_the_rows(entries: list[dict[str, Any]], list_id: str, people: set[str]) -> None:
    order = _order(entries, list_id)
    ops = [op for op, _ in order]
    assert ops[-1] == "list_deleted", _show(entries)
    last_row = max((i for i, op in enumerate(ops) if op in ("created", "updated", "deleted")), default=-1)
    after = {person for op, person in order[last_row + 1:-1] if op == "member_removed"}
    assert people <= after, _show(entries)
    assert sum(op == "member_removed" for op in ops) == len({p for op, p in order if op == "member_removed"})


def test_members_of_two_lists_removed_then_both_deleted_in_one_statement(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id IN (%s, %s)", (w.bob_list, w.ann, w.cy))
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.cy_list, w.bob))
        tx.execute("UPDATE todos SET title = title || '!' WHERE list_id = %s", (w.dee_list,))
        tx.execute("DELETE FROM lists WHERE id IN (%s, %s)", (w.bob_list, w.cy_list))

    world, entries = _scenario(journaled_db, run)
    _removed_after_the_rows(entries, world.bob_list, {world.ann, world.cy})
    _removed_after_the_rows(entries, world.cy_list, {world.bob})


def test_a_member_removed_then_the_lists_todos_changed_and_the_list_deleted(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("UPDATE todos SET completed = true WHERE title = 'bob 1'")
        tx.execute("DELETE FROM todos WHERE title = 'bob 2'")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    _removed_after_the_rows(entries, world.bob_list, {world.cy})


def test_a_member_removed_then_the_lists_owner_deleted(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("DELETE FROM people WHERE id = %s", (w.bob,))

    world, entries = _scenario(journaled_db, run)
    _removed_after_the_rows(entries, world.bob_list, {world.cy})


def test_a_member_removed_from_a_list_without_todos_then_it_deleted(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM todos WHERE list_id = %s", (w.bob_list,))
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    _removed_after_the_rows(entries, world.bob_list, {world.cy})


def test_a_member_removed_in_a_function_then_shared_again_and_the_list_deleted(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute(
            f"DO $$ BEGIN DELETE FROM list_members WHERE list_id = '{w.bob_list}' AND person_id = '{w.cy}'; END $$"
        )
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.ann))
        _share(tx, w.bob_list, w.dee, "viewer")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    _removed_after_the_rows(entries, world.bob_list, {world.cy, world.ann, world.dee})


def test_a_member_removed_by_a_statement_that_deletes_the_list_itself(journaled_db: Journaled) -> None:
    # The list's deletion (and another's after it) runs inside the removal's statement (its
    # RETURNING): the lists' entries are queued before the removal's, which is written at
    # once, after list_deleted (as before sql/027), not lost waiting for it.
    def run(w: World, tx: Conn) -> None:
        tx.execute(
            "CREATE FUNCTION pg_temp.drop_lists(l uuid, other uuid) RETURNS int LANGUAGE plpgsql AS"
            " $$ BEGIN DELETE FROM lists WHERE id = l; DELETE FROM lists WHERE id = other; RETURN 1; END $$"
        )
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s"
                   " RETURNING pg_temp.drop_lists(list_id, %s)", (w.bob_list, w.cy, w.dee_list))

    world, entries = _scenario(journaled_db, run)
    assert [e["detail"]["reason"] for e in entries if e["op"] == "member_removed" and e["person_id"] == world.cy] == [
        "list_deleted"], _show(entries)


def test_a_member_removed_shared_again_with_a_new_role_then_the_list_deleted(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        _share(tx, w.bob_list, w.cy, "viewer")
        tx.execute("UPDATE list_members SET role = 'editor' WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    order = _order(entries, world.bob_list)
    last_row = max(i for i, (op, _) in enumerate(order) if op == "deleted")
    assert [op for op, p in order if p == world.cy] == ["member_removed", "member_added", "member_updated", "member_removed"]
    assert next(i for i, (_, p) in enumerate(order) if p == world.cy) > last_row, _show(entries)
    assert [(e["detail"]["role_before"], e["detail"]["role_after"], e["detail"]["username"], e["detail"].get("reason"))
            for e in entries if e["person_id"] == world.cy and e["list_after"] == world.bob_list] == [
        ("editor", None, "cy", "list_deleted"), (None, "viewer", "cy", "list_deleted"),
        ("viewer", "editor", "cy", None), ("editor", None, "cy", "list_deleted")]
