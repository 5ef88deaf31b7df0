"""Running a compiled plan: graphql-core's executor for the root fields
(execute_fields, execute_fields_serially, execute_field), the values below
them completed by the plan's completers (completion.py)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import gather_with_cancel
from strawberry.execution.is_awaitable import optimized_is_awaitable

from graphql_todos.graphql.fast.completion import field_error
from graphql_todos.graphql.fast.plans import CompiledOperation, Plan, RootField
from graphql_todos.internals.strawberry import resolve_info


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


def execute_event(plan: Plan, event: Any) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
    """A subscription event's response, as `execute` gives it (for a plan
    of compile_events): each root field's value is the event itself."""
    errors: list[GraphQLError] = []
    data: dict[str, Any] = {}
    for root in plan.fields:
        try:
            data[root.key] = _completed(root, event if root.typename is None else root.typename, errors)
        except GraphQLError as error:
            errors.append(error)
            return None, errors
    return data, errors


def _completed(root: RootField, value: Any, errors: list[GraphQLError]) -> Any:
    try:
        return root.complete(value, root.path, errors)
    except Exception as raw:
        return field_error(raw, root.nodes, [root.key], root.nullable, errors)


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
                data[root.key] = field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
                continue
            if not optimized_is_awaitable(started):
                data[root.key] = self._complete(root, started)
                continue
            # _finish's steps, written out: a coroutine less between the
            # resolver and the loop, on every resumption of a write.
            try:
                value = await started
            except Exception as raw:
                data[root.key] = field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
            else:
                data[root.key] = self._complete(root, value)
        return data

    async def concurrently(self) -> dict[str, Any]:
        # Every resolver is called first, in document order, and then they
        # are awaited together; a failing non-null field cancels the rest.
        data: dict[str, Any] = {}
        pending: list[RootField] = []
        for root in self.plan.fields:
            try:
                started = self._start(root)
            except Exception as raw:
                try:
                    data[root.key] = field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
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

    def _start(self, root: RootField) -> Any:
        if root.typename is not None:
            return root.typename
        node = root.nodes[0]
        args = None if root.arguments is None else root.arguments(self.variables.coerced)
        if args is None:
            args = (
                get_argument_values(root.field_def, node, self.variables)
                if root.field_def.args or node.arguments
                else {}
            )
        if root.direct is not None:
            return root.direct(self.context, args)
        if root.call is not None:
            return root.call(self.context, args)
        compiled, root_type = self.compiled, self.plan.root_type
        info = resolve_info(
            compiled.schema,
            root.field_def,
            root.nodes,
            root_type,
            root.path,
            compiled.operation,
            compiled.fragment_definitions,
            self.variables.coerced,
            self.context,
            self.root_value,
        )
        return root.field_def.resolve(self.root_value, info, **args)  # type: ignore[misc]

    async def _finish(self, root: RootField, started: Awaitable[Any]) -> Any:
        try:
            value = await started
        except Exception as raw:
            return field_error(raw, root.nodes, [root.key], root.nullable, self.errors)
        return self._complete(root, value)

    def _complete(self, root: RootField, value: Any) -> Any:
        return _completed(root, value, self.errors)
