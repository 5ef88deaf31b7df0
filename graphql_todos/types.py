"""GraphQL types. Resolvers hand back the plain models; Strawberry reads
their attributes (created_time becomes createdTime)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from .models import Op

# The Python enum's member names are the GraphQL values.
strawberry.enum(Op, name="ChangeOp")


@strawberry.type
class Todo:
    id: strawberry.ID
    title: str
    completed: bool
    created_time: datetime
    updated_time: datetime


@strawberry.type
class TodoChange:
    op: Op
    todo: Todo = strawberry.field(description="The row after the change; its last state for DELETED.")
    cursor: str


@strawberry.type
class TodoList:
    todos: list[Todo]
    cursor: str = strawberry.field(description="The journal position the list reflects.")


@strawberry.input
class CreateTodoInput:
    title: str
    completed: bool | None = False


@strawberry.input
class UpdateTodoInput:
    title: str | None = strawberry.UNSET
    completed: bool | None = strawberry.UNSET
