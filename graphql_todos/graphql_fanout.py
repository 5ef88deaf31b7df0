"""GraphQL subscriptions as broadcast members (see broadcast.py).

A `todoChanges` subscription qualifies when its document validates and its
operation selects that one field with no directive anywhere (so no @defer,
nothing that varies per member). Its group is the document, operation name
and variables, less the variable giving `after`: the cursor decides where a
member starts, not what a change looks like. Anything else, and every
subscription with bad variables, goes the Strawberry way, which answers it
as it always has; one refused at the start (a bad or expired cursor, no
database) is answered with the error Strawberry's path would give.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    get_operation_ast,
    located_error,
    parse,
)
from graphql.execution.values import get_variable_values
from graphql.language import Visitor, visit
from starlette.websockets import WebSocket

from .broadcast import Groups, Member
from .errors import DomainError
from .graphql_internals import Refused, RunMember, TodoExecutionContext, frame_writers, validation_errors
from .journal import Journal
from .models import Change
from .schema import TodoSchema
from .streams import start_after


@dataclass(frozen=True, slots=True)
class _Plan:
    document: DocumentNode
    operation: OperationDefinitionNode
    # `after` is a literal (or absent: None), or the name of a variable.
    after: str | None
    after_variable: str | None


class _HasDirective(Visitor):
    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        self.found = True


def _after(field: FieldNode) -> tuple[str | None, str | None] | None:
    """`after` as (literal, variable name); None when it is neither."""
    for argument in field.arguments or ():
        value = argument.value
        if isinstance(value, VariableNode):
            return None, value.name.value
        if isinstance(value, StringValueNode):
            return value.value, None
        if not isinstance(value, NullValueNode):
            return None
    return None, None


class GraphQLFanout:
    def __init__(self, schema: TodoSchema) -> None:
        self.schema = schema
        # Documents are few and reused: plan each once.
        self._plan = functools.lru_cache(maxsize=256)(self._make_plan)

    def _make_plan(self, query: str, operation_name: str | None) -> _Plan | None:
        # The limits first (MAX_TOKENS stops the parser): a document over
        # them is Strawberry's path's to refuse, never a plan.
        try:
            document = parse(query, max_tokens=self.schema.limits.max_tokens)
        except GraphQLError:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.SUBSCRIPTION:
            return None
        [*selections] = operation.selection_set.selections
        if len(selections) != 1 or not isinstance(field := selections[0], FieldNode):
            return None
        if field.name.value != "todoChanges" or validation_errors(self.schema, document, self.schema.limits.rules):
            return None
        visitor = _HasDirective()
        visit(document, visitor)
        after = _after(field)
        if visitor.found or after is None:
            return None
        return _Plan(document, operation, *after)

    async def take(
        self, context: Any, websocket: WebSocket, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> RunMember | None:
        if not isinstance(query, str):
            return None  # a persisted-query hash alone: Strawberry's path looks it up
        persisted = self.schema.persisted
        if persisted is not None and not persisted.allows(query):
            return None  # Strawberry's path refuses it (DOCUMENT_NOT_TRUSTED)
        plan = self._plan(query, operation_name)
        if plan is None:
            return None
        coerced = get_variable_values(self.schema._schema, plan.operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):
            return None
        values = coerced.coerced
        cursor = plan.after if plan.after_variable is None else values.get(plan.after_variable)
        journal: Journal = websocket.state.journal
        try:
            start = await start_after(journal, cursor)
        except DomainError as exc:
            raise Refused(self._refusal(plan, exc)) from None
        shared = {k: v for k, v in values.items() if k != plan.after_variable}
        key = ("graphql", query, operation_name, orjson.dumps(shared, option=orjson.OPT_SORT_KEYS, default=str))
        groups: Groups = websocket.state.broadcast_groups
        write, send = frame_writers(websocket)

        async def run(prefix: bytes, suffix: bytes) -> None:
            member = Member(start, prefix, suffix, write, send)
            await groups.run(key, lambda: self._render(plan, context, variables, operation_name), member)

        return run

    def _refusal(self, plan: _Plan, exc: DomainError) -> list[GraphQLError]:
        """The error graphql-core gives a subscribe resolver that raises exc."""
        [field] = plan.operation.selection_set.selections
        assert isinstance(field, FieldNode)
        key = (field.alias or field.name).value
        return self.schema.finish_errors([located_error(exc, [field], [key])])

    def _render(
        self, plan: _Plan, context: Any, variables: dict[str, Any] | None, operation_name: str | None
    ) -> Callable[[Change], Awaitable[bytes]]:
        """The payload for each change, executed as graphql-core executes a
        subscription event (the group's first member's values stand for all)."""
        executor = TodoExecutionContext.build(
            self.schema._schema, plan.document, context_value=context, raw_variable_values=variables,
            operation_name=operation_name,
        )
        assert not isinstance(executor, list)  # take() coerced these variables already

        async def render(change: Change) -> bytes:
            result = executor.build_per_event_executor(change).execute_operation(False)
            if inspect.isawaitable(result):
                result = await result
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = [e.formatted for e in self.schema.finish_errors(result.errors)]
            return orjson.dumps(payload)

        return render
