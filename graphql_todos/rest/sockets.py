"""RESTSockets: a stream relayed to its socket, with keepalives, until it
ends (1000), fails (its error's close code), the server stops (the restart
code: resume by cursor), its session or token is revoked (4401) or the
client leaves."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from graphql_todos.core.bounded import bounded_send
from graphql_todos.core.errors import ClientStalled, DomainError, ErrorCode
from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import principal_of
from graphql_todos.edge.error_handlers import close_reason
from graphql_todos.edge.revocation import Revocations
from graphql_todos.internals.uvicorn_websocket import RESTART_CODE, RESTART_REASON

logger = logging.getLogger(__name__)

# What a stream's opening gives its run (a start position, its messages).
Opened = TypeVar("Opened")


async def send_each(websocket: WebSocket, messages: AsyncGenerator[dict[str, Any], None]) -> None:
    async with contextlib.aclosing(messages):
        async for message in messages:
            await send(websocket, message)


async def relay(
    websocket: WebSocket, opening: Callable[[], Awaitable[Opened]], stream: Callable[[Opened], Awaitable[None]]
) -> None:
    """Open the stream, accept the socket, run the stream (it sends its
    messages) with what its opening gave, and send a keepalive every
    settings.keepalive_seconds, until the stream ends (close 1000), fails
    (close 4400 or 4404) or the client leaves. Ending the stream, whichever
    way, unsubscribes from the hub. The opening (where a change stream
    starts: its cursor checked, or "now" fixed) comes before the accept: a
    RESTSocket tells no cursor before its first change, so a client whose
    connect has returned must get every change committed after it."""
    try:
        opened = await opening()
    except Exception as exc:  # noqa: BLE001 - answered with its close code
        code, reason = _failure(websocket, exc)
        await websocket.accept()
        await websocket.close(code, close_reason(reason))
        return
    await websocket.accept()
    code, reason = 1000, ""
    revoked: list[str] = []
    release = None
    try:
        async with anyio.create_task_group() as tasks:

            def end(why: str) -> None:
                # Its session or token was revoked (edge/revocation.py).
                revoked.append(why)
                tasks.cancel_scope.cancel()

            revocations: Revocations = websocket.state.revocations
            release = revocations.hold(principal_of(websocket.scope), end)
            tasks.start_soon(_keep_alive, websocket)
            tasks.start_soon(_cancel_on_disconnect, websocket, tasks.cancel_scope)
            try:
                await stream(opened)
            except WebSocketDisconnect:
                raise  # closed under a send (the server's 1009, say): nothing failed
            except Exception as exc:  # noqa: BLE001 - answered with its close code
                code, reason = _failure(websocket, exc)
            tasks.cancel_scope.cancel()
    except* WebSocketDisconnect:
        pass  # the client left while we were sending
    except* ClientStalled as stalled:
        # A keepalive the client took nothing of for SEND_TIMEOUT_SECONDS:
        # stalled, as when a change's send times out (the stream's own).
        code, reason = ErrorCode.CLIENT_STALLED.close_code, stalled.exceptions[0].message
    finally:
        if release is not None:
            release()
    if revoked:
        code, reason = ErrorCode.UNAUTHENTICATED.close_code, revoked[0]
    elif code == 1000 and websocket.state.hub.closed:
        # The server is going away, not the resource: clients should resume.
        code, reason = RESTART_CODE, RESTART_REASON
    if WebSocketState.DISCONNECTED not in (websocket.client_state, websocket.application_state):
        await websocket.close(code, close_reason(reason))


def _failure(websocket: WebSocket, exc: Exception) -> tuple[int, str]:
    """The close code and reason of a stream's failure: a DomainError's own
    (4400, 4404, ...); any other is logged and is an internal error."""
    if isinstance(exc, DomainError):
        return exc.code.close_code, exc.message
    logger.exception("stream failed on %s", websocket.url.path, exc_info=exc)
    return ErrorCode.INTERNAL_SERVER_ERROR.close_code, "internal error"


async def send(websocket: WebSocket, message: dict[str, Any]) -> None:
    """Send, bounded in time: a client that stopped reading fills its socket's
    buffers, and would otherwise hold this stream (and its place in the
    journal) forever. It resumes by cursor."""
    settings: Settings = websocket.state.settings
    await bounded_send(websocket.send_json(message), settings.send_timeout_seconds)


async def _keep_alive(websocket: WebSocket) -> None:
    settings: Settings = websocket.state.settings
    while True:
        await anyio.sleep(settings.keepalive_seconds)
        # Bounded as every send: on a quiet stream the keepalives are what
        # fills a stalled client's buffers, and an unbounded one would wait
        # there for good.
        await send(websocket, _KEEPALIVE)


_KEEPALIVE = {"op": "keepalive"}


async def _cancel_on_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    # Clients have nothing to say on these sockets: read only to notice leaving.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()
