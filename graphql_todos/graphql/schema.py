"""The GraphQL schema: thin resolvers over the service and the live streams."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

import strawberry
from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import ValidationCache
from strawberry.types import ExecutionContext, Info
from strawberry.types import ExecutionResult as StrawberryExecutionResult

from graphql_todos.core import metrics, models
from graphql_todos.core.errors import DomainError, NotFound
from graphql_todos.core.journal import Journal
from graphql_todos.core.lists import Lists
from graphql_todos.core.models import Change, TodoState, Viewer
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.people import Accounts, Principal
from graphql_todos.core.service import TodoService, parse_id
from graphql_todos.core.visibility import Delivery
from graphql_todos.edge.acting import key_scope
from graphql_todos.edge.revocation import Revocations
from graphql_todos.graphql import numbering, root_calls
from graphql_todos.graphql.feed import FeedEvent, TodoListInfo, feed_event, lists_of, principal_of
from graphql_todos.graphql.outcomes import (
    NO_LIMITS,
    MaskUnexpected,
    QueryLimits,
    TagValidationErrors,
    error_code,
    is_unexpected,
    refused_limit,
)
from graphql_todos.graphql.people import PeopleMutation, PeopleQuery
from graphql_todos.graphql.persisted import PersistedQueries
from graphql_todos.graphql.types import (
    CreateListInput,
    CreateTodoInput,
    Member,
    MutationVerdict,
    Role,
    Todo,
    TodoChange,
    TodoList,
    UpdateTodoInput,
)
from graphql_todos.internals.strawberry import (
    OneResultSchema,
    ParseCache,
    SharedResults,
    TodoExecutionContext,
    strawberry_operation,
    tag,
)
from graphql_todos.live import streams
from graphql_todos.live.hub import Hub

logger = logging.getLogger(__name__)
# Subscription roots whose resolvers read no per-connection context (a viewer,
# permissions): subscribers of the same operation and variables share one
# execution per event. A field that reads such context must add it to the key.
SHARED_ROOTS = (Change, models.Todo, streams.LiveRows)


@dataclass
class EventIds:
    """For a transport that numbers its events with cursors (SSE): where a
    reconnecting client resumes (it overrides the document's `after`), the
    stream's opening, and the cursor of the latest event the feed produced."""

    resume_after: str | None
    # Sends the opening given the cursor the feed starts after, before any
    # event, so a client cut before its first resumes there, not from a later
    # now (SSE: an id with no data). Set once the stream has its send.
    opening: Callable[[int], Awaitable[None]] | None = None
    latest: str | None = None


@dataclass
class Context:
    service: TodoService
    journal: Journal
    hub: Hub
    live_lists: streams.LiveLists
    # Who it acts for (edge/access.py): found by the guard over HTTP; on a
    # GraphQL WebSocket, by the upgrade's Authorization, else by one in
    # connection_init's payload, else by the upgrade's cookie.
    principal: Principal | None = None
    accounts: Accounts | None = None
    event_ids: EventIds | None = None
    lists: Lists | None = None
    # One operation's (TodoSchema.operation_context, the fast path): the
    # mutation's key, and its verdict and cursor once it ran.
    receipt: Receipt | None = None
    # This process's open sockets by credential (a socket's close on revocation).
    revocations: Revocations | None = None
    # A GraphQL WebSocket's: whether a bearer credential in connection_init's
    # payload decides `principal` (the upgrade brought no bearer
    # Authorization; graphql/socket.py).
    offer_decides: bool = False

    def with_receipt(self, receipt: Receipt) -> Context:
        """This context for one operation (dataclasses.replace, spelled out:
        it would look the fields up again on every mutation)."""
        return Context(
            self.service, self.journal, self.hub, self.live_lists, self.principal, self.accounts, self.event_ids,
            self.lists, receipt, self.revocations, self.offer_decides,
        )


def _ctx(info: Info[Context, None]) -> Context:
    return info.context


def _viewer(info: Info[Context, None]) -> Viewer:
    """Whose todos the operation reads."""
    return principal_of(info).viewer


def _actor(info: Info[Context, None]) -> uuid.UUID | None:
    return root_calls.acting(_ctx(info))


def _unset_to_none(value: Any) -> Any:
    return None if value is strawberry.UNSET else value


# The page arguments of the list fields.
First = Annotated[
    int | None,
    strawberry.argument(
        description="At most this many rows (up to MAX_LIST_ROWS); null: every row, refused"
        " with LIST_TOO_LARGE when there are more than MAX_LIST_ROWS."
    ),
]
Offset = Annotated[int | None, strawberry.argument(description="Skip this many rows first.")]
# A list-wide mutation's rows, as its client saw them (docs/design/offline.md, section 3).
Ids = Annotated[
    list[strawberry.ID] | None,
    strawberry.argument(
        description="Only these rows (at most MAX_LIST_ROWS); those gone or out of sight are skipped."
        " null: every row. An edit made offline names the rows its user saw."
    ),
]


@strawberry.type
class Query(PeopleQuery):
    @strawberry.field(description="Ordered by createdTime, then id.")
    async def todos(
        self, info: Info[Context, None], completed: bool | None = None, first: First = None, offset: Offset = 0
    ) -> list[Todo]:
        service = _ctx(info).service
        return cast(list[Todo], await service.list_todos(_viewer(info), completed, service.page(first, offset)))

    @strawberry.field(description="Null when absent.")
    async def todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo | None:
        try:
            return cast(Todo, await _ctx(info).service.get_todo(_viewer(info), id))
        except NotFound:
            return None

    @strawberry.field(description="The rows and the cursor they reflect, read in one transaction.")
    async def todo_list(
        self, info: Info[Context, None], completed: bool | None = None, first: First = None, offset: Offset = 0
    ) -> TodoList:
        service = _ctx(info).service
        snapshot = await service.snapshot(_viewer(info), completed, service.page(first, offset))
        return TodoList(todos=cast(list[Todo], snapshot.todos), cursor=snapshot.cursor)


    @strawberry.field(description="The lists the caller is a member of, oldest first.")
    async def lists(self, info: Info[Context, None]) -> list[TodoListInfo]:
        return cast(list[TodoListInfo], await lists_of(info).lists_and_members(principal_of(info)))

    @strawberry.field(name="list", description="Null when absent or not the caller's.")
    async def one_list(self, info: Info[Context, None], id: strawberry.ID) -> TodoListInfo | None:
        found = await lists_of(info).lists_and_members(principal_of(info), id)
        return cast(TodoListInfo, found[0]) if found else None

    @strawberry.field(
        description="The verdicts of a client's numbered mutations after sequence number `after`, in order"
        " (at most MAX_LIST_ROWS; kept for MUTATIONS_KEEP_SECONDS)."
    )
    async def mutation_verdicts(
        self, info: Info[Context, None], client: strawberry.ID, after: str | None = "0"
    ) -> list[MutationVerdict]:
        ctx = _ctx(info)
        return cast(list[MutationVerdict], await ctx.service.verdicts(key_scope(ctx.principal), client, after or "0"))


# Every todo and list mutation's reply carries `extensions.cursor`, the journal
# cursor at which its effect (or its no-op) is visible (not the account ones); one numbered by the request's
# `extensions.mutation` also `extensions.mutation` (client, seq, verdict).
# Each resolver is a call of the service, written once below (ROOT_CALLS) for
# both paths: Strawberry's, with its arguments as Strawberry converts them, and
# the compiled one, with graphql-core's coerced values (input objects as dicts).
@strawberry.type
class Mutation(PeopleMutation):
    @strawberry.mutation
    async def create_todo(self, info: Info[Context, None], input: CreateTodoInput) -> Todo:
        return await root_calls.create_todo(
            _ctx(info), input.title, input.completed, None if input.id is None else str(input.id),
            _unset_to_none(input.list_id),
        )

    @strawberry.mutation
    async def update_todo(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateTodoInput
    ) -> Todo:
        return await root_calls.update_todo(_ctx(info), id, _unset_to_none(input.title), _unset_to_none(input.completed))

    @strawberry.mutation(description="Into another list (editor or owner of both).")
    async def move_todo(self, info: Info[Context, None], id: strawberry.ID, list_id: strawberry.ID) -> Todo:
        return cast(Todo, await _ctx(info).service.move_todo(id, list_id, actor=_actor(info), receipt=_ctx(info).receipt))

    @strawberry.mutation(description="Returns the deleted row.")
    async def delete_todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo:
        return await root_calls.delete_todo(_ctx(info), id)

    @strawberry.mutation(description="Returns the rows it changed (the first MAX_LIST_ROWS, in list order).")
    async def toggle_all(
        self, info: Info[Context, None], completed: bool, list_id: strawberry.ID | None = None,
        ids: Ids = None,
    ) -> list[Todo]:
        return await root_calls.toggle_all(_ctx(info), completed, list_id, ids)

    @strawberry.mutation(description="Returns the rows it deleted (the first MAX_LIST_ROWS, in list order).")
    async def clear_completed(
        self, info: Info[Context, None], list_id: strawberry.ID | None = None,
        ids: Ids = None,
    ) -> list[Todo]:
        return await root_calls.clear_completed(_ctx(info), list_id, ids)

    @strawberry.mutation(description="A new list the caller owns.")
    async def create_list(self, info: Info[Context, None], input: CreateListInput) -> TodoListInfo:
        return cast(TodoListInfo, await lists_of(info).create(principal_of(info), input.name, _ctx(info).receipt))

    @strawberry.mutation(description="Owner or editor.")
    async def rename_list(self, info: Info[Context, None], id: strawberry.ID, name: str) -> TodoListInfo:
        return cast(TodoListInfo, await lists_of(info).rename(principal_of(info), id, name, _ctx(info).receipt))

    @strawberry.mutation(description="Owner only; not the default list. Its todos go with it. Returns the list.")
    async def delete_list(self, info: Info[Context, None], id: strawberry.ID) -> TodoListInfo:
        return cast(TodoListInfo, await lists_of(info).delete(principal_of(info), id, _ctx(info).receipt))

    @strawberry.mutation(description="Owner only: give a person (by username) a role in the list.")
    async def share_list(
        self, info: Info[Context, None], id: strawberry.ID, username: str, role: Role
    ) -> Member:
        return cast(Member, await lists_of(info).share(principal_of(info), id, username, role.value, _ctx(info).receipt))

    @strawberry.mutation(description="Owner only; the owner's own role cannot change.")
    async def set_member_role(
        self, info: Info[Context, None], list_id: strawberry.ID, person_id: strawberry.ID, role: Role
    ) -> Member:
        return cast(Member, await lists_of(info).set_role(
            principal_of(info), list_id, person_id, role.value, _ctx(info).receipt
        ))

    @strawberry.mutation(description="Owner only (or oneself: leaving); returns the member removed.")
    async def remove_member(
        self, info: Info[Context, None], list_id: strawberry.ID, person_id: strawberry.ID
    ) -> Member:
        return cast(Member, await lists_of(info).remove(principal_of(info), list_id, person_id, _ctx(info).receipt))

    @strawberry.mutation(description="Any member but the owner; returns the list left.")
    async def leave_list(self, info: Info[Context, None], id: strawberry.ID) -> TodoListInfo:
        return cast(TodoListInfo, await lists_of(info).leave(principal_of(info), id, _ctx(info).receipt))


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
        changes = await streams.changes_at(ctx.hub, await _start(ctx, after), _viewer(info))
        ids = ctx.event_ids
        return cast(AsyncGenerator[TodoChange, None], changes if ids is None else _numbered(changes, ids, _cursor))

    @strawberry.subscription(
        description="Every entry the caller may see after the cursor (from now when omitted), in commit order;"
        " with listId, those of that list."
    )
    async def feed(
        self, info: Info[Context, None], after: str | None = None, list_id: strawberry.ID | None = None
    ) -> AsyncGenerator[FeedEvent, None]:
        ctx = _ctx(info)
        key = None if list_id is None else parse_id(list_id, "listId")
        deliveries = await streams.feed_at(ctx.hub, await _start(ctx, after), _viewer(info), key)
        ids = ctx.event_ids
        return _events(deliveries if ids is None else _numbered(deliveries, ids, _entry_cursor))

    @strawberry.subscription(
        description="The current state first, then each change; null once deleted, then complete."
    )
    async def todo(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> AsyncGenerator[Todo | None, None]:
        ctx = _ctx(info)
        # parse_id here: a malformed id fails the subscribe itself.
        return _rows(streams.todo_states(ctx.service, ctx.hub, _viewer(info), parse_id(id)))

    @strawberry.subscription(
        description="Live query: the full list now, then again after changes (coalesced);"
        " ends with LIST_TOO_LARGE once it has more than MAX_LIST_ROWS rows."
    )
    async def todos(
        self, info: Info[Context, None], completed: bool | None = None
    ) -> AsyncGenerator[list[Todo], None]:
        ctx = _ctx(info)
        async for todos in ctx.live_lists.watch(completed, _viewer(info)):
            ctx.service.check_whole(len(todos))
            yield cast(list[Todo], todos)


async def _events(deliveries: AsyncGenerator[Delivery, None]) -> AsyncGenerator[FeedEvent, None]:
    async with contextlib.aclosing(deliveries):
        async for delivery in deliveries:
            yield feed_event(delivery)


async def _start(ctx: Context, after: str | None) -> int:
    """Where a change feed from the cursor starts (the one a reconnecting
    SSE client names wins), its opening sent over SSE."""
    ids = ctx.event_ids
    if ids is not None and ids.resume_after is not None:
        after = ids.resume_after
    start = await streams.start_after(ctx.journal, after, ctx.hub)
    if ids is not None:
        assert ids.opening is not None, "the stream sets it before it reads a result"
        await ids.opening(start)
    return start


_Numbered = TypeVar("_Numbered", Change, Delivery)


def _cursor(change: Change) -> str:
    return change.cursor


def _entry_cursor(delivery: Delivery) -> str:
    return delivery.entry.cursor


async def _numbered(
    events: AsyncGenerator[_Numbered, None], ids: EventIds, cursor: Callable[[_Numbered], str]
) -> AsyncGenerator[_Numbered, None]:
    async with contextlib.aclosing(events):
        async for event in events:
            ids.latest = cursor(event)
            yield event


async def _rows(states: AsyncGenerator[TodoState, None]) -> AsyncGenerator[Todo | None, None]:
    # aclosing: leaving early must unsubscribe now, not when collected.
    async with contextlib.aclosing(states):
        async for state in states:
            yield cast(Todo | None, state.todo)


# One for the paths that answer without Strawberry's extensions.
_MASK = MaskUnexpected()


class TodoSchema(OneResultSchema):
    def __init__(
        self,
        execution_cache_size: int,
        limits: QueryLimits = NO_LIMITS,
        persisted: PersistedQueries | None = None,
    ) -> None:
        # Read by TodoExecutionContext for every subscription event.
        self.shared_results = SharedResults(execution_cache_size, SHARED_ROOTS)
        self.limits = limits
        self.persisted = persisted
        # The intake's operation of a document (graphql/intake.py, Intake.definition).
        self.definitions: Callable[[str, str | None], OperationDefinitionNode | None] | None = None
        super().__init__(
            query=Query,
            mutation=Mutation,
            subscription=Subscription,
            extensions=[
                ParseCache, ValidationCache, *limits.extensions(), TagValidationErrors, MaskUnexpected
            ],
            execution_context_class=TodoExecutionContext,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry hands every error through here (parse errors included)
        # before it is formatted: the one place to give each its code.
        for error in errors:
            tag(error, error_code(error))
            limit = refused_limit(error)
            if limit is not None:
                metrics.refused(limit)
            if isinstance(error.original_error, DomainError):
                # What the client acts on, e.g. the oldest cursor still available.
                original = error.original_error
                error.extensions = {**(error.extensions or {}), **original.details(), **numbering.rejected_row(original)}
        # Client mistakes are answers, not incidents: log only the rest.
        unexpected = [e for e in errors if is_unexpected(e)]
        if unexpected:
            super().process_errors(unexpected, execution_context)

    def operation_context(
        self,
        context: Any,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        extensions: Mapping[str, Any] | None,
    ) -> Any:
        """Each operation gets a receipt of its own (a mutation's verdict and
        cursor), with the key its request numbers it by."""
        if not isinstance(context, Context):
            return context
        try:
            key = None
            if extensions and extensions.get("mutation") is not None and query:
                definition = self._definition(query, operation_name)
                key = numbering.key(dict(extensions), definition, key_scope(context.principal), query, variables, operation_name)
        except DomainError as exc:
            return self.finish_errors([GraphQLError(exc.message, original_error=exc)])
        return context.with_receipt(Receipt(key))

    def _definition(self, query: str, operation_name: str | None) -> OperationDefinitionNode | None:
        """The operation a numbered request runs (None: the document does not
        parse, which Strawberry's path then answers): the intake's, where the
        view handed it in, so that a document it has seen is not parsed again."""
        if self.definitions is not None:
            return self.definitions(query, operation_name)
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError:
            return None
        return strawberry_operation(document, operation_name)

    def finish(self, context: Any, result: StrawberryExecutionResult) -> None:
        if isinstance(context, Context) and context.receipt is not None:
            extensions = numbering.reply_extensions(context.receipt)
            if extensions is not None:
                result.extensions = {**(result.extensions or {}), **extensions}

    def finish_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """What Strawberry's pipeline does to errors before they are sent
        (codes, logging, then MaskUnexpected), for the paths that answer
        without it: the compiled fast path and the broadcast fan-out."""
        self.process_errors(errors)
        return [_MASK.anonymise_error(e) if is_unexpected(e) else e for e in errors]


def build_schema(
    execution_cache_size: int, limits: QueryLimits = NO_LIMITS, persisted: PersistedQueries | None = None
) -> TodoSchema:
    return TodoSchema(execution_cache_size, limits, persisted)
