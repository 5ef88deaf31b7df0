"""The raw floor: what Starlette, uvicorn and psycopg cost with no GraphQL in between.

    python -m bench.floor   (env DATABASE_URL: the rows; LISTEN_URL: the NOTIFY source; PORT)

POST /graphql answers the 50-row list from one prepared autocommit query,
encoded with orjson; a WebSocket on /ws receives every NOTIFY payload of
LISTEN_CHANNEL as one text frame, sent from a single psycopg listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import TypedDict

import orjson
import psycopg
import uvicorn
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

LIST = "SELECT id, title, completed FROM todos ORDER BY created_time, id"


class State(TypedDict):
    pool: AsyncConnectionPool
    sockets: set[WebSocket]


async def todos(request: Request) -> Response:
    pool: AsyncConnectionPool = request.state.pool
    async with pool.connection() as conn:
        cursor = await conn.execute(LIST, prepare=True)
        rows = await cursor.fetchall()
    body = {"data": {"todos": [{"id": r[0], "title": r[1], "completed": r[2]} for r in rows]}}
    return Response(orjson.dumps(body), media_type="application/json")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def subscriber(websocket: WebSocket) -> None:
    sockets: set[WebSocket] = websocket.state.sockets
    await websocket.accept()
    sockets.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


async def _fan_out(dsn: str, channel: str, sockets: set[WebSocket]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        async for notify in conn.notifies():
            for websocket in list(sockets):
                with contextlib.suppress(Exception):  # a socket closing mid-send just misses it
                    await websocket.send_text(notify.payload)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[State]:
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"], min_size=10, max_size=10, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)
    sockets: set[WebSocket] = set()
    listener = asyncio.create_task(
        _fan_out(os.environ["LISTEN_URL"], os.environ.get("LISTEN_CHANNEL", "postgraphile:todos"), sockets)
    )
    try:
        yield {"pool": pool, "sockets": sockets}
    finally:
        listener.cancel()
        await pool.close()


app = Starlette(
    routes=[Route("/graphql", todos, methods=["POST"]), Route("/healthz", healthz), WebSocketRoute("/ws", subscriber)],
    lifespan=lifespan,
)

if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", ws_per_message_deflate=False
    )
