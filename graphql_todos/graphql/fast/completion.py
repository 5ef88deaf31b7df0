"""Completing values as graphql-core's executor does, one function per
field type, made once per plan: leaves by graphql-core's own
`complete_leaf_value` (or left for orjson where it writes them identically),
null propagation and error paths step by step as its `handle_field_error`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    is_non_null_type,
    is_specified_scalar_type,
    located_error,
)
from graphql.execution.executor import Executor
from graphql.pyutils import Path, is_iterable

Completer = Callable[[Any, Path, list[GraphQLError]], Any]
# An object's field: response key, value getter, completer, nullable,
# composite (an object or list of them), field nodes.
Entry = tuple[str, Callable[[Any], Any], Completer, bool, bool, list[FieldNode]]
_complete_leaf = Executor.complete_leaf_value


def field_error(
    raw: Exception, nodes: list[FieldNode], path: list[str | int], nullable: bool, errors: list[GraphQLError]
) -> Any:
    """graphql-core's handle_field_error: locate the error, then null this
    field if it may be null, or pass the error up to the parent if not."""
    error = located_error(raw, nodes, path)
    if not nullable:
        raise error
    errors.append(error)
    return None


def as_is(value: Any, _path: Path, _errors: list[GraphQLError]) -> Any:
    return value


def constant(value: str) -> Callable[[Any], str]:
    return lambda _source: value


# Python types whose values orjson writes exactly as graphql-core's
# serializer for a built-in scalar would (a UUID as str(uuid)): left as they
# are, they skip the serializer's chain of isinstance checks. A test compares
# the bytes for each with complete_leaf_value's.
_WRITTEN_AS_SERIALIZED: dict[str, frozenset[type]] = {
    "String": frozenset({str}),
    "Boolean": frozenset({bool}),
    "ID": frozenset({str, uuid.UUID}),
}


def leaf(type_: GraphQLLeafType, non_null_field: str | None) -> Completer:
    """Completes a scalar or enum value; non_null_field names the field
    when it is non-null (graphql-core's message names it)."""
    as_is = _WRITTEN_AS_SERIALIZED.get(type_.name, frozenset()) if is_specified_scalar_type(type_) else frozenset()
    message = f"Cannot return null for non-nullable field {non_null_field}."

    def complete(value: Any, _path: Path, _errors: list[GraphQLError]) -> Any:
        if type(value) in as_is:
            return value
        if value is None:
            if non_null_field is not None:
                raise TypeError(message)
            return None
        return _complete_leaf(type_, value)

    return complete


def non_null(inner: Completer, parent: GraphQLObjectType, name: str) -> Completer:
    message = f"Cannot return null for non-nullable field {parent.name}.{name}."

    def complete(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        completed = inner(value, path, errors)
        if completed is None:
            raise TypeError(message)
        return completed

    return complete


def list_of(
    item: Completer,
    item_type: GraphQLOutputType,
    parent: GraphQLObjectType,
    name: str,
    nodes: list[FieldNode],
) -> Completer:
    nullable_items = not is_non_null_type(item_type)

    def complete(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        if not is_iterable(value):
            raise GraphQLError(
                f"Expected Iterable, but did not find one for field '{parent.name}.{name}'."
            )
        result: list[Any] = []
        append = result.append
        for index, entry in enumerate(value):
            item_path = Path(path, index, None)
            try:
                append(item(entry, item_path, errors))
            except Exception as raw:
                append(field_error(raw, nodes, item_path.as_list(), nullable_items, errors))
        return result

    return complete


def object_of(entries: tuple[Entry, ...]) -> Completer:
    def complete(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        out = {}
        for key, get, complete_field, nullable, composite, nodes in entries:
            try:
                # Leaves need no path of their own unless they fail.
                out[key] = complete_field(get(value), Path(path, key, None) if composite else path, errors)
            except Exception as raw:
                out[key] = field_error(raw, nodes, Path(path, key, None).as_list(), nullable, errors)
        return out

    return complete
