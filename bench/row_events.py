"""The hub's work for a row's event, in-process: 1,000 rows, every `share`th
watched by a row watcher (1: all of them, one process's; 2: half, one of two
WORKERS'), each a hub subscriber with a row sink (fanout's, with its render
of `todo(id) { title completed }`, writing through a real
uvicorn_websocket.Burst to a connection that is open and takes every
frame), fed the NOTIFY payloads of one UPDATE of all 1,000 rows as one LISTEN
read (bytes, as internals/psycopg.payloads gives them, into
`Hub._wait_for_news` -> `Hub._publish` -> sink -> the burst, flushed at the
end of the turn), `rounds` times.
No database, no sockets: under callgrind, the instructions per notification
are the difference of two round counts over their notifications
(docs/bench-ab-rows.md):

    valgrind --tool=callgrind --callgrind-out-file=R2 .venv/bin/python -m bench.row_events 2 [share]
    valgrind --tool=callgrind --callgrind-out-file=R7 .venv/bin/python -m bench.row_events 7 [share]
    # (totals of R7 - totals of R2) / 5,000

With PYTHONHASHSEED fixed (0) for both runs: dicts' probing moves with
the seed, and one tree's count with it (42,310-44,550 in one sitting).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import orjson
from graphql import DocumentNode, GraphQLSchema, OperationDefinitionNode, parse

from graphql_todos.core.models import LOCAL_LIST_ID
from graphql_todos.core.settings import Settings
from graphql_todos.core.visibility import View
from graphql_todos.graphql.fanout import _RowFrames, _RowRenders
from graphql_todos.graphql.fast.execution import execute_event
from graphql_todos.graphql.fast.plans import compile_events
from graphql_todos.graphql.intake import coerce
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.uvicorn_websocket import _OPEN, Burst
from graphql_todos.live import hub as hub_module
from graphql_todos.live.hub import Hub

WATCHERS = 1000
BUILT = 12
QUERY = "subscription($id: ID!) { todo(id: $id) { title completed } }"


def payload(position: int, todo_id: uuid.UUID, committed: str = "2026-12-05T06:01:00.123456+00:00") -> str:
    """A row's NOTIFY, as the journal trigger writes it for an UPDATE (010's
    journal_write: json_build_object's head and spacing, the row as to_jsonb
    prints it), as PostgreSQL 18 printed one; `committed`, its entry's
    changed_at (each row's its own: clock_timestamp, sql/001)."""
    at, list_id = "2026-12-05T06:01:00.123456+00:00", str(LOCAL_LIST_ID)
    todo = {
        "id": str(todo_id), "title": f"round {position}", "list_id": list_id, "completed": False,
        "created_time": at, "updated_time": at,
    }
    head = {
        "position": position, "op": "updated", "id": str(todo_id), "changed_at": committed, "list_before": list_id,
        "list_after": list_id, "person": None,
    }
    # json_build_object's ` : ` and `, `; jsonb's `: ` and `, `.
    printed_head = ", ".join(f"{orjson.dumps(k).decode()} : {orjson.dumps(v).decode()}" for k, v in head.items())
    printed_row = ", ".join(f"{orjson.dumps(k).decode()}: {orjson.dumps(v).decode()}" for k, v in todo.items())
    return f'{{{printed_head}, "todo" : {{{printed_row}}}}}'


def _open_connection() -> Any:
    """What Burst reads of an open websockets connection whose transport
    takes every write (and drops it): no socket."""
    return SimpleNamespace(
        disconnected=False, close_sent=False, conn=SimpleNamespace(_state=_OPEN),
        writable=SimpleNamespace(_value=True), transport=SimpleNamespace(write=len),
    )


def _sink(schema: GraphQLSchema, document: DocumentNode, todo_id: uuid.UUID, index: int, burst: Burst) -> _RowFrames:
    """RowStream's row sink for one watcher (fanout._RowFrames, with
    fanout's render of an entry's row), writing through the burst."""
    operation = cast(OperationDefinitionNode, document.definitions[0])
    compiled = compile_events(schema, document, operation)
    assert compiled is not None
    variables = coerce(schema, operation, {"id": str(todo_id)})
    assert variables is not None
    plan = compiled.plan(variables)
    assert plan is not None
    renders = _RowRenders.of(plan, lambda todo: orjson.dumps({"data": execute_event(plan, todo)[0]}))
    return renders.frames(
        b'{"id":"%d","type":"next","payload":' % index, b"}", functools.partial(burst._framing, _open_connection())
    )


async def run(rounds: int, share: int = 1) -> None:
    schema = build_schema(execution_cache_size=16)._schema
    document = parse(QUERY)
    # A share of the rows watched: one of several workers (WORKERS).
    hub = Hub("", None, Settings.from_env({"WORKERS": "2"} if share > 1 else {}))  # type: ignore[arg-type]
    ids = [uuid.uuid4() for _ in range(WATCHERS)]
    # Each round's payloads, each with a commit time of its own, as a real
    # UPDATE's; made for BUILT rounds whatever `rounds`, so that two counts'
    # difference holds no making of payloads.
    batches = [
        [payload(1 + i, todo_id, f"2026-12-05T06:{r:02d}:00.{i:06d}+00:00").encode() for i, todo_id in enumerate(ids)]
        for r in range(max(rounds, BUILT))
    ]

    async def read(batch: list[bytes], conn: object, timeout: float) -> AsyncIterator[list[bytes]]:
        yield batch  # one read: what the LISTEN socket held

    burst = Burst()
    async with contextlib.AsyncExitStack() as stack:
        subs = []
        for i, todo_id in enumerate(ids):
            if i % share:
                continue  # another process's
            sub = await stack.enter_async_context(hub.subscribe(todo_id=todo_id, view=View(None)))
            sub.sink = _sink(schema, document, todo_id, i, burst)
            sub.waiting = True  # as its task waits with nothing in hand
            subs.append(sub)
        for batch in batches[:rounds]:
            hub.position = 0  # the same positions again
            for sub in subs:
                sub.last = 0
            hub_module.payloads = functools.partial(read, batch)  # type: ignore[assignment]
            assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
            assert hub.position == WATCHERS
            await asyncio.sleep(0)  # the turn ends: the burst is written


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1))
