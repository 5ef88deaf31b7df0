"""GraphQL over Server-Sent Events, as the graphql-sse protocol's distinct
connections mode has it: `POST` or `GET /graphql` with
`Accept: text/event-stream` answers one `next` event per result (request
errors too, as results with `errors`), then `complete`. Each todoChanges
event carries `id: <cursor>`; a client reconnecting with `Last-Event-ID`
resumes right after it, whatever `after` its document says."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from strawberry.asgi import GraphQL
from strawberry.types.graphql import OperationType

from . import sse
from .schema import Context, EventIds

Encode = Callable[[Any], Awaitable[bytes]]


async def respond(
    view: GraphQL[Context, None],
    request: Request,
    context: Context,
    encode: Encode,
    keepalive: float,
    send_timeout: float,
) -> sse.EventStreamResponse:
    fields = await view.parse_http_body(view.request_adapter_class(request))
    if isinstance(fields, list):
        raise HTTPException(400, "Batching is not supported for SSE")
    ids = context.event_ids = EventIds(resume_after=sse.last_event_id(request))
    results = await view.schema.stream(
        fields.query,
        fields.variables,
        context,
        None,
        fields.operation_name,
        fields.extensions,
        OperationType.from_http("GET" if request.method == "GET" else "POST"),
    )
    return sse.EventStreamResponse(_events(results, ids, encode), keepalive, send_timeout)


async def _events(results: Any, ids: EventIds, encode: Encode) -> AsyncGenerator[bytes, None]:
    sent: str | None = None
    async with contextlib.aclosing(results):
        async for result in results:
            body = await encode(result)
            # A result of the change feed carries its change's cursor.
            fresh = ids.latest if ids.latest != sent else None
            sent = ids.latest
            yield sse.event("next", body, fresh)
    yield sse.event("complete", b"")
