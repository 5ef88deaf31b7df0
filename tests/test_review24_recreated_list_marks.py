"""Review of sql/024: a transaction that deletes a list, makes it again with
the same id (psql), then changes both its todos and its members must be
refused as before 024 ("change the members of list % and its todos in
separate transactions", 007): the re-created list stays, so its arrivals
and removals are read at commit with the same transaction's new todos.
024 skips the todos mark of any list equal to app.list_deleting, which is
still the deleted (now re-created) list's id, so the transaction commits."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Journaled

REFUSED = "change the members of list .* and its todos in separate transactions"


def test_a_list_deleted_and_made_again_cannot_change_todos_and_members_at_once(journaled_db: Journaled) -> None:
    with psycopg.connect(journaled_db.dsn, autocommit=True) as conn:
        (owner, guest) = (
            conn.execute("INSERT INTO people (username) VALUES (%s) RETURNING id", (name,)).fetchone()[0]  # type: ignore[index]
            for name in ("owner24", "guest24")
        )
        (listed,) = conn.execute(
            "INSERT INTO lists (owner_id, name) VALUES (%s, 'kept id') RETURNING id", (owner,)
        ).fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, 'owner')", (listed, owner))
        conn.execute("INSERT INTO todos (title, list_id) VALUES ('old', %s)", (listed,))
    with psycopg.connect(journaled_db.dsn) as conn, pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match=REFUSED):
        conn.execute("DELETE FROM lists WHERE id = %s", (listed,))
        conn.execute("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'again')", (listed, owner))
        conn.execute("INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, 'owner')", (listed, owner))
        conn.execute("INSERT INTO list_members (list_id, person_id, role) VALUES (%s, %s, 'editor')", (listed, guest))
        conn.execute("INSERT INTO todos (title, list_id) VALUES ('new', %s)", (listed,))
        conn.commit()
