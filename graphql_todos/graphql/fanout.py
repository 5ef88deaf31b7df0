"""GraphQL subscriptions as broadcast members (see broadcast.py), over both
WebSocket protocols, SSE and multipart HTTP.

A `todoChanges` subscription qualifies when its document (sent in full, or
by a persisted-query hash) is taken in (intake.py) and its operation selects
that one field with no directive anywhere (so no @defer, nothing that varies per
member). Its group is the transport's framing, the document, operation name
and variables, less the variable giving `after`: the cursor decides where a
member starts, not what a change looks like. Anything else, and every
subscription with bad variables, goes the Strawberry way, which answers it
as it always has; one refused at the start (a bad or expired cursor, no
database), or whose cursor is pruned past once started (by another process,
as it catches up), is answered with the errors Strawberry's path would give.

A `todo(id)` subscription over a WebSocket qualifies the same way (with an
id that parses; a malformed one goes the Strawberry way, which refuses it),
but joins no group: each subscriber has its own hub subscription to its
row, rendered (by a compiled plan, graphql/fast) and framed here as a
member's changes are, without Strawberry's per-event machinery, and
written by the hub as it publishes a change when the socket takes it now
(RowStream): rendered once for the row's watchers that share a plan, and
sent with the other frames of that turn of the loop, together
(uvicorn_websocket.Burst).

A `todos` live query qualifies the same way (its `completed` a literal, a
variable or absent), on every transport: it is a member of its live list's
group (live_lists.py), one per list (so per viewer), document and frame,
which renders each version once and writes it to every member.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_object_type,
    is_specified_scalar_type,
    located_error,
)
from graphql.language import Visitor, visit
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket
from strawberry.http import GraphQLRequestData

from graphql_todos.core.bounded import LRU
from graphql_todos.core.errors import CursorExpired, DomainError, RequestError
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import ALL, Change, Entry, Op, Todo, Viewer
from graphql_todos.core.service import TodoService, parse_id
from graphql_todos.core.visibility import View
from graphql_todos.graphql.fast.execution import execute_event
from graphql_todos.graphql.fast.plans import CompiledOperation, Plan, compile_events
from graphql_todos.graphql.intake import Intake, Operation, Variables, no_operation
from graphql_todos.graphql.live_lists import ListGroup, ListGroups, ListStream
from graphql_todos.graphql.schema import TodoSchema
from graphql_todos.internals.strawberry import OPERATION_EXTENSIONS, TodoExecutionContext, plain_attribute
from graphql_todos.internals.strawberry_sockets import Refused, StreamFailed
from graphql_todos.internals.uvicorn_websocket import Burst, frame_writers
from graphql_todos.live import streams
from graphql_todos.live.broadcast import Group, Groups, Member, Render, Send, Write
from graphql_todos.live.hub import Hub

# A transport's whole payload for a change, around the result's JSON (the
# SSE event, the multipart part); None: the JSON itself. A live list's
# version is framed as no change (None): it has no cursor.
Frame = Callable[[Change | None, bytes], bytes]


class _DocumentKey:
    """A document in a group's key: equal as the document is, its hash
    taken once. graphql-core hashes a document node by node, every field
    and location (8 us for todoChanges' document), at every group lookup,
    so at every subscribe."""

    __slots__ = ("_hash", "document")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self._hash = hash(document)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DocumentKey) and other.document == self.document


@dataclass(frozen=True, slots=True)
class _Plan:
    document: DocumentNode
    operation: OperationDefinitionNode
    # The root field: "todoChanges" (a broadcast member), "todo" (a row's
    # own stream) or "todos" (a live list's member: live_lists.py).
    root: str
    # Its argument (`after`, `id`, `completed`) is a literal (or absent: None), or the name of a variable.
    literal: str | bool | None
    variable: str | None
    # Its events compiled (graphql/fast); None: graphql-core executes them.
    events: CompiledOperation | None
    # The document as group keys hold it.
    key: _DocumentKey

    def argument(self, coerced: Variables) -> Any:
        """The argument's value in this request."""
        return self.literal if self.variable is None else coerced.values.coerced.get(self.variable)


# The subscriptions taken here, by their root field.
_ROOTS = ("todoChanges", "todo", "todos")


class _HasDirective(Visitor):
    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        self.found = True


def _argument(field: FieldNode) -> tuple[str | bool | None, str | None] | None:
    """The field's one argument (`after`, `id`, `completed`) as (literal,
    variable name); None when it is neither."""
    for argument in field.arguments or ():
        value = argument.value
        if isinstance(value, VariableNode):
            return None, value.name.value
        if isinstance(value, StringValueNode | BooleanValueNode):
            return value.value, None
        if not isinstance(value, NullValueNode):
            return None
    return None, None


def _plan(operation: Operation) -> _Plan | None:
    """The plan of a `todoChanges`, `todo(id)` or `todos` subscription selecting that
    field alone, with no directive; None for any other operation."""
    definition = operation.definition
    if definition.operation is not OperationType.SUBSCRIPTION:
        return None
    [*selections] = definition.selection_set.selections
    if len(selections) != 1 or not isinstance(field := selections[0], FieldNode) or field.name.value not in _ROOTS:
        return None
    visitor = _HasDirective()
    visit(operation.document, visitor)
    argument = _argument(field)
    if visitor.found or argument is None:
        return None
    events = compile_events(operation.schema, operation.document, definition)
    return _Plan(operation.document, definition, field.name.value, *argument, events, _DocumentKey(operation.document))


# Joined, SocketMember and Attached are made per member, at every subscribe:
# dataclasses whose fields are set once and never changed, but not frozen
# ones, whose __init__ sets each field through object.__setattr__ (twice the
# time: 1.35 against 0.64 us for Joined's seven fields, timeit).
@dataclass(slots=True)
class Joined:
    """A subscription the fan-out took: its group and where it starts."""

    groups: Groups
    key: Hashable
    start: int
    make_render: Callable[[], Render]
    # The errors Strawberry's path would give for a stream that fails so.
    failure: Callable[[DomainError], list[GraphQLError]]
    # Whose changes: the member gets what this viewer may see, from its
    # view at `start`.
    viewer: Viewer
    view: View

    def member(self, prefix: bytes, suffix: bytes, write: Write | None, send: Send) -> Member:
        return Member(self.start, prefix, suffix, write, send, self.view)

    async def run(self, prefix: bytes, suffix: bytes, write: Write | None, send: Send) -> None:
        """Deliver every change to the member until the hub closes; cancel to
        leave. Raises StreamFailed."""
        await self.deliver(self.member(prefix, suffix, write, send))

    async def deliver(self, member: Member, group: Group | None = None) -> None:
        """Groups.run, its cursor found pruned past (as it caught up, or its
        group did) raised as the GraphQL errors a stream fails with."""
        try:
            await self.groups.run(self.key, self.make_render, member, group, self.viewer)
        except CursorExpired as exc:
            raise StreamFailed(self.failure(exc)) from None


@dataclass(slots=True)  # not frozen: made per member (see Joined)
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
        # Joined.member's, without its call (every subscribe).
        member = Member(joined.start, prefix, suffix, self.write, self.send, joined.view)
        group = joined.groups.attach(joined.key, joined.make_render, member, joined.viewer)
        return None if group is None else Attached(joined, member, group)


@dataclass(slots=True)  # not frozen: made per member (see Joined)
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


@dataclass(frozen=True, slots=True)
class RowStream:
    """A WebSocket's `todo(id)` subscription: its row now, then after each
    change its reader may see, `null` once deleted (or out of its sight),
    then the end (as streams.todo_states), rendered and framed here without
    Strawberry's per-event machinery. A change the socket takes now is
    written by the hub as it publishes it (the subscriber's row sink),
    with no wake-up of this task; this task sends the rest."""

    service: TodoService
    hub: Hub
    viewer: Viewer
    key: uuid.UUID
    render: Callable[[Any], Awaitable[bytes]]
    # The same by a compiled plan, for the hub to write with (_RowFrames); None: graphql-core renders.
    compiled: _RowRenders | None
    failure: Callable[[DomainError], list[GraphQLError]]
    write: Write | None
    send: Send
    # The hub's writes, given a frame's head and tail: direct writes held
    # to the end of the turn (uvicorn_websocket.Burst).
    burst: Callable[[bytes, bytes], Write] | None

    async def run(self, prefix: bytes, suffix: bytes) -> None:
        """Send the row now, then after each change, until it ends; cancel
        to leave. Raises StreamFailed."""
        try:
            async with streams.watching_row(self.service, self.hub, self.viewer, self.key) as (start, sub):
                await self._send(prefix + await self.render(start.todo) + suffix)
                if start.todo is None:
                    return
                if self.burst is not None and self.compiled is not None:
                    sub.sink = self.compiled.frames(prefix, suffix, self.burst)
                async for change in sub:
                    deleted = change.op is Op.DELETED
                    await self._send(prefix + await self.render(None if deleted else change.todo) + suffix)
                    if deleted:
                        return
        except DomainError as exc:
            raise StreamFailed(self.failure(exc)) from None

    async def _send(self, frame: bytes) -> None:
        # The direct write when the connection takes it now, else the send
        # that waits (nothing was written: still in order).
        if self.write is None or not self.write(frame):
            await self.send(frame)

    def attach(self, prefix: bytes, suffix: bytes) -> None:
        """Never: a row's stream runs in its own task."""
        return


@dataclass(frozen=True, slots=True)
class _RowRenders:
    """A `todo(id)` subscription's renders by a compiled plan: of its row
    (a Todo, or None: the payload), and of an entry, for the hub's row
    sink (the JSON of its root field's value: _entry_render)."""

    plan: Plan
    row: Callable[[Any], bytes]
    entry: Callable[[Entry], bytes]
    # The payload's JSON before its root field's value.
    head: bytes

    @classmethod
    def of(cls, plan: Plan, render: Callable[[Any], bytes]) -> _RowRenders:
        """The renders of the plan, given its payload's render (_Compiled's)."""
        return cls(plan, _row_render(plan, render), _entry_render(plan), _head(plan))

    def frames(self, prefix: bytes, suffix: bytes, burst: Callable[[bytes, bytes], Write]) -> _RowFrames:
        """The row sink writing the frames the stream's task sends, prefix +
        payload + suffix, each made in one step around the entry's value."""
        return _RowFrames(self.plan, self.entry, burst(prefix + self.head, b"}}" + suffix))


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A subscription's events rendered by a compiled plan."""

    # Shared by every subscriber of the same document and @skip/@include
    # values (CompiledOperation.plan): so are its renders.
    plan: Plan
    render: Callable[[Any], bytes]


# `todo(id)` plans whose renders are kept (GraphQLFanout._row_renders): a
# plan per document and @skip/@include values; subscribers share a few.
ROW_RENDERS = 64

# Built-in scalars a row's leaves may be, and the Python type of a value
# orjson writes exactly as graphql-core serializes it (graphql/fast/
# completion.py leaves these to orjson too; its test compares the bytes).
_AS_WRITTEN: dict[str, type] = {"String": str, "Boolean": bool, "ID": uuid.UUID}


# A row's leaves as _row_render renders them: each response key, the
# attribute it reads (None: __typename) and its value's type (__typename's value).
_Leaves = tuple[tuple[str, str | None, type | str], ...]


def _leaves(plan: Plan) -> _Leaves | None:
    """A `todo(id)` plan's leaves, for a plan selecting, by one field node,
    leaves of the row alone (plain attributes of the scalars above, and
    __typename), each response key once; None for any other plan."""
    root = plan.fields[0]
    if len(plan.fields) != 1 or len(root.nodes) != 1 or root.typename is not None:
        return None
    row_type = get_named_type(root.field_def.type)
    selection = root.nodes[0].selection_set
    if not is_object_type(row_type) or selection is None:
        return None
    # Each key's attribute and its value's type; __typename's: None and its value.
    leaves: dict[str, tuple[str | None, type | str]] = {}
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.arguments or node.directives or node.selection_set is not None:
            return None
        key, name = (node.alias or node.name).value, node.name.value
        if key in leaves:
            return None
        if name == "__typename":
            leaves[key] = (None, row_type.name)
            continue
        field_def = row_type.fields.get(name)
        leaf = None if field_def is None else get_named_type(field_def.type)
        kind = _AS_WRITTEN.get(leaf.name) if leaf is not None and is_specified_scalar_type(leaf) else None
        attribute = None if field_def is None else plain_attribute(field_def)
        if kind is None or attribute is None:
            return None
        leaves[key] = (attribute, kind)
    # A loop over tuples: attrgetter of them all, zip and map took twice its instructions.
    return tuple((key, attribute, kind) for key, (attribute, kind) in leaves.items())


def _head(plan: Plan) -> bytes:
    """A `todo(id)` payload's JSON before its one root field's value (and
    `}}` after it): orjson's bytes for the two outer dicts, which cost more
    to build and write than joining these."""
    return b'{"data":{' + orjson.dumps(plan.fields[0].key) + b":"


def _leaf_body(fields: _Leaves, read: Callable[[Any, str], Any]) -> Callable[[Any], bytes | None]:
    """The JSON of a row whose leaves `read` finds (getattr of a Todo, an
    item of its snapshot); None: a value not of its leaf's type."""

    def body_of(row: Any) -> bytes | None:
        body: dict[str, Any] = {}
        for key, attribute, kind in fields:
            if attribute is None:
                body[key] = kind
                continue
            value = read(row, attribute)
            if type(value) is not kind:
                return None
            body[key] = value
        return orjson.dumps(body)

    return body_of


def _or_else(body_of: Callable[[Any], bytes | None], render: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """body_of's bytes for a row (a Todo) it renders, render's for the rest (and None)."""

    def render_row(row: Any) -> bytes:
        if row is not None and (body := body_of(row)) is not None:
            return body
        return render(row)

    return render_row


def _row_render(plan: Plan, render: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A `todo(id)` plan's render, the same bytes as `render` gives: for a
    plan of leaves (_leaves), the row's body is its values in a dict for
    orjson, without the plan's completion (about half the instructions);
    `render` renders the rest, and a row with a value not of its leaf's type."""
    leaves = _leaves(plan)
    if leaves is None:
        return render
    body_of, head = _leaf_body(leaves, getattr), _head(plan)
    return _or_else(lambda row: None if (body := body_of(row)) is None else head + body + b"}}", render)


class _HasErrors(Exception):
    """An event whose payload holds errors: no value alone makes it (the
    hub's row sink raises it, and the stream's task sends the payload)."""


def _value_render(plan: Plan) -> Callable[[Any], bytes]:
    """The JSON of a `todo(id)` plan's root field's value for a row (a Todo,
    or None), as its payload holds it (_head's bytes before, `}}` after);
    raises _HasErrors for a payload with errors."""
    key = plan.fields[0].key

    def value(row: Any) -> bytes:
        data, errors = execute_event(plan, row)
        if errors or data is None:
            raise _HasErrors
        return orjson.dumps(data[key])

    return value


def _entry_render(plan: Plan) -> Callable[[Entry], bytes]:
    """A row sink's render of an entry (hub.RowSink): the JSON of its root
    field's value, as the payload of its row (entry.todo) holds it; raises
    _HasErrors for a payload with errors. For a plan of leaves (_leaves),
    the row's values in a dict for orjson: from a RowEntry's snapshot for
    leaves that Todo takes from it as they are (Todo.AS_STORED, and
    __typename), with no Todo made, else from the Todo; the plan renders
    the rest (and a value not of its leaf's type)."""
    leaves = _leaves(plan)
    value = _value_render(plan)
    if leaves is None:
        return lambda entry: value(entry.todo)
    render_row = _or_else(_leaf_body(leaves, getattr), value)
    if not {attribute for _, attribute, _ in leaves} <= Todo.AS_STORED | {None}:
        return lambda entry: render_row(entry.todo)
    body_of = _leaf_body(leaves, dict.get)

    def render_entry(entry: Entry) -> bytes:
        if (row := entry.row) is not None and (body := body_of(row)) is not None:
            return body
        return render_row(entry.todo)

    return render_entry


@dataclass(frozen=True, slots=True)
class _RowFrames:
    """A RowStream's frames as the hub writes them (hub.RowSink): watchers
    of a row with the same plan share each change's body (its root field's
    value), and only their frames' heads differ (the id)."""

    shares: Plan
    render: Callable[[Entry], bytes]
    # The frame made around the body and written (Burst's, with the
    # frame's head and tail): no Python call of the sink's between.
    write: Write


class GraphQLFanout:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.lists = ListGroups()
        # The row streams' frames the hub writes as a statement's rows
        # arrive, written together at the end of each turn of the loop.
        self.burst = Burst()
        # A `todo(id)` plan's renders, made once for every subscriber of it
        # (its leaves' walk was a tenth of an open's bytecodes), by the
        # plan's id: the entry holds its plan, so no other takes that id.
        self._row_renders: LRU[int, _RowRenders] = LRU(ROW_RENDERS)

    @property
    def schema(self) -> TodoSchema:
        return self.intake.schema

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
        planned = self._planned(query, variables, operation_name, extensions)
        if planned is None or planned[0].root != "todoChanges":
            return None
        return await self._join(planned, context, conn, variables, operation_name, frame, resume_after)

    def _planned(
        self, query: str | None, variables: dict[str, Any] | None, operation_name: str | None,
        extensions: Mapping[str, Any] | None,
    ) -> tuple[_Plan, Variables] | None:
        """The operation's plan and its coerced variables; None: Strawberry's
        path runs it. Raises Refused."""
        if isinstance(extensions, dict) and "mutation" in extensions:
            return None  # a numbered subscription: Strawberry's path refuses it (graphql/numbering.py)
        try:
            # The intake's schema, not the `schema` property's call (every subscribe).
            document = self.intake.schema.document(query, extensions)
        except RequestError:
            return None  # Strawberry's path answers it with its code
        operation = None if not document else self.intake.operation(document, operation_name)
        if operation is None:
            # A document Strawberry's stream would fail on with a masked error.
            raise Refused(self.schema.finish_errors([no_operation(document, operation_name)]))
        if not isinstance(operation, Operation) or (plan := operation.made(_plan)) is None:
            return None
        coerced = self.intake.variables(operation, variables)
        return None if coerced is None else (plan, coerced)

    async def _join(
        self,
        planned: tuple[_Plan, Variables],
        context: Any,
        conn: HTTPConnection,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        frame: Frame | None,
        resume_after: str | None,
    ) -> Joined:
        plan, coerced = planned
        cursor = plan.argument(coerced)
        # The app's state read from the scope's dict: Starlette's State finds
        # each name by __getattr__, after a lookup that fails and formats an
        # AttributeError (two an open).
        state = conn.scope["state"]
        journal: Journal = state["journal"]
        groups: Groups = state["broadcast_groups"]
        try:
            start = await streams.start_after(journal, cursor if resume_after is None else resume_after, groups.hub)
        except DomainError as exc:
            raise Refused(self._refusal(plan, exc)) from None
        # The cursor decides where a member starts, not what a change looks
        # like; nor does whose it is (people.md section 6: a member gets
        # what its view says, in the payload every reader of that kind gets).
        key = (frame, plan.key, operation_name, coerced.key_without(plan.variable))
        viewer = _viewer_of(context)
        return Joined(
            groups, key, start,
            # A partial, not a closure: kept by every member (for the group's
            # first to render), three objects where a lambda's cells made nine.
            functools.partial(self._render, plan, context, coerced, variables, operation_name, frame),
            self._failure,
            viewer,
            await groups.hub.view_at(viewer, start),
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
        opening: Callable[[int], bytes] | None = None,
    ) -> Callable[[Send], Awaitable[None]] | None:
        """An HTTP stream's producer (SSE, multipart): for a change feed, the
        frame `opening` makes of the cursor it starts after (if given), then
        the member's frames, then the frame `complete` gives (if any) once the
        hub closes; or, for a subscription refused at the start or failing on
        the way, the frame `refusal` makes of its errors, then `complete`'s.
        None: Strawberry's path runs it."""
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
        deliver: Callable[[Send], Awaitable[None]]
        opened: bytes | None = None
        if joined is not None:
            opened = None if opening is None else opening(joined.start)
            deliver = functools.partial(joined.run, b"", b"", None)
        else:
            # Not the change feed: a live list's, or Strawberry's path.
            planned = self._planned(fields.query, fields.variables, fields.operation_name, fields.extensions)
            if planned is None or planned[0].root != "todos":
                return None
            live = self._live(planned, context, request, fields.variables, fields.operation_name, frame)
            deliver = lambda send: live(None, send).run(b"", b"")

        async def run(send: Send) -> None:
            if opened is not None:
                await send(opened)
            try:
                await deliver(send)
            except StreamFailed as failed:
                await send(await refusal(failed.errors))
            await _finish(send, complete)

        return run

    async def take(
        self, context: Any, websocket: WebSocket, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> SocketMember | RowStream | ListStream | None:
        # The socket's subscribe payload's extensions are in the context its task runs in.
        extensions = OPERATION_EXTENSIONS.get()
        if isinstance(extensions, dict) and "mutation" in extensions:
            return None  # a numbered subscription: Strawberry's path refuses it (graphql/numbering.py)
        planned = self._planned(query, variables, operation_name, None)
        if planned is None:
            return None
        plan, coerced = planned
        write, send = frame_writers(websocket)
        if plan.root == "todo":
            return self._row(plan, coerced, context, websocket, variables, operation_name, write, send)
        if plan.root == "todos":
            return self._live(planned, context, websocket, variables, operation_name, None)(write, send)
        joined = await self._join(planned, context, websocket, variables, operation_name, None, None)
        return SocketMember(joined, write, send)

    def opens(self, query: str, operation_name: str | None, started: Callable[[], None]) -> bool:
        """For an operation `take` left to Strawberry, about to run in this
        task: True for a subscription, whose stream (live/streams.py) calls
        `started` once its start is fixed; False for one that opens none."""
        if self.intake.operation_type(query, operation_name) is not OperationType.SUBSCRIPTION:
            return False
        streams.STARTED.set(started)  # in this task's context alone
        return True

    def _row(
        self,
        plan: _Plan,
        coerced: Variables,
        context: Any,
        websocket: WebSocket,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        write: Write | None,
        send: Send,
    ) -> RowStream | None:
        """A `todo(id)` subscription's own stream; None for a malformed id
        (Strawberry's path answers it)."""
        value = plan.argument(coerced)
        try:
            key = parse_id(value) if isinstance(value, str) else None
        except DomainError:
            key = None
        if key is None:
            return None
        # From the scope's dict, as _join reads it (Starlette's State: a
        # lookup that fails and formats an AttributeError, each name).
        state = websocket.scope["state"]
        service: TodoService = state["service"]
        groups: Groups = state["broadcast_groups"]
        renders = self._renders_of_row(plan, coerced)
        # The plan is looked up once per subscriber: every render from it.
        render = (
            _awaiting(renders.row) if renders is not None
            else self._render(plan, context, coerced, variables, operation_name, None)
        )
        return RowStream(
            service, groups.hub, _viewer_of(context), key, render, renders, self._failure, write, send,
            self.burst.writer(websocket),
        )

    def _renders_of_row(self, plan: _Plan, coerced: Variables) -> _RowRenders | None:
        """A `todo(id)` subscription's renders by its compiled plan, the
        same object for every subscriber of that plan; None: graphql-core
        renders (no compiled plan)."""
        compiled = None if plan.events is None else plan.events.plan(coerced.values)
        if compiled is None:
            return None
        renders = self._row_renders.get(id(compiled))
        if renders is None or renders.plan is not compiled:
            renders = _RowRenders.of(compiled, self._compiled_render(compiled, None))
            self._row_renders.put(id(compiled), renders)
        return renders

    def _live(
        self, planned: tuple[_Plan, Variables], context: Any, conn: HTTPConnection, variables: dict[str, Any] | None,
        operation_name: str | None, frame: Frame | None,
    ) -> Callable[[Write | None, Send], ListStream]:
        """A `todos` live query's subscription, given its writes: a member of
        its list's group (one per list, so per viewer, and document and
        transport's frame: live_lists.py)."""
        plan, coerced = planned
        completed = plan.argument(coerced)
        viewer = _viewer_of(context)
        state = conn.scope["state"]  # as _join reads it
        service: TodoService = state["service"]
        live_lists: streams.LiveLists = state["live_lists"]
        key = (viewer, completed, frame, plan.key, operation_name, coerced.key)

        def make() -> ListGroup:
            # A version has no cursor: framed with none.
            render = self._render(plan, context, coerced, variables, operation_name, None)
            framed = render if frame is None else _framed(render, frame)
            return ListGroup(
                self.lists, key, framed, lambda rows: service.check_whole(len(rows)), self._failure,
                lambda watcher: live_lists.join(completed, viewer, watcher),
            )

        return lambda write, send: ListStream(self.lists, key, make, write, send)

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

    def _compiled(self, plan: _Plan, coerced: Variables, frame: Frame | None) -> _Compiled | None:
        """The payload for each event (a change, a row or None) by the
        compiled plan, in the transport's frame (none for a row); None
        when graphql-core must execute them (_render)."""
        compiled = None if plan.events is None else plan.events.plan(coerced.values)
        if compiled is None:
            return None
        return _Compiled(compiled, self._compiled_render(compiled, frame))

    def _compiled_render(self, compiled: Plan, frame: Frame | None) -> Callable[[Any], bytes]:
        """The payload for each event by the compiled plan, in the transport's frame."""
        return lambda event: self._body(event, *execute_event(compiled, event), frame)

    def _render(
        self, plan: _Plan, context: Any, coerced: Variables, variables: dict[str, Any] | None,
        operation_name: str | None, frame: Frame | None,
    ) -> Callable[[Any], Awaitable[bytes]]:
        """The payload for each event, as graphql-core executes a
        subscription event (the group's first member's values stand for
        all), in the transport's frame: by the compiled plan when there is one."""
        if (compiled := self._compiled(plan, coerced, frame)) is not None:
            return _awaiting(compiled.render)
        executor = TodoExecutionContext.build(
            self.schema._schema, plan.document, context_value=context, raw_variable_values=variables,
            operation_name=operation_name,
        )
        assert not isinstance(executor, list)  # join() coerced these variables already

        async def render(event: Any) -> bytes:
            result = executor.build_per_event_executor(event).execute_operation(False)
            if inspect.isawaitable(result):
                result = await result
            return self._body(event, result.data, result.errors or [], frame)

        return render

    def _body(self, event: Any, data: dict[str, Any] | None, errors: list[GraphQLError], frame: Frame | None) -> bytes:
        payload: dict[str, Any] = {"data": data}
        if errors:
            payload["errors"] = [e.formatted for e in self.schema.finish_errors(errors)]
        written = orjson.dumps(payload)
        return written if frame is None else frame(event, written)


def _viewer_of(context: Any) -> Viewer:
    """Whose changes a subscription gets: its principal's (every list for a
    context with none: only tests build one so)."""
    principal = getattr(context, "principal", None)
    return ALL if principal is None else principal.viewer


def _awaiting(render: Callable[[Any], bytes]) -> Callable[[Any], Awaitable[bytes]]:
    async def render_compiled(event: Any) -> bytes:
        return render(event)

    return render_compiled


def _framed(render: Callable[[Any], Awaitable[bytes]], frame: Frame) -> Callable[[Any], Awaitable[bytes]]:
    async def framed(rows: Any) -> bytes:
        return frame(None, await render(rows))

    return framed


async def _finish(send: Send, complete: Callable[[], bytes | None]) -> None:
    if (last := complete()) is not None:
        await send(last)
