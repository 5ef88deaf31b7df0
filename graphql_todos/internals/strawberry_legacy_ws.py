"""Strawberry's legacy graphql-ws handler (subscriptions-transport-ws), offering each operation
to the fan-out first, checking messages, and gating connection_init with the newer protocol's
deadline and refusals."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any, cast

from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult as StrawberryExecutionResult

from graphql_todos.core import metrics
from graphql_todos.core.errors import ClientStalled, ErrorCode
from graphql_todos.internals.strawberry import OPERATION_EXTENSIONS
from graphql_todos.internals.strawberry_sockets import (
    TOO_MANY_INITS_CODE,
    TOO_MANY_INITS_REASON,
    UNAUTHENTICATED_REASON,
    ConnectionGate,
    Fanout,
    Limited,
    Openings,
    Refused,
    Revocable,
    SendsUntilClosed,
    StreamFailed,
    close_late,
    closed,
    earlier,
    in_order,
    init_timer,
    json_string,
    malformed_operation,
    opened,
    stalled_adapter,
    subscribes,
    websocket_of,
)

logger = logging.getLogger(__name__)


class _Started(asyncio.Task[None]):
    """A legacy operation's task (Strawberry's `tasks` is the socket's
    register of operations), carrying what the socket's limits ask of it
    (strawberry_sockets.Held), as graphql-transport-ws's Operation does."""

    __slots__ = ("operation_name", "query", "subscription")

    query: str
    operation_name: str | None
    subscription: bool | None


class FanoutWSHandler(SendsUntilClosed, BaseGraphQLWSHandler[Any, None], Limited):
    """Legacy graphql-ws. Assumes: `handle_start`'s steps are Strawberry's
    but for the limits (ours, below): refuse a start before the
    acknowledgement (4401), stop the operation of the same id
    (`cleanup_operation(id)`), then run `handle_async_results(id, query,
    operation_name, variables)` as the operation's task, kept in
    `self.tasks`; `stop` and a disconnect cancel it, and it answers
    `complete` when cancelled or when the stream ends, then forgets the id
    (as below). Strawberry's limit counts every task (its `handle_start`,
    not run): the view hands the limit by keyword, kept here as
    `subscription_limit`, Strawberry's None. The limits
    (strawberry_sockets.Limited) count the operations held without the one
    of the same id the start stops. The operation's task gets the start
    payload's extensions (OPERATION_EXTENSIONS); `cleanup_operation(id)`
    stops an operation (the socket's end stops each). An operation that is
    no subscription runs once those sent before it on the socket have fixed
    their start (strawberry_sockets.Openings), the operations' tasks their
    keys. Every message goes out through `send_message` (ours drops one to
    a closed socket)."""

    _openings: Openings | None = None

    def __init__(self, *args: Any, max_subscriptions_per_connection: int | None = None, **kwargs: Any) -> None:
        # Strawberry's limit counts every operation: none of its own, ours
        # counts subscriptions alone (handle_start).
        super().__init__(*args, **kwargs)
        self.subscription_limit = max_subscriptions_per_connection

    @property
    def openings(self) -> Openings:
        if self._openings is None:
            self._openings = {}
        return self._openings

    async def handle_message(self, message: Any) -> None:
        # Strawberry reads a message's fields without checking them: one
        # that is not an object, or a start or stop without a string id (a
        # start without a query), would end the connection with 1011.
        problem = _malformed_legacy(message, self.connection_acknowledged)
        if problem is None:
            return await super().handle_message(message)
        operation_id = message.get("id") if isinstance(message, dict) else None
        error = {"message": problem, "extensions": {"code": ErrorCode.BAD_REQUEST.name}}
        answer_id = operation_id if isinstance(operation_id, str) else None
        await self.send_message({"type": "error", "id": answer_id, "payload": error})

    async def handle_start(self, message: Any) -> None:
        if not self.connection_acknowledged:
            # Its id may be anything, or none (unhashable): Strawberry's answer.
            return await self.websocket.close(code=4401, reason="Unauthorized")
        operation_id = message["id"]
        payload = message["payload"]
        query, operation_name = payload["query"], payload.get("operationName")
        tasks = self.tasks
        # The limits, without the operation of this id, which the start stops
        # (refused, the start stops nothing).
        replaced = tasks.get(operation_id)
        held = len(tasks) - (replaced is not None)
        limit = self.subscription_limit
        subscription = None
        if held >= self.requests_limit or (limit is not None and held >= limit):
            subscription = subscribes(self.view, query, operation_name)
            refused = self.refusal(subscription, tasks.values(), held, limit, replaced)  # type: ignore[arg-type]
            if refused is not None:
                return await self.send_message({"type": "error", "id": operation_id, "payload": refused})
        if replaced is not None:
            await self.cleanup_operation(operation_id)
        # The task copies the context as it is made: the extensions' with it.
        token = OPERATION_EXTENSIONS.set(payload.get("extensions"))
        try:
            task = _Started(self.handle_async_results(operation_id, query, operation_name, payload.get("variables")))
        finally:
            OPERATION_EXTENSIONS.reset(token)
        task.query, task.operation_name, task.subscription = query, operation_name, subscription
        tasks[operation_id] = task
        # Not run yet.
        self.openings[task] = None

    async def cleanup_operation(self, operation_id: str) -> None:
        task = self.tasks.get(operation_id)
        if task is not None and self._openings:
            # Stopped before its start was fixed: its task may never run.
            opened(self._openings, task)
        await super().cleanup_operation(operation_id)
        if task is not None and task.cancelled():
            # Stopped before it ever ran (a start and its stop read at once):
            # answered `complete` as a running one is.
            await self.send_message({"type": "complete", "id": operation_id})

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        with metrics.graphql_operation(GRAPHQL_WS_PROTOCOL):
            await self._handle_async_results(operation_id, query, operation_name, variables)

    async def _handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        websocket = websocket_of(self.websocket)
        fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
        openings, own = self.openings, asyncio.current_task()
        failed: StreamFailed | None = None
        try:
            try:
                taken = await fanout.take(self.context, websocket, query, variables, operation_name)
            except Refused as refused:
                opened(openings, own)
                # As Strawberry answers a subscription refused at the start.
                self.tasks.pop(operation_id, None)
                return await self.send_message({"type": "error", "id": operation_id, "payload": refused.errors[0].formatted})
            except BaseException:
                # Stopped as it starts (cancelled): answered `complete` below,
                # as a running one is.
                opened(openings, own)
                raise
            if taken is None:
                if fanout.opens(query, operation_name, functools.partial(opened, openings, own)):
                    try:
                        return await super().handle_async_results(operation_id, query, operation_name, variables)
                    finally:
                        opened(openings, own)
                await in_order(earlier(openings, own), websocket)
                return await super().handle_async_results(operation_id, query, operation_name, variables)
            # Its start fixed (a change feed's), or read after it joins (a row's, a live list's).
            opened(openings, own)
            await taken.run(b'{"type":"data","id":' + json_string(operation_id) + b',"payload":', b"}")
        except asyncio.CancelledError:
            pass  # stopped: answer complete, as Strawberry does
        except (WebSocketDisconnect, WebSocketDisconnected):
            return  # the client is gone (Strawberry's path sends through the adapter)
        except ClientStalled as stalled:
            return stalled_adapter(self.websocket).close_stalled(stalled)
        except StreamFailed as exc:
            failed = exc
        except Exception as error:
            if closed(websocket, error):
                return  # its send found the socket closed: as a send_message would
            logger.exception("broadcast subscription %s failed", operation_id)
        finally:
            self.tasks.pop(operation_id, None)
        # The socket may be closed already (a shutdown ends the stream and
        # closes the socket at once): then there is no one to tell.
        with contextlib.suppress(WebSocketDisconnected):
            if failed is not None:
                # As Strawberry's path ends a stream that fails: `data` with
                # the errors (Strawberry's own sender), then `complete`.
                await self.send_data_message(StrawberryExecutionResult(data=None, errors=failed.errors), operation_id)
            await self.send_message({"type": "complete", "id": operation_id})


class GatedLegacyWs(FanoutWSHandler, Revocable):
    """Assumes: `handle()` runs from the socket's acceptance to its end and
    sets no connection_init deadline of its own; the view has
    `connection_init_wait_timeout` (graphql-transport-ws's);
    `handle_connection_init(message)` receives connection_init, acknowledges
    it and starts a keep-alive task as `keep_alive_task`, every time,
    cancelling none it started before (only the last is cancelled when the
    socket ends); a start before the acknowledgement closes the socket."""

    _init_received = False
    _init_timed_out: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        # subscriptions-transport-ws's PROTOCOL.md sets no deadline for
        # connection_init (its client sends it on open): without one, a
        # socket that never sends it held a place of MAX_SOCKETS_PER_CLIENT
        # forever. graphql-transport-ws's deadline, and its close.
        seconds = self.view.connection_init_wait_timeout.total_seconds()
        # The server's REQUESTS_IN_FLIGHT (strawberry_sockets.Limited's), the view's.
        self.requests_limit = self.view.requests_in_flight  # type: ignore[attr-defined]
        timer = init_timer(seconds, self._connection_init_expired)
        try:
            await super().handle()
        finally:
            timer.cancel()
            await self.release_credential()
            if self._init_timed_out is not None:
                with contextlib.suppress(Exception):
                    await self._init_timed_out

    def _connection_init_expired(self) -> None:
        if not self._init_received:
            self._init_timed_out = close_late(self.websocket)

    async def handle_connection_init(self, message: Any) -> None:
        if self._init_timed_out is not None:
            return  # too late: the socket is closing
        if self._init_received:
            # Each would start one more keep-alive task, never to end: refuse
            # it as graphql-transport-ws does.
            return await self.websocket.close(TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON)
        self._init_received = True
        gate = cast(ConnectionGate, self.view)
        if await gate.connection_allowed(self.context, message.get("payload")):
            self.hold_credential(gate, self.context, self.websocket)
            return await super().handle_connection_init(message)
        code = ErrorCode.UNAUTHENTICATED
        error = {"message": UNAUTHENTICATED_REASON, "extensions": {"code": code.name}}
        await self.send_message({"type": "connection_error", "payload": error})
        # The legacy protocol's refusal: connection_error, then 4403.
        await self.websocket.close(ErrorCode.FORBIDDEN.close_code, UNAUTHENTICATED_REASON)


def _malformed_legacy(message: object, acknowledged: bool) -> str | None:
    """What is wrong with a legacy graphql-ws message, as far as Strawberry's
    handler would fail on it; None when it can take it (a start before the
    acknowledgement, whatever it holds: Strawberry closes with 4401)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message is an object with a string type"
    if message["type"] not in ("start", "stop") or (message["type"] == "start" and not acknowledged):
        return None
    if not isinstance(message.get("id"), str):
        return f"{message['type']} needs a string id"
    if message["type"] == "start":
        # The legacy protocol carries no persisted-query hash: a query always.
        problem = malformed_operation(message.get("payload"), query_required=True)
        return None if problem is None else "start " + problem
    return None
