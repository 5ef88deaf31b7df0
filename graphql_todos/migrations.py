"""Apply sql/NNN_*.sql once each, in order, recording them in schema_migrations."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# Two processes starting together must not both apply the same file.
LOCK_KEY = 7305202416

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migration_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    return sorted(sql_dir.glob("[0-9][0-9][0-9]_*.sql"))


def migrate(dsn: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply what is missing; return the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(CREATE_TABLE)
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files(sql_dir):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())  # type: ignore[arg-type]
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                logger.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now
