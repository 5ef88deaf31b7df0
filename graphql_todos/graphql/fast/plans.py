"""Compiled execution: the graphql-jit model for our schema.

A validated operation is turned once into a plan (which fields, under which
keys, completed how) and run without graphql-core's per-field machinery: the
root fields call the very resolvers Strawberry built (so the same service
methods get the same arguments), the fields below them read attributes as
Strawberry's default resolver does, and leaves are completed by
graphql-core's own `complete_leaf_value` (or left for orjson when it writes
them identically). Null propagation and error paths follow graphql-core's
executor step by step (see `_Run`).

Whatever a plan does not cover (introspection, subscriptions, fields with
their own resolvers below the root, directives other than @skip/@include,
variables that fail coercion, a directive condition that is not a plain
boolean) gives None from `compile_operation`, `coerce_variables` or
`CompiledOperation.plan`, all before anything runs: the caller then takes
the regular Strawberry path, which gives the canonical answer.

A root field may also be answered whole, without its resolver or completion:
the caller names such fields (`direct`), each with a function that is given
the field's selection once per plan and returns how to answer it (or None
when it does not cover that selection).
"""

from __future__ import annotations

import inspect
import operator
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
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
    is_specified_scalar_type,
    located_error,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.executor import Executor
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor
from graphql.pyutils import Path, gather_with_cancel, is_iterable
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.execution.is_awaitable import optimized_is_awaitable

from graphql_todos.internals.strawberry import plain_attribute, resolve_info

# Plans per operation, one per combination of @skip/@include variables.
PLANS_PER_OPERATION = 16

Completer = Callable[[Any, Path, list[GraphQLError]], Any]
# An object's field: response key, value getter, completer, nullable,
# composite (an object or list of them), field nodes.
_Entry = tuple[str, Callable[[Any], Any], Completer, bool, bool, list[FieldNode]]
_complete_leaf = Executor.complete_leaf_value


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
Answer = Callable[[Any, dict[str, Any]], Awaitable[Any]]
# Given a root field's selection, how to answer it directly, or None.
Direct = Callable[[tuple[Selected, ...]], Answer | None]


class _Uncompilable(Exception):
    """Raised while planning: this operation takes the regular path."""


@dataclass(frozen=True, slots=True)
class _RootField:
    key: str
    field_def: GraphQLField
    nodes: list[FieldNode]
    nullable: bool
    complete: Completer
    typename: str | None  # set for __typename, which resolves to it
    direct: Answer | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """One operation with its selections collected for one set of
    @skip/@include values."""

    operation: OperationDefinitionNode
    root_type: GraphQLObjectType
    fields: tuple[_RootField, ...]

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
    # None: these conditions select something a plan does not cover.
    plans: OrderedDict[tuple[Any, ...], Plan | None] = field(default_factory=OrderedDict)

    def plan(self, variables: VariableValues) -> Plan | None:
        key = tuple(variables.coerced.get(name) for name in self.condition_variables)
        if any(not isinstance(value, bool) for value in key):
            # graphql-core reports a null condition when it meets it.
            return None
        if key in self.plans:
            self.plans.move_to_end(key)
            return self.plans[key]
        try:
            plan: Plan | None = self._build(variables)
        except _Uncompilable:
            plan = None
        self.plans[key] = plan
        if len(self.plans) > PLANS_PER_OPERATION:
            self.plans.popitem(last=False)
        return plan

    def _build(self, variables: VariableValues) -> Plan:
        root_type = self.schema.get_root_type(self.operation.operation)
        assert root_type is not None
        collected = collect_fields(self.schema, self.fragments, variables, root_type, self.operation)
        roots = []
        for key, details in collected.grouped_field_set.items():
            nodes = [d.node for d in details]
            name = nodes[0].name.value
            if name == "__typename":
                complete = self._completer(TypeNameMetaFieldDef.type, root_type, name, details, variables)
                roots.append(_RootField(key, TypeNameMetaFieldDef, nodes, False, complete, root_type.name))
                continue
            field_def = root_type.fields[name]
            direct = self.direct.get(f"{root_type.name}.{name}")
            selection = None if direct is None else self._selection(field_def.type, details, variables)
            answer = None if direct is None or selection is None else direct(selection)
            if answer is not None:
                nullable = not is_non_null_type(field_def.type)
                roots.append(_RootField(key, field_def, nodes, nullable, _as_is, None, answer))
                continue
            if field_def.resolve is None:
                raise _Uncompilable(f"{root_type.name}.{name} has no resolver")
            roots.append(
                _RootField(
                    key,
                    field_def,
                    nodes,
                    not is_non_null_type(field_def.type),
                    self._completer(field_def.type, root_type, name, details, variables),
                    None,
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
            return _leaf(type_.of_type, f"{parent.name}.{name}")
        if is_non_null_type(type_):
            return _non_null(self._completer(type_.of_type, parent, name, details, variables), parent, name)
        if is_list_type(type_):
            item_type = type_.of_type
            item = self._completer(item_type, parent, name, details, variables)
            return _list(item, item_type, parent, name, [d.node for d in details])
        if is_leaf_type(type_):
            return _leaf(type_, None)
        if is_object_type(type_):
            return self._object(type_, details, variables)
        raise _Uncompilable(f"{parent.name}.{name}: abstract types are not compiled")

    def _object(
        self, type_: GraphQLObjectType, details: list[FieldDetails], variables: VariableValues
    ) -> Completer:
        collected = collect_subfields(self.schema, self.fragments, variables, self.operation, type_, details)
        entries: list[_Entry] = []
        for key, sub in collected.grouped_field_set.items():
            nodes = [d.node for d in sub]
            name = nodes[0].name.value
            if name == "__typename":
                complete = self._completer(TypeNameMetaFieldDef.type, type_, name, sub, variables)
                entries.append((key, _constant(type_.name), complete, False, False, nodes))
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
        return _object_completer(tuple(entries))


def compile_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    direct: Mapping[str, Direct] | None = None,
) -> CompiledOperation | None:
    """The compiled form of a validated document's operation, or None when
    the regular path must run it; `direct` names the root fields that may be
    answered directly."""
    operation = _select_operation(document, operation_name)
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        return None
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
        direct or {},
    )


def coerce_variables(compiled: CompiledOperation, inputs: dict[str, Any] | None) -> VariableValues | None:
    """Coerced variables, or None when they fail (the regular path then
    reports exactly graphql-core's errors)."""
    values = get_variable_values(compiled.schema, compiled.operation.variable_definitions or (), inputs or {})
    return None if isinstance(values, list) else values


async def execute(
    plan: Plan,
    compiled: CompiledOperation,
    variables: VariableValues,
    context: Any,
    root_value: Any = None,
) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
    """Run a plan: the response data (None when a non-null root failed),
    for orjson to write, and the errors in the order graphql-core collects
    them."""
    run = _Run(plan, compiled, variables, context, root_value)
    try:
        data = await (run.serially() if plan.serial else run.concurrently())
    except GraphQLError as error:
        run.errors.append(error)
        return None, run.errors
    return data, run.errors


@dataclass(slots=True)
class _Run:
    """One execution of a plan; mirrors graphql-core's Executor for the root
    fields (execute_fields, execute_fields_serially, execute_field)."""

    plan: Plan
    compiled: CompiledOperation
    variables: VariableValues
    context: Any
    root_value: Any
    errors: list[GraphQLError] = field(default_factory=list)

    async def serially(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for root in self.plan.fields:
            try:
                started = self._start(root)
            except Exception as raw:
                data[root.key] = _field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
                continue
            if optimized_is_awaitable(started):
                data[root.key] = await self._finish(root, started)
            else:
                data[root.key] = self._complete(root, started)
        return data

    async def concurrently(self) -> dict[str, Any]:
        # Every resolver is called first, in document order, and then they
        # are awaited together; a failing non-null field cancels the rest.
        data: dict[str, Any] = {}
        pending: list[_RootField] = []
        for root in self.plan.fields:
            try:
                started = self._start(root)
            except Exception as raw:
                try:
                    data[root.key] = _field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
                except GraphQLError:
                    # graphql-core lets them run unobserved; none has started.
                    for other in pending:
                        if inspect.iscoroutine(data[other.key]):
                            data[other.key].close()
                    raise
                continue
            if optimized_is_awaitable(started):
                data[root.key] = started
                pending.append(root)
            else:
                data[root.key] = self._complete(root, started)
        if len(pending) == 1:
            root = pending[0]
            data[root.key] = await self._finish(root, data[root.key])
        elif pending:
            values = await gather_with_cancel(*(self._finish(root, data[root.key]) for root in pending))
            data.update((root.key, value) for root, value in zip(pending, values, strict=True))
        return data

    def _start(self, root: _RootField) -> Any:
        if root.typename is not None:
            return root.typename
        node = root.nodes[0]
        args = (
            get_argument_values(root.field_def, node, self.variables)
            if root.field_def.args or node.arguments
            else {}
        )
        if root.direct is not None:
            return root.direct(self.context, args)
        compiled, root_type = self.compiled, self.plan.root_type
        info = resolve_info(
            compiled.schema,
            root.field_def,
            root.nodes,
            root_type,
            Path(None, root.key, root_type.name),
            compiled.operation,
            compiled.fragment_definitions,
            self.variables.coerced,
            self.context,
            self.root_value,
        )
        return root.field_def.resolve(self.root_value, info, **args)  # type: ignore[misc]

    async def _finish(self, root: _RootField, started: Awaitable[Any]) -> Any:
        try:
            value = await started
        except Exception as raw:
            return _field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
        return self._complete(root, value)

    def _complete(self, root: _RootField, value: Any) -> Any:
        try:
            return root.complete(value, Path(None, root.key, self.plan.root_type.name), self.errors)
        except Exception as raw:
            return _field_error(raw, root.nodes, [root.key], root.nullable, self.errors)


def _field_error(
    raw: Exception, nodes: list[FieldNode], path: list[str | int], nullable: bool, errors: list[GraphQLError]
) -> Any:
    """graphql-core's handle_field_error: locate the error, then null this
    field if it may be null, or pass the error up to the parent if not."""
    error = located_error(raw, nodes, path)
    if not nullable:
        raise error
    errors.append(error)
    return None


def _select_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    named = [op for op in operations if op.name and op.name.value == name]
    return named[0] if len(named) == 1 else None


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


def _as_is(value: Any, _path: Path, _errors: list[GraphQLError]) -> Any:
    return value


def _constant(value: str) -> Callable[[Any], str]:
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


def _leaf(type_: GraphQLLeafType, non_null_field: str | None) -> Completer:
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


def _non_null(inner: Completer, parent: GraphQLObjectType, name: str) -> Completer:
    message = f"Cannot return null for non-nullable field {parent.name}.{name}."

    def complete(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        completed = inner(value, path, errors)
        if completed is None:
            raise TypeError(message)
        return completed

    return complete


def _list(
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
                append(_field_error(raw, nodes, item_path.as_list(), nullable_items, errors))
        return result

    return complete


def _object_completer(entries: tuple[_Entry, ...]) -> Completer:
    def complete(value: Any, path: Path, errors: list[GraphQLError]) -> Any:
        if value is None:
            return None
        out = {}
        for key, get, complete_field, nullable, composite, nodes in entries:
            try:
                # Leaves need no path of their own unless they fail.
                out[key] = complete_field(get(value), Path(path, key, None) if composite else path, errors)
            except Exception as raw:
                out[key] = _field_error(raw, nodes, Path(path, key, None).as_list(), nullable, errors)
        return out

    return complete
