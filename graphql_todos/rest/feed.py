"""`/api/feed/`: GraphQL's `feed` subscription for REST clients
(docs/design/people.md section 9). Every journal entry the caller may see
after ?after= (from now when absent; an event stream's Last-Event-ID
first), of one list with ?list_id=, in commit order, as what it is for the
caller: todo_created/updated/deleted with the row, todo_arrived with the
row, todo_removed with the id alone, list_added/updated/removed,
member_added/updated/removed with the member. As an event stream (each
event named for its kind, its cursor as the id) or as a RESTSocket (a
message per event, keepalives between)."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from graphql_todos.core.errors import BadUserInput, ErrorCode, RequestError
from graphql_todos.core.journal import Journal
from graphql_todos.core.service import parse_id
from graphql_todos.core.visibility import Delivery, Kind, ended_with_its_list, feed_kind, feed_list, member_of
from graphql_todos.edge import event_stream, negotiation
from graphql_todos.edge.access import principal_of
from graphql_todos.edge.error_handlers import header_text
from graphql_todos.live import streams
from graphql_todos.live.hub import Hub
from graphql_todos.rest import sockets
from graphql_todos.rest.params import in_url
from graphql_todos.rest.resources import event_stream_response, todo_json
from graphql_todos.rest.routing import negotiated


def event_json(delivery: Delivery) -> dict[str, Any]:
    """An event as REST clients see it: GraphQL's FeedEvent in REST's names,
    a field left out where GraphQL's is null."""
    entry, kind = delivery.entry, delivery.kind
    event: dict[str, Any] = {"kind": feed_kind(delivery), "cursor": entry.cursor}
    if entry.todo_id is not None:
        event["todo_id"] = str(entry.todo_id)
    if entry.todo is not None and kind in (Kind.UPDATE, Kind.ARRIVAL):
        event["todo"] = todo_json(entry.todo)
    list_id = feed_list(delivery)
    if list_id is not None:
        event["list_id"] = str(list_id)
    if kind is Kind.MEMBER:
        person, username, role = member_of(entry)
        event["member"] = {"person": {"id": person, "username": username}, "role": role}
    if ended_with_its_list(entry):
        event["reason"] = "LIST_DELETED"
    return event


async def _start(conn: HTTPConnection, after: str | None) -> tuple[int, uuid.UUID | None]:
    """Where the caller's feed starts, and the list it follows (None: every
    one); BadUserInput for a malformed ?after= or ?list_id=, or a cursor not
    yet written."""
    raw = conn.query_params.get("list_id")
    list_id: uuid.UUID | None = None if raw is None else parse_id(raw, "list_id")
    journal: Journal = conn.state.journal
    return await streams.start_after(journal, after, conn.state.hub), list_id


async def _deliveries(conn: HTTPConnection, start: int, list_id: uuid.UUID | None) -> AsyncGenerator[Delivery, None]:
    hub: Hub = conn.state.hub
    return await streams.feed_at(hub, start, principal_of(conn.scope).viewer, list_id)


async def _messages(deliveries: AsyncGenerator[Delivery, None]) -> AsyncGenerator[dict[str, Any], None]:
    async with contextlib.aclosing(deliveries):
        async for delivery in deliveries:
            yield event_json(delivery)


async def _events(deliveries: AsyncGenerator[Delivery, None]) -> AsyncGenerator[bytes, None]:
    async for message in _messages(deliveries):
        yield event_stream.event(message["kind"], orjson.dumps(message), message["cursor"])


async def feed(request: Request) -> Response | event_stream.EventStreamResponse:
    # Only a stream: there is no JSON page of the feed (read the lists and
    # todos, then follow the feed from their cursor).
    accept = negotiation.accept_header(request.headers)
    if negotiation.choose(accept, (event_stream.MEDIA_TYPE,)) is None:
        raise RequestError(
            ErrorCode.NOT_ACCEPTABLE,
            f"Accept: {header_text(accept or '')} does not take {event_stream.MEDIA_TYPE}: the feed is an event stream (or a WebSocket)",
        )
    after = event_stream.last_event_id(request) or request.query_params.get("after")
    try:
        start, list_id = await _start(request, after)
        deliveries = await _deliveries(request, start, list_id)
    except BadUserInput as exc:
        raise in_url(exc) from None  # 400, even for HEAD
    # A HEAD gets the headers alone (event_stream_response): `deliveries`
    # is not started, so it holds nothing.
    return event_stream_response(request, _events(deliveries), event_stream.resume_point(start))


async def feed_socket(websocket: WebSocket) -> None:
    async def stream(opened: tuple[int, uuid.UUID | None]) -> None:
        await sockets.send_each(websocket, _messages(await _deliveries(websocket, *opened)))

    await sockets.relay(websocket, functools.partial(_start, websocket, websocket.query_params.get("after")), stream)


# Under /api (app.py mounts them).
routes: list[BaseRoute] = negotiated([
    Route("/feed/", feed, methods=["GET"]),
    WebSocketRoute("/feed/", feed_socket),
])
