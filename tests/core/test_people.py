"""The accounts tables (005_people.sql): what the migration makes."""

from __future__ import annotations

import psycopg
import pytest

from graphql_todos.core.people import LOCAL


def test_local_is_the_one_person_and_has_no_password(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        people = conn.execute("SELECT id, username, password_hash FROM people").fetchall()
    assert people == [(LOCAL.id, "local", None)]


def test_a_person_without_lists_leaves_the_todos_alone(db_dsn: str) -> None:
    """A person comes and goes with their default list (007_lists.sql); no todo is touched."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO people (username) VALUES ('someone')")
        conn.execute("DELETE FROM people WHERE username = 'someone'")
        ops = [r[0] for r in conn.execute("SELECT op FROM todo_changes ORDER BY position")]
    assert ops == ["list_created", "member_added", "member_removed", "list_deleted"]


def test_one_person_per_lower_case_name(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for name in ("Local", "a", "-x", "has space"):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute("INSERT INTO people (username) VALUES (%s)", (name,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO people (username) VALUES ('local')")


def test_a_person_takes_their_sessions_and_tokens_along(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        (person,) = conn.execute("INSERT INTO people (username) VALUES ('gone') RETURNING id").fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO sessions (secret_hash, person_id, expires_time) VALUES ('\\x01', %s, now())", (person,)
        )
        conn.execute("INSERT INTO access_tokens (secret_hash, person_id, name) VALUES ('\\x02', %s, 't')", (person,))
        conn.execute("DELETE FROM people WHERE id = %s", (person,))
        counts = conn.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM access_tokens)").fetchone()
    assert counts == (0, 0)
