"""The mutations' calls of the service, written once for both paths:
Strawberry's resolvers (graphql/schema.py's Mutation, with its arguments as
Strawberry converts them) and the compiled plans (graphql/fast/plans.py's
RootCall, with graphql-core's coerced values: input objects as dicts)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from graphql_todos.graphql.types import Todo

if TYPE_CHECKING:
    from graphql_todos.graphql.schema import Context


def acting(ctx: Context) -> uuid.UUID | None:
    """Whom the operation's writes act for (None: the service principal)."""
    return None if ctx.principal is None else ctx.principal.actor


async def create_todo(
    ctx: Context, title: str, completed: bool | None, todo_id: str | None, list_id: str | None
) -> Todo:
    return cast(Todo, await ctx.service.create_todo(
        title, bool(completed), ctx.receipt, todo_id, actor=acting(ctx), list_id=list_id
    ))


async def update_todo(ctx: Context, id: str, title: str | None, completed: bool | None) -> Todo:
    return cast(Todo, await ctx.service.update_todo(id, title, completed, ctx.receipt, actor=acting(ctx)))


async def delete_todo(ctx: Context, id: str) -> Todo:
    return cast(Todo, await ctx.service.delete_todo(id, ctx.receipt, actor=acting(ctx)))


async def toggle_all(ctx: Context, completed: bool, list_id: str | None, ids: Sequence[str] | None) -> list[Todo]:
    return cast(
        list[Todo], await ctx.service.toggle_all(completed, ctx.receipt, actor=acting(ctx), list_id=list_id, ids=ids)
    )


async def clear_completed(ctx: Context, list_id: str | None, ids: Sequence[str] | None) -> list[Todo]:
    return cast(list[Todo], await ctx.service.clear_completed(ctx.receipt, actor=acting(ctx), list_id=list_id, ids=ids))


# The mutations' resolvers as the compiled plans call them (graphql/fast/plans.py,
# RootCall): the context and graphql-core's coerced arguments, no Info and
# no conversion into Strawberry's input classes (an eighth of a createTodo's
# Python time went to Strawberry's resolver wrapper and that conversion).
ROOT_CALLS: dict[str, Callable[[Context, dict[str, Any]], Awaitable[Any]]] = {
    "Mutation.createTodo": lambda ctx, args: create_todo(
        ctx, args["input"]["title"], args["input"].get("completed"), args["input"].get("id"),
        args["input"].get("listId"),
    ),
    "Mutation.updateTodo": lambda ctx, args: update_todo(
        ctx, args["id"], args["input"].get("title"), args["input"].get("completed")
    ),
    "Mutation.deleteTodo": lambda ctx, args: delete_todo(ctx, args["id"]),
    "Mutation.toggleAll": lambda ctx, args: toggle_all(ctx, args["completed"], args.get("listId"), args.get("ids")),
    "Mutation.clearCompleted": lambda ctx, args: clear_completed(ctx, args.get("listId"), args.get("ids")),
}
