"""Member entries of lists deleted by hand whose list_deleted came before
them (sql/028): a removal whose own statement deletes its list and many
more, and a list deleted, made again with its id and deleted again around
members removed and shared by hand. Each entry is written once, and the
journal replays into each person's view as tests/test_review25_deletions.py
replays it. Both journal modes."""

from __future__ import annotations

from typing import Any

from tests.conftest import Journaled
from tests.test_review25_deletions import Conn, World, _scenario, _share, _show


def _lists(tx: Conn, owner: str, count: int) -> list[str]:
    """`count` more lists of `owner`'s, each with a todo."""
    made = [str(i) for (i,) in tx.execute(
        "INSERT INTO lists (owner_id, name) SELECT %s, 'more ' || g FROM generate_series(1, %s) g RETURNING id",
        (owner, count))]
    tx.execute("INSERT INTO todos (title, list_id) SELECT 'more', unnest(%s::uuid[])", (made,))
    return made


def _member(entries: list[dict[str, Any]], person: str, list_id: str) -> list[tuple[str, str | None]]:
    """A person's member entries of one list: op and reason, in order."""
    return [(e["op"], e["detail"].get("reason")) for e in entries
            if e["op"].startswith("member") and e["person_id"] == person and e["list_after"] == list_id]


def test_a_removal_whose_statement_deletes_its_list_and_nine_more(journaled_db: Journaled) -> None:
    # 027 remembered the last 8 lists journaled deleted: cy's removal, after 10 list_deleted, waited for ever.
    def run(w: World, tx: Conn) -> None:
        more = _lists(tx, w.dee, 9)
        tx.execute(
            "CREATE FUNCTION pg_temp.drop_lists(l uuid, more uuid[]) RETURNS int LANGUAGE plpgsql AS"
            " $$ BEGIN DELETE FROM lists WHERE id = l; DELETE FROM lists WHERE id = ANY(more); RETURN 1; END $$"
        )
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s"
                   " RETURNING pg_temp.drop_lists(list_id, %s)", (w.bob_list, w.cy, more))

    world, entries = _scenario(journaled_db, run)
    assert _member(entries, world.cy, world.bob_list) == [("member_removed", "list_deleted")], _show(entries)


def test_removals_each_deleting_many_lists_then_a_member_shared_and_its_list_deleted(journaled_db: Journaled) -> None:
    # Two removals written at once, each after its own list's list_deleted and 20 more; a share after
    # them still waits for its list's deletion, which comes later.
    def run(w: World, tx: Conn) -> None:
        tx.execute(
            "CREATE FUNCTION pg_temp.drop_lists(l uuid, more uuid[]) RETURNS int LANGUAGE plpgsql AS"
            " $$ BEGIN DELETE FROM lists WHERE id = l; DELETE FROM lists WHERE id = ANY(more); RETURN 1; END $$"
        )
        for list_id in (w.bob_list, w.cy_list):
            tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s"
                       " RETURNING pg_temp.drop_lists(list_id, %s)", (list_id, w.ann, _lists(tx, w.dee, 20)))
        _share(tx, w.ann_list, w.dee, "viewer")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.ann_list,))

    world, entries = _scenario(journaled_db, run)
    assert _member(entries, world.ann, world.bob_list) == [("member_removed", "list_deleted")], _show(entries)
    assert _member(entries, world.ann, world.cy_list) == [("member_removed", "list_deleted")], _show(entries)
    assert _member(entries, world.dee, world.ann_list) == [
        ("member_added", "list_deleted"), ("member_removed", "list_deleted")], _show(entries)


def test_a_list_deleted_made_again_with_its_id_and_deleted_again(journaled_db: Journaled) -> None:
    # Without todos (a list made again with its deleted todos' id marked is refused its members'
    # changes in trigger mode, tests/test_review25_deletions.py). cy's removal of the first list
    # comes before its list_deleted; ann's share of the second waits for the second's list_deleted,
    # not written at once for the first's.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM todos WHERE list_id = %s", (w.bob_list,))
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.cy))
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))
        tx.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'again')", (w.bob_list, w.bob))
        _share(tx, w.bob_list, w.bob, "owner")
        _share(tx, w.bob_list, w.cy, "viewer")
        tx.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (w.bob_list, w.bob))
        _share(tx, w.bob_list, w.ann, "viewer")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    of_list = [(e["op"], e["person_id"]) for e in entries
               if world.bob_list in (e["list_before"], e["list_after"]) and e["op"] not in ("deleted",)]
    first, second = (i for i, (op, _) in enumerate(of_list) if op == "list_deleted")
    created = of_list.index(("list_created", None))
    assert first < created < second == len(of_list) - 1, _show(entries)
    # The first list's members, all before its list_deleted; the second's, between its list_created and its list_deleted.
    assert sorted(p for op, p in of_list[:first] if op == "member_removed") == sorted(
        [world.bob, world.ann, world.cy]), _show(entries)
    assert sorted((op, p) for op, p in of_list[created + 1:second]) == sorted([
        ("member_added", world.bob), ("member_added", world.cy), ("member_removed", world.bob),
        ("member_added", world.ann), ("member_removed", world.ann), ("member_removed", world.cy)]), _show(entries)
    assert [op for op, p in of_list[created + 1:second] if p == world.bob] == ["member_added", "member_removed"]


def test_a_list_deleted_twice_with_members_shared_and_removed_in_a_function(journaled_db: Journaled) -> None:
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM todos WHERE list_id = %s", (w.cy_list,))
        tx.execute(f"""DO $$
            BEGIN
                DELETE FROM list_members WHERE list_id = '{w.cy_list}' AND person_id = '{w.ann}';
                DELETE FROM lists WHERE id = '{w.cy_list}';
                INSERT INTO lists (id, owner_id, name) VALUES ('{w.cy_list}', '{w.cy}', 'again');
                INSERT INTO list_members (list_id, person_id, role) VALUES ('{w.cy_list}', '{w.cy}', 'owner'),
                    ('{w.cy_list}', '{w.ann}', 'editor'), ('{w.cy_list}', '{w.dee}', 'viewer');
                UPDATE list_members SET role = 'viewer' WHERE list_id = '{w.cy_list}' AND person_id = '{w.ann}';
                DELETE FROM list_members WHERE list_id = '{w.cy_list}' AND person_id = '{w.dee}';
                DELETE FROM lists WHERE id = '{w.cy_list}';
            END $$""")

    world, entries = _scenario(journaled_db, run)
    assert _member(entries, world.ann, world.cy_list) == [
        ("member_removed", "list_deleted"), ("member_added", "list_deleted"), ("member_updated", None),
        ("member_removed", "list_deleted")], _show(entries)
    assert _member(entries, world.dee, world.cy_list) == [
        ("member_added", "list_deleted"), ("member_removed", "list_deleted")], _show(entries)


def test_a_list_made_again_with_a_todo_and_a_member_shared_then_deleted_again(journaled_db: Journaled) -> None:
    # The second list's share waits for its list_deleted, after its todo's deletion, as a share of
    # a list deleted does. 027 wrote it at once (the first list's list_deleted already written): in
    # trigger mode cy was then sent the deletion of a todo they never had.
    def run(w: World, tx: Conn) -> None:
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))
        tx.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'again')", (w.bob_list, w.bob))
        tx.execute("INSERT INTO todos (title, list_id) VALUES ('again', %s)", (w.bob_list,))
        _share(tx, w.bob_list, w.cy, "viewer")
        tx.execute("DELETE FROM lists WHERE id = %s", (w.bob_list,))

    world, entries = _scenario(journaled_db, run)
    (again,) = (e["todo_id"] for e in entries if e["op"] == "created" and e["todo"]["title"] == "again")
    of_list = [(e["op"], e["person_id"], e["todo_id"]) for e in entries
               if world.bob_list in (e["list_before"], e["list_after"])]
    # (Decoded mode journals the todo's two entries at their statements, before the lists'.)
    assert of_list[-3:] == [
        ("member_added", world.cy, None), ("member_removed", world.cy, None), ("list_deleted", None, None)], _show(entries)
    assert of_list.index(("deleted", None, again)) < len(of_list) - 3, _show(entries)
