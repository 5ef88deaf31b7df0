"""Every place the app relies on Strawberry's or graphql-core's internals.

Each override says what it assumes of the library; tests/test_graphql_internals.py
pins each assumption, so an upgrade that breaks one fails a test by name
instead of misbehaving quietly.

- Shared per-event execution: subscribers whose operations are the same
  document (the same object, thanks to the parser cache) with the same
  variables get the same result for the same event, so the first executes it
  and serializes its data once (an orjson Fragment) and the rest reuse those
  bytes. This holds because no resolver below a subscription reads
  per-connection context: a field that does (a viewer, permissions) must add
  that to the key.
- Variable coercion errors are tagged BAD_USER_INPUT where graphql-core
  makes them, and say `null` (the client's JSON) where graphql-core says
  `None`.
- Parsed documents are cached; a miss (and so a document that does not
  parse) is left to Strawberry's own parse step, which answers errors on
  every transport.
- Error masking skips results without errors cheaply.
- `Schema.execute` (one result) refuses subscriptions.
- Broadcast subscriptions (graphql_fanout.py, broadcast.py): the WebSocket
  handlers offer each operation to the view's fan-out before running it the
  Strawberry way, and a frame goes straight to uvicorn's connection when it
  is the `websockets-sansio` protocol.
- Both WebSocket protocols check the bearer token when connection_init
  arrives, and refuse it with our close codes (Strawberry's own rejection
  closes graphql-transport-ws with 4403 and the legacy protocol with 1011);
  both close a socket whose connection_init does not come in time (4408:
  Strawberry's legacy handler waits forever), and one that sends a second.
- `Schema.execute` (one result) refuses subscriptions; `Schema.subscribe`
  (only the legacy graphql-ws handler calls it) runs queries and mutations
  too, as one result then `complete`.
- Multipart subscription responses get a valid Content-Type; broadcast
  members' parts (graphql_multipart.py) are framed by the transport's own
  methods, as Strawberry frames its parts.
- Persisted queries: every transport runs operations through
  `Schema.execute()` or `Schema.stream()`, where the document is looked up
  from `extensions.persistedQuery`; a graphql-transport-ws `subscribe`
  (whose extensions Strawberry drops) gets its document before Strawberry
  reads the payload.
- Compiled plans (compiled.py, fastpath.py) give root resolvers the info
  Strawberry's executor would, read plain fields as Strawberry's default
  resolver does, and validate with Strawberry's rules; the fast path
  answers a document that fails to parse or validate as Strawberry's path
  does (parse, then the operation's type against the method, then validate). (They also call
  graphql-core's own field collection and leaf completion; the
  property-based tests in tests/test_compiled.py compare whole responses.)
- WebSocket sends are bounded in time: a client that stopped reading is
  closed with CLIENT_STALLED (4408) rather than held forever.
- Every JSON text a client sends (HTTP bodies, GET variables and
  extensions, WebSocket messages of both protocols) is decoded by
  json_intake, whose RefusedJson reaches the view (HTTP) or the socket's
  front door (a close with 4400 and the reason), instead of json.loads,
  whose RecursionError or UnicodeDecodeError was a 500 or a close 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import struct
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, cast

import orjson
import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    specified_rules,
)
from graphql import OperationType as OperationKind
from graphql.pyutils import Path
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketDisconnected as SendAfterClose
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.streaming import MultipartSubscriptionTransport
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    validate_document,
)
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult as StrawberryExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from graphql_todos.core.errors import ClientStalled, ErrorCode, RequestError
from graphql_todos.core.models import Change, Todo
from graphql_todos.edge import json_intake, metrics
from graphql_todos.live.broadcast import Member
from graphql_todos.live.streams import LiveRows

logger = logging.getLogger(__name__)
_SHARED_ROOTS = (Change, Todo, LiveRows)
# graphql-core spells the JSON null a client sent the Python way.
_PYTHON_NULL = " not to be None."


def tag(error: GraphQLError, code: ErrorCode) -> None:
    """Give an error its code where it is made (see schema.error_code)."""
    error.extensions = {**(error.extensions or {}), "code": code.name}


class SharedResults:
    """Results of subscription events, keyed by (root, operation, variables);
    one per schema. Entries hold root and operation, so their ids cannot be
    reused by other objects while an entry lives."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.executions = 0
        self._results: OrderedDict[tuple[int, int, bytes], tuple[Any, Any, ExecutionResult]] = OrderedDict()

    def get(self, key: tuple[int, int, bytes], root: Any, operation: Any) -> ExecutionResult | None:
        cached = self._results.get(key)
        if cached is None or cached[0] is not root or cached[1] is not operation:
            return None
        self._results.move_to_end(key)
        return cached[2]

    def put(self, key: tuple[int, int, bytes], root: Any, operation: Any, result: ExecutionResult) -> None:
        self.executions += 1
        self._results[key] = (root, operation, result)
        if len(self._results) > self.size:
            self._results.popitem(last=False)


class _Done:
    """A per-event executor whose result is already known."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self.result


class TodoExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Assumes: graphql-core builds the executor with `build()` (which returns
    a list of errors when the variables cannot be coerced), calls
    `build_per_event_executor(payload)` for each subscription event and then
    `execute_operation()` on what it returns; Strawberry keeps itself on the
    graphql-core schema as `_strawberry_schema`."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            # No operation to run: the request's own values (variables, the
            # operation name) are at fault, never the server.
            for error in built:
                tag(error, ErrorCode.BAD_USER_INPUT)
                if error.message.endswith(_PYTHON_NULL):
                    error.message = error.message.removesuffix(_PYTHON_NULL) + " not to be null."
        return built

    @property
    def _shared(self) -> SharedResults:
        results: SharedResults = self.schema._strawberry_schema.shared_results  # type: ignore[attr-defined]
        return results

    def build_per_event_executor(self, payload: Any) -> Any:
        # A hit needs no per-event copy of the executor at all.
        if (key := self._shared_key(payload)) is not None:
            result = self._shared.get(key, payload, self.operation)
            if result is not None:
                return _Done(result)
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        key = self._shared_key(self.root_value)
        result = super().execute_operation(serially)
        if key is None:
            return result
        if inspect.isawaitable(result):
            return self._store_later(key, result)
        return self._store(key, cast(ExecutionResult, result))

    def _shared_key(self, root: Any) -> tuple[int, int, bytes] | None:
        if self.operation.operation is not OperationKind.SUBSCRIPTION or not isinstance(root, _SHARED_ROOTS):
            return None
        return (id(root), id(self.operation), self._variables_key)

    @functools.cached_property
    def _variables_key(self) -> bytes:
        # Computed once per subscription: per-event executors are copies of
        # this one and inherit the cached value.
        return orjson.dumps(self.variable_values.coerced, option=orjson.OPT_SORT_KEYS, default=str)

    async def _store_later(self, key: tuple[int, int, bytes], pending: Any) -> Any:
        return self._store(key, await pending)

    def _store(self, key: tuple[int, int, bytes], result: ExecutionResult) -> ExecutionResult:
        if not result.errors:
            result = ExecutionResult(data=orjson.Fragment(orjson.dumps(result.data)))  # type: ignore[arg-type]
        self._shared.put(key, self.root_value, self.operation, result)
        return result


class ParseCache(SchemaExtension):
    """A bounded cache of parsed documents (the same object for the same text,
    which shared execution relies on) that leaves a miss to Strawberry's own
    parse step. Assumes: Strawberry runs `on_parse` around that step, skips it
    when `graphql_document` is already set, and turns a GraphQLSyntaxError
    there into an error result on every transport. So a document that does not
    parse (or has more than MAX_TOKENS tokens) is parsed once, not twice as
    with ParserCache, whose own parse in `on_parse` cannot answer errors."""

    size: ClassVar[int] = 1024
    _documents: ClassVar[OrderedDict[tuple[str, tuple[Any, ...]], DocumentNode]] = OrderedDict()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query or "", tuple(sorted(context.parse_options.items())))
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
            context.graphql_document = document
        yield
        if document is None and context.query and context.graphql_document is not None:
            self._documents[key] = context.graphql_document
            if len(self._documents) > self.size:
                self._documents.popitem(last=False)


class CheapMaskErrors(MaskErrors):
    """Assumes: MaskErrors hands every result, stream results included, to
    `_process_result`, which asks a runtime-checkable Protocol first (slow:
    it runs for every result sent to every subscriber)."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


class Documents(Protocol):
    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run (RequestError: none may run)."""
        ...

    def allows(self, query: str) -> bool:
        """Whether a request sending this document in full may run it."""
        ...


def _request_error(exc: RequestError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code.name})


class OneResultSchema(strawberry.Schema):
    """Assumes: Strawberry's HTTP views call `execute()` with the operation
    types the request method allows, and stream subscriptions through
    `subscribe()`/`stream()` instead; every transport runs operations
    through `execute()` or `stream()` (`subscribe()` calls `stream()`),
    passing the request's extensions, before Strawberry requires a query:
    both look up a persisted query's document there."""

    persisted: Documents | None = None

    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document a request runs: its own, or the persisted one its
        hash names (RequestError: none may run)."""
        return query if self.persisted is None else self.persisted.document(query, extensions)

    def runnable(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """`document`, or None where it raises: the paths that take only some
        requests (the fast path, the fan-out) leave those to Strawberry's,
        which answers them with their code."""
        try:
            return self.document(query, extensions)
        except RequestError:
            return None

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> StrawberryExecutionResult:
        try:
            query = self.document(query, operation_extensions)
        except RequestError as exc:
            return StrawberryExecutionResult(data=None, errors=[_request_error(exc)])
        # One result cannot carry a subscription: refuse it instead of
        # resolving null.
        allowed: set[OperationType] = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    async def stream(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        try:
            query = self.document(query, operation_extensions)
        except RequestError as exc:
            return _refused(exc)
        return await super().stream(
            query, variable_values, context_value, root_value, operation_name,
            operation_extensions, allowed_operation_types,
        )

    # Assumes: only the legacy graphql-ws handler calls subscribe() (by
    # keyword), and sends each result as `data`, then `complete`. Older
    # Apollo links send queries and mutations with `start`: run any
    # operation, as stream() does for the newer protocol.
    subscribe = stream  # type: ignore[assignment]


async def _refused(exc: RequestError) -> AsyncGenerator[PreExecutionError, None]:
    # As the stream of a document that does not validate: one error, no data.
    yield PreExecutionError(data=None, errors=[_request_error(exc)])


class MultipartSubscriptions(MultipartSubscriptionTransport):
    """Assumes: the view sends `headers` as the response's headers. Strawberry's
    Content-Type appends `,application/json` to the multipart type, which no
    parser reads as one media type; this one is valid (RFC 2046 parameters).

    The broadcast path (graphql_multipart.py) frames its parts with the same
    methods. Assumes: `encode_next(response, encode_json)` is
    `encode_multipart_data({"payload": response}, encode_json)`, which frames
    what `encode_json` returns; heartbeats and the end are
    `heartbeat_message(encode_json)` and `encode_complete()`, the first
    heartbeat sent at once when `send_initial_heartbeat`."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f'multipart/mixed; boundary="{self.separator}"; subscriptionSpec="1.0"'}

    def next_part(self, response: bytes) -> bytes:
        """encode_next's part for a response already encoded as JSON."""
        # str() hands the encoded text back as it is.
        return self.encode_multipart_data((b'{"payload":' + response + b"}").decode(), str).encode()

    def heartbeat_part(self) -> bytes:
        return self.heartbeat_message(_encode_json).encode()


def _encode_json(data: object) -> str:
    # As the view encodes (graphql_view.TodoGraphQL.encode_json).
    return orjson.dumps(data).decode()


class Following(Protocol):
    """A broadcast member in its group with no task (graphql_fanout.Attached)."""

    @property
    def member(self) -> Member: ...

    def leave(self) -> None: ...

    async def follow(self) -> None:
        """Deliver from where the member is; raises StreamFailed."""


class TakenMember(Protocol):
    """A WebSocket's subscription the fan-out took (graphql_fanout.SocketMember)."""

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


def _websocket(adapter: object) -> WebSocket:
    # Assumes: Strawberry's ASGI view hands its handlers an
    # ASGIWebSocketAdapter keeping Starlette's WebSocket as `.ws`.
    assert isinstance(adapter, ASGIWebSocketAdapter)
    return cast(WebSocket, adapter.ws)


def _stalled_adapter(adapter: object) -> BoundedSendAdapter:
    # Assumes: the view's websocket_adapter_class is ours (graphql_view).
    assert isinstance(adapter, BoundedSendAdapter)
    return adapter


def _json_string(value: str) -> bytes:
    return orjson.dumps(value)


class FanoutTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """Assumes: handle_subscribe (after its checks: acknowledged, duplicate
    id, limit) registers the Operation and runs `run_operation(operation)` in
    `operation.task`; `complete` from the client and a disconnect go through
    `cleanup_operation(id)`, which forgets the operation and cancels
    `operation.task` (shutdown then awaits it); the message sent when the
    stream ends is `complete` through `operation.send_operation_message`,
    which forgets the id; `_task_done` is the done callback that retrieves
    an operation task's exception. The view has a `fanout`
    (graphql_view.TodoGraphQL).

    A broadcast member on a socket that takes direct writes joins its group
    and its task ends: the operation stays registered (the limit, duplicate
    ids and `complete` see it as any other), fed with no task until its
    group drops it or closes (_Broadcast)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.broadcasts: dict[str, _Broadcast] = {}

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        with metrics.graphql_operation(GRAPHQL_TRANSPORT_WS_PROTOCOL):
            await self._run_operation(operation)

    async def _run_operation(self, operation: Operation[Any, None]) -> None:
        websocket = _websocket(self.websocket)
        fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
        try:
            taken = await fanout.take(self.context, websocket, operation.query, operation.variables, operation.operation_name)
        except Refused as refused:
            # An `error` message ends the operation: no `complete` follows.
            return await operation.send_initial_errors(refused.errors)
        if taken is None:
            return await super().run_operation(operation)
        prefix = b'{"id":' + _json_string(operation.id) + b',"type":"next","payload":'
        following = taken.attach(prefix, b"}")
        if following is None:
            return await self.deliver(operation, taken.run(prefix, b"}"))
        self.broadcasts[operation.id] = _Broadcast(self, operation, following)

    async def deliver(self, operation: Operation[Any, None], delivery: Awaitable[None]) -> None:
        """Await a broadcast member's delivery, then answer `complete`, as
        Strawberry's path does when a stream ends."""
        try:
            await delivery
        except WebSocketDisconnect:
            return  # the handler's receive loop cleans up
        except ClientStalled as stalled:
            # A broadcast member's catch-up send timed out: as any send would.
            return _stalled_adapter(self.websocket).close_stalled(stalled)
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
        await super().cleanup_operation(operation_id)


class _Broadcast:
    """A graphql-transport-ws operation whose member joined its group with no
    task. One starts (as the operation's task, which `cleanup_operation`
    cancels) only when the group drops the member, to catch up from the
    journal and rejoin, or closes, to answer `complete`. Counted as an open
    subscription until it ends."""

    __slots__ = ("following", "handler", "operation", "task")

    def __init__(self, handler: FanoutTransportWSHandler, operation: Operation[Any, None], following: Following) -> None:
        self.handler = handler
        self.operation = operation
        self.following = following
        self.task: asyncio.Task[None] | None = None
        following.member.on_signal = self._wake
        metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL).inc()

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
        metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL).dec()
        self.handler._task_done(task)

    def stop(self) -> None:
        """The client completed it, or the socket ended; a task following
        is cancelled with the operation's."""
        if self.task is None:
            self.following.member.on_signal = None
            self.following.leave()
            metrics.graphql_subscriptions(GRAPHQL_TRANSPORT_WS_PROTOCOL).dec()


class FanoutWSHandler(BaseGraphQLWSHandler[Any, None]):
    """Legacy graphql-ws. Assumes: handle_start (after its checks) runs
    `handle_async_results(id, query, operation_name, variables)` as the
    operation's task, kept in `self.tasks`; `stop` and a disconnect cancel
    it, and it answers `complete` when cancelled or when the stream ends,
    then forgets the id (as below). It refuses a start over
    `max_subscriptions_per_connection` once the connection is acknowledged,
    counting `tasks` without the one of the same id it ends first."""

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
        await self.websocket.send_json({"type": "error", "id": answer_id, "payload": error})

    async def handle_start(self, message: Any) -> None:
        # Unacknowledged, the id may be anything: Strawberry closes with 4401.
        running = len(self.tasks.keys() - {message.get("id")})
        _count_over_limit(self.connection_acknowledged, running, self.max_subscriptions_per_connection)
        await super().handle_start(message)

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        with metrics.graphql_operation(GRAPHQL_WS_PROTOCOL):
            await self._handle_async_results(operation_id, query, operation_name, variables)

    async def _handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        websocket = _websocket(self.websocket)
        fanout: Fanout = self.view.fanout  # type: ignore[attr-defined]
        try:
            taken = await fanout.take(self.context, websocket, query, variables, operation_name)
        except Refused as refused:
            # As Strawberry answers a subscription refused at the start.
            self.tasks.pop(operation_id, None)
            return await self.send_message({"type": "error", "id": operation_id, "payload": refused.errors[0].formatted})
        failed: StreamFailed | None = None
        try:
            if taken is None:
                return await super().handle_async_results(operation_id, query, operation_name, variables)
            await taken.run(b'{"type":"data","id":' + _json_string(operation_id) + b',"payload":', b"}")
        except asyncio.CancelledError:
            pass  # stopped: answer complete, as Strawberry does
        except (WebSocketDisconnect, WebSocketDisconnected):
            return  # the client is gone (Strawberry's path sends through the adapter)
        except ClientStalled as stalled:
            return _stalled_adapter(self.websocket).close_stalled(stalled)
        except StreamFailed as exc:
            failed = exc
        except Exception:
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
        problem = _malformed_operation(message.get("payload"), query_required=True)
        return None if problem is None else "start " + problem
    return None


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
        problem = _malformed_operation(message["payload"], query_required=False)
        return None if problem is None else "subscribe " + problem
    return None


def _malformed_operation(payload: object, query_required: bool) -> str | None:
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


def _count_over_limit(acknowledged: bool, running: int, limit: int | None) -> None:
    # Strawberry's own refusal (an `error` message) follows, checking the same.
    if acknowledged and limit is not None and running >= limit:
        metrics.refused("subscriptions_per_socket")


def _text_frame_header(length: int) -> bytes:
    # RFC 6455 5.2: FIN and opcode 1 (text); a server does not mask.
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


def frame_writers(websocket: WebSocket) -> tuple[Callable[[bytes], bool] | None, Callable[[bytes], Awaitable[None]]]:
    """How broadcast frames reach a WebSocket (RESTSockets too): the direct
    write when the server allows it, and the plain ASGI send."""

    async def send(message: bytes) -> None:
        # Bounded like every other send: a client that stopped reading ends
        # its subscription (CLIENT_STALLED) instead of holding it forever.
        seconds: float = websocket.state.settings.send_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                await websocket.send_text(message.decode())
        except TimeoutError:
            raise ClientStalled(seconds) from None

    return direct_write(websocket), send


def direct_write(websocket: WebSocket) -> Callable[[bytes], bool] | None:
    """A function writing one text message (UTF-8 JSON) as one whole frame
    straight to the connection's transport, without awaiting: True when
    written (or the connection is gone: nothing more to deliver), False when
    its write buffer is full. None: use the ASGI send.

    Assumes, of uvicorn's `websockets-sansio` protocol: Starlette's receive is
    its bound `receive` method; it keeps the websockets ServerProtocol as
    `conn` (no extension negotiated: per-message deflate is off, see
    cli.server_config), the transport as `transport`, an Event `writable`
    cleared while the transport is paused, and `disconnected`/`close_sent`;
    its own send writes each frame with one synchronous `transport.write`
    after awaiting `writable`, so our frames cannot interleave with its
    frames."""
    protocol = getattr(websocket._receive, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
        return None
    conn, transport, writable = protocol.conn, protocol.transport, protocol.writable

    def write(message: bytes) -> bool:
        if protocol.disconnected or protocol.close_sent or conn.state is not State.OPEN:
            return True
        if not writable.is_set():
            return False
        transport.write(_text_frame_header(len(message)) + message)
        return True

    return write


class ConnectionGate(Protocol):
    """The view's side of a WebSocket's connection_init: whether it may go on."""

    async def connection_allowed(self, context: Any, params: object) -> bool: ...


UNAUTHENTICATED_REASON = "this server requires a bearer token"
# graphql-transport-ws's close for a connection_init that never came, and for
# a second connection_init: the legacy protocol has neither, and does the same.
INIT_TIMEOUT_CODE = 4408
INIT_TIMEOUT_REASON = "Connection initialisation timeout"
TOO_MANY_INITS_CODE = 4429
TOO_MANY_INITS_REASON = "Too many initialisation requests"


def _init_timer(seconds: float, expired: Callable[[], None]) -> asyncio.TimerHandle:
    # A timer rather than Strawberry's sleeping task: every socket pays for
    # the timeout, but only a late one needs a task (to close).
    return asyncio.get_running_loop().call_later(seconds, expired)


def _close_late(websocket: AsyncWebSocketAdapter) -> asyncio.Task[None]:
    """Close a socket whose connection_init did not come in time."""
    metrics.refused("connection_init_timeout")
    return asyncio.create_task(websocket.close(INIT_TIMEOUT_CODE, INIT_TIMEOUT_REASON))


class PersistedSubscribe(FanoutTransportWSHandler):
    """Assumes: `handle_subscribe(message)` reads `payload["query"]` (a
    payload without it fails as unparsable) and passes no extensions on.
    A payload with `extensions` gets its document here first. It refuses a
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
                await self.send_message({"id": message["id"], "type": "error", "payload": [_request_error(exc).formatted]})
                return
        # A duplicate id closes the socket before the limit is looked at.
        if message["id"] not in self.operations:
            _count_over_limit(self.connection_acknowledged, len(self.operations), self.max_subscriptions_per_connection)
        await super().handle_subscribe(message)


class GatedTransportWs(PersistedSubscribe):
    """Assumes: `handle()` calls `on_request_accepted()` once, which starts
    the connection_init timeout as `connection_init_timeout_task`, and ends
    with `shutdown()`, which cancels and awaits that task if set;
    `handle_connection_init(message)` receives connection_init, does nothing
    once `connection_timed_out` is set, cancels that task (if set) and
    acknowledges it; a subscribe that comes before the acknowledgement closes
    the socket (4401)."""

    _init_timer: asyncio.TimerHandle | None = None

    def on_request_accepted(self) -> None:
        self._init_timer = _init_timer(self.connection_init_wait_timeout.total_seconds(), self._connection_init_expired)

    def _connection_init_expired(self) -> None:
        if self.connection_init_received:
            return
        self.connection_timed_out = True
        # shutdown() awaits this task, as it would Strawberry's own.
        self.connection_init_timeout_task = _close_late(self.websocket)

    async def shutdown(self) -> None:
        self._stop_init_timer()
        await super().shutdown()

    def _stop_init_timer(self) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()

    async def handle_connection_init(self, message: Any) -> None:
        if not self.connection_timed_out:
            self._stop_init_timer()
        if await cast(ConnectionGate, self.view).connection_allowed(self.context, message.get("payload")):
            return await super().handle_connection_init(message)
        await self.websocket.close(ErrorCode.UNAUTHENTICATED.close_code, UNAUTHENTICATED_REASON)


class GatedLegacyWs(FanoutWSHandler):
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
        timer = _init_timer(seconds, self._connection_init_expired)
        try:
            await super().handle()
        finally:
            timer.cancel()
            if self._init_timed_out is not None:
                with contextlib.suppress(Exception):
                    await self._init_timed_out

    def _connection_init_expired(self) -> None:
        if not self._init_received:
            self._init_timed_out = _close_late(self.websocket)

    async def handle_connection_init(self, message: Any) -> None:
        if self._init_timed_out is not None:
            return  # too late: the socket is closing
        if self._init_received:
            # Each would start one more keep-alive task, never to end: refuse
            # it as graphql-transport-ws does.
            return await self.websocket.close(TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON)
        self._init_received = True
        if await cast(ConnectionGate, self.view).connection_allowed(self.context, message.get("payload")):
            return await super().handle_connection_init(message)
        code = ErrorCode.UNAUTHENTICATED
        error = {"message": UNAUTHENTICATED_REASON, "extensions": {"code": code.name}}
        await self.websocket.send_json({"type": "connection_error", "payload": error})
        # The legacy protocol's refusal: connection_error, then 4403.
        await self.websocket.close(ErrorCode.FORBIDDEN.close_code, UNAUTHENTICATED_REASON)


def resolve_info(
    schema: GraphQLSchema,
    field_def: GraphQLField,
    field_nodes: list[FieldNode],
    parent_type: GraphQLObjectType,
    path: Path,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    context: Any,
    root_value: Any,
) -> Any:
    """The info Strawberry's executor gives a resolver. Assumes: its
    build_resolve_info fills _OperationContextAwareGraphQLResolveInfo in this
    order, with the coerced variables as a plain dict; the abort signal,
    async helpers and operation extensions are unset over HTTP."""
    return _OperationContextAwareGraphQLResolveInfo(
        field_nodes[0].name.value,
        field_nodes,
        field_def.type,
        parent_type,
        path,
        schema,
        fragments,
        root_value,
        operation,
        variables,
        context,
        optimized_is_awaitable,
        None,
        None,
        {},
    )


def plain_attribute(field_def: GraphQLField) -> str | None:
    """The Python attribute Strawberry reads for a field without a resolver
    of its own, or None for any other field. Assumes: from_resolver marks
    the resolver of such a field `_is_default`, it returns
    getattr(source, python_name), and the field keeps its StrawberryField
    in extensions["strawberry-definition"]."""
    if not getattr(field_def.resolve, "_is_default", False):
        return None
    definition = field_def.extensions.get("strawberry-definition")
    return None if definition is None else str(definition.python_name)


def over_token_limit(error: GraphQLError) -> bool:
    """Whether a parse error is MAX_TOKENS'. Assumes: graphql-core's parser
    reports it as a GraphQLSyntaxError whose message alone says so ("...
    more than N tokens. Parsing aborted.")."""
    return isinstance(error, GraphQLSyntaxError) and error.message.endswith(" tokens. Parsing aborted.")


def checked_operation(document: DocumentNode, operation_name: str | None) -> OperationKind | None:
    """The type of the operation Strawberry's path checks against the
    request's method, between parsing and validating; None when it finds
    none (it then refuses the request before validating). Assumes: it takes
    the first operation named operation_name, or the document's first
    (strawberry.utils.operation.get_operation_type)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition.operation
    return None


def validation_errors(
    schema: strawberry.Schema, document: DocumentNode, limits: Sequence[type[ASTValidationRule]] = ()
) -> list[GraphQLError]:
    """What Strawberry's validation step reports, with the rules `limits` that
    extensions add to it. Assumes: it runs validate_document with
    graphql-core's specified rules (it adds its own)."""
    return validate_document(schema._schema, document, (*specified_rules, *limits))


class JsonIntake:
    """For the view. Assumes: Strawberry's views decode every JSON text a
    client sends with `decode_json` (`parse_json` for HTTP bodies and GET
    variables and extensions, the WebSocket adapter's `iter_json` for each
    message of both protocols), and catch only json.JSONDecodeError from it
    (parse_json turns it into a 400; iter_json into a 4400 close, or, for
    the legacy protocol, ignores it): json_intake.RefusedJson goes past both
    to the view's caller (graphql_view answers it over HTTP; over a
    WebSocket, graphql_socket closes with its close code and reason)."""

    def decode_json(self, data: str | bytes) -> object:
        return json_intake.loads(data)


class BoundedSendAdapter(ASGIWebSocketAdapter):
    """Assumes: Strawberry's ASGI view sends every WebSocket message of both
    protocols through `websocket_adapter_class(...).send_json`, the view
    being `self.view` (ours has `send_timeout_seconds`); an exception there
    ends the operation, whose stream is then closed (unsubscribing it); it
    turns Starlette's WebSocketDisconnect into WebSocketDisconnected, which
    the handlers take as the client gone, but not Starlette's refusal to
    send after the socket's close."""

    _closing: asyncio.Task[None] | None = None

    async def send_json(self, message: Mapping[str, object]) -> None:
        seconds: float = self.view.send_timeout_seconds  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(seconds):
                await super().send_json(message)
        except TimeoutError:
            self.close_stalled(ClientStalled(seconds))
            raise WebSocketDisconnected from None
        except SendAfterClose:
            # The socket was closed (a stalled client, a refused init, a
            # shutdown) while an operation ran on: it ends as on a disconnect.
            raise WebSocketDisconnected from None

    def close_stalled(self, stalled: ClientStalled) -> None:
        # The close frame waits behind the full buffer too: send it from a
        # task of its own, so the operation ends (and unsubscribes) now. It
        # goes out if the client reads again, or dies with the connection
        # when uvicorn's ping gets no answer.
        if self._closing is None:
            self._closing = asyncio.create_task(self.close(stalled.code.close_code, stalled.message))
