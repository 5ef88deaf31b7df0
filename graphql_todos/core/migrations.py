"""Apply the package's sql/NNN_*.sql once each, in order, recording them in
schema_migrations."""

from __future__ import annotations

import logging
import re
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

logger = logging.getLogger(__name__)

# Read as package data, so an installed wheel finds them as a checkout does.
SQL_DIR: Traversable = resources.files("graphql_todos.core") / "sql"
_MIGRATION_NAME = re.compile(r"[0-9]{3}_.+\.sql")
# Two processes starting together must not both apply the same file.
LOCK_KEY = 7305202416

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class NoMigrations(RuntimeError):
    """The package holds no migration: a broken install, not an up-to-date database."""

    def __init__(self, sql_dir: Traversable) -> None:
        super().__init__(f"no migrations in {sql_dir}: graphql_todos is installed without its SQL files")
        self.sql_dir = sql_dir


def migration_files(sql_dir: Traversable = SQL_DIR) -> list[Traversable]:
    found = [f for f in sql_dir.iterdir() if _MIGRATION_NAME.fullmatch(f.name)] if sql_dir.is_dir() else []
    if not found:
        raise NoMigrations(sql_dir)
    return sorted(found, key=lambda f: f.name)


def migrate(dsn: str, sql_dir: Traversable = SQL_DIR) -> list[str]:
    """Apply what is missing; return the names applied now."""
    # Checked before connecting: an empty list must not read as "up to date".
    pending = migration_files(sql_dir)
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(CREATE_TABLE)
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in pending:
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                logger.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now
