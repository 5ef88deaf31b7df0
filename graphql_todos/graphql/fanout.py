"""GraphQL subscriptions as broadcast members (see broadcast.py), over both
WebSocket protocols, SSE and multipart HTTP.

A `todoChanges` subscription qualifies when its document (sent in full, or
by a persisted-query hash) validates and its operation selects that one
field with no directive anywhere (so no @defer, nothing that varies per
member). Its group is the transport's framing, the document, operation name
and variables, less the variable giving `after`: the cursor decides where a
member starts, not what a change looks like. Anything else, and every
subscription with bad variables, goes the Strawberry way, which answers it
as it always has; one refused at the start (a bad or expired cursor, no
database), or whose cursor is pruned past once started (by another process,
as it catches up), is answered with the errors Strawberry's path would give.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Hashable, Mapping
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
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket
from strawberry.http import GraphQLRequestData

from graphql_todos.core.errors import CursorExpired, DomainError
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import Change
from graphql_todos.graphql.schema import TodoSchema
from graphql_todos.internals.strawberry import TodoExecutionContext, validation_errors
from graphql_todos.internals.strawberry_sockets import Refused, StreamFailed
from graphql_todos.internals.uvicorn_websocket import frame_writers
from graphql_todos.live.broadcast import Group, Groups, Member, Render, Send, Write
from graphql_todos.live.streams import start_after

# A transport's whole payload for a change, around the result's JSON (the
# SSE event, the multipart part); None: the JSON itself.
Frame = Callable[[Change, bytes], bytes]


@dataclass(frozen=True, slots=True)
class _Plan:
    document: DocumentNode
    operation: OperationDefinitionNode
    # `after` is a literal (or absent: None), or the name of a variable.
    after: str | None
    after_variable: str | None


@dataclass(frozen=True, slots=True)
class _Values:
    # The document's cursor, from `after`'s literal or variable.
    cursor: Any
    # The variables but `after`'s, as the group key holds them.
    shared: bytes


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


@dataclass(frozen=True, slots=True)
class Joined:
    """A subscription the fan-out took: its group and where it starts."""

    groups: Groups
    key: Hashable
    start: int
    make_render: Callable[[], Render]
    # The errors Strawberry's path would give for a stream that fails so.
    failure: Callable[[DomainError], list[GraphQLError]]

    async def run(self, prefix: bytes, suffix: bytes, write: Write | None, send: Send) -> None:
        """Deliver every change to the member until the hub closes; cancel to
        leave. Raises StreamFailed."""
        await self.deliver(Member(self.start, prefix, suffix, write, send))

    async def deliver(self, member: Member, group: Group | None = None) -> None:
        """Groups.run, its cursor found pruned past (as it caught up, or its
        group did) raised as the GraphQL errors a stream fails with."""
        try:
            await self.groups.run(self.key, self.make_render, member, group)
        except CursorExpired as exc:
            raise StreamFailed(self.failure(exc)) from None


@dataclass(frozen=True, slots=True)
class SocketMember:
    """A WebSocket's subscription the fan-out took, to run in a task of its
    own or, where the socket takes direct writes, to attach with none."""

    joined: Joined
    write: Write | None
    send: Send

    async def run(self, prefix: bytes, suffix: bytes) -> None:
        """Deliver every change to the member until the hub closes; cancel to leave."""
        await self.joined.run(prefix, suffix, self.write, self.send)

    def attach(self, prefix: bytes, suffix: bytes) -> Attached | None:
        """The member joined to its group now, without a task; None: `run` it."""
        if self.write is None:
            return None
        joined = self.joined
        member = Member(joined.start, prefix, suffix, self.write, self.send)
        group = joined.groups.attach(joined.key, joined.make_render, member)
        return None if group is None else Attached(joined, member, group)


@dataclass(frozen=True, slots=True)
class Attached:
    """A member in its group with no task of its own (see Groups.attach)."""

    joined: Joined
    member: Member
    group: Group

    def leave(self) -> None:
        """Leave the group; for a member not following in a task."""
        self.group.leave(self.member)

    async def follow(self) -> None:
        """Deliver as `SocketMember.run` does, from where the member is (once
        its `on_signal` came: dropped, or the group closed); cancel to leave."""
        await self.joined.deliver(self.member, self.group)


class GraphQLFanout:
    def __init__(self, schema: TodoSchema) -> None:
        self.schema = schema
        # Documents are few and reused: plan each once. So are their
        # variables, mostly: coerce each set once too.
        self._plan = functools.lru_cache(maxsize=256)(self._make_plan)
        self._values = functools.lru_cache(maxsize=1024)(self._make_values)

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

    def _make_values(self, document: str, operation_name: str | None, variables: bytes) -> _Values | None:
        """The cursor and group key part of a planned document's variables
        (as JSON); None when they do not coerce (Strawberry's path answers)."""
        plan = self._plan(document, operation_name)
        assert plan is not None
        coerced = get_variable_values(
            self.schema._schema, plan.operation.variable_definitions or (), orjson.loads(variables)
        )
        if isinstance(coerced, list):
            return None
        values = coerced.coerced
        cursor = plan.after if plan.after_variable is None else values.get(plan.after_variable)
        shared = {k: v for k, v in values.items() if k != plan.after_variable}
        return _Values(cursor, orjson.dumps(shared, option=orjson.OPT_SORT_KEYS, default=str))

    async def join(
        self,
        context: Any,
        conn: HTTPConnection,
        query: str | None,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        frame: Frame | None = None,
        extensions: Mapping[str, Any] | None = None,
        resume_after: str | None = None,
    ) -> Joined | None:
        """The subscription as a member-to-be of its group, starting after
        `resume_after` when given (SSE's Last-Event-ID), else after the
        document's cursor; None: Strawberry's path runs it. Raises Refused."""
        document = self.schema.runnable(query, extensions)
        plan = None if document is None else self._plan(document, operation_name)
        if plan is None:
            return None
        try:
            raw = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            return None  # not what a client's JSON gives: Strawberry's path answers
        values = self._values(document, operation_name, raw)
        if values is None:
            return None
        journal: Journal = conn.state.journal
        try:
            start = await start_after(journal, values.cursor if resume_after is None else resume_after)
        except DomainError as exc:
            raise Refused(self._refusal(plan, exc)) from None
        key = (frame, document, operation_name, values.shared)
        return Joined(
            conn.state.broadcast_groups, key, start,
            lambda: self._render(plan, context, variables, operation_name, frame),
            self._failure,
        )

    async def produce(
        self,
        context: Any,
        request: Request,
        fields: GraphQLRequestData,
        frame: Frame,
        complete: Callable[[], bytes | None],
        refusal: Callable[[list[GraphQLError]], Awaitable[bytes]],
        resume_after: str | None = None,
    ) -> Callable[[Send], Awaitable[None]] | None:
        """An HTTP stream's producer (SSE, multipart): the member's frames,
        then the frame `complete` gives (if any) once the hub closes; or, for
        a subscription refused at the start or failing on the way, the frame
        `refusal` makes of its errors, then `complete`'s. None: Strawberry's
        path runs it."""
        try:
            joined = await self.join(
                context, request, fields.query, fields.variables, fields.operation_name, frame,
                fields.extensions, resume_after,
            )
        except Refused as refused:
            first = await refusal(refused.errors)

            async def refuse(send: Send) -> None:
                await send(first)
                await _finish(send, complete)

            return refuse
        if joined is None:
            return None

        async def run(send: Send) -> None:
            try:
                await joined.run(b"", b"", None, send)
            except StreamFailed as failed:
                await send(await refusal(failed.errors))
            await _finish(send, complete)

        return run

    async def take(
        self, context: Any, websocket: WebSocket, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> SocketMember | None:
        joined = await self.join(context, websocket, query, variables, operation_name)
        if joined is None:
            return None
        return SocketMember(joined, *frame_writers(websocket))

    def _failure(self, exc: DomainError) -> list[GraphQLError]:
        """The error Strawberry's path gives a subscription whose stream
        raises exc once started: not located, as it comes from no field."""
        return self.schema.finish_errors([GraphQLError(exc.message, original_error=exc)])

    def _refusal(self, plan: _Plan, exc: DomainError) -> list[GraphQLError]:
        """The error graphql-core gives a subscribe resolver that raises exc."""
        [field] = plan.operation.selection_set.selections
        assert isinstance(field, FieldNode)
        key = (field.alias or field.name).value
        return self.schema.finish_errors([located_error(exc, [field], [key])])

    def _render(
        self, plan: _Plan, context: Any, variables: dict[str, Any] | None, operation_name: str | None,
        frame: Frame | None,
    ) -> Callable[[Change], Awaitable[bytes]]:
        """The payload for each change, executed as graphql-core executes a
        subscription event (the group's first member's values stand for all),
        in the transport's frame."""
        executor = TodoExecutionContext.build(
            self.schema._schema, plan.document, context_value=context, raw_variable_values=variables,
            operation_name=operation_name,
        )
        assert not isinstance(executor, list)  # join() coerced these variables already

        async def render(change: Change) -> bytes:
            result = executor.build_per_event_executor(change).execute_operation(False)
            if inspect.isawaitable(result):
                result = await result
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = [e.formatted for e in self.schema.finish_errors(result.errors)]
            body = orjson.dumps(payload)
            return body if frame is None else frame(change, body)

        return render


async def _finish(send: Send, complete: Callable[[], bytes | None]) -> None:
    if (last := complete()) is not None:
        await send(last)
