"""The soak (bench/soak.py) at a size CI affords: every change reaches every
subscriber once, in order, and a second round of the same load does not grow
the server's memory much. `make soak` runs the full size."""

from __future__ import annotations

import asyncio
import os
import signal

from bench.soak import run_round
from tests.helpers import Serve


def test_soak_loses_nothing_and_memory_stays_flat(db_dsn: str) -> None:
    serve = Serve({**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "LOG_LEVEL": "warning"})
    try:
        rounds = [
            asyncio.run(run_round(serve.url, serve.process.pid, 100, 4, 300)) for _ in range(2)
        ]
    finally:
        serve.stop(signal.SIGTERM)
    for result in rounds:
        assert (result.lost, result.duplicated, result.out_of_order, result.failures) == (0, 0, 0, 0), result.line()
    # The first round warms caches and pools; the second must not need much more.
    assert rounds[1].peak_rss <= rounds[0].peak_rss * 1.2, [r.line() for r in rounds]
