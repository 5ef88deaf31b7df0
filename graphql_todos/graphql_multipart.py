"""Multipart subscriptions (`Accept: multipart/mixed;subscriptionSpec=1.0`)
on the broadcast path: a todoChanges subscription the fan-out takes is a
member whose whole part (headers, `{"payload": ...}` and the boundary after
it) is the same bytes for every subscriber of its group. The parts, the
heartbeat parts and the end are framed as Strawberry frames them
(graphql_internals.MultipartSubscriptions); every other request is left to
Strawberry's view."""

from __future__ import annotations

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult

from .graphql_fanout import GraphQLFanout
from .graphql_internals import MultipartSubscriptions
from .graphql_sse import Encode
from .models import Change
from .schema import Context
from .sse import EventStreamResponse

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
) -> EventStreamResponse | None:
    """The broadcast member's response, or None: Strawberry's view answers."""
    accept = request.headers.get("accept", "")
    # Strawberry's check parses the header (with the email package): most
    # requests are told apart by a substring first.
    if "multipart" not in accept.lower() or not _TRANSPORT.accepts(accept):
        return None
    try:
        fields = await view.parse_http_body(view.request_adapter_class(request))
    except (ValueError, KeyError, HTTPException):
        # The view reads it again, and answers as it always has (JSON it
        # refuses, json_intake.RefusedJson, goes on to the view's answer).
        return None
    if isinstance(fields, list):
        return None

    async def refusal(errors: list[GraphQLError]) -> bytes:
        # As Strawberry's path answers a subscribe resolver that raises.
        return _TRANSPORT.next_part(await encode(ExecutionResult(data=None, errors=errors)))

    produce = await fanout.produce(context, request, fields, _next_part, lambda: _COMPLETE, refusal)
    if produce is None:
        return None
    return EventStreamResponse(
        produce,
        _TRANSPORT.heartbeat_interval,
        send_timeout,
        headers=_HEADERS,
        heartbeat=_TRANSPORT.heartbeat_part(),
        first_heartbeat=_TRANSPORT.send_initial_heartbeat,
    )


def _next_part(change: Change, body: bytes) -> bytes:
    return _TRANSPORT.next_part(body)

