"""The hub's reading of its LISTEN connection, alone: `count` NOTIFYs of
rows as the journal trigger writes them (bench/row_events.py's), sent by
one transaction (made by the server: nothing per notification on this
side), then read through internals/psycopg.py's `payloads` as the hub reads
them. Under callgrind, the instructions per notification read are the
difference of two counts over their notifications (docs/bench-ab-rows.md):

    DSN=...  # a running server's, e.g. the embedded one's
    valgrind --tool=callgrind --callgrind-out-file=N1 .venv/bin/python -m bench.notify_reads 1000 "$DSN"
    valgrind --tool=callgrind --callgrind-out-file=N6 .venv/bin/python -m bench.notify_reads 6000 "$DSN"
    # (totals of N6 - totals of N1) / 5,000

(PYTHONHASHSEED fixed, as for bench/row_events.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid

from psycopg import AsyncConnection

from graphql_todos.internals.psycopg import payloads

from .row_events import payload

CHANNEL = "bench_notify_reads"


async def run(count: int, dsn: str) -> None:
    # The text of row N's payload: the position and the id are the server's
    # (format's %s), the rest as row_events prints it.
    template = payload(999_999_999, uuid.UUID(int=0)).replace("999999999", "%1$s").replace(str(uuid.UUID(int=0)), "%2$s")
    async with await AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f"LISTEN {CHANNEL}")
        async with await AsyncConnection.connect(dsn, autocommit=True) as writer:
            await writer.execute(
                "SELECT count(pg_notify(%s, format(%s, i, gen_random_uuid()))) FROM generate_series(1, %s) i",
                (CHANNEL, template, count),
            )
        read = 0
        async with contextlib.aclosing(payloads(conn, 60.0)) as reads:
            async for got in reads:
                read += len(got)
                if read >= count:
                    break
        assert read == count, (read, count)


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]), sys.argv[2]))
