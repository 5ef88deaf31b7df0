"""The GraphQL schema: thin resolvers over the service and the live streams."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.graphql import OperationType

from . import streams
from .errors import DomainError
from .execution import SharedEventExecutor
from .hub import Hub
from .models import TodoState
from .service import TodoService
from .types import CreateTodoInput, Todo, TodoChange, TodoList, UpdateTodoInput

logger = logging.getLogger(__name__)


@dataclass
class Context:
    service: TodoService
    hub: Hub


def _ctx(info: Info[Context, None]) -> Context:
    return info.context


def _unset_to_none(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


@strawberry.type
class Query:
    @strawberry.field(description="Ordered by createdTime, then id.")
    async def todos(self, info: Info[Context, None], completed: bool | None = None) -> list[Todo]:
        return cast(list[Todo], await _ctx(info).service.list_todos(completed))

    @strawberry.field(description="Null when absent.")
    async def todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo | None:
        return cast(Todo | None, await _ctx(info).service.get_todo(id))

    @strawberry.field(description="The rows and the cursor they reflect, read in one transaction.")
    async def todo_list(self, info: Info[Context, None], completed: bool | None = None) -> TodoList:
        snapshot = await _ctx(info).service.snapshot(completed)
        return TodoList(todos=cast(list[Todo], snapshot.todos), cursor=snapshot.cursor)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_todo(self, info: Info[Context, None], input: CreateTodoInput) -> Todo:
        todo = await _ctx(info).service.create_todo(input.title, bool(input.completed))
        return cast(Todo, todo)

    @strawberry.mutation
    async def update_todo(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateTodoInput
    ) -> Todo:
        todo = await _ctx(info).service.update_todo(
            id, _unset_to_none(input.title), _unset_to_none(input.completed)
        )
        return cast(Todo, todo)

    @strawberry.mutation(description="Returns the deleted row.")
    async def delete_todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo:
        return cast(Todo, await _ctx(info).service.delete_todo(id))

    @strawberry.mutation(description="Returns the rows it changed.")
    async def toggle_all(self, info: Info[Context, None], completed: bool) -> list[Todo]:
        return cast(list[Todo], await _ctx(info).service.toggle_all(completed))

    @strawberry.mutation(description="Returns the rows it deleted.")
    async def clear_completed(self, info: Info[Context, None]) -> list[Todo]:
        return cast(list[Todo], await _ctx(info).service.clear_completed())


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change after the cursor (from now when omitted), in commit order."
    )
    async def todo_changes(
        self, info: Info[Context, None], after: str | None = None
    ) -> AsyncGenerator[TodoChange, None]:
        # Returned, not iterated here: a bad cursor then fails the subscribe
        # itself (an `error` message), before any event.
        ctx = _ctx(info)
        return cast(AsyncGenerator[TodoChange, None], await streams.changes(ctx.service, ctx.hub, after))

    @strawberry.subscription(
        description="The current state first, then each change; null once deleted, then complete."
    )
    async def todo(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> AsyncGenerator[Todo | None, None]:
        ctx = _ctx(info)
        return _rows(await streams.todo_states(ctx.service, ctx.hub, id))

    @strawberry.subscription(
        description="Live query: the full list now, then again after changes (coalesced)."
    )
    async def todos(
        self, info: Info[Context, None], completed: bool | None = None
    ) -> AsyncGenerator[list[Todo], None]:
        ctx = _ctx(info)
        async for todos in streams.live_list(ctx.service, ctx.hub, completed):
            yield cast(list[Todo], todos)


async def _rows(states: AsyncGenerator[TodoState, None]) -> AsyncGenerator[Todo | None, None]:
    # aclosing: leaving early must unsubscribe now, not when collected.
    async with contextlib.aclosing(states):
        async for state in states:
            yield cast(Todo | None, state.todo)


def _error_code(error: GraphQLError) -> str:
    if isinstance(error.original_error, DomainError):
        return error.original_error.code
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.original_error is None:
        return "GRAPHQL_VALIDATION_FAILED"
    return "INTERNAL_SERVER_ERROR"


class MaskUnexpected(MaskErrors):
    """Errors the client did not cause lose their message and details."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: _error_code(e) == "INTERNAL_SERVER_ERROR")

    def _process_result(self, result: object) -> None:
        # The base class asks a runtime Protocol first, which is slow; this
        # runs for every result sent to every subscriber.
        if getattr(result, "errors", None):
            super()._process_result(result)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class TodoSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # execute() gives one result: a subscription needs a stream (a
        # WebSocket or multipart HTTP), so refuse it instead of resolving null.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry hands every error through here (parse errors included)
        # before it is formatted: the one place to give each its code.
        for error in errors:
            error.extensions = {**(error.extensions or {}), "code": _error_code(error)}
        # Client mistakes are answers, not incidents: log only the rest.
        unexpected = [e for e in errors if _error_code(e) == "INTERNAL_SERVER_ERROR"]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(execution_cache_size: int) -> strawberry.Schema:
    return TodoSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[ParserCache, ValidationCache, MaskUnexpected],
        execution_context_class=SharedEventExecutor.bounded(execution_cache_size),
    )


