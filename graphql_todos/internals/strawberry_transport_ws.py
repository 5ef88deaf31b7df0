"""Strawberry's graphql-transport-ws handler, offering each subscription to the fan-out first
(a broadcast member on a socket that takes direct writes is fed with no task of its own), looking
up persisted documents, checking messages, and gating connection_init."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from json import JSONDecodeError
from typing import Any

from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult as StrawberryExecutionResult

from graphql_todos.core import metrics
from graphql_todos.core.errors import ClientStalled, ErrorCode, RequestError
from graphql_todos.internals.strawberry import OPERATION_EXTENSIONS, request_error
from graphql_todos.internals.strawberry_sockets import (
    UNAUTHENTICATED_REASON,
    ConnectionGate,
    Fanout,
    Following,
    Refused,
    Revocable,
    StreamFailed,
    close_late,
    count_over_limit,
    init_timer,
    json_string,
    malformed_operation,
    stalled_adapter,
    websocket_of,
)


class FanoutTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """Assumes: handle_subscribe (after its checks: acknowledged, duplicate
    id, limit) registers the Operation and runs `run_operation(operation)` in
    `operation.task`; `complete` from the client and a disconnect go through
    `cleanup_operation(id)`, which forgets the operation and cancels
    `operation.task` (shutdown then awaits it); the message sent when the
    stream ends is `complete` through `operation.send_operation_message`,
    which forgets the id; `_task_done` is the done callback that retrieves
    an operation task's exception. The view has a `fanout`
    (graphql/view.py's TodoGraphQL).

    A broadcast member on a socket that takes direct writes joins its group
    and its task ends: the operation stays registered (the limit, duplicate
    ids and `complete` see it as any other), fed with no task until its
    group drops it or closes (_Broadcast): its `task` is None until then.
    Assumes: `shutdown` skips an operation whose `task` is None."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.broadcasts: dict[str, _Broadcast] = {}
        # Found once: the receive loop and every subscribe read it.
        self.socket = websocket_of(self.websocket)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        # Counted as an open subscription from here on, once: a member
        # attached with no task hands its count to its _Broadcast (one gauge
        # update per broadcast subscribe, where counting this task in and
        # out, then the _Broadcast in, made three).
        subscriptions = metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL)
        subscriptions.n += 1
        handed = False
        try:
            handed = await self._run_operation(operation)
        finally:
            if not handed:
                subscriptions.n -= 1

    async def _run_operation(self, operation: Operation[Any, None]) -> bool:
        """Run it; True when its member joined its group with no task (a
        _Broadcast has it, and its count, from then on)."""
        fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
        try:
            taken = await fanout.take(self.context, self.socket, operation.query, operation.variables, operation.operation_name)
        except Refused as refused:
            # An `error` message ends the operation: no `complete` follows.
            await operation.send_initial_errors(refused.errors)
            return False
        if taken is None:
            await super().run_operation(operation)
            return False
        prefix = b'{"id":' + json_string(operation.id) + b',"type":"next","payload":'
        following = taken.attach(prefix, b"}")
        if following is None:
            await self.deliver(operation, taken.run(prefix, b"}"))
            return False
        self.broadcasts[operation.id] = _Broadcast(self, operation, following)
        # This task ends here: kept by the operation (with its context and
        # coroutine) for as long as the socket lives, it is a cost only.
        operation.task = None
        return True

    async def deliver(self, operation: Operation[Any, None], delivery: Awaitable[None]) -> None:
        """Await a broadcast member's delivery, then answer `complete`, as
        Strawberry's path does when a stream ends."""
        try:
            await delivery
        except WebSocketDisconnect:
            return  # the handler's receive loop cleans up
        except ClientStalled as stalled:
            # A broadcast member's catch-up send timed out: as any send would.
            return stalled_adapter(self.websocket).close_stalled(stalled)
        except StreamFailed as failed:
            # As Strawberry's path ends a stream that fails: `next` with the
            # errors (Strawberry's own sender), then `complete`.
            await operation.send_next(StrawberryExecutionResult(data=None, errors=failed.errors))
        except Exception as error:  # noqa: BLE001 - logged, and the client told
            await self.handle_task_exception(error)
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def cleanup_operation(self, operation_id: str) -> None:
        broadcast = self.broadcasts.pop(operation_id, None)
        if broadcast is not None:
            broadcast.stop()
            if broadcast.task is None:
                # No task to cancel (Strawberry's cleanup asserts one).
                self.operations.pop(operation_id, None)
                return
        await super().cleanup_operation(operation_id)


class _Broadcast:
    """A graphql-transport-ws operation whose member joined its group with no
    task. One starts (as the operation's task, which `cleanup_operation`
    cancels) only when the group drops the member, to catch up from the
    journal and rejoin, or closes, to answer `complete`. Counted as an open
    subscription until it ends (the count its operation's task handed over)."""

    __slots__ = ("following", "handler", "operation", "task")

    def __init__(self, handler: FanoutTransportWSHandler, operation: Operation[Any, None], following: Following) -> None:
        self.handler = handler
        self.operation = operation
        self.following = following
        self.task: asyncio.Task[None] | None = None
        following.member.on_signal = self._wake

    def _wake(self) -> None:
        self.task = self.operation.task = asyncio.create_task(self._follow())
        # A done callback, not a `finally`: a task cancelled before its first
        # step (a `complete` read in the same turn) runs none of its code.
        self.task.add_done_callback(self._ended)

    async def _follow(self) -> None:
        await self.handler.deliver(self.operation, self.following.follow())

    def _ended(self, task: asyncio.Task[None]) -> None:
        # Leaving again is harmless; a member that never followed has not left.
        self.following.leave()
        if self.handler.broadcasts.get(self.operation.id) is self:
            del self.handler.broadcasts[self.operation.id]
        metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL).n -= 1
        self.handler._task_done(task)

    def stop(self) -> None:
        """The client completed it, or the socket ended; a task following
        is cancelled with the operation's."""
        if self.task is None:
            self.following.member.on_signal = None
            self.following.leave()
            metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL).n -= 1


class PersistedSubscribe(FanoutTransportWSHandler):
    """Assumes: `handle_subscribe(message)` reads `payload["query"]` (a
    payload without it fails as unparsable) and passes no extensions on.
    A payload with `extensions` gets its document here first, and its
    operation the extensions (OPERATION_EXTENSIONS). It refuses a
    subscribe over `max_subscriptions_per_connection` once the connection
    is acknowledged and the id is new, counting `operations`."""

    async def handle_message(self, message: Any) -> None:
        # Strawberry reads a message's fields without checking their types:
        # one that is not an object, an id that is not a string, or a
        # subscribe payload of the wrong shape would end the connection with
        # 1011 or leave the operation unanswered. graphql-ws's PROTOCOL.md:
        # a message of an unspecified format closes the socket with 4400.
        problem = _malformed_transport(message)
        if problem is not None:
            return await self.handle_invalid_message(problem)
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message["payload"]
        persisted = getattr(self.schema, "persisted", None)
        if persisted is not None and payload.get("extensions"):
            try:
                payload["query"] = persisted.document(payload.get("query"), payload.get("extensions"))
            except RequestError as exc:
                await self.send_message({"id": message["id"], "type": "error", "payload": [request_error(exc).formatted]})
                return
        # A duplicate id closes the socket before the limit is looked at.
        if message["id"] not in self.operations:
            count_over_limit(self.connection_acknowledged, len(self.operations), self.max_subscriptions_per_connection)
        token = OPERATION_EXTENSIONS.set(payload.get("extensions"))
        try:
            await super().handle_subscribe(message)
        finally:
            OPERATION_EXTENSIONS.reset(token)


class GatedTransportWs(PersistedSubscribe, Revocable):
    """Assumes: `handle()` calls `on_request_accepted()` once, which starts
    the connection_init timeout as `connection_init_timeout_task`, and ends
    with `shutdown()`, which cancels and awaits that task if set;
    `handle_connection_init(message)` receives connection_init, does nothing
    once `connection_timed_out` is set, cancels that task (if set) and
    acknowledges it; a subscribe that comes before the acknowledgement closes
    the socket (4401)."""

    _init_timer: asyncio.TimerHandle | None = None

    async def handle(self) -> None:
        """Strawberry's `handle`, reading the socket itself: its adapter's
        `iter_json` (an async generator, its `asend` and a `receive_text`
        coroutine, kept by every open socket while it waits) hands each text
        on as this does. tests/internals/test_strawberry_transport_ws.py
        pins the answers it gives as Strawberry's.

        Assumes: the WebSocket is accepted (its client state CONNECTED), where
        Starlette's `receive` awaits its `_receive` and only checks the type
        (the server's are websocket.receive and websocket.disconnect) and sets
        the client state DISCONNECTED on a disconnect."""
        self.on_request_accepted()
        websocket = self.socket
        # Starlette's `receive` once connected, without its coroutine (a
        # frame per message) and its check of the message's type: the ASGI
        # server's receive, the client's state set as it sets it.
        receive = websocket._receive
        try:
            while websocket.application_state is not WebSocketState.DISCONNECTED:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    websocket.client_state = WebSocketState.DISCONNECTED
                    return
                text = message.get("text")
                if text is None:
                    return await self.handle_invalid_message(NOT_TEXT)
                try:
                    decoded = self.view.decode_json(text)
                except JSONDecodeError:
                    return await self.handle_invalid_message(NOT_JSON)
                await self.handle_message(decoded)
                # Not held while the next message is awaited: a subscribe's
                # message and payload (two dicts or more) would stay beside
                # every open socket for the collector to walk.
                del decoded
        except WebSocketDisconnected:
            pass
        finally:
            await self.shutdown()

    def on_request_accepted(self) -> None:
        self._init_timer = init_timer(self.connection_init_wait_timeout.total_seconds(), self._connection_init_expired)

    def _connection_init_expired(self) -> None:
        if self.connection_init_received:
            return
        self.connection_timed_out = True
        # shutdown() awaits this task, as it would Strawberry's own.
        self.connection_init_timeout_task = close_late(self.websocket)

    async def shutdown(self) -> None:
        self._stopinit_timer()
        await self.release_credential()
        await super().shutdown()

    def _stopinit_timer(self) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()
            # A cancelled handle keeps its copy of the context: let it go.
            self._init_timer = None

    async def handle_connection_init(self, message: Any) -> None:
        if not self.connection_timed_out:
            self._stopinit_timer()
        # The view is one (graphql/view.py); not cast(): a call an open.
        gate: ConnectionGate = self.view  # type: ignore[assignment]
        if await gate.connection_allowed(self.context, message.get("payload")):
            if not self.connection_init_received:
                self.hold_credential(gate, self.context, self.websocket)
            return await super().handle_connection_init(message)
        await self.websocket.close(ErrorCode.UNAUTHENTICATED.close_code, UNAUTHENTICATED_REASON)


# Strawberry's refusals of a message that is not text, or not JSON.
NOT_TEXT = "WebSocket message type must be text"
NOT_JSON = "WebSocket message must be valid JSON"


def _malformed_transport(message: object) -> str | None:
    """What is wrong with a graphql-transport-ws message, by the formats of
    graphql-ws's PROTOCOL.md, as far as Strawberry does not check it itself
    (connection_init's payload, unknown types, a missing field); None when
    it may go on."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message is an object with a string type"
    kind = message["type"]
    if kind in ("ping", "pong") and message.get("payload") is not None and not isinstance(message["payload"], dict):
        return f"{kind} payload must be an object or null"
    if kind not in ("subscribe", "complete"):
        return None
    if "id" in message and not (isinstance(message["id"], str) and message["id"]):
        return f"{kind} needs a non-empty string id"
    if kind == "subscribe" and "payload" in message:
        # Persisted queries: a hash in extensions may stand for the query.
        problem = malformed_operation(message["payload"], query_required=False)
        return None if problem is None else "subscribe " + problem
    return None
