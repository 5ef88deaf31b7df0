"""GraphQL over Server-Sent Events, as the graphql-sse protocol's distinct
connections mode has it: `POST` or `GET /graphql` with
`Accept: text/event-stream` answers one `next` event per result (request
errors too, as results with `errors`), then `complete` (except when the
server stops: the stream is cut, and the client retries). A change feed's
stream (todoChanges, feed) opens with `id: <the cursor it starts after>`
and no data (no event for an EventSource or the graphql-sse client), and
each of its events carries `id: <cursor>`; a client reconnecting with
`Last-Event-ID` resumes right after it, whatever `after` its document says:
one cut before its first event, where it started.

A todoChanges subscription the fan-out takes is a broadcast member: its
whole `next` event is the same bytes for every stream of its group. Every
other operation runs through Strawberry's `schema.stream`."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_todos.core.models import Change
from graphql_todos.edge import event_stream
from graphql_todos.graphql.fanout import GraphQLFanout
from graphql_todos.graphql.outcomes import revoked_result
from graphql_todos.graphql.schema import Context, EventIds

Encode = Callable[[Any], Awaitable[bytes]]
COMPLETE = event_stream.event("complete", b"")


async def respond(
    view: GraphQL[Context, None],
    request: Request,
    context: Context,
    encode: Encode,
    fanout: GraphQLFanout,
    keepalive: float,
    send_timeout: float,
) -> event_stream.EventStreamResponse:
    fields = await view.parse_http_body(view.request_adapter_class(request))
    if isinstance(fields, list):
        raise HTTPException(400, "Batching is not supported for SSE")
    resume_after = event_stream.last_event_id(request)

    async def refusal(errors: list[GraphQLError]) -> bytes:
        # As Strawberry's path answers a subscribe resolver that raises (or a
        # stream that fails once started: its cursor pruned past).
        return event_stream.event("next", await encode(ExecutionResult(data=None, errors=errors)))

    def complete() -> bytes | None:
        # A server that is stopping ends the stream without `complete`: a
        # graphql-sse client then sees a dropped connection and retries, where
        # `complete` would tell it the subscription is over.
        return None if context.hub.closed else COMPLETE

    produce = await fanout.produce(
        context, request, fields, _next_event, complete, refusal, resume_after, event_stream.resume_point
    )
    if produce is not None:
        return event_stream.EventStreamResponse(produce, keepalive, send_timeout, revoked=_revoked)
    ids = context.event_ids = EventIds(resume_after=resume_after)
    results = await stream(view, context, fields, OperationType.from_http("GET" if request.method == "GET" else "POST"))
    events = functools.partial(_events, results, ids, encode, complete)
    return event_stream.EventStreamResponse(events, keepalive, send_timeout, revoked=_revoked)


def _revoked(reason: str) -> bytes:
    return event_stream.event("next", revoked_result(reason)) + COMPLETE


async def stream(
    view: GraphQL[Context, None], context: Context, fields: GraphQLRequestData, operations: set[OperationType]
) -> Any:
    """Strawberry's results of an operation no broadcast group takes (the
    multipart subscriptions' too)."""
    return await view.schema.stream(
        fields.query, fields.variables, context, None, fields.operation_name, fields.extensions, operations
    )


def _next_event(change: Change | None, body: bytes) -> bytes:
    """A change's result (or a live list's: None) as the event the Strawberry
    path sends for it."""
    return event_stream.event("next", body, None if change is None else change.cursor)


async def _events(
    results: Any, ids: EventIds, encode: Encode, complete: Callable[[], bytes | None], send: event_stream.SendChunk
) -> None:
    # A change feed's subscribe resolver sends where it starts through it,
    # as it subscribes: before its first result, which may be long in coming.
    ids.opening = lambda start: send(event_stream.resume_point(start))
    sent: str | None = None
    async with contextlib.aclosing(results):
        async for result in results:
            body = await encode(result)
            # A result of a change feed carries its event's cursor.
            fresh = ids.latest if ids.latest != sent else None
            sent = ids.latest
            await send(event_stream.event("next", body, fresh))
    if (last := complete()) is not None:
        await send(last)
