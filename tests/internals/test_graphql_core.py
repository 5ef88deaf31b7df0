"""One test per assumption internals/graphql_core.py makes of graphql-core:
after an upgrade, a failure here names what changed."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLString,
    VariableDefinitionNode,
    build_schema,
    get_named_type,
    get_variable_values,
    parse,
)
from graphql.execution import values
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.language.printer import print_for_error
from graphql.validation import OverlappingFieldsCanBeMergedRule, specified_rules, validate
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError

from graphql_todos.internals.graphql_core import (
    _input_values,
    as_sent,
    bound_overlap_checks,
    keep_variable_signatures,
    kept_signature,
    plain_variables,
    printed_for_error,
)

SDL = "input New { title: String! } type Query { todo(id: ID!, input: New): String, n: Int }"
DOCUMENT = "query($id: ID!, $input: New, $n: [Int!]! = [1]) { todo(id: $id, input: $input) n }"


def _definitions(document: str = DOCUMENT) -> tuple[VariableDefinitionNode, ...]:
    operation: Any = parse(document).definitions[0]
    return tuple(operation.variable_definitions)


def test_variable_values_take_each_signature_through_the_module_global(monkeypatch: pytest.MonkeyPatch) -> None:
    # What keep_variable_signatures replaces: coerce_variable_values (under
    # get_variable_values) calls values.get_variable_signature, once per variable.
    schema, asked = build_schema(SDL), []

    def counting(schema: Any, node: VariableDefinitionNode) -> Any:
        asked.append(node)
        return get_variable_signature(schema, node)

    monkeypatch.setattr(values, "get_variable_signature", counting)
    definitions = _definitions()
    get_variable_values(schema, definitions, {"id": "1"})
    assert asked == list(definitions)


def _same(kept: Any, made: Any) -> bool:
    # graphql-core's wrapping types compare by identity: a new GraphQLNonNull per signature made.
    return (kept.name, str(kept.type), kept.default) == (made.name, str(made.type), made.default)


def test_a_signature_is_made_once_per_definition_and_schema() -> None:
    schema, other = build_schema(SDL), build_schema(SDL)
    for node in _definitions():
        kept = kept_signature(schema, node)
        assert kept is kept_signature(schema, node)
        assert _same(kept, get_variable_signature(schema, node))
        # Another schema's types are its own.
        theirs = kept_signature(other, node)
        assert isinstance(kept, GraphQLVariableSignature) and isinstance(theirs, GraphQLVariableSignature)
        assert theirs is not kept and _same(theirs, kept)
        assert get_named_type(theirs.type) is other.get_type(get_named_type(kept.type).name)
    # The same text parsed again is another node: a signature of its own.
    assert kept_signature(schema, _definitions()[0]) is not kept_signature(schema, _definitions()[0])


def test_an_invalid_definition_gets_a_fresh_error_each_time() -> None:
    schema = build_schema("type Out { a: Int } type Query { a(x: Int): Int }")
    node = _definitions("query($o: Out) { a }")[0]
    first, second = kept_signature(schema, node), kept_signature(schema, node)
    assert isinstance(first, GraphQLError) and isinstance(second, GraphQLError)
    assert first is not second
    assert first.message == second.message == get_variable_signature(schema, node).message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "inputs",
    [{"id": "1"}, {"id": 7, "input": {"title": "t"}, "n": [2, 3]}, {}, {"id": None}, {"id": "1", "input": {"title": 5}}, {"id": "1", "n": 4}],
)
def test_variables_are_coerced_as_graphql_core_coerces_them(monkeypatch: pytest.MonkeyPatch, inputs: dict[str, Any]) -> None:
    schema, definitions = build_schema(SDL), _definitions()
    monkeypatch.setattr(values, "get_variable_signature", get_variable_signature)
    before = get_variable_values(schema, definitions, inputs)
    keep_variable_signatures()
    assert values.get_variable_signature is kept_signature
    for _ in range(2):  # the first request makes the signatures, the second takes them
        after = get_variable_values(schema, definitions, inputs)
        if isinstance(before, list):
            assert isinstance(after, list)
            assert [e.formatted for e in after] == [e.formatted for e in before]
        else:
            assert not isinstance(after, list)
            assert after.coerced == before.coerced
            assert {name: source.value for name, source in after.sources.items()} == {
                name: source.value for name, source in before.sources.items()
            }


def test_the_builtin_scalars_give_back_a_value_of_their_own_type_unchanged() -> None:
    # What as_sent takes for coercion: String and ID of a str, Boolean of a bool.
    title = f"title {len(PLAIN)}"  # made at run time, not a shared constant: the same object back
    assert GraphQLString.parse_value(title) is title
    assert GraphQLID.parse_value(title) is title
    assert GraphQLBoolean.parse_value(True) is True
    # Why ID takes only a str as sent: graphql-core turns an int into one.
    assert GraphQLID.parse_value(7) == "7"


PLAIN = "query($id: ID!, $t: String, $done: Boolean!) { todo(id: $id) n }"


@pytest.mark.parametrize(
    "inputs",
    [
        {"id": "1", "t": "a", "done": False},
        {"id": "1", "t": "a", "done": True, "other": 5},
        {"id": 1, "t": "a", "done": False},
        {"id": "1", "done": False},
        {"id": "1", "t": None, "done": False},
        {"id": None, "t": "a", "done": False},
        {"id": "1", "t": "a", "done": 1},
        {"id": "1", "t": 5, "done": False},
        {},
    ],
)
def test_variables_as_sent_are_what_graphql_core_gives_or_none(inputs: dict[str, Any]) -> None:
    schema, definitions = build_schema(SDL), _definitions(PLAIN)
    plain = plain_variables(schema, definitions)
    assert plain is not None
    taken = as_sent(plain, inputs)
    coerced = get_variable_values(schema, definitions, inputs)
    if taken is None:
        # Left to graphql-core: a value not of its variable's type (missing, null, another).
        assert any(type(inputs.get(name)) is not kind for name, _, kind in plain)
        return
    assert not isinstance(coerced, list)
    assert taken.coerced == coerced.coerced
    assert list(taken.coerced) == list(coerced.coerced)
    assert list(taken.sources) == list(coerced.sources)
    for name, source in taken.sources.items():
        assert source.value == coerced.sources[name].value
        assert _same(source.signature, coerced.sources[name].signature)


@pytest.mark.parametrize(
    "document",
    ["query($n: Int) { n }", "query($i: New) { n }", "query($l: [ID!]) { n }", 'query($t: String = "x") { n }'],
)
def test_other_variables_are_left_to_graphql_core(document: str) -> None:
    assert plain_variables(build_schema(SDL), _definitions(document)) is None


class _Refused(ValidationAbortedError):
    def __init__(self) -> None:
        super().__init__("refused")


def test_overlapping_fields_are_compared_within_the_budget_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # What bound_overlap_checks replaces: the rule reads MAX_COMPLEXITY_BUDGET
    # when a document's validation starts, spends it through the module
    # global spend_complexity_budget (a pair compared: 2), and validate()
    # keeps the ValidationAbortedError it raises as the document's last error.
    for name in ("MAX_COMPLEXITY_BUDGET", "spend_complexity_budget"):
        monkeypatch.setattr(overlapping_fields_can_be_merged, name, getattr(overlapping_fields_can_be_merged, name))
    assert OverlappingFieldsCanBeMergedRule in specified_rules
    schema = build_schema("type Query { a: Int }")
    bound_overlap_checks(12, _Refused)
    assert validate(schema, parse("{ a a a a }")) == []  # 6 pairs
    errors = validate(schema, parse("{ a a a a a }"))  # 10 pairs
    assert [type(e) for e in errors] == [_Refused]


def test_input_values_are_printed_for_their_errors_through_the_module_global(monkeypatch: pytest.MonkeyPatch) -> None:
    # What print_values_once replaces: each error validate_input_literal
    # reports of a value (through ValuesOfCorrectTypeRule) prints it with
    # validate_input_value.print_for_error, looked up at each call.
    schema, printed = build_schema("input New { title: String! } type Query { a(input: New): Int }"), []
    original = _input_values.print_for_error

    def counting(node: Any) -> str:
        printed.append(node)
        return original(node)  # type: ignore[no-any-return]

    monkeypatch.setattr(_input_values, "print_for_error", counting)
    errors = validate(schema, parse("{ a(input: {x: 1, y: 2, z: 3}) }"))
    assert len(errors) == 4  # title missing, three unknown fields
    assert len(printed) == 4 and len({id(node) for node in printed}) == 1
    printed.clear()
    monkeypatch.setattr(_input_values, "print_for_error", printed_for_error)
    again = validate(schema, parse("{ a(input: {x: 1, y: 2, z: 3}) }"))
    assert [e.message for e in again] == [e.message for e in errors]  # short: uncut


def test_a_value_is_printed_once_while_kept() -> None:
    value: Any = parse("{ a(input: {x: 1, y: 2}) }").definitions[0]
    node = value.selection_set.selections[0].arguments[0].value
    equal = parse("{ a(input: {x: 1, y: 2}) }").definitions[0].selection_set.selections[0].arguments[0].value  # type: ignore[attr-defined]
    assert printed_for_error(node) == printed_for_error(equal) == "{ x: 1, y: 2 }"
    assert printed_for_error(node) is printed_for_error(node)
    long: Any = parse("{ a(input: {" + "x: 1 " * 100 + "}) }").definitions[0]
    long_node = long.selection_set.selections[0].arguments[0].value
    assert printed_for_error(long_node) == print_for_error(long_node)[:200] + "..."
