"""The arguments a plan makes without graphql-core's walk (fast/arguments.py)
against graphql-core's own get_argument_values, value for value."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FieldNode, GraphQLSchema, OperationDefinitionNode, build_schema, parse
from graphql.execution.values import get_argument_values, get_variable_values

from graphql_todos.graphql.fast.arguments import compile_arguments

SDL = """
enum Color { RED GREEN }
input Inner { a: String, b: Int = 3 }
input New { title: String!, done: Boolean = false, color: Color = RED, inner: Inner, tags: [String] = ["x"] }
input One @oneOf { a: String, b: Int }
type Query { f(input: New!, n: Int = 5, s: String): String, g(one: One): String, h(l: [Int]): String }
"""
VARIABLES = "($t: String, $s: String, $n: Int, $a: String, $d: Boolean, $in: Inner)"


def _field(schema: GraphQLSchema, selection: str) -> tuple[OperationDefinitionNode, FieldNode]:
    operation = parse(f"query{VARIABLES} {{ {selection} }}").definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    node = operation.selection_set.selections[0]
    assert isinstance(node, FieldNode)
    return operation, node


TAKEN = [
    "f(input: {title: $t})",
    "f(input: {title: $t, done: $d}, n: $n, s: $s)",
    'f(input: {title: "lit", color: GREEN, inner: {a: $a}}, n: 7)',
    "f(input: {title: $t, inner: $in})",
    'f(input: {title: $t, inner: {b: $n}}, s: "x")',
]
INPUTS: list[dict[str, Any]] = [
    {"t": "a", "s": "b", "n": 1, "a": "c", "d": True, "in": {"a": "z"}},
    {"t": "a", "s": None, "n": 1, "a": "c", "d": False, "in": {"b": 9}},
    {"t": "a"},
    {"t": None, "n": 2},
    {},
]


@pytest.mark.parametrize("selection", TAKEN)
@pytest.mark.parametrize("inputs", INPUTS, ids=range(len(INPUTS)))
def test_arguments_are_graphql_cores_or_left_to_it(selection: str, inputs: dict[str, Any]) -> None:
    schema = build_schema(SDL)
    operation, node = _field(schema, selection)
    field_def = schema.query_type.fields[node.name.value]  # type: ignore[union-attr]
    arguments = compile_arguments(field_def, node)
    assert arguments is not None
    definitions = operation.variable_definitions or ()
    variables = get_variable_values(schema, definitions, inputs)
    assert not isinstance(variables, list)
    made = arguments(variables.coerced)
    if made is None:
        # Left to graphql-core: a variable it reads is missing or null.
        assert any(inputs.get(v.variable.name.value) is None for v in definitions if f"${v.variable.name.value}" in selection)
        return
    expected = get_argument_values(field_def, node, variables)
    assert made == expected
    assert list(made) == list(expected)
    # An object literal's dict is the request's own, as graphql-core makes it.
    again = arguments(variables.coerced)
    assert again is not None and again["input"] is not made["input"]


@pytest.mark.parametrize(
    "selection", ["g(one: {a: $a})", "h(l: [$n])", "h(l: [1, 2])", 'f(input: {title: $t, tags: ["y"]})', "f(input: {title: $t}, s: null)"]
)
def test_other_shapes_are_left_to_graphql_core(selection: str) -> None:
    schema = build_schema(SDL)
    _, node = _field(schema, selection)
    assert compile_arguments(schema.query_type.fields[node.name.value], node) is None  # type: ignore[union-attr]
