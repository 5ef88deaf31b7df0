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
- Both WebSocket protocols check the bearer token when connection_init
  arrives, and refuse it with our close codes (Strawberry's own rejection
  closes graphql-transport-ws with 4403 and the legacy protocol with 1011).
- Compiled plans (compiled.py, fastpath.py) give root resolvers the info
  Strawberry's executor would, read plain fields as Strawberry's default
  resolver does, and validate with Strawberry's rules. (They also call
  graphql-core's own field collection and leaf completion; the
  property-based tests in tests/test_compiled.py compare whole responses.)
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
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
    OperationDefinitionNode,
    specified_rules,
)
from graphql import OperationType as OperationKind
from graphql.pyutils import Path
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    validate_document,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult as StrawberryExecutionResult
from strawberry.types.graphql import OperationType

from .errors import ErrorCode
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


class OneResultSchema(strawberry.Schema):
    """Assumes: Strawberry's HTTP views call `execute()` with the operation
    types the request method allows, and stream subscriptions through
    `subscribe()`/`stream()` instead."""

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


class ConnectionGate(Protocol):
    """The view's side of a WebSocket's connection_init: whether it may go on."""

    def connection_allowed(self, context: Any, params: object) -> bool: ...


UNAUTHENTICATED_REASON = "this server requires a bearer token"


class GatedTransportWs(BaseGraphQLTransportWSHandler[Any, Any]):
    """Assumes: `handle_connection_init(message)` receives connection_init,
    cancels the connection_init timeout and acknowledges it; a subscribe that
    comes before the acknowledgement closes the socket (4401)."""

    async def handle_connection_init(self, message: Any) -> None:
        if cast(ConnectionGate, self.view).connection_allowed(self.context, message.get("payload")):
            return await super().handle_connection_init(message)
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        await self.websocket.close(ErrorCode.UNAUTHENTICATED.close_code, UNAUTHENTICATED_REASON)


class GatedLegacyWs(BaseGraphQLWSHandler[Any, Any]):
    """Assumes: `handle_connection_init(message)` receives connection_init and
    acknowledges it; a start before the acknowledgement closes the socket."""

    async def handle_connection_init(self, message: Any) -> None:
        if cast(ConnectionGate, self.view).connection_allowed(self.context, message.get("payload")):
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


def validation_errors(
    schema: strawberry.Schema, document: DocumentNode, limits: Sequence[type[ASTValidationRule]] = ()
) -> list[GraphQLError]:
    """What Strawberry's validation step reports, with the rules `limits` that
    extensions add to it. Assumes: it runs validate_document with
    graphql-core's specified rules (it adds its own)."""
    return validate_document(schema._schema, document, (*specified_rules, *limits))
