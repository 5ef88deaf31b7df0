"""Lists deleted by hand in one transaction, each after a member removed
from it, cost the database the same per list whether they are n or 4n, in
both journal modes (sql/028): each removal waits at commit for its list's
list_deleted, and each list's deletion looks for the entries waiting for it
and remembers it was journaled. Judged on the backend's CPU time, as
tests/test_peopledel_growth.py judges a person's deletion."""

from __future__ import annotations

import psycopg

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.test_peopledel_growth import GROWTH, _backend_clock


def _deletion(dsn: str, owner: str, member: str) -> float:
    """`member` removed from each of `owner`'s lists but the default, then
    the lists deleted, in one transaction of its own: its backend's seconds."""
    with psycopg.connect(dsn) as conn:
        clock = _backend_clock(conn)
        start = clock()
        conn.execute("DELETE FROM list_members WHERE person_id = %s AND list_id IN"
                     " (SELECT id FROM lists WHERE owner_id = %s AND NOT is_default)", (member, owner))
        conn.execute("DELETE FROM lists WHERE owner_id = %s AND NOT is_default", (owner,))
        conn.commit()
        return clock() - start


def test_deleting_lists_after_their_members_grows_linearly_with_them(journaled_db: Journaled) -> None:
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        (owner,), (member,) = conn.execute(
            "INSERT INTO people (username) VALUES ('owner'), ('member') RETURNING id").fetchall()
        spent: list[float] = []
        for size in (1000, 4000):
            conn.execute(
                "WITH made AS (INSERT INTO lists (owner_id, name) SELECT %s, 'l' || g FROM generate_series(1, %s) g"
                " RETURNING id) INSERT INTO list_members (list_id, person_id, role) SELECT id, %s, 'editor' FROM made",
                (owner, size, member))
            conn.execute("ANALYZE lists, list_members")
            journaled(conn)
            (after,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
            spent.append(_deletion(journaled_db.dsn, owner, member))
            journaled(conn, timeout=120)
            # Each removal written once, before its list's list_deleted.
            (removed,) = conn.execute(
                "SELECT count(*) FROM todo_changes r JOIN todo_changes d ON d.list_before = r.list_before"
                " AND d.op = 'list_deleted' AND d.position > r.position"
                " WHERE r.position > %s AND r.op = 'member_removed' AND r.person_id = %s"
                " AND r.detail->>'reason' = 'list_deleted'", (after, member)).fetchone()  # type: ignore[misc]
            assert removed == size
        assert spent[1] < spent[0] * GROWTH, spent
