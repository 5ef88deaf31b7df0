"""Strawberry's graphql-transport-ws handler, its messages handled here: each
subscription offered to the fan-out first (a broadcast member on a socket
that takes direct writes is fed with no task of its own), persisted
documents looked up, messages checked, and connection_init gated.

Strawberry's class keeps the state (its flags and `operations`, the one
register of ids that the duplicate check, the limit and `complete` read, a
broadcast member's operation as any other), runs what the fan-out does not
take (`run_operation`), ends operations (`cleanup_operation`, `shutdown`)
and writes their last messages (its Operation). The steps from a message to
its operation's task are ours: Strawberry's `handle_message`,
`handle_connection_init` and `handle_subscribe` each went through an
override calling it, several calls an open for the same checks, in the same
order and with the same answers, but for a null connection_init payload,
which PROTOCOL.md allows and Strawberry refuses, and the limit per socket,
which counts subscriptions alone (Strawberry's counts every operation:
README, "One socket's limits") (pinned by
tests/internals/test_strawberry_transport_ws.py against Strawberry's
source, and each through a real socket in tests/graphql/test_transport_ws.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, Literal

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types import ExecutionResult as StrawberryExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from graphql_todos.core import metrics
from graphql_todos.core.errors import ClientStalled, ErrorCode, RequestError
from graphql_todos.internals.strawberry import OPERATION_EXTENSIONS, request_error
from graphql_todos.internals.strawberry_sockets import (
    LIMIT_REACHED,  # noqa: F401 - one of Strawberry's answers below, found in its source as they are
    UNAUTHENTICATED_REASON,
    ConnectionGate,
    Fanout,
    Following,
    Limited,
    Refused,
    Revocable,
    SendsUntilClosed,
    StreamFailed,
    close_late,
    closed,
    in_order,
    json_string,
    malformed_operation,
    stalled_adapter,
)
from graphql_todos.internals.strawberry_view import DISCONNECTED, BoundedSendAdapter, JsonIntake

# Strawberry's answers (tests/internals/test_strawberry_transport_ws.py finds
# each in its source): close codes and reasons, and the limit's error.
INVALID_INIT_PAYLOAD = (4400, "Invalid connection init payload")
TOO_MANY_INITS = (4429, "Too many initialisation requests")
FORBIDDEN = (4403, "Forbidden")
UNAUTHORIZED = (4401, "Unauthorized")
DUPLICATE_ID_CODE = 4409
UNPARSABLE = "Failed to parse message"
# The acknowledgement without a payload, as the view's encode_json encodes it
# (tests/internals/test_strawberry_transport_ws.py).
_ACK = orjson.dumps({"type": "connection_ack"})
# PROTOCOL.md's every message: an object with a string type.
NOT_A_MESSAGE = "a message is an object with a string type"
# Strawberry's refusals of a message that is not text, or not JSON.
NOT_TEXT = "WebSocket message type must be text"
NOT_JSON = "WebSocket message must be valid JSON"


class GatedTransportWs(SendsUntilClosed, BaseGraphQLTransportWSHandler[Any, None], Revocable, Limited):
    """Assumes, of Strawberry's class: `__init__` sets the flags and
    `operations` read here; an Operation's `task` is what
    `cleanup_operation(id)` cancels (after forgetting the operation) and
    `shutdown` cancels and awaits, skipping one whose `task` is None (then
    cancelling and awaiting `connection_init_timeout_task`, if set);
    `run_operation(operation)` runs a document to its end, and its
    Operation's `send_operation_message` sends `complete` or `error` once,
    forgetting the id first, and ends an exception itself (logged with
    `handle_task_exception`, `complete` sent, the id forgotten) before
    raising it again; `_task_done` retrieves a task's exception;
    `handle_invalid_message(reason)` closes 4400; `operations` keeps the
    order they were sent in (a dict), Operation's `__init__` is all its
    subclass needs, and Strawberry's run streams in the operation's own
    task; every message goes out through `send_message` (ours drops one
    to a closed socket). The view is ours (graphql/view.py: a `fanout`,
    `connection_allowed` and `hold`).

    A broadcast member on a socket that takes direct writes joins its group
    and its task ends: the operation stays registered (the limit, duplicate
    ids and `complete` see it as any other), fed with no task until its
    group drops it or closes (_Broadcast): its `task` is None until then."""

    _init_timer: asyncio.TimerHandle | None = None

    def __init__(
        self,
        view: Any,
        websocket: Any,
        context: Any,
        root_value: None,
        schema: Any,
        connection_init_wait_timeout: timedelta,
        max_subscriptions_per_connection: int | None = None,
    ) -> None:
        # Strawberry's `__init__`, without its call an open: the same
        # attributes (tests/internals/test_strawberry_transport_ws.py
        # compares them with a handler it makes).
        self.view = view
        self.websocket = websocket
        self.context = context
        self.root_value = root_value
        self.schema = schema
        self.connection_init_wait_timeout = connection_init_wait_timeout
        self.max_subscriptions_per_connection = max_subscriptions_per_connection
        self.connection_init_timeout_task = None
        self.connection_init_received = False
        self.connection_acknowledged = False
        self.connection_timed_out = False
        self.operations = {}
        self.broadcasts: dict[str, _Broadcast] = {}
        # Found once: the receive loop and every subscribe read it. The
        # view's adapter is an ASGIWebSocketAdapter, Starlette's WebSocket
        # its `.ws` (tests/internals/test_strawberry_transport_ws.py).
        self.socket = websocket.ws
        # Asked once (a getpid each on Python 3.11): the timer and every task.
        self.loop = asyncio.get_running_loop()

    async def handle(self) -> None:
        """Strawberry's `handle`, reading the socket itself: its adapter's
        `iter_json` (an async generator, its `asend` and a `receive_text`
        coroutine, kept by every open socket while it waits) hands each text
        on as this does.

        Assumes: the WebSocket is accepted (its client state CONNECTED), where
        Starlette's `receive` awaits its `_receive` and only checks the type
        (the server's are websocket.receive and websocket.disconnect) and sets
        the client state DISCONNECTED on a disconnect; the view is a
        JsonIntake, whose `decode_json` calls its `loads`."""
        # Strawberry's `on_request_accepted` starts the init deadline: here a
        # timer (strawberry_sockets.init_timer's) on the loop found once, not
        # a sleeping task, without the method's call.
        self._init_timer = self.loop.call_later(
            self.connection_init_wait_timeout.total_seconds(), self._connection_init_expired
        )
        websocket = self.socket
        # Starlette's `receive` once connected, without its coroutine (a
        # frame per message) and its check of the message's type: the ASGI
        # server's receive, the client's state set as it sets it.
        receive = websocket._receive
        # What the view's decode_json calls, without its call a message (the
        # view is a JsonIntake, graphql/view.py; not cast(): a call an open).
        intake: JsonIntake = self.view  # type: ignore[assignment]
        decode = intake.loads
        try:
            while websocket.application_state is not DISCONNECTED:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    websocket.client_state = DISCONNECTED
                    return
                text = message.get("text")
                if text is None:
                    return await self.handle_invalid_message(NOT_TEXT)
                try:
                    decoded = decode(text)
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

    async def handle_message(self, message: Any) -> None:
        # Strawberry reads a message's fields without checking their types:
        # one that is not an object, an id that is not a string, or a
        # subscribe payload of the wrong shape would end the connection with
        # 1011 or leave the operation unanswered. graphql-ws's PROTOCOL.md:
        # a message of an unspecified format closes the socket with 4400.
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str):
            return await self.handle_invalid_message(NOT_A_MESSAGE)
        # A connection_init's payload is checked as Strawberry reads it: no
        # more to check here (a call fewer an open).
        if kind != "connection_init":
            problem = _malformed_transport(message, kind)
            if problem is not None:
                return await self.handle_invalid_message(problem)
        # Strawberry's dispatch, a subscribe first (the most frequent).
        try:
            if kind == "subscribe":
                await self.handle_subscribe(message)
            elif kind == "connection_init":
                await self.handle_connection_init(message)
            elif kind == "ping":
                await self.send_message({"type": "pong"})
            elif kind == "complete":
                await self.cleanup_operation(message["id"])
            elif kind != "pong":
                await self.handle_invalid_message(f"Unknown message type: {kind}")
        except KeyError:
            await self.handle_invalid_message(UNPARSABLE)

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
        """Strawberry's steps (its payload an object, once), the gate (the
        credential, from the upgrade or this payload), then Strawberry's
        `on_ws_connect` and the acknowledgement."""
        if self.connection_timed_out:
            return
        if self._init_timer is not None:  # _stopinit_timer's, without its call an open
            self._init_timer.cancel()
            self._init_timer = None
        # PROTOCOL.md: an object or null (Strawberry's 4400 at a null differs
        # from graphql-ws's server, which takes it as none).
        payload = message.get("payload")
        if payload is None:
            payload = {}
        # Checked before the gate, as Strawberry checks them first: a payload
        # that is not an object is 4400 with or without a credential, and a
        # second connection_init is 4429 whatever it offers.
        elif not isinstance(payload, dict):
            return await self.websocket.close(*INVALID_INIT_PAYLOAD)
        if self.connection_init_received:
            return await self.websocket.close(*TOO_MANY_INITS)
        # The view is one (graphql/view.py); not cast(): a call an open.
        gate: ConnectionGate = self.view  # type: ignore[assignment]
        if not await gate.connection_allowed(self.context, payload):
            return await self.websocket.close(ErrorCode.UNAUTHENTICATED.close_code, UNAUTHENTICATED_REASON)
        self.connection_init_received = True
        self.hold_credential(gate, self.context, self.websocket)
        if isinstance(self.context, dict):
            self.context["connection_params"] = payload
        elif hasattr(self.context, "connection_params"):
            self.context.connection_params = payload
        # Strawberry's own `on_ws_connect` answers UNSET: asked only when a
        # view overrides it (a coroutine an open).
        ack_payload: Any = UNSET
        if type(self.view).on_ws_connect is not AsyncBaseHTTPView.on_ws_connect:
            try:
                ack_payload = await self.view.on_ws_connect(self.context)
            except ConnectionRejectionError:
                return await self.websocket.close(*FORBIDDEN)
        if isinstance(ack_payload, UnsetType):
            # Written as encoded once (send_json's direct write), without the
            # message's encoding an open (five calls); sent as any other
            # message when it cannot be written now.
            # The view's adapter is ours (graphql/view.py; not cast()).
            adapter: BoundedSendAdapter = self.websocket  # type: ignore[assignment]
            if not adapter.write_encoded(_ACK):
                await self.send_message({"type": "connection_ack"})
        else:
            await self.send_message({"type": "connection_ack", "payload": ack_payload})
        self.connection_acknowledged = True

    async def handle_subscribe(self, message: Any) -> None:
        """Strawberry's checks in its order (acknowledged, a new id), a
        persisted document found, the limits (MAX_SUBSCRIPTIONS for a
        subscription, REQUESTS_IN_FLIGHT for any other), then the
        operation's task, the payload's extensions in its context
        (OPERATION_EXTENSIONS)."""
        if not self.connection_acknowledged:
            return await self.websocket.close(*UNAUTHORIZED)
        op_id = message["id"]
        operations = self.operations
        if op_id in operations:
            return await self.websocket.close(DUPLICATE_ID_CODE, f"Subscriber for {op_id} already exists")
        payload = message["payload"]
        extensions = payload.get("extensions")
        persisted = getattr(self.schema, "persisted", None) if extensions else None
        if persisted is None:
            query = payload["query"]  # as Strawberry reads it: none is unparsable
        else:
            try:
                query = persisted.document(payload.get("query"), extensions)
            except RequestError as exc:
                return await self.send_message({"id": op_id, "type": "error", "payload": [request_error(exc).formatted]})
        operation = _Operation(self, op_id, query, payload.get("variables"), payload.get("operationName"))
        operation.opening = True
        # The limits (strawberry_sockets.Limited; Strawberry's counts every
        # operation), asked only of a socket holding enough to reach one.
        limit = self.max_subscriptions_per_connection
        held = len(operations)
        if held >= self.requests_limit or (limit is not None and held >= limit):
            refused = self.refusal(self.kind(operation), operations.values(), held, limit)  # type: ignore[arg-type]
            if refused is not None:
                return await self.send_message({"id": op_id, "type": "error", "payload": [refused]})
        # No done callback (Strawberry's `_task_done`, which retrieves an
        # exception: four calls a subscribe): run_operation ends every one.
        if extensions is None:
            # The receive loop's context holds none (OPERATION_EXTENSIONS'
            # default): the task's copy of it has none either.
            operation.task = self.loop.create_task(self.run_operation(operation))
        else:
            # The task copies the context as it is made: the extensions' with it.
            token = OPERATION_EXTENSIONS.set(extensions)
            try:
                operation.task = self.loop.create_task(self.run_operation(operation))
            finally:
                OPERATION_EXTENSIONS.reset(token)
        operations[op_id] = operation

    async def run_operation(self, operation: _Operation) -> None:  # type: ignore[override] # handle_subscribe's
        # Counted as an open subscription from here on, once: a member
        # attached with no task hands its count to its _Broadcast (one gauge
        # update per broadcast subscribe, where counting this task in and
        # out, then the _Broadcast in, made three).
        subscriptions = metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL)
        subscriptions.n += 1
        handed = False
        try:
            fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
            try:
                taken = await fanout.take(
                    self.context, self.socket, operation.query, operation.variables, operation.operation_name
                )
            except Refused as refused:
                _fixed(operation)
                # An `error` message ends the operation: no `complete` follows.
                await operation.send_initial_errors(refused.errors)
            else:
                if taken is None:
                    # Strawberry's run ends an exception itself (logged, the
                    # client told `complete`, the id forgotten), then raises it
                    # again for `_task_done` to retrieve: retrieved here.
                    with contextlib.suppress(Exception):
                        await self._run_in_order(operation, fanout)
                else:
                    # Its start fixed (a change feed's), or read after it
                    # joins (a row's, a live list's): in order (_run_in_order).
                    # _fixed's, without its call (every subscribe; a complete
                    # that fixed it first cancelled this task at take).
                    waiter = operation.opening
                    operation.opening = None
                    if waiter is not True:
                        waiter.set_result(None)  # type: ignore[union-attr] # not None: see above
                    prefix = b'{"id":' + json_string(operation.id) + b',"type":"next","payload":'
                    following = taken.attach(prefix, b"}")
                    if following is None:
                        await self.deliver(operation, taken.run(prefix, b"}"))
                    else:
                        self.broadcasts[operation.id] = _Broadcast(self, operation, following)
                        # This task ends here: kept by the operation (with
                        # its context and coroutine) for as long as the
                        # socket lives, it is a cost only.
                        operation.task = None
                        handed = True  # its count the _Broadcast's now
        except WebSocketDisconnected:
            # The client is gone, or stalled and being closed (a refusal's
            # `error`, a row stream's `complete`, not sent): nothing to log
            # nor to tell it; the receive loop's end cleans up. (Strawberry's
            # `_task_done` retrieved it as silently.)
            pass
        except Exception as error:  # noqa: BLE001 - as Strawberry's run ends one: logged, the client told
            _fixed(operation)
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            # Its own, if still there: the `complete` freed the id before its
            # send, which may have waited while a subscribe took the id again.
            if self.operations.get(operation.id) is operation:
                del self.operations[operation.id]
        finally:
            if not handed:
                subscriptions.n -= 1

    async def _run_in_order(self, operation: _Operation, fanout: Fanout) -> None:
        """Strawberry's run: a subscription's start told as it is fixed (or
        as it ends); an operation that is no subscription run once the
        subscriptions sent before it have fixed theirs."""
        if fanout.opens(operation.query, operation.operation_name, functools.partial(_fixed, operation)):
            try:
                await super().run_operation(operation)
            finally:
                _fixed(operation)
        else:
            await in_order(self._earlier(operation), self.socket)
            await super().run_operation(operation)

    def _earlier(self, operation: _Operation) -> list[asyncio.Future[None]]:
        """strawberry_sockets.earlier's, of `operations` (in the order sent)."""
        waiters = []
        for sent in self.operations.values():
            if sent is operation:
                break
            assert isinstance(sent, _Operation)  # handle_subscribe makes them
            waiter = sent.opening
            if waiter is True:
                waiter = sent.opening = self.loop.create_future()
            if waiter is not None:
                waiters.append(waiter)
        _fixed(operation)
        return waiters

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
            if closed(self.socket, error):
                return  # its delivery's send found the socket closed: as a send_message would
            await self.handle_task_exception(error)
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        if isinstance(operation, _Operation):
            # Completed before its start was fixed: its task may never run.
            _fixed(operation)
        broadcast = self.broadcasts.pop(operation_id, None)
        if broadcast is not None:
            broadcast.stop()
            if broadcast.task is None:
                # No task to cancel (Strawberry's cleanup asserts one).
                self.operations.pop(operation_id, None)
                return
        await super().cleanup_operation(operation_id)


class _Operation(Operation[Any, None]):
    """Strawberry's Operation, and where its start stands (strawberry_sockets'
    order): True while it is not fixed, the future an operation sent after
    it waits on once one does, None once it is fixed (or it has none)."""

    __slots__ = ("opening", "subscription")

    opening: asyncio.Future[None] | Literal[True] | None
    # Whether it is a subscription (MAX_SUBSCRIPTIONS counts those alone);
    # unset until asked (strawberry_sockets.Limited.kind).
    subscription: bool | None


def _fixed(operation: _Operation) -> None:
    """The operation's start is fixed, or it has none: wake who waits for it."""
    waiter = operation.opening
    operation.opening = None
    if isinstance(waiter, asyncio.Future):
        waiter.set_result(None)


class _Broadcast:
    """A graphql-transport-ws operation whose member joined its group with no
    task. One starts (as the operation's task, which `cleanup_operation`
    cancels) only when the group drops the member, to catch up from the
    journal and rejoin, or closes, to answer `complete`. Counted as an open
    subscription until it ends (the count its operation's task handed over)."""

    __slots__ = ("following", "handler", "operation", "task")

    def __init__(self, handler: GatedTransportWs, operation: Operation[Any, None], following: Following) -> None:
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


def _malformed_transport(message: dict[str, Any], kind: str) -> str | None:
    """What is wrong with a graphql-transport-ws message of this type (an
    object with a string type: NOT_A_MESSAGE otherwise), by the formats of
    graphql-ws's PROTOCOL.md, as far as Strawberry does not check it itself
    (connection_init's payload, unknown types, a missing field); None when
    it may go on."""
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
