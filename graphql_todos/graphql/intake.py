"""The one intake of GraphQL documents for the paths that answer without
Strawberry's (the compiled fast path, the broadcast fan-out, the view's
choice of media type).

A document is parsed within the limits, validated with Strawberry's rules and
its operation picked once per (document, operation name), and a query's or
subscription's variables coerced and keyed once per set of values. The
operation is the one Strawberry's path runs (`pick`), so every path takes the
same one; a request that names none (an unknown operationName, in a valid
document or not, a missing query) gets the same request error on every transport (over HTTP from
Strawberry's view, on the streams from the fan-out: `no_operation`).
Refusals (a document that does not parse or validate) are not kept: their
text is bounded only by the request's size.

Strawberry's own path still parses through its door's cache
(internals/strawberry.py, ParseCache): a document both paths see is parsed
once by each. Sharing this cache needs that door to ask the intake (issue 18).
A numbered mutation's key is checked against the intake's operation on
Strawberry's path too (`definition`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql.execution.values import VariableValues, get_variable_values

from graphql_todos.core.bounded import LRU
from graphql_todos.core.errors import ErrorCode
from graphql_todos.graphql.outcomes import validation_failed
from graphql_todos.graphql.schema import TodoSchema
from graphql_todos.internals.graphql_core import (
    PlainVariable,
    as_sent,
    keep_variable_signatures,
    plain_variables,
)
from graphql_todos.internals.strawberry import strawberry_operation, validation_errors, variables_key

T = TypeVar("T")

# Distinct (document, operation name) pairs kept, and sets of variables.
OPERATIONS = 512
VARIABLES = 1024
_UNSEEN: Any = object()

# Every path's coercion (this intake's, Strawberry's executor's) takes the
# variables' signatures made once per document (internals/graphql_core.py).
keep_variable_signatures()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A document Strawberry's path refuses before execution, with its errors."""

    document: DocumentNode | None  # None: it did not parse
    errors: list[GraphQLError]


@dataclass(eq=False, slots=True)
class Operation:
    """A valid document's operation, as every path takes it."""

    schema: GraphQLSchema
    document: DocumentNode
    definition: OperationDefinitionNode
    _made: dict[Callable[[Operation], Any], Any] = field(default_factory=dict)

    def made(self, make: Callable[[Operation], T]) -> T:
        """make(self), made once: what a path makes of the operation lives as long as it."""
        made = self._made
        if make not in made:
            made[make] = make(self)
        return cast(T, made[make])


class Variables:
    """A request's variables coerced for its operation, and their key (equal values, equal key)."""

    __slots__ = ("_key", "_without", "values")

    def __init__(self, values: VariableValues) -> None:
        self.values = values
        self._key: bytes | None = None
        self._without: tuple[str, bytes] | None = None

    @property
    def key(self) -> bytes:
        # Made when first asked: a mutation's never is.
        if self._key is None:
            self._key = variables_key(self.values.coerced)
        return self._key

    def key_without(self, name: str | None) -> bytes:
        """The key of the values but `name`'s."""
        if name is None:
            return self.key
        # Made once: the fan-out asks it of every subscription joining.
        if self._without is None or self._without[0] != name:
            self._without = (name, variables_key({k: v for k, v in self.values.coerced.items() if k != name}))
        return self._without[1]


class Intake:
    def __init__(self, schema: TodoSchema) -> None:
        self.schema = schema
        self._operations: LRU[tuple[str, str | None], Operation | None] = LRU(OPERATIONS)
        self._variables: LRU[tuple[Operation, bytes], Variables | None] = LRU(VARIABLES)
        # Documents parsed (and so validated); read by tests.
        self.parses = 0

    def operation(self, query: str, operation_name: str | None) -> Operation | Refusal | None:
        """The operation a request runs, or the errors refusing its document;
        None when it names none (Strawberry's path answers)."""
        key = (query, operation_name)
        kept = self._operations.get(key, _UNSEEN)
        if kept is not _UNSEEN:
            return kept
        persisted = self.schema.persisted
        if not query or (persisted is not None and not persisted.allows(query)):
            return None  # Strawberry's execute refuses it with its code
        taken = self.document(query)
        if isinstance(taken, Refusal):
            # One that parsed but names no operation is refused for that, as
            # Strawberry's view refuses it before validating (its stream
            # raised instead: a masked error, a traceback).
            if taken.document is not None and strawberry_operation(taken.document, operation_name) is None:
                return None
            return taken
        definition = strawberry_operation(taken, operation_name)
        operation = None if definition is None else Operation(self.schema._schema, taken, definition)
        self._operations.put(key, operation)
        return operation

    def kept(self, query: str, operation_name: str | None) -> Operation | None:
        """The operation `operation` took in for this request before, while
        it is kept; None otherwise. Nothing is parsed or validated: the front
        door asks it of every GraphQL POST (graphql/fast/write_door.py), and a
        document refused each time would be validated twice (and its refusal
        counted twice)."""
        return self._operations.get((query, operation_name))

    def document(self, query: str) -> DocumentNode | Refusal:
        """The document parsed within MAX_TOKENS and valid under the limits, or its refusal."""
        self.parses += 1
        try:
            document = parse(query, max_tokens=self.schema.limits.max_tokens)
        except GraphQLError as error:
            return Refusal(None, [error])
        errors = validation_errors(self.schema, document, self.schema.limits.rules)
        if errors:
            validation_failed(errors)
            return Refusal(document, errors)
        return document

    def definition(self, query: str, operation_name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names, valid or not; None when its document
        does not parse or names none (what a numbered mutation's key is
        checked against on Strawberry's path: schema.TodoSchema._definition)."""
        taken = self.operation(query, operation_name)
        if isinstance(taken, Operation):
            return taken.definition
        if taken is None:
            # Not taken in (a document the trusted list refuses): parsed all the same.
            try:
                document: DocumentNode | None = parse(query, max_tokens=self.schema.limits.max_tokens)
            except GraphQLError:
                document = None
        else:
            document = taken.document
        return None if document is None else strawberry_operation(document, operation_name)

    def operation_type(self, query: str, operation_name: str | None) -> OperationType | None:
        """The kind of operation a request runs, valid or not; None when it names none."""
        taken = self.operation(query, operation_name)
        if isinstance(taken, Operation):
            return taken.definition.operation
        definition = None if taken is None or taken.document is None else strawberry_operation(taken.document, operation_name)
        return None if definition is None else definition.operation

    def variables(self, operation: Operation, inputs: dict[str, Any] | None) -> Variables | None:
        """The request's variables coerced, or None when they fail (Strawberry's
        path reports exactly graphql-core's errors)."""
        if operation.definition.operation is OperationType.MUTATION:
            # A mutation's values are its own: kept, they would push out the rest.
            return _coerced(operation, inputs)
        try:
            raw = variables_key(inputs) if inputs else b"{}"
        except orjson.JSONEncodeError:
            return None  # an integer beyond 64 bits, which no client's JSON gives (json_intake)
        key = (operation, raw)
        kept = self._variables.get(key, _UNSEEN)
        if kept is not _UNSEEN:
            return kept
        variables = _coerced(operation, inputs)
        self._variables.put(key, variables)
        return variables


def _coerced(operation: Operation, inputs: dict[str, Any] | None) -> Variables | None:
    plain = operation.made(_plain_variables)
    values = None if plain is None else as_sent(plain, inputs or {})
    if values is None:
        values = coerce(operation.schema, operation.definition, inputs)
    return None if values is None else Variables(values)


def _plain_variables(operation: Operation) -> tuple[PlainVariable, ...] | None:
    return plain_variables(operation.schema, operation.definition.variable_definitions or ())


def no_operation(query: str | None, operation_name: str | None) -> GraphQLError:
    """The request error Strawberry's HTTP view answers a request naming no
    operation with (a missing query, an unknown operationName), for the
    streams, where its path raises instead (a masked error, a traceback)."""
    if query and operation_name is not None:
        message = f'Unknown operation named "{operation_name}".'
    else:
        message = "No GraphQL query found in the request"
    return GraphQLError(message, extensions={"code": ErrorCode.BAD_REQUEST.name})


def coerce(schema: GraphQLSchema, definition: OperationDefinitionNode, inputs: dict[str, Any] | None) -> VariableValues | None:
    """graphql-core's coercion of a request's variables; None when they fail."""
    values = get_variable_values(schema, definition.variable_definitions or (), inputs or {})
    return None if isinstance(values, list) else values
