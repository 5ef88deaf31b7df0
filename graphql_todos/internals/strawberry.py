"""Strawberry's schema, as every GraphQL path runs it: parsed documents cached, variable errors
tagged, subscription results shared per event, errors masked cheaply, one-result `execute` refusing
subscriptions, persisted documents looked up; and the steps of its path (operation, validation,
resolver info, default resolver) that the compiled plans repeat. Each override says what it assumes;
tests/internals pins each, so an upgrade that breaks one fails a test by name."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
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
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.schema import (
    DEFAULT_ALLOWED_OPERATION_TYPES,
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    validate_document,
)
from strawberry.types import ExecutionResult as StrawberryExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from graphql_todos.core.bounded import LRU
from graphql_todos.core.errors import ErrorCode, RequestError

# graphql-core spells the JSON null a client sent the Python way.
_PYTHON_NULL = " not to be None."



def tag(error: GraphQLError, code: ErrorCode) -> None:
    """Give an error its code where it is made (see schema.error_code)."""
    error.extensions = {**(error.extensions or {}), "code": code.name}


class SharedResults:
    """Results of subscription events on `roots` (the types whose fields read no per-connection
    context), keyed by (root, operation, variables); one per schema. Entries hold root and
    operation, so their ids cannot be reused by other objects while an entry lives."""

    def __init__(self, size: int, roots: tuple[type, ...]) -> None:
        self.roots = roots
        self.executions = 0
        self._results: LRU[tuple[int, int, bytes], tuple[Any, Any, ExecutionResult]] = LRU(size)

    def get(self, key: tuple[int, int, bytes], root: Any, operation: Any) -> ExecutionResult | None:
        cached = self._results.get(key)
        if cached is None or cached[0] is not root or cached[1] is not operation:
            return None
        return cached[2]

    def put(self, key: tuple[int, int, bytes], root: Any, operation: Any, result: ExecutionResult) -> None:
        self.executions += 1
        self._results.put(key, (root, operation, result))


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
        if self.operation.operation is not OperationKind.SUBSCRIPTION or not isinstance(root, self._shared.roots):
            return None
        return (id(root), id(self.operation), self._variables_key)

    @functools.cached_property
    def _variables_key(self) -> bytes:
        # Computed once per subscription: per-event executors are copies of
        # this one and inherit the cached value.
        return variables_key(self.variable_values.coerced)

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

    _documents: ClassVar[LRU[tuple[str, tuple[Any, ...]], DocumentNode]] = LRU(1024)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query or "", tuple(sorted(context.parse_options.items())))
        document = self._documents.get(key)
        if document is not None:
            context.graphql_document = document
        yield
        if document is None and context.query and context.graphql_document is not None:
            self._documents.put(key, context.graphql_document)


class CheapMaskErrors(MaskErrors):
    """Assumes: MaskErrors hands every result, stream results included, to
    `_process_result`, which asks a runtime-checkable Protocol first (slow:
    it runs for every result sent to every subscriber)."""

    def _process_result(self, result: object) -> None:
        if getattr(result, "errors", None):
            super()._process_result(result)


class Documents(Protocol):
    """The persisted documents a schema looks requests up in (graphql/persisted.py)."""

    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run (RequestError: none may run)."""
        ...

    def allows(self, query: str) -> bool:
        """Whether a request sending this document in full may run it."""
        ...


def request_error(exc: RequestError) -> GraphQLError:
    """A request's refusal as the GraphQL error Strawberry's path would answer."""
    return GraphQLError(exc.message, extensions={"code": exc.code.name})


class OneResultSchema(strawberry.Schema):
    """Assumes: Strawberry's HTTP views call `execute()` with the operation
    types the request method allows, and stream subscriptions through
    `subscribe()`/`stream()` instead; every transport runs operations
    through `execute()` or `stream()` (`subscribe()` calls `stream()`),
    passing the request's extensions (the WebSocket handlers pass none: they
    come from OPERATION_EXTENSIONS), before Strawberry requires a query:
    both look up a persisted query's document there. Resolvers get the
    context passed to them; each result of an operation is what the
    transport sends (the `extensions` of one are sent)."""

    persisted: Documents | None = None

    def operation_context(
        self,
        context: Any,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        extensions: Mapping[str, Any] | None,
    ) -> Any:
        """The context one operation runs with (the transport's, by default),
        or the errors refusing it."""
        return context

    def finish(self, context: Any, result: StrawberryExecutionResult) -> None:
        """Amend an operation's result (run with `context`) before it is sent."""

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
            return StrawberryExecutionResult(data=None, errors=[request_error(exc)])
        context_value = self.operation_context(context_value, query, variable_values, operation_name, operation_extensions)
        if isinstance(context_value, list):
            return StrawberryExecutionResult(data=None, errors=context_value)
        # One result cannot carry a subscription: refuse it instead of
        # resolving null.
        allowed: set[OperationType] = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )
        self.finish(context_value, result)
        return result

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
        if operation_extensions is None:
            operation_extensions = OPERATION_EXTENSIONS.get()
        try:
            query = self.document(query, operation_extensions)
        except RequestError as exc:
            return _refused([request_error(exc)])
        context_value = self.operation_context(context_value, query, variable_values, operation_name, operation_extensions)
        if isinstance(context_value, list):
            return _refused(context_value)
        results = await super().stream(
            query, variable_values, context_value, root_value, operation_name,
            operation_extensions, allowed_operation_types,
        )
        return self._finished(context_value, results)

    async def _finished(self, context: Any, results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
        async with contextlib.aclosing(results):
            async for result in results:
                self.finish(context, result)
                yield result

    # Assumes: only the legacy graphql-ws handler calls subscribe() (by
    # keyword), and sends each result as `data`, then `complete`. Older
    # Apollo links send queries and mutations with `start`: run any
    # operation, as stream() does for the newer protocol.
    subscribe = stream  # type: ignore[assignment]


async def _refused(errors: list[GraphQLError]) -> AsyncGenerator[PreExecutionError, None]:
    # As the stream of a document that does not validate: one error, no data.
    yield PreExecutionError(data=None, errors=errors)


# The extensions of a WebSocket operation (subscribe's or start's payload),
# which Strawberry's handlers do not pass to stream(). Assumes: each handler
# creates the operation's task inside handle_subscribe / handle_start, so a
# value set around that call is the task's own (asyncio copies the context
# into a task as it is created). tests/test_mutations_once.py pins it: a
# numbered mutation over either protocol answers as over HTTP.
OPERATION_EXTENSIONS: ContextVar[dict[str, Any] | None] = ContextVar("operation_extensions", default=None)



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


def strawberry_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation Strawberry's path runs (and checks against the request's
    method, between parsing and validating); None when it finds none.
    Assumes: it takes the first operation named operation_name, or the
    document's first (strawberry.utils.operation.get_operation_type)."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name is not None and definition.name.value == operation_name)
        ):
            return definition
    return None


def variables_key(values: dict[str, Any]) -> bytes:
    """Variables as sorted JSON: equal values, equal key."""
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)


def validation_errors(
    schema: strawberry.Schema, document: DocumentNode, limits: Sequence[type[ASTValidationRule]] = ()
) -> list[GraphQLError]:
    """What Strawberry's validation step reports, with the rules `limits` that
    extensions add to it. Assumes: it runs validate_document with
    graphql-core's specified rules (it adds its own)."""
    return validate_document(schema._schema, document, (*specified_rules, *limits))
