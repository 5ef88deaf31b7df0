"""psycopg_pool, with the common checkout done without its machinery: a
connection idle in the pool taken, and a healthy one put back, in a few
attribute steps where `getconn` and `putconn` go through the pool's
`asyncio.Lock` twice, three `logger.info` calls, the deadline arithmetic and
the return checks (a tenth of a write's profiled self time with the gate in
front of it: docs/bench-ab-writes.md). Anything but the common case (the
pool closed or growing, a `check` or `reset` function, a connection broken,
in a transaction or expired, clients waiting in the pool's own queue, its
lock held by a worker) is left to the pool's own methods.

Assumes (tests/internals/test_psycopg_pool.py pins each):
- the idle connections are the deque `_pool`, taken from the left and put
  back on the right, and `_nconns_min` follows its low mark (the shrinking
  worker reads it);
- `_lock` guards `_pool` and `_waiting` (the pool's queued clients) in
  every method that touches them, and a step that takes no await cannot
  interleave with one that holds it;
- a connection handed out has `_pool` set to the pool (`putconn` checks
  it), one idle has it None; `_stats[_REQUESTS_NUM]` counts every getconn;
- `putconn` puts a connection back as it is, into the first client queued
  in `_waiting` or else `_pool` (and sets `_pool_full_event` once
  `min_size` are idle, while `open(wait=True)` waits), when the pool is
  open, has no `reset`, the connection is IDLE, and neither older than the
  last `drain()` (`_drained_at`) nor past its `_expire_at`: otherwise it
  rolls back, closes or replaces it;
- `getconn` with a connection idle, no `check` function and the pool open
  hands out the oldest idle one at once;
- `_putconn(conn, from_getconn=True)`, what the pool does with a connection
  that failed its `check`, takes one that is closed (its
  `transaction_status` UNKNOWN) out of the pool for good: counted in
  `connections_lost`, and a new one made in its place (`discard`);
- every new connection (to fill, grow or replace) is made by the pool's
  `_connect`, which raises what the attempt raised (`Refusals`).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

_IDLE = TransactionStatus.IDLE


def take_idle(pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any] | None:
    """An idle connection taken out of `pool` as its getconn would take it
    at once, or None where its getconn must run."""
    idle = pool._pool
    if not idle or pool._closed or pool._check is not None or pool._lock.locked():
        return None
    conn = idle.popleft()
    pool._nconns_min = min(pool._nconns_min, len(idle))
    count_request(pool)
    conn._pool = pool
    return conn


def count_request(pool: AsyncConnectionPool[Any]) -> None:
    """One more request in `pool`'s figures (get_stats' `requests_num`),
    for a connection handed out without its getconn."""
    pool._stats[pool._REQUESTS_NUM] += 1


def reusable(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any]) -> bool:
    """Whether `conn`, handed out by `pool`, may be used again as it is (its
    putconn would put it back untouched), and no one queued in the pool
    itself waits for it."""
    return (
        conn._pool is pool
        and not pool._closed
        and pool._reset is None
        and conn.pgconn.transaction_status == _IDLE
        and conn._created_at > pool._drained_at
        and conn._expire_at > monotonic()
        and not pool._waiting
        and not pool._lock.locked()
    )


def shelve(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any]) -> None:
    """`conn`, reusable(), put back idle into `pool` as its putconn puts it."""
    conn._pool = None
    idle = pool._pool
    idle.append(conn)
    full = pool._pool_full_event
    if full is not None and len(idle) >= pool._min_size:
        full.set()


async def discard(pool: AsyncConnectionPool[Any], conn: AsyncConnection[Any]) -> None:
    """`conn`, handed out by `pool` and closed since, given back as the
    pool gives back one that failed its `check`: counted lost, and replaced."""
    await pool._putconn(conn, from_getconn=True)


class Refusals(AsyncConnectionPool):  # type: ignore[type-arg] # as GatedPool, the class of its connections left open
    """psycopg_pool's pool, telling `refused` of each attempt to make a new
    connection that failed (the database away: down, restarting, refusing
    connections), as it fails."""

    async def _connect(self, timeout: float | None = None) -> Any:
        try:
            return await super()._connect(timeout)
        except Exception as exc:
            self.refused(exc)
            raise

    def refused(self, exc: Exception) -> None:
        """An attempt to make a new connection failed with `exc`."""
