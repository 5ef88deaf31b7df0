"""A case measured across a PostgreSQL restart measures the restart: the
bench notices one (the server's start time changed, read before and after
each case) and runs that case again. Someone else's test may restart the
machine's server under a bench run on DATABASE_URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import psycopg

T = TypeVar("T")
ATTEMPTS = 3
# How long a restarting server may take to answer again.
BACK_SECONDS = 120


def started_at(dsn: str) -> datetime:
    """When the server last started; waits while it is restarting."""
    deadline = time.monotonic() + BACK_SECONDS
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
                assert row is not None
                return row[0]  # type: ignore[no-any-return]
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def rerun_on_restart(dsn: str, label: str, case: Callable[[], T]) -> T:
    """case(), run again (at most ATTEMPTS times in all) while the server
    restarts during it; a case that failed because of the restart counts as
    one that ran across it."""
    for _ in range(ATTEMPTS):
        before = started_at(dsn)
        try:
            result = case()
        except Exception:
            if started_at(dsn) == before:
                raise
        else:
            if started_at(dsn) == before:
                return result
        print(f"  PostgreSQL restarted during {label}: running it again", flush=True)
    raise RuntimeError(f"PostgreSQL restarted during each of {ATTEMPTS} runs of {label}")
