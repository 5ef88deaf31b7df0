"""The GraphQL schema: thin resolvers over the service and the live streams."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, cast

import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    GraphQLSyntaxError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension, ValidationCache
from strawberry.types import ExecutionContext, Info
from strawberry.types import ExecutionResult as StrawberryExecutionResult

from graphql_todos.core import metrics, models
from graphql_todos.core.errors import DomainError, ErrorCode, NotFound
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import Change, TodoState
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.people import Accounts, Principal
from graphql_todos.core.service import TodoService, parse_id
from graphql_todos.core.settings import Settings
from graphql_todos.edge.acting import key_scope
from graphql_todos.graphql import numbering
from graphql_todos.graphql.limits import LimitExceeded, limits_rule
from graphql_todos.graphql.persisted import PersistedQueries
from graphql_todos.graphql.types import (
    CreateTodoInput,
    MutationVerdict,
    Todo,
    TodoChange,
    TodoList,
    UpdateTodoInput,
)
from graphql_todos.internals.strawberry import (
    CheapMaskErrors,
    OneResultSchema,
    ParseCache,
    SharedResults,
    TodoExecutionContext,
    over_token_limit,
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
    reconnecting client resumes (it overrides the document's `after`), and
    the cursor of the latest change the feed produced."""

    resume_after: str | None
    latest: str | None = None


@dataclass
class Context:
    service: TodoService
    journal: Journal
    hub: Hub
    live_lists: streams.LiveLists
    # Who it acts for (edge/access.py): found by the guard over HTTP; on a
    # GraphQL WebSocket, at the upgrade, or else from connection_init's payload.
    principal: Principal | None = None
    accounts: Accounts | None = None
    event_ids: EventIds | None = None
    # One operation's (TodoSchema.operation_context, the fast path): the
    # mutation's key, and its verdict and cursor once it ran.
    receipt: Receipt | None = None

    def with_receipt(self, receipt: Receipt) -> Context:
        """This context for one operation (dataclasses.replace, spelled out:
        it would look the fields up again on every mutation)."""
        return Context(
            self.service, self.journal, self.hub, self.live_lists, self.principal, self.accounts, self.event_ids, receipt
        )


def _ctx(info: Info[Context, None]) -> Context:
    return info.context


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


@strawberry.type
class Query:
    @strawberry.field(description="Ordered by createdTime, then id.")
    async def todos(
        self, info: Info[Context, None], completed: bool | None = None, first: First = None, offset: Offset = 0
    ) -> list[Todo]:
        service = _ctx(info).service
        return cast(list[Todo], await service.list_todos(completed, service.page(first, offset)))

    @strawberry.field(description="Null when absent.")
    async def todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo | None:
        try:
            return cast(Todo, await _ctx(info).service.get_todo(id))
        except NotFound:
            return None

    @strawberry.field(description="The rows and the cursor they reflect, read in one transaction.")
    async def todo_list(
        self, info: Info[Context, None], completed: bool | None = None, first: First = None, offset: Offset = 0
    ) -> TodoList:
        service = _ctx(info).service
        snapshot = await service.snapshot(completed, service.page(first, offset))
        return TodoList(todos=cast(list[Todo], snapshot.todos), cursor=snapshot.cursor)


    @strawberry.field(
        description="The verdicts of a client's numbered mutations after sequence number `after`, in order"
        " (at most MAX_LIST_ROWS; kept for MUTATIONS_KEEP_SECONDS)."
    )
    async def mutation_verdicts(
        self, info: Info[Context, None], client: strawberry.ID, after: str | None = "0"
    ) -> list[MutationVerdict]:
        ctx = _ctx(info)
        return cast(list[MutationVerdict], await ctx.service.verdicts(key_scope(ctx.principal), client, after or "0"))


# Every mutation's reply carries `extensions.cursor`, the journal cursor at
# which its effect (or its no-op) is visible; one numbered by the request's
# `extensions.mutation` also `extensions.mutation` (client, seq, verdict).
# Each resolver is a call of the service, written once below (ROOT_CALLS) for
# both paths: Strawberry's, with its arguments as Strawberry converts them, and
# the compiled one, with graphql-core's coerced values (input objects as dicts).
@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_todo(self, info: Info[Context, None], input: CreateTodoInput) -> Todo:
        return await _create_todo(_ctx(info), input.title, input.completed, None if input.id is None else str(input.id))

    @strawberry.mutation
    async def update_todo(
        self, info: Info[Context, None], id: strawberry.ID, input: UpdateTodoInput
    ) -> Todo:
        return await _update_todo(_ctx(info), id, _unset_to_none(input.title), _unset_to_none(input.completed))

    @strawberry.mutation(description="Returns the deleted row.")
    async def delete_todo(self, info: Info[Context, None], id: strawberry.ID) -> Todo:
        return await _delete_todo(_ctx(info), id)

    @strawberry.mutation(description="Returns the rows it changed (the first MAX_LIST_ROWS, in list order).")
    async def toggle_all(self, info: Info[Context, None], completed: bool) -> list[Todo]:
        return await _toggle_all(_ctx(info), completed)

    @strawberry.mutation(description="Returns the rows it deleted (the first MAX_LIST_ROWS, in list order).")
    async def clear_completed(self, info: Info[Context, None]) -> list[Todo]:
        return await _clear_completed(_ctx(info))


async def _create_todo(ctx: Context, title: str, completed: bool | None, todo_id: str | None) -> Todo:
    return cast(Todo, await ctx.service.create_todo(title, bool(completed), ctx.receipt, todo_id))


async def _update_todo(ctx: Context, id: str, title: str | None, completed: bool | None) -> Todo:
    return cast(Todo, await ctx.service.update_todo(id, title, completed, ctx.receipt))


async def _delete_todo(ctx: Context, id: str) -> Todo:
    return cast(Todo, await ctx.service.delete_todo(id, ctx.receipt))


async def _toggle_all(ctx: Context, completed: bool) -> list[Todo]:
    return cast(list[Todo], await ctx.service.toggle_all(completed, ctx.receipt))


async def _clear_completed(ctx: Context) -> list[Todo]:
    return cast(list[Todo], await ctx.service.clear_completed(ctx.receipt))


# The mutations' resolvers as the compiled plans call them (graphql/fast/plans.py,
# RootCall): the context and graphql-core's coerced arguments, no Info and
# no conversion into Strawberry's input classes (an eighth of a createTodo's
# Python time went to Strawberry's resolver wrapper and that conversion).
ROOT_CALLS: dict[str, Callable[[Context, dict[str, Any]], Awaitable[Any]]] = {
    "Mutation.createTodo": lambda ctx, args: _create_todo(
        ctx, args["input"]["title"], args["input"].get("completed"), args["input"].get("id")
    ),
    "Mutation.updateTodo": lambda ctx, args: _update_todo(
        ctx, args["id"], args["input"].get("title"), args["input"].get("completed")
    ),
    "Mutation.deleteTodo": lambda ctx, args: _delete_todo(ctx, args["id"]),
    "Mutation.toggleAll": lambda ctx, args: _toggle_all(ctx, args["completed"]),
    "Mutation.clearCompleted": lambda ctx, args: _clear_completed(ctx),
}


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
        ids = ctx.event_ids
        if ids is not None and ids.resume_after is not None:
            after = ids.resume_after
        changes = await streams.changes(ctx.journal, ctx.hub, after)
        return cast(AsyncGenerator[TodoChange, None], changes if ids is None else _numbered(changes, ids))

    @strawberry.subscription(
        description="The current state first, then each change; null once deleted, then complete."
    )
    async def todo(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> AsyncGenerator[Todo | None, None]:
        ctx = _ctx(info)
        # parse_id here: a malformed id fails the subscribe itself.
        return _rows(streams.todo_states(ctx.service, ctx.hub, parse_id(id)))

    @strawberry.subscription(
        description="Live query: the full list now, then again after changes (coalesced);"
        " ends with LIST_TOO_LARGE once it has more than MAX_LIST_ROWS rows."
    )
    async def todos(
        self, info: Info[Context, None], completed: bool | None = None
    ) -> AsyncGenerator[list[Todo], None]:
        ctx = _ctx(info)
        async for todos in ctx.live_lists.watch(completed):
            ctx.service.check_whole(len(todos))
            yield cast(list[Todo], todos)


async def _numbered(changes: AsyncGenerator[Change, None], ids: EventIds) -> AsyncGenerator[Change, None]:
    async with contextlib.aclosing(changes):
        async for change in changes:
            ids.latest = change.cursor
            yield change


async def _rows(states: AsyncGenerator[TodoState, None]) -> AsyncGenerator[Todo | None, None]:
    # aclosing: leaving early must unsubscribe now, not when collected.
    async with contextlib.aclosing(states):
        async for state in states:
            yield cast(Todo | None, state.todo)


def error_code(error: GraphQLError) -> ErrorCode:
    """What an error is, from its type or the tag its maker gave it, never
    from its message."""
    if isinstance(error.original_error, DomainError):
        return error.original_error.code
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    tagged = (error.extensions or {}).get("code")
    if isinstance(tagged, str) and tagged in ErrorCode.__members__:
        return ErrorCode[tagged]
    return ErrorCode.INTERNAL_SERVER_ERROR


def refused_limit(error: GraphQLError) -> str | None:
    """The document limit (metrics.LIMITS) an error refuses a document for, if any."""
    if isinstance(error, LimitExceeded):
        return error.limit
    return "tokens" if over_token_limit(error) else None


def _unexpected(error: GraphQLError) -> bool:
    return error_code(error) is ErrorCode.INTERNAL_SERVER_ERROR


def validation_failed(errors: Iterable[GraphQLError]) -> None:
    """Whatever validation reports is a validation failure."""
    for error in errors:
        tag(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)


class TagValidationErrors(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        validation_failed(self.execution_context.pre_execution_errors or ())


class MaskUnexpected(CheapMaskErrors):
    """Errors the client did not cause lose their message and details."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        tag(masked, ErrorCode.INTERNAL_SERVER_ERROR)
        return masked


@dataclass(frozen=True)
class QueryLimits:
    """What a document may be: at most `max_tokens` tokens (the parser stops
    there), and valid under `rules` besides the schema's. The compiled fast
    path parses and validates with the same."""

    max_tokens: int | None = None
    rules: tuple[type[ASTValidationRule], ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        """Documents over the limits are refused before anything runs: the token
        limit stops the parser itself, the others are validation rules."""
        rules: list[type[ASTValidationRule]] = [
            limits_rule(settings.max_depth, settings.max_aliases, settings.max_fields),
        ]
        if not settings.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        return cls(settings.max_tokens, tuple(rules))

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        limits: list[Callable[[], SchemaExtension]] = [functools.partial(AddValidationRules, list(self.rules))]
        if self.max_tokens is not None:
            limits.append(functools.partial(MaxTokensLimiter, max_token_count=self.max_tokens))
        return limits


# One for the paths that answer without Strawberry's extensions.
_MASK = MaskUnexpected()


class TodoSchema(OneResultSchema):
    def __init__(
        self,
        execution_cache_size: int,
        limits: QueryLimits = QueryLimits(),
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
        unexpected = [e for e in errors if _unexpected(e)]
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
        return [_MASK.anonymise_error(e) if _unexpected(e) else e for e in errors]


def build_schema(
    execution_cache_size: int, limits: QueryLimits = QueryLimits(), persisted: PersistedQueries | None = None
) -> TodoSchema:
    return TodoSchema(execution_cache_size, limits, persisted)
