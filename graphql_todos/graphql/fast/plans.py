"""Compiled plans: the graphql-jit model for our schema.

A validated operation is turned once into a plan (which fields, under which
keys, completed how: completion.py) that execution.py runs without
graphql-core's per-field machinery: the root fields call the very resolvers
Strawberry built (so the same service methods get the same arguments), and
the fields below them read attributes as Strawberry's default resolver does.

A subscription's plan (compile_events) completes each event as graphql-core
does: every root field of a subscription resolves to the event itself (the
resolver Strawberry gives it), so execution.execute_event completes the
event directly.

Whatever a plan does not cover (introspection, a subscription but for its
events, fields with their own resolvers below the root, directives other
than @skip/@include, a directive condition that is not a plain boolean)
gives None from
`compile_operation` or `CompiledOperation.plan`, before anything runs: the
caller then takes the regular Strawberry path, which gives the canonical
answer.

A root field may also be answered whole, without its resolver or completion:
the caller names such fields (`direct`), each with a function that is given
the field's selection once per plan and returns how to answer it (or None
when it does not cover that selection).
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.language import Visitor
from graphql.pyutils import Path
from graphql.type.introspection import TypeNameMetaFieldDef

from graphql_todos.core.bounded import LRU
from graphql_todos.graphql.fast.arguments import Arguments, compile_arguments
from graphql_todos.graphql.fast.completion import (
    Completer,
    Entry,
    as_is,
    constant,
    leaf,
    list_of,
    non_null,
    object_of,
)
from graphql_todos.internals.strawberry import plain_attribute

# Plans per operation, one per combination of @skip/@include variables.
PLANS_PER_OPERATION = 16


@dataclass(frozen=True, slots=True)
class Selected:
    """A field of a selection given to a direct answer: its response key,
    the attribute Strawberry reads for it (None for __typename, whose value
    is `typename`), and the fields selected below it (None for a leaf)."""

    key: str
    attribute: str | None
    typename: str | None
    fields: tuple[Selected, ...] | None


# Answers a root field from the context and its arguments, with its
# completed value (what the field's completion would have made).
RootAnswer = Callable[[Any, dict[str, Any]], Awaitable[Any]]
# Given a root field's selection, how to answer it directly, or None.
Direct = Callable[[tuple[Selected, ...]], RootAnswer | None]
# A root field's resolver without Strawberry's wrapper: from the context and
# graphql-core's coerced arguments, the value the resolver returns (which
# the plan then completes).
RootCall = Callable[[Any, dict[str, Any]], Awaitable[Any]]


class _Uncompilable(Exception):
    """Raised while planning: this operation takes the regular path."""


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    field_def: GraphQLField
    nodes: list[FieldNode]
    nullable: bool
    complete: Completer
    typename: str | None  # set for __typename, which resolves to it
    # Its response path, the same in every execution: made once.
    path: Path
    direct: RootAnswer | None = None
    call: RootCall | None = None
    # Its arguments from the variables without graphql-core's walk, where
    # their shape allows (arguments.py).
    arguments: Arguments | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """One operation with its selections collected for one set of
    @skip/@include values."""

    operation: OperationDefinitionNode
    root_type: GraphQLObjectType
    fields: tuple[RootField, ...]

    @property
    def serial(self) -> bool:
        return self.operation.operation is OperationType.MUTATION


@dataclass(slots=True)
class CompiledOperation:
    """A validated operation and its plans; built once per document."""

    schema: GraphQLSchema
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDetails]
    fragment_definitions: dict[str, FragmentDefinitionNode]
    condition_variables: tuple[str, ...]
    # Root fields answered directly, by coordinate ("Query.todos").
    direct: Mapping[str, Direct]
    # Root fields whose resolvers are called without Strawberry's wrapper, by coordinate.
    calls: Mapping[str, RootCall]
    # None: these conditions select something a plan does not cover.
    plans: LRU[tuple[Any, ...], Plan | None] = field(default_factory=lambda: LRU(PLANS_PER_OPERATION))

    def plan(self, variables: VariableValues) -> Plan | None:
        key: tuple[Any, ...] = ()  # no @skip or @include on a variable (most operations): no generators made
        if self.condition_variables:
            key = tuple(variables.coerced.get(name) for name in self.condition_variables)
            if any(not isinstance(value, bool) for value in key):
                # graphql-core reports a null condition when it meets it.
                return None
        return self.plans.get_or_make(key, lambda: self._build(variables))

    def _build(self, variables: VariableValues) -> Plan | None:
        try:
            return self._collect(variables)
        except _Uncompilable:
            return None

    def _collect(self, variables: VariableValues) -> Plan:
        root_type = self.schema.get_root_type(self.operation.operation)
        assert root_type is not None
        collected = collect_fields(self.schema, self.fragments, variables, root_type, self.operation)
        roots = []
        for key, details in collected.grouped_field_set.items():
            nodes = [d.node for d in details]
            name = nodes[0].name.value
            path = Path(None, key, root_type.name)
            if name == "__typename":
                complete = self._completer(TypeNameMetaFieldDef.type, root_type, name, details, variables)
                roots.append(RootField(key, TypeNameMetaFieldDef, nodes, False, complete, root_type.name, path))
                continue
            field_def = root_type.fields[name]
            direct = self.direct.get(f"{root_type.name}.{name}")
            selection = None if direct is None else self._selection(field_def.type, details, variables)
            answer = None if direct is None or selection is None else direct(selection)
            if answer is not None:
                nullable = not is_non_null_type(field_def.type)
                roots.append(
                    RootField(key, field_def, nodes, nullable, as_is, None, path, direct=answer, arguments=compile_arguments(field_def, nodes[0]))
                )
                continue
            if field_def.resolve is None:
                raise _Uncompilable(f"{root_type.name}.{name} has no resolver")
            roots.append(
                RootField(
                    key,
                    field_def,
                    nodes,
                    not is_non_null_type(field_def.type),
                    self._completer(field_def.type, root_type, name, details, variables),
                    None,
                    path,
                    call=self.calls.get(f"{root_type.name}.{name}"),
                    arguments=compile_arguments(field_def, nodes[0]),
                )
            )
        return Plan(self.operation, root_type, tuple(roots))

    def _selection(
        self, type_: GraphQLOutputType, details: list[FieldDetails], variables: VariableValues
    ) -> tuple[Selected, ...] | None:
        """The fields selected below a field of this type, or None when one
        of them has a resolver of its own."""
        named = get_named_type(type_)
        if not is_object_type(named):
            return None
        collected = collect_subfields(self.schema, self.fragments, variables, self.operation, named, details)
        selection = []
        for key, sub in collected.grouped_field_set.items():
            name = sub[0].node.name.value
            if name == "__typename":
                selection.append(Selected(key, None, named.name, None))
                continue
            field_def = named.fields[name]
            attribute = plain_attribute(field_def)
            if attribute is None:
                return None
            below = None
            if not is_leaf_type(get_named_type(field_def.type)):
                below = self._selection(field_def.type, sub, variables)
                if below is None:
                    return None
            selection.append(Selected(key, attribute, None, below))
        return tuple(selection)

    def _completer(
        self,
        type_: GraphQLOutputType,
        parent: GraphQLObjectType,
        name: str,
        details: list[FieldDetails],
        variables: VariableValues,
    ) -> Completer:
        if is_non_null_type(type_) and is_leaf_type(type_.of_type):
            return leaf(type_.of_type, f"{parent.name}.{name}")
        if is_non_null_type(type_):
            return non_null(self._completer(type_.of_type, parent, name, details, variables), parent, name)
        if is_list_type(type_):
            item_type = type_.of_type
            item = self._completer(item_type, parent, name, details, variables)
            return list_of(item, item_type, parent, name, [d.node for d in details])
        if is_leaf_type(type_):
            return leaf(type_, None)
        if is_object_type(type_):
            return self._object(type_, details, variables)
        raise _Uncompilable(f"{parent.name}.{name}: abstract types are not compiled")

    def _object(
        self, type_: GraphQLObjectType, details: list[FieldDetails], variables: VariableValues
    ) -> Completer:
        collected = collect_subfields(self.schema, self.fragments, variables, self.operation, type_, details)
        entries: list[Entry] = []
        for key, sub in collected.grouped_field_set.items():
            nodes = [d.node for d in sub]
            name = nodes[0].name.value
            if name == "__typename":
                complete = self._completer(TypeNameMetaFieldDef.type, type_, name, sub, variables)
                entries.append((key, constant(type_.name), complete, False, False, nodes))
                continue
            field_def = type_.fields[name]
            entries.append(
                (
                    key,
                    _attribute_getter(field_def, type_, name),
                    self._completer(field_def.type, type_, name, sub, variables),
                    not is_non_null_type(field_def.type),
                    not is_leaf_type(get_named_type(field_def.type)),
                    nodes,
                )
            )
        return object_of(tuple(entries))


def compile_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    direct: Mapping[str, Direct] | None = None,
    calls: Mapping[str, RootCall] | None = None,
) -> CompiledOperation | None:
    """The compiled form of a validated document's operation, or None when
    the regular path must run it; `direct` names the root fields that may be
    answered directly, `calls` those whose resolvers are called so."""
    if operation.operation is OperationType.SUBSCRIPTION:
        return None
    return _compiled(schema, document, operation, direct or {}, calls or {})


def compile_events(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> CompiledOperation | None:
    """The compiled form of a validated subscription, for its events
    (execution.execute_event), or None when graphql-core must run them."""
    if operation.operation is not OperationType.SUBSCRIPTION:
        return None
    return _compiled(schema, document, operation, {}, {})


def _compiled(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    direct: Mapping[str, Direct],
    calls: Mapping[str, RootCall],
) -> CompiledOperation | None:
    fragment_definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if any(d.variable_definitions for d in fragment_definitions.values()):
        return None
    conditions = _Conditions()
    visit(document, conditions)
    if conditions.unsupported:
        return None
    return CompiledOperation(
        schema,
        operation,
        {name: FragmentDetails(d) for name, d in fragment_definitions.items()},
        fragment_definitions,
        tuple(sorted(conditions.variables)),
        direct,
        calls,
    )


class _Conditions(Visitor):
    """Finds the variables @skip/@include read, and anything unsupported:
    other directives or introspection fields."""

    def __init__(self) -> None:
        super().__init__()
        self.variables: set[str] = set()
        self.unsupported = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        if node.name.value not in ("skip", "include"):
            self.unsupported = True
            return self.BREAK
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode):
                self.variables.add(argument.value.name.value)
        return None

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if node.name.value in ("__schema", "__type"):
            self.unsupported = True
            return self.BREAK
        return None


def _attribute_getter(field_def: GraphQLField, parent: GraphQLObjectType, name: str) -> Callable[[Any], Any]:
    # Below the root only fields Strawberry reads with getattr are compiled.
    attribute = plain_attribute(field_def)
    if attribute is None:
        raise _Uncompilable(f"{parent.name}.{name} has its own resolver")
    return operator.attrgetter(attribute)
