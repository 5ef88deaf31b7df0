"""What both of Strawberry's GraphQL WebSocket handlers share: the fan-out they offer each
subscription to, the gate for connection_init and its deadline, the checks of an operation's
payload, and one socket's limits (Limited). What they need from the app comes in as the Protocols
below (the view and its fan-out)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import orjson
from graphql import GraphQLError, OperationType
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from graphql_todos.core import metrics
from graphql_todos.core.errors import ErrorCode
from graphql_todos.internals.strawberry_view import CONNECTED, DISCONNECTED, BoundedSendAdapter


class Signalled(Protocol):
    """A broadcast member (live/broadcast.py's Member): told once its group drops it or closes."""

    on_signal: Callable[[], None] | None


class Following(Protocol):
    """A broadcast member in its group with no task (graphql/fanout.py's Attached)."""

    @property
    def member(self) -> Signalled: ...

    def leave(self) -> None: ...

    async def follow(self) -> None:
        """Deliver from where the member is; raises StreamFailed."""


class TakenMember(Protocol):
    """A WebSocket's subscription the fan-out took (graphql/fanout.py's SocketMember)."""

    async def run(self, prefix: bytes, suffix: bytes) -> None:
        """Deliver its changes, framed in prefix and suffix, until the hub
        closes (cancel to end it); raises StreamFailed."""

    def attach(self, prefix: bytes, suffix: bytes) -> Following | None:
        """Join its group now with no task; None: `run` it instead."""


class _Failed(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


class Refused(_Failed):
    """A subscription the fan-out took but the start refused (a bad or
    expired cursor, no database): its errors, formatted as Strawberry's path
    would, so the client hears them once and the database is asked once."""


class StreamFailed(_Failed):
    """A broadcast member's stream that failed once started (its cursor was
    pruned past as it caught up): its errors, formatted as Strawberry's path
    gives a stream that fails, which sends them as a result, then ends."""


class Fanout(Protocol):
    async def take(
        self, context: Any, websocket: WebSocket, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> TakenMember | None:
        """The subscription as a broadcast member, or None: Strawberry runs it
        (other documents, and every error, answered the usual way)."""

    def opens(self, query: str, operation_name: str | None, started: Callable[[], None]) -> bool:
        """For an operation `take` left to Strawberry, about to run in this
        task: True for a subscription, whose stream calls `started` once its
        start is fixed (or it has none to fix); False for one that opens
        none (a query, a mutation, a document that names no operation)."""


# One socket's order (README, "One socket's order"): a query or mutation
# runs once every subscription sent before it on the socket has fixed its
# start (asked where the journal stands, for one from now), so a
# subscription sent first sees its change; subscriptions wait for nothing.
# Each handler keeps, for its operations sent whose start is not fixed yet
# (an operation that is no subscription has none), in the order sent, the
# future a later operation waits on: None (legacy, Openings) or True
# (graphql-transport-ws's _Operation) while none does.
Openings = dict[object, "asyncio.Future[None] | None"]



def opened(openings: Openings, operation: object) -> None:
    """The operation's start is fixed, or it has none: wake who waits for it."""
    waiter = openings.pop(operation, None)
    if waiter is not None:
        waiter.set_result(None)


def earlier(openings: Openings, operation: object) -> list[asyncio.Future[None]]:
    """What an operation that is no subscription waits on: the futures of
    those sent before it whose start is not fixed (its own entry dropped)."""
    sent_before = []
    for sent in openings:
        if sent is operation:
            break
        sent_before.append(sent)
    opened(openings, operation)
    waiters = []
    for sent in sent_before:
        waiter = openings[sent]
        if waiter is None:
            waiter = openings[sent] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
    return waiters


async def in_order(waiters: list[asyncio.Future[None]], websocket: WebSocket) -> None:
    """Wait until the operations sent before this one have fixed their
    start (their futures: `earlier`'s), at most the server's
    DATABASE_TIMEOUT_SECONDS (its settings, in the socket's scope)."""
    if waiters:
        # An opening is answered or refused within the database's timeout,
        # the setting's, whatever it is, unless the listener and the pool
        # both hang; then the operation goes on, out of order. A literal 5 s
        # let a mutation overtake an opening a server told to wait longer
        # was still allowed to finish (review19's tests).
        settings = websocket.scope["state"]["settings"]
        await asyncio.wait(waiters, timeout=settings.database_timeout_seconds)


# Read once: an enum member read through its class is EnumType's hook on
# Python 3.11 (some 900 instructions), twice in Starlette's __init__.
_CONNECTING = WebSocketState.CONNECTING


def new_websocket(scope: Scope, receive: Receive, send: Send) -> WebSocket:
    """Starlette's WebSocket of a "websocket" scope, as its `__init__` makes
    it, without its call and HTTPConnection's, their asserts of the scope's
    type (the front door reads it first) and their two reads of
    `WebSocketState.CONNECTING`: every open.

    Assumes (tests/internals/test_strawberry_sockets.py compares the two):
    `__init__` sets no more than `scope`, `_receive`, `_send`,
    `client_state` and `application_state`."""
    websocket: WebSocket = object.__new__(WebSocket)
    websocket.scope = scope
    websocket._receive = receive
    websocket._send = send
    websocket.client_state = websocket.application_state = _CONNECTING
    return websocket


def serve_socket(view: GraphQL[Any, Any], websocket: WebSocket) -> Awaitable[object]:
    """What Strawberry's ASGI view does with a "websocket" scope, for the
    WebSocket made of it already (one object, its headers read once, and
    no frame of the view's `__call__` under an open socket); for one that
    speaks graphql-transport-ws, `run`'s steps done here (_serve_transport_ws).

    Assumes: the view's `__call__` on a "websocket" scope does no more than
    `await self.run(WebSocket(scope, receive, send))`; `run` speaks the first
    subprotocol the client offers of the view's `websocket_subprotocols`,
    which are its `protocols` that are one of WEBSOCKET_PROTOCOLS."""
    # A loop: a generator expression in next() was two objects an open.
    # `websocket_subprotocols` is a property making a list of `protocols`
    # (a comprehension: two calls an open): its test, read here instead.
    speaks = view.protocols
    for offered in websocket.scope.get("subprotocols", ()):
        if offered in speaks and offered in WEBSOCKET_PROTOCOLS:
            if offered == GRAPHQL_TRANSPORT_WS_PROTOCOL:
                return _serve_transport_ws(view, websocket)
            break
    return view.run(websocket)


async def _serve_transport_ws(view: GraphQL[Any, Any], websocket: WebSocket) -> None:
    """`run` for a graphql-transport-ws socket: its Origin check, the
    accept, the adapter, the context and the handler, as `run` makes them,
    without its coroutines for a root value, the subprotocol's pick and the
    accept (CPU at every open).

    Assumes (tests/internals/test_strawberry_sockets.py): for a WebSocket,
    `run` checks `_check_websocket_origin` first (`reject_websocket` if
    refused), takes `get_root_value`'s (None, the ASGI view's), accepts with
    the subprotocol (`create_websocket_response`, the WebSocket itself its
    response), then hands the handler class the arguments below; and that
    the check passes a handshake without Origin (no browser), reading the
    view's `get_websocket_headers`, the WebSocket's own. That case (every
    socket of a client that is no browser) is told here in C from the
    scope's headers, where the check's Mapping.get walked them in Python
    and raised and caught a KeyError: five calls an open."""
    if b"origin" in dict(websocket.scope["headers"]) and not view._check_websocket_origin(websocket):
        await view.reject_websocket(websocket)
        return
    # Starlette's `accept` (its `receive` of the connect, then its `send` of
    # the accept, each checking and moving its state) inline: three calls an
    # open. The WebSocket is new, both states CONNECTING.
    connect = await websocket._receive()
    if connect["type"] != "websocket.connect":
        raise RuntimeError(f'Expected ASGI message "websocket.connect", but got {connect["type"]!r}')
    websocket.client_state = websocket.application_state = CONNECTED
    await websocket._send({"type": "websocket.accept", "subprotocol": GRAPHQL_TRANSPORT_WS_PROTOCOL, "headers": []})
    adapter = view.websocket_adapter_class(view, websocket, websocket)
    context = await view.get_context(websocket, response=websocket)
    handler = view.graphql_transport_ws_handler_class(
        view=view,
        websocket=adapter,
        context=context,
        root_value=None,
        schema=view.schema,
        connection_init_wait_timeout=view.connection_init_wait_timeout,
        max_subscriptions_per_connection=view.max_subscriptions_per_connection,
    )
    # The server's REQUESTS_IN_FLIGHT (Limited's; the handler and the view,
    # which keeps the setting, are ours: graphql/view.py's).
    handler.requests_limit = view.requests_in_flight  # type: ignore[attr-defined]
    await handler.handle()


WEBSOCKET_PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL)


def closed(websocket: WebSocket, error: Exception) -> bool:
    """Whether a handler's send failed as it did (`error`) because the
    socket is closed or closing: the client is gone (its disconnect read, or
    the server found it gone as it wrote), or the app closed it (a refusal,
    a revocation, a stalled client). Its message is then dropped quietly:
    there is no one to tell, and the handler's receive loop, which reads the
    disconnect, ends every operation. Any other failure is a bug (a message
    that cannot be encoded, say): raised, and logged once where it is now.

    Assumes (tests/internals/test_strawberry_sockets.py): the view's adapter
    (strawberry_view.BoundedSendAdapter) raises Strawberry's
    WebSocketDisconnected for a client gone, a send after the app's close and
    a stalled client; uvicorn's `websockets` protocol raises a bare
    RuntimeError for a send once its receive has handed the app the
    disconnect, after which Starlette's state on one side is DISCONNECTED
    (our receive loop sets the client's as Starlette's `receive` does)."""
    if isinstance(error, WebSocketDisconnected):
        return True
    return isinstance(error, RuntimeError) and (
        websocket.client_state is DISCONNECTED or websocket.application_state is DISCONNECTED
    )


class SendsUntilClosed:
    """Both handlers' `send_message`, Strawberry's send of every message (an
    operation's `next`, `data`, `error` and `complete`, the one legacy sends
    when an operation is cancelled as the socket ends, ours too): dropped
    quietly once the socket is closed (`closed`), where Strawberry's run
    would log the failure as "Exception in worker task", with a traceback,
    for a client that closed or reset its socket as a message went out.
    First among a handler's bases, so it stands for Strawberry's."""

    websocket: AsyncWebSocketAdapter

    async def send_message(self, message: Any) -> None:
        try:
            await self.websocket.send_json(message)
        except (WebSocketDisconnected, RuntimeError) as error:
            if not closed(websocket_of(self.websocket), error):
                raise


def websocket_of(adapter: object) -> WebSocket:
    # Assumes: Strawberry's ASGI view hands its handlers an
    # ASGIWebSocketAdapter keeping Starlette's WebSocket as `.ws`.
    assert isinstance(adapter, ASGIWebSocketAdapter)
    return adapter.ws


def stalled_adapter(adapter: object) -> BoundedSendAdapter:
    # Assumes: the view's websocket_adapter_class is ours (graphql/view.py).
    assert isinstance(adapter, BoundedSendAdapter)
    return adapter


# A string as JSON: orjson's own function, not a wrapper's call an open.
json_string: Callable[[str], bytes] = orjson.dumps


class ConnectionGate(Protocol):
    """The view's side of a WebSocket's connection_init: whether it may go on."""

    async def connection_allowed(self, context: Any, params: object) -> bool: ...

    def hold(self, context: Any, end: Callable[[str], None]) -> Callable[[], None]:
        """Register the socket to be ended (`end(reason)`) when the credential
        it came with is revoked; returns its release."""
        ...


class Revocable:
    """A GraphQL socket that closes 4401 when the session or token it came
    with is revoked (the app's edge/revocation.py tells the view's `hold`)."""

    _release: Callable[[], None] | None = None
    _revoking: asyncio.Task[None] | None = None

    def hold_credential(self, gate: ConnectionGate, context: Any, websocket: AsyncWebSocketAdapter) -> None:
        def end(reason: str) -> None:
            self._revoking = asyncio.create_task(websocket.close(ErrorCode.UNAUTHENTICATED.close_code, reason))

        self._release = gate.hold(context, end)

    async def release_credential(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None
        if self._revoking is not None:
            with contextlib.suppress(Exception):
                await self._revoking


UNAUTHENTICATED_REASON = "this server requires a bearer token"
# graphql-transport-ws's close for a connection_init that never came, and for
# a second connection_init: the legacy protocol has neither, and does the same.
INIT_TIMEOUT_CODE = 4408
INIT_TIMEOUT_REASON = "Connection initialisation timeout"
TOO_MANY_INITS_CODE = 4429
TOO_MANY_INITS_REASON = "Too many initialisation requests"


def init_timer(seconds: float, expired: Callable[[], None]) -> asyncio.TimerHandle:
    # A timer rather than Strawberry's sleeping task: every socket pays for
    # the timeout, but only a late one needs a task (to close).
    return asyncio.get_running_loop().call_later(seconds, expired)


def close_late(websocket: AsyncWebSocketAdapter) -> asyncio.Task[None]:
    """Close a socket whose connection_init did not come in time."""
    metrics.refused("connection_init_timeout")
    return asyncio.create_task(websocket.close(INIT_TIMEOUT_CODE, INIT_TIMEOUT_REASON))


def malformed_operation(payload: object, query_required: bool) -> str | None:
    """What is wrong with an operation's payload (a GraphQL request's fields)."""
    if not isinstance(payload, dict):
        return "payload must be an object"
    query, extensions = payload.get("query"), payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        return "payload.extensions must be an object or null"
    if not isinstance(query, str) and (query_required or query is not None or extensions is None):
        return "payload.query must be a string"
    if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
        return "payload.variables must be an object or null"
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        return "payload.operationName must be a string or null"
    return None


# One socket's limits (README, "One socket's limits"), on both protocols.
# Strawberry's refusal of a subscription over MAX_SUBSCRIPTIONS, its words
# kept, with the code the queries' and mutations' bound gives (review22: a
# client could not tell it by code).
LIMIT_REACHED = "Subscription limit reached"
LIMIT_REACHED_ERROR = {"message": LIMIT_REACHED, "extensions": {"code": ErrorCode.TOO_MANY_REQUESTS.name}}
# MAX_SUBSCRIPTIONS counts a socket's subscriptions alone: Apollo and urql
# send an app's queries and mutations over the socket holding its
# subscriptions, and one at the limit must still write. Queries and
# mutations have their own bound, REQUESTS_IN_FLIGHT in flight (each a
# task, waiting behind the openings sent before it): a client sending them
# without waiting for the answers gets an `error` for each past it, the
# socket kept. The setting's default (core/settings.py; tests hold the two
# equal): a handler's bound until the server's is set as the socket is served.
REQUESTS_IN_FLIGHT = 100


def requests_refusal(bound: int) -> dict[str, Any]:
    """The error refusing a query or mutation over a socket's bound."""
    message = f"More than {bound} queries and mutations in flight on this socket"
    return {"message": message, "extensions": {"code": ErrorCode.TOO_MANY_REQUESTS.name}}


REQUESTS_IN_FLIGHT_REASON = requests_refusal(REQUESTS_IN_FLIGHT)["message"]


class Kinds(Protocol):
    """The view's intake (graphql/intake.py's Intake): the kind of an operation."""

    def operation_type(self, query: str, operation_name: str | None) -> OperationType | None: ...


def subscribes(view: object, query: object, operation_name: str | None) -> bool:
    """Whether an operation sent on a socket is a subscription (what the
    limit counts): a document that does not parse, names no operation or
    is not allowed is none (Strawberry's run refuses it).

    Assumes: the view (graphql/view.py's) keeps its Intake as `intake`,
    whose kinds are kept with its documents (a subscribe of a document seen
    before parses nothing)."""
    if not isinstance(query, str):
        return False
    intake: Kinds = view.intake  # type: ignore[attr-defined]
    return intake.operation_type(query, operation_name) is OperationType.SUBSCRIPTION


class Held(Protocol):
    """An operation a socket holds (graphql-transport-ws's _Operation, the
    legacy protocol's _Started task), as its limits see it: its document,
    and whether it is a subscription (unset or None until asked)."""

    query: str
    operation_name: str | None
    subscription: bool | None


class Limited:
    """Both handlers' limits per socket, counted here alone: a subscription
    over MAX_SUBSCRIPTIONS (the view's, handed to each handler) is refused,
    a query or mutation over `requests_limit` (REQUESTS_IN_FLIGHT) too,
    each refusal counted in the metrics. An operation's kind is asked only
    of a socket holding as many operations as either limit (most sockets'
    subscribes ask none: each handler compares its count inline, without
    a call, before asking `refusal`), then kept with the operation."""

    view: Any
    # The server's REQUESTS_IN_FLIGHT, set as the socket is served
    # (_serve_transport_ws, GatedLegacyWs.handle).
    requests_limit: int = REQUESTS_IN_FLIGHT

    def kind(self, operation: Held) -> bool:
        """Whether the operation is a subscription, asked once."""
        # Unset until asked: a store fewer at every subscribe.
        subscription = getattr(operation, "subscription", None)
        if subscription is None:
            subscription = operation.subscription = subscribes(self.view, operation.query, operation.operation_name)
        return subscription

    def refusal(
        self, subscription: bool, held: Iterable[Held], count: int, subscription_limit: int | None,
        replaced: Held | None = None,
    ) -> dict[str, Any] | None:
        """The error refusing an operation (a subscription or not) sent on a
        socket holding `count` operations (`held`, but for `replaced`, which
        the operation stops if it goes on), or None: MAX_SUBSCRIPTIONS
        (`subscription_limit`, None: no limit) for a subscription,
        `requests_limit` for any other."""
        if subscription:
            limit = subscription_limit
            if limit is not None and count >= limit and self._counted(held, True, replaced) >= limit:
                metrics.refused("subscriptions_per_socket")
                return LIMIT_REACHED_ERROR
        elif count >= self.requests_limit and self._counted(held, False, replaced) >= self.requests_limit:
            metrics.refused("requests_per_socket")
            return requests_refusal(self.requests_limit)
        return None

    def _counted(self, held: Iterable[Held], subscriptions: bool, replaced: Held | None) -> int:
        """The socket's subscriptions, or its queries and mutations."""
        counted = 0
        for operation in held:
            subscription = getattr(operation, "subscription", None)  # kind's, without its call once asked
            counted += (self.kind(operation) if subscription is None else subscription) is subscriptions
        if replaced is not None:
            counted -= self.kind(replaced) is subscriptions
        return counted
