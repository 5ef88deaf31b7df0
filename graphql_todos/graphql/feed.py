"""The list type and the `feed` subscription's events (docs/design/people.md
section 9): every journal entry its reader may see, in commit order, as what
it is for that reader (core/visibility.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.types import Info

from graphql_todos.core.lists import ListAndMembers, Lists
from graphql_todos.core.models import Entry
from graphql_todos.core.people import SERVICE, Principal
from graphql_todos.core.visibility import Delivery, Kind, ended_with_its_list, feed_kind, feed_list, member_of
from graphql_todos.graphql.types import Member, Person, Role, Todo


def principal_of(info: Info[Any, None]) -> Principal:
    """Who the operation acts for; the service principal where none was
    found (a context built without the guard: only tests)."""
    principal: Principal | None = info.context.principal
    return principal or SERVICE


def lists_of(info: Info[Any, None]) -> Lists:
    lists: Lists | None = info.context.lists
    assert lists is not None, "the view gives every context the lists"
    return lists


@strawberry.type(name="List")
class TodoListInfo:
    """A list as the caller sees it."""

    id: strawberry.ID
    name: str
    is_default: bool
    role: Role = strawberry.field(description="The caller's role.")
    created_time: datetime
    updated_time: datetime

    @strawberry.field
    def members(self) -> list[Member]:
        # Every list the core answers is read with its members, in one
        # statement (ListAndMembers): read apart, a list deleted between the
        # two was NOT_FOUND here, or no members at all.
        return cast(list[Member], list(cast(ListAndMembers, self).members_seen))


@strawberry.enum
class FeedKind(Enum):
    TODO_CREATED = "todo_created"
    TODO_UPDATED = "todo_updated"
    TODO_DELETED = "todo_deleted"
    TODO_ARRIVED = "todo_arrived"
    TODO_REMOVED = "todo_removed"
    LIST_ADDED = "list_added"
    LIST_UPDATED = "list_updated"
    LIST_REMOVED = "list_removed"
    MEMBER_ADDED = "member_added"
    MEMBER_UPDATED = "member_updated"
    MEMBER_REMOVED = "member_removed"


@strawberry.type(
    description="One entry as its reader may see it: todo for TODO_CREATED/UPDATED/DELETED/ARRIVED,"
    " todoId for every TODO_* (alone for TODO_REMOVED), listId the list it concerns, member for MEMBER_*."
)
class FeedEvent:
    kind: FeedKind
    cursor: str
    todo: Todo | None
    todo_id: strawberry.ID | None
    list_id: strawberry.ID | None
    member: Member | None
    reason: str | None = strawberry.field(description="LIST_DELETED: the list went, with its members and todos.")

    @strawberry.field(name="list", description="The list as it stands now; null once the caller no longer sees it.")
    async def list_now(self, info: Info[Any, None]) -> TodoListInfo | None:
        if self.list_id is None:
            return None
        # With its members, in one statement: read apart, a list deleted
        # between was null with a NOT_FOUND, or a list with no members.
        found = await lists_of(info).lists_and_members(principal_of(info), str(self.list_id))
        return cast(TodoListInfo, found[0]) if found else None


def feed_event(delivery: Delivery) -> FeedEvent:
    """The event a delivery is."""
    entry, kind = delivery.entry, delivery.kind
    return FeedEvent(
        kind=FeedKind(feed_kind(delivery)),
        cursor=entry.cursor,
        todo=cast(Todo, entry.todo) if kind is not Kind.REMOVAL else None,
        todo_id=_id(entry.todo_id),
        list_id=_id(feed_list(delivery)),
        member=_member(entry) if kind is Kind.MEMBER else None,
        reason="LIST_DELETED" if ended_with_its_list(entry) else None,
    )


def _member(entry: Entry) -> Member:
    person, username, role = member_of(entry)
    return Member(person=Person(id=strawberry.ID(person), username=username), role=Role(role))


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))
