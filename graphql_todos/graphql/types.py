"""GraphQL types. Resolvers hand back the plain models; Strawberry reads
their attributes (created_time becomes createdTime)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import strawberry
from strawberry.schema_directive import Location

from graphql_todos.core.lists import MAX_LIST_NAME
from graphql_todos.core.models import Op
from graphql_todos.core.mutations import Verdict
from graphql_todos.core.service import MAX_TITLE_LENGTH

# The Python enum's member names are the GraphQL values.
strawberry.enum(Op, name="ChangeOp")
strawberry.enum(Verdict, name="Verdict", description="What the server made of a numbered mutation.")


@strawberry.type
class Todo:
    id: strawberry.ID
    title: str
    completed: bool
    created_time: datetime
    updated_time: datetime
    list_id: strawberry.ID = strawberry.field(description="The list it is in.")


@strawberry.type
class TodoChange:
    op: Op
    todo: Todo = strawberry.field(description="The row after the change; its last state for DELETED.")
    cursor: str
    removed: bool = strawberry.field(
        default=False,
        description="DELETED for this reader only: the row left their sight (moved into a list they are"
        " not a member of, or its list no longer theirs), it was not deleted.",
    )


@strawberry.type
class TodoList:
    todos: list[Todo]
    cursor: str = strawberry.field(description="The journal position the list reflects.")


@strawberry.type(description="A numbered mutation's verdict, as recorded with it.")
class MutationVerdict:
    seq: str = strawberry.field(description="Its sequence number (a string: it may pass GraphQL's Int).")
    verdict: Verdict
    cursor: str = strawberry.field(description="The journal cursor at which its effect (or its no-op) is visible.")
    code: str | None = strawberry.field(description="A rejection's error code.")
    message: str | None = strawberry.field(description="A rejection's reason.")
    todo: Todo | None = strawberry.field(description="The row it left; a rejection's: the row as the server had it.")


@strawberry.schema_directive(
    locations=[Location.INPUT_FIELD_DEFINITION],
    description="The longest string the field takes, in characters.",
)
class MaxLength:
    value: int


# The limit travels in the SDL, where the web client's build reads it.
_TITLE_LIMIT = [MaxLength(value=MAX_TITLE_LENGTH)]
_TITLE_RULE = f"Not blank; at most {MAX_TITLE_LENGTH} characters once trimmed."


@strawberry.input
class CreateTodoInput:
    title: str = strawberry.field(description=_TITLE_RULE, directives=_TITLE_LIMIT)
    completed: bool | None = False
    list_id: strawberry.ID | None = strawberry.field(
        default=None, description="The list it joins (editor or owner); null: the caller's default list."
    )
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The new row's id (a UUID), for a client that names it before the server has it; taken: CONFLICT. Null: the server makes one.",
    )


@strawberry.input
class UpdateTodoInput:
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description=_TITLE_RULE, directives=_TITLE_LIMIT
    )
    completed: bool | None = strawberry.UNSET


@strawberry.enum(description="A member's part in a list: the owner shares it, an editor writes, a viewer reads.")
class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


@strawberry.type
class Person:
    id: strawberry.ID
    username: str


@strawberry.type
class Member:
    person: Person
    role: Role


@strawberry.input
class CreateListInput:
    name: str = strawberry.field(description=f"Not blank; at most {MAX_LIST_NAME} characters once trimmed.")

