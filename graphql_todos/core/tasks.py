"""Ending a background task for good."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long ended() waits for a cancelled task before it cancels it again.
RECANCEL_SECONDS = 0.5


async def ended(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, cancelling it again while it
    has not: a call in it may take a cancellation and go on (Python 3.11's
    asyncio.wait_for, inside psycopg_pool, returns a result that came with
    one), and a shutdown must not hang on that. The caller's own
    cancellation is not swallowed."""
    while not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=RECANCEL_SECONDS)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
