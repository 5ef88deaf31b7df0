"""Pooled connections that fail fast: a database that cannot be reached (down,
restarting, every connection busy) is a DatabaseUnavailable within the pool's
timeout, for the service and the journal alike, never a hang."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import metrics
from .errors import DatabaseUnavailable


def connect_timeout(seconds: float) -> int:
    """libpq's connect_timeout for a wait of `seconds`: whole seconds, 2 at least."""
    return max(2, math.ceil(seconds))


@contextlib.asynccontextmanager
async def connection(
    pool: AsyncConnectionPool, timeout: float | None = None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; an unreachable database raises DatabaseUnavailable."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            yield conn
    except PoolTimeout:
        metrics.refused("pool_timeout")
        raise DatabaseUnavailable("no connection within the timeout") from None
    except psycopg.OperationalError as exc:
        # A lost connection, a server shutting down or refusing connections;
        # or a statement PostgreSQL cancelled at STATEMENT_TIMEOUT_SECONDS.
        if isinstance(exc, psycopg.errors.QueryCanceled):
            metrics.refused("statement_timeout")
        raise DatabaseUnavailable(type(exc).__name__) from exc
