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
- A document that does not parse is left to Strawberry's own parse step,
  which answers it as an error on every transport.
- Error masking skips results without errors cheaply.
- `Schema.execute` (one result) refuses subscriptions; `Schema.subscribe`
  (only the legacy graphql-ws handler calls it) runs queries and mutations
  too, as one result then `complete`.
- Multipart subscription responses get a valid Content-Type.
- Persisted queries: every transport runs operations through
  `Schema.execute()` or `Schema.stream()`, where the document is looked up
  from `extensions.persistedQuery`; a graphql-transport-ws `subscribe`
  (whose extensions Strawberry drops) gets its document before Strawberry
  reads the payload.
- Compiled plans (compiled.py, fastpath.py) give root resolvers the info
  Strawberry's executor would, read plain fields as Strawberry's default
  resolver does, and validate with Strawberry's rules. (They also call
  graphql-core's own field collection and leaf completion; the
  property-based tests in tests/test_compiled.py compare whole responses.)
- WebSocket sends are bounded in time: a client that stopped reading is
  closed with CLIENT_STALLED (4408) rather than held forever.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from typing import Any, Protocol, cast

import anyio
import orjson
import strawberry
from graphql import (
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
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, ParserCache
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.streaming import MultipartSubscriptionTransport
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    validate_document,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult as StrawberryExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from .errors import ClientStalled, ErrorCode, RequestError
from .models import Change, Todo
from .streams import LiveRows

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


class ParseErrorsAsResults(ParserCache):
    """Assumes: ParserCache parses with `cached_parse_document` in `on_parse`,
    before and outside Strawberry's own parse step, whose try turns a
    GraphQLSyntaxError into an error result. Raised here, it escapes: the
    legacy graphql-ws handler then answers nothing at all."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLSyntaxError:
            context.graphql_document = None
        yield


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

    def _document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        return query if self.persisted is None else self.persisted.document(query, extensions)

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
            query = self._document(query, operation_extensions)
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
            query = self._document(query, operation_extensions)
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


class PersistedSubscribe(BaseGraphQLTransportWSHandler[Any, Any]):
    """Assumes: `handle_subscribe(message)` reads `payload["query"]` (a
    payload without it fails as unparsable) and passes no extensions on.
    A payload with `extensions` gets its document here first."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message["payload"]
        persisted = getattr(self.schema, "persisted", None)
        if persisted is not None and payload.get("extensions"):
            try:
                payload["query"] = persisted.document(payload.get("query"), payload.get("extensions"))
            except RequestError as exc:
                await self.send_message({"id": message["id"], "type": "error", "payload": [_request_error(exc).formatted]})
                return
        await super().handle_subscribe(message)


class MultipartSubscriptions(MultipartSubscriptionTransport):
    """Assumes: the view sends `headers` as the response's headers. Strawberry's
    Content-Type appends `,application/json` to the multipart type, which no
    parser reads as one media type; this one is valid (RFC 2046 parameters)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f'multipart/mixed; boundary="{self.separator}"; subscriptionSpec="1.0"'}


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


def validation_errors(schema: strawberry.Schema, document: DocumentNode) -> list[GraphQLError]:
    """What Strawberry's validation step reports. Assumes: it runs
    validate_document with graphql-core's specified rules (it adds its own)."""
    return validate_document(schema._schema, document, tuple(specified_rules))


class BoundedSendAdapter(ASGIWebSocketAdapter):
    """Assumes: Strawberry's ASGI view sends every WebSocket message of both
    protocols through `websocket_adapter_class(...).send_json`, the view
    being `self.view` (ours has `send_timeout_seconds`); an exception there
    ends the operation, whose stream is then closed (unsubscribing it)."""

    _closing: asyncio.Task[None] | None = None

    async def send_json(self, message: Mapping[str, object]) -> None:
        seconds: float = self.view.send_timeout_seconds  # type: ignore[attr-defined]
        try:
            with anyio.fail_after(seconds):
                await super().send_json(message)
        except TimeoutError:
            stalled = ClientStalled(seconds)
            # The close frame waits behind the full buffer too: send it from
            # a task of its own, so the operation ends (and unsubscribes)
            # now. It goes out if the client reads again, or dies with the
            # connection when uvicorn's ping gets no answer.
            if self._closing is None:
                self._closing = asyncio.create_task(self.close(stalled.code.close_code, stalled.message))
            raise WebSocketDisconnected from None
