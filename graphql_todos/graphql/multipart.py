"""Multipart subscriptions (`Accept: multipart/mixed;subscriptionSpec=1.0`),
for the subscriptions the view negotiated them for: a todoChanges
subscription the fan-out takes is a broadcast member whose whole part
(headers, `{"payload": ...}` and the boundary after it) is the same bytes for
every subscriber of its group; every other one runs through Strawberry's
`schema.stream`. The parts, the heartbeat parts and the end are framed as
Strawberry's multipart transport frames them
(internals.strawberry_view.MultipartSubscriptions)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_todos.core.models import Change
from graphql_todos.edge.event_stream import EventStreamResponse, Produce
from graphql_todos.graphql.fanout import GraphQLFanout
from graphql_todos.graphql.outcomes import revoked_result
from graphql_todos.graphql.schema import Context
from graphql_todos.graphql.sse import Encode, stream
from graphql_todos.internals.strawberry_view import MultipartSubscriptions

_TRANSPORT = MultipartSubscriptions()
_HEADERS = [(name.lower().encode(), value.encode()) for name, value in _TRANSPORT.headers.items()]
_COMPLETE = _TRANSPORT.encode_complete().encode()


async def respond(
    view: GraphQL[Context, None],
    request: Request,
    context: Context,
    encode: Encode,
    fanout: GraphQLFanout,
    send_timeout: float,
) -> EventStreamResponse:
    fields = await view.parse_http_body(view.request_adapter_class(request))
    assert not isinstance(fields, list), "the view sends here only a request it parsed as a subscription"

    async def refusal(errors: list[GraphQLError]) -> bytes:
        # As Strawberry's path answers a subscribe resolver that raises (or a
        # stream that fails once started: its cursor pruned past).
        return _TRANSPORT.next_part(await encode(ExecutionResult(data=None, errors=errors)))

    events: AsyncGenerator[bytes, None] | Produce | None
    events = await fanout.produce(context, request, fields, _next_part, lambda: _COMPLETE, refusal)
    if events is None:
        results = await stream(view, context, fields, {OperationType.SUBSCRIPTION})
        events = _parts(results, encode)
    return EventStreamResponse(
        events,
        _TRANSPORT.heartbeat_interval,
        send_timeout,
        headers=_HEADERS,
        heartbeat=_TRANSPORT.heartbeat_part(),
        opening=_TRANSPORT.heartbeat_part() if _TRANSPORT.send_initial_heartbeat else b"",
        revoked=lambda reason: _TRANSPORT.next_part(revoked_result(reason)) + _COMPLETE,
    )


def _next_part(change: Change | None, body: bytes) -> bytes:
    return _TRANSPORT.next_part(body)


async def _parts(results: Any, encode: Encode) -> AsyncGenerator[bytes, None]:
    async with contextlib.aclosing(results):
        async for result in results:
            yield _TRANSPORT.next_part(await encode(result))
    yield _COMPLETE
