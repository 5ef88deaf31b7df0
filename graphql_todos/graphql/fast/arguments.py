"""A root field's arguments as graphql-core's `get_argument_values` gives
them, made without its walk on every request (for `createTodo(input:
{title: $t})` the walk coerces the literal's every field and default: about
11 µs of a write).

The shapes taken: each argument a variable, an object literal (of an input
type with no oneOf and no `out_type` of its own) whose fields are such, or a
scalar literal (its value immutable). A plan's arguments are worked out once
by graphql-core itself, with a marker for each variable's value: where a
marker lands, a request's value goes; everything else (the defaults, which
graphql-core keeps per field and hands out as the same objects, and the
scalar literals) is taken as it came. Each object literal's dict is made
afresh per request, as graphql-core makes it. A request where a variable
read is missing or null, which graphql-core treats apart (a default, an
error), gets graphql-core's walk.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    IntValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_nullable_type,
)
from graphql.execution.values import VariableValues, get_argument_values

# A request's coerced variables to its arguments; None: graphql-core's walk decides.
Arguments = Callable[[Mapping[str, Any]], dict[str, Any] | None]
# Builds one value of the arguments from the request's variables.
_Build = Callable[[Mapping[str, Any]], Any]
_SCALARS = (StringValueNode, IntValueNode, FloatValueNode, BooleanValueNode, EnumValueNode)


class _Marker:
    """Where a variable's value lands in the arguments."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def compile_arguments(field_def: GraphQLField, node: FieldNode) -> Arguments | None:
    """The field's arguments from a request's variables, or None when the
    node's arguments are not of the shapes taken (graphql-core walks them)."""
    names: set[str] = set()
    for argument in node.arguments or ():
        arg_def = field_def.args.get(argument.name.value)
        if arg_def is None or not _taken(argument.value, arg_def.type, names):
            return None
    markers = {name: _Marker(name) for name in names}
    try:
        made = get_argument_values(field_def, node, VariableValues({}, dict(markers)))
    except GraphQLError:
        return None
    try:
        builds = _parts(field_def.args, node.arguments or (), made)
    except _NotTaken:
        return None
    read = tuple(names)

    def arguments(coerced: Mapping[str, Any]) -> dict[str, Any] | None:
        for name in read:
            if coerced.get(name) is None:
                return None
        return {out_name: build(coerced) for out_name, build in builds}

    return arguments


def _taken(value_node: ValueNode, type_: GraphQLInputType, names: set[str]) -> bool:
    """A value of the shapes taken (the module's docstring); the variables it reads into `names`."""
    if isinstance(value_node, VariableNode):
        names.add(value_node.name.value)
        return True
    if isinstance(value_node, _SCALARS):
        return True
    nullable = get_nullable_type(type_)  # type: ignore[arg-type]
    if not isinstance(value_node, ObjectValueNode) or not isinstance(nullable, GraphQLInputObjectType):
        return False
    if nullable.is_one_of or nullable.out_type is not GraphQLInputObjectType.out_type:
        return False
    fields = nullable.fields
    return all(f.name.value in fields and _taken(f.value, fields[f.name.value].type, names) for f in value_node.fields)


def _build(value_node: ValueNode, type_: GraphQLInputType, made: Any) -> _Build:
    """How to make, per request, the value graphql-core made as `made` for this node."""
    if isinstance(value_node, VariableNode):
        if not isinstance(made, _Marker):
            raise _NotTaken
        # coerced[name], in C.
        return operator.itemgetter(made.name)
    if not isinstance(value_node, ObjectValueNode):
        return _const(made)
    object_type: GraphQLInputObjectType = get_nullable_type(type_)  # type: ignore[arg-type,assignment]
    parts = _parts(object_type.fields, value_node.fields, made)
    return lambda coerced: {out_name: part(coerced) for out_name, part in parts}


def _parts(
    defs: Mapping[str, GraphQLArgument | GraphQLInputField],
    given: Iterable[ArgumentNode | ObjectFieldNode],
    made: dict[str, Any],
) -> list[tuple[str, _Build]]:
    """How to make each entry of `made` (a field's arguments, or an object
    literal's fields, as graphql-core made them), in its order: from the
    node given for it, or as made (a default)."""
    nodes = {node.name.value: node.value for node in given}
    parts: list[tuple[str, _Build]] = []
    for name, definition in defs.items():
        out_name = definition.out_name or name
        if out_name in made:
            node = nodes.get(name)
            parts.append((out_name, _const(made[out_name]) if node is None else _build(node, definition.type, made[out_name])))
    if list(made) != [out_name for out_name, _ in parts]:
        raise _NotTaken
    return parts


def _const(value: Any) -> _Build:
    if isinstance(value, _Marker):
        raise _NotTaken
    return lambda coerced: value


class _NotTaken(Exception):
    """graphql-core made something this module did not foresee: its walk decides."""
