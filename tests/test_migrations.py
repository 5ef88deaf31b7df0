"""Migrations apply once, in order, and give the schema the app expects."""

from __future__ import annotations

import psycopg

from graphql_todos.migrations import migrate, migration_files


def test_migrating_again_applies_nothing(db_dsn: str) -> None:
    assert migrate(db_dsn) == []
    with psycopg.connect(db_dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [p.name for p in migration_files()]


def test_fresh_database_gets_every_migration(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS gt_fresh WITH (FORCE)")
        conn.execute("CREATE DATABASE gt_fresh")
    try:
        dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname="gt_fresh")
        assert migrate(dsn) == [p.name for p in migration_files()]
        with psycopg.connect(dsn) as conn:
            (count,) = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'todos'::regclass AND NOT tgisinternal").fetchone()  # type: ignore[misc]
        assert count == 4
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS gt_fresh WITH (FORCE)")


def test_journal_records_deletes_and_refuses_truncate(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        conn.execute("DELETE FROM todos")
        ops = [r[0] for r in conn.execute("SELECT op FROM todo_changes ORDER BY position")]
        assert ops == ["created", "deleted"]
        try:
            conn.execute("TRUNCATE todos")
        except psycopg.errors.RaiseException as exc:
            assert "DELETE FROM todos" in str(exc)
        else:
            raise AssertionError("TRUNCATE was allowed")


def test_rolled_back_changes_leave_no_journal_entry(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('gone')")
        conn.rollback()
        conn.execute("INSERT INTO todos (title) VALUES ('kept')")
        conn.commit()
        rows = conn.execute("SELECT todo->>'title' FROM todo_changes").fetchall()
    assert rows == [("kept",)]
