"""graphql-core's internals we lean on, behind one door. Each override says
what it assumes; tests/internals/test_graphql_core.py pins each, so an
upgrade that breaks one fails a test by name.

Variable signatures, kept: graphql-core coerces a request's variables
(`coerce_variable_values`, for the intake and for Strawberry's executor
alike) by working out each variable's signature afresh on every request
(`get_variable_signature`: the type from the AST, a GraphQLNonNull made for
each `!`, a NamedTuple), about 1% of a write's instructions. A signature
depends on the schema and the definition node alone, so it is kept per
node, for every caller, by replacing the module global that
`coerce_variable_values` calls through.

Variables taken as they came: a variable of the built-in String, ID or
Boolean type whose value is a str (a bool for Boolean) is coerced to that
same value (their parse_value), so an operation whose variables are all
such (`plain_variables`, made once per operation) has its request's values
as graphql-core would coerce them without its walk (`as_sent`: about 4% of
an updateTodo's instructions, with its two variables); any other value
(missing, null, another type) goes to graphql-core, which coerces it or
says why not.

Overlapping fields, bounded: OverlappingFieldsCanBeMergedRule compares
every pair of fields sharing a response name (quadratic: 247 copies of
`me{id}`, within MAX_TOKENS, took 0.35 s of the one event loop). It meters
that work itself and aborts past a budget (MAX_COMPLEXITY_BUDGET, read when
a document's validation starts, 500,000: ~0.1 s) with "Validation aborted.";
`bound_overlap_checks` sets a budget of ours and the error it ends with, by
replacing the module global its comparisons call (spend_complexity_budget).
Strawberry's validation and the intake's both run that rule.

A value printed once for its errors: ValuesOfCorrectTypeRule (through
validate_input_literal) prints the value an error is about into each error's
message (`print_for_error`, which walks the whole value however short the
text it keeps), so an input object of 320 unknown fields, within MAX_TOKENS,
was walked for each of its 100 errors (0.3 s), and each message carried
it whole (360 KB of errors for 2 KB of document). `print_values_once` keeps
the last texts by node, each cut at PRINTED_LENGTH characters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from importlib import import_module
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    VariableDefinitionNode,
)
from graphql.execution import values
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.language import Node
from graphql.validation.rules import overlapping_fields_can_be_merged as _overlaps
from graphql.validation.validate import ValidationAbortedError

from graphql_todos.core.bounded import LRU

# Definitions kept (a document's variables, for as many documents as the
# intake and Strawberry's parse cache hold together, about).
SIGNATURES = 1024

# By the node's identity: graphql-core's nodes hash and compare by their
# whole subtree. The entry holds the node, so its id is not reused while kept.
_kept: LRU[int, tuple[VariableDefinitionNode, GraphQLSchema, GraphQLVariableSignature]] = LRU(SIGNATURES)


def kept_signature(schema: GraphQLSchema, node: VariableDefinitionNode) -> GraphQLVariableSignature | GraphQLError:
    """get_variable_signature(schema, node), made once per node and schema.
    An error (a variable of an output type, which validation refuses first)
    is made afresh each time: a request's errors are its own to change."""
    kept = _kept.get(id(node))
    if kept is not None and kept[1] is schema:
        return kept[2]
    signature = get_variable_signature(schema, node)
    if not isinstance(signature, GraphQLError):
        _kept.put(id(node), (node, schema, signature))
    return signature


def keep_variable_signatures() -> None:
    """From now on, coerce_variable_values takes each signature from kept_signature."""
    values.get_variable_signature = kept_signature  # type: ignore[assignment]


# The built-in scalars whose parse_value gives back a value of this Python
# type unchanged (GraphQLID turns an int into a str: not taken as sent).
_AS_SENT: dict[Any, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}

# A variable taken as sent: its name, its signature, the one Python type it takes.
PlainVariable = tuple[str, GraphQLVariableSignature, type]


def plain_variables(
    schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
) -> tuple[PlainVariable, ...] | None:
    """An operation's variables, when every one is a String, ID or Boolean
    (null or not) without a default; None otherwise."""
    plain = []
    for node in definitions:
        signature = kept_signature(schema, node)
        if isinstance(signature, GraphQLError) or node.default_value is not None:
            return None
        named = signature.type.of_type if isinstance(signature.type, GraphQLNonNull) else signature.type
        kind = _AS_SENT.get(named)
        if kind is None:
            return None
        plain.append((signature.name, signature, kind))
    return tuple(plain)


def as_sent(plain: tuple[PlainVariable, ...], inputs: Mapping[str, Any]) -> VariableValues | None:
    """What get_variable_values gives for these inputs when each value is of
    its variable's type (its sources and its coerced values, in the
    definitions' order); None when one is not (missing, null, another type)."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, kind in plain:
        value = inputs.get(name)
        if type(value) is not kind:
            return None
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = value
    return VariableValues(sources, coerced)


def bound_overlap_checks(budget: int, refusal: Callable[[], ValidationAbortedError]) -> None:
    """From now on, OverlappingFieldsCanBeMergedRule spends at most `budget`
    units on a document (a pair of fields compared costs 2), then validation
    stops with refusal() among its errors (validate() keeps a
    ValidationAbortedError as the last)."""
    _overlaps.MAX_COMPLEXITY_BUDGET = budget

    def spend(rule_context: Any, cost: int) -> None:
        rule_context.remaining_complexity_budget -= cost
        if rule_context.remaining_complexity_budget < 0:
            raise refusal()

    _overlaps.spend_complexity_budget = spend


# The module, which graphql.utilities hides behind its function of the same name.
_input_values = import_module("graphql.utilities.validate_input_value")
# Values printed kept (the innermost of as many nested values an error is about).
PRINTED = 16
PRINTED_LENGTH = 200
_printed: LRU[int, tuple[Node, str]] = LRU(PRINTED)
_print_for_error = _input_values.print_for_error


def printed_for_error(node: Node) -> str:
    """print_for_error(node), at most PRINTED_LENGTH characters (then "..."),
    made once per node while kept (each held, so its id is not reused)."""
    kept = _printed.get(id(node))
    if kept is not None and kept[0] is node:
        return kept[1]
    text = _print_for_error(node)
    if len(text) > PRINTED_LENGTH:
        text = text[:PRINTED_LENGTH] + "..."
    _printed.put(id(node), (node, text))
    return text


def print_values_once() -> None:
    """From now on, validate_input_literal prints each value through printed_for_error."""
    _input_values.print_for_error = printed_for_error  # type: ignore[attr-defined]
