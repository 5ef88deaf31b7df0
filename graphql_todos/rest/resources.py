"""The REST transport, and RESTSockets: each resource URL answers the HTTP
verbs and, as a WebSocket, streams that resource's changes.

A thin layer over the service and the live streams: it decodes JSON and URLs;
error_handlers turns what is refused into statuses and close codes (a bad
value in the URL is 400, the same in a body 422).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Collection, Sequence
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from graphql_todos.core import mutations
from graphql_todos.core.errors import (
    BadUserInput,
    DomainError,
    ErrorCode,
    NotFound,
    Rejected,
    RequestError,
)
from graphql_todos.core.journal import Journal
from graphql_todos.core.list_statements import ListStatement
from graphql_todos.core.models import Change, Todo, Viewer
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.service import USUAL_ID, TodoService, parse_id
from graphql_todos.core.settings import Settings
from graphql_todos.edge import event_stream, json_intake
from graphql_todos.edge.access import first_values, principal_of
from graphql_todos.edge.acting import key_scope
from graphql_todos.edge.error_handlers import header_text
from graphql_todos.edge.guard import BODY_READ
from graphql_todos.edge.response_cache import READING, Reading, ResponseCache
from graphql_todos.internals.starlette_endpoint import Endpoint, JsonBytes
from graphql_todos.internals.uvicorn_websocket import frame_writers
from graphql_todos.live import streams
from graphql_todos.live.broadcast import Groups, Member
from graphql_todos.live.hub import Hub
from graphql_todos.rest import sockets
from graphql_todos.rest.openapi import document
from graphql_todos.rest.params import in_url, list_params, no_list_read_params
from graphql_todos.rest.routing import negotiated

logger = logging.getLogger(__name__)
T = TypeVar("T")

_FIELDS: dict[str, tuple[type, str]] = {
    "title": (str, "a string"),
    "completed": (bool, "a boolean"),
}
# An update may also move the row (PATCH and PUT): moveTodo's rights.
_UPDATE_FIELDS: dict[str, tuple[type, str]] = {**_FIELDS, "list_id": (str, "a string")}


def todo_json(todo: Todo) -> dict[str, Any]:
    """A row as REST clients see it: the column names, id and times as strings."""
    return {
        "id": str(todo.id),
        "title": todo.title,
        "completed": todo.completed,
        "created_time": todo.created_time.isoformat(),
        "updated_time": todo.updated_time.isoformat(),
        "list_id": str(todo.list_id),
    }


# The collection as todo_json writes each row, written by PostgreSQL (a test
# compares the bytes): no row is built in Python.
_LIST = ListStatement(
    (tuple((key, key) for key in ("id", "title", "completed", "created_time", "updated_time", "list_id")),), position=False
)


def _json(content: Any, status_code: int = 200, headers: Sequence[tuple[bytes, bytes]] = ()) -> Response:
    # orjson writes a Todo (a dataclass) as todo_json does: its fields are
    # the column names, the id and the times strings (a test compares).
    # Headers as raw pairs: Response's init_headers made them from a dict in
    # some 130 bytecodes a write.
    return JsonBytes(orjson.dumps(content), status_code, headers)


class TodoCollection(Endpoint):
    async def get(self, request: Request) -> Response | event_stream.EventStreamResponse:
        if event_stream.prefers_event_stream(request):
            return await self._event_stream(request)
        completed, page = list_params(request)
        principal = principal_of(request.scope)
        viewer = principal.viewer

        async def read() -> tuple[bytes, bool]:
            lists = await _service(request).lists_json(_LIST, viewer, completed, page)
            return lists.texts[0].encode(), True

        cache: ResponseCache[bytes] = request.state.response_cache
        # Through the front door: its mark, and the whole response kept at it.
        reading: Reading | None = request.scope.get(READING)
        journal = _journal(request)
        committed = journal.mark if reading is None else reading.marking(journal)
        body = await cache.get_or_read(("rest todos", viewer, completed, page), committed, read)
        if reading is not None:
            reading.kept(principal)
        return Response(body, media_type="application/json")

    async def post(self, request: Request) -> Response:
        body = await json_body(request, required=("title",))
        receipt = todo_receipt(request, body)
        todo = await settled(receipt, _service(request).create_todo(
            body["title"], body.get("completed", False), receipt, actor=_actor(request)
        ))
        before, after = _item_path(request.app)
        location = f"{before}{todo.id}{after}"
        return _json(todo, status_code=201, headers=[(b"location", location.encode("latin-1")), *receipt_headers(receipt)])

    @staticmethod
    async def websocket(websocket: WebSocket) -> None:
        """Every change after ?after= (from now when absent), in commit order."""
        after = websocket.query_params.get("after")
        await sockets.relay(
            websocket, functools.partial(_changes_start, websocket, after), functools.partial(_broadcast_changes, websocket)
        )

    @staticmethod
    async def _event_stream(request: Request) -> Response | event_stream.EventStreamResponse:
        """The socket's messages as events, from Last-Event-ID, else ?after=:
        every stream is a member of one group, whose events are the same
        bytes for all (one encoding per change)."""
        after = event_stream.last_event_id(request) or request.query_params.get("after")
        try:
            no_list_read_params(request)
            start = await streams.start_after(_journal(request), after, _hub(request))
        except BadUserInput as exc:
            raise in_url(exc) from None
        groups: Groups = request.state.broadcast_groups
        viewer = principal_of(request.scope).viewer

        async def produce(send: event_stream.SendChunk) -> None:
            await groups.run("rest sse", lambda: _change_event, Member(start, b"", b"", None, send), viewer=viewer)

        return event_stream_response(request, produce, event_stream.resume_point(start))


class TodoItem(Endpoint):
    async def get(self, request: Request) -> Response | event_stream.EventStreamResponse:
        stream = event_stream.prefers_event_stream(request)
        viewer = principal_of(request.scope).viewer
        todo = await _service(request).get_todo(viewer, _path_id(request))
        if stream:
            # The row now, then each change: a reconnect needs no cursor.
            messages = _state_messages(request, viewer, str(todo.id))
            return event_stream_response(request, _events(messages))
        return _json(todo)

    async def put(self, request: Request) -> Response:
        return await self._update(request, required=("title", "completed"))

    async def patch(self, request: Request) -> Response:
        return await self._update(request, required=())

    async def delete(self, request: Request) -> Response:
        todo_id = _path_id(request)
        receipt = todo_receipt(request, None)
        await settled(receipt, _service(request).delete_todo(todo_id, receipt, actor=_actor(request)))
        return Response(status_code=204, headers=named_receipt_headers(receipt))

    async def _update(self, request: Request, required: Collection[str]) -> Response:
        todo_id = _path_id(request)
        body = await json_body(request, required, _UPDATE_FIELDS)
        receipt = todo_receipt(request, body)
        service, actor = _service(request), _actor(request)
        if "list_id" in body:
            todo = await _move(service, todo_id, body, actor, receipt)
        else:
            todo = await settled(
                receipt, service.update_todo(todo_id, body.get("title"), body.get("completed"), receipt, actor=actor)
            )
        return _json(todo, headers=receipt_headers(receipt))

    @staticmethod
    async def websocket(websocket: WebSocket) -> None:
        """The row now ("snapshot"), then each change to it; closes after
        "deleted", or with 4404 when there is no such row, or no longer one
        the caller may see."""
        viewer = principal_of(websocket.scope).viewer

        async def opening() -> AsyncGenerator[dict[str, Any], None]:
            # Its first message is the row as it is then: nothing to fix before.
            return _state_messages(websocket, viewer, websocket.path_params["id"])

        await sockets.relay(websocket, opening, functools.partial(sockets.send_each, websocket))


async def mutation_verdicts(request: Request) -> Response:
    """A client's numbered mutations' verdicts after ?after= (a sequence
    number, default 0), in order; at most MAX_LIST_ROWS."""
    after = request.query_params.get("after", "0")
    try:
        verdicts = await _service(request).verdicts(key_scope(principal_of(request.scope)), request.path_params["client"], after)
    except BadUserInput as exc:
        raise in_url(exc) from None
    return _json([
        {
            "seq": str(v.seq),
            "verdict": v.verdict.name,
            "cursor": v.cursor,
            "code": v.code,
            "message": v.message,
            "todo": None if v.todo is None else todo_json(v.todo),
        }
        for v in verdicts
    ])


async def _move(
    service: TodoService, todo_id: str, body: dict[str, Any], actor: uuid.UUID | None, receipt: Receipt
) -> Todo:
    """An update that moves (moveTodo's rights), its other fields in the
    same statement: a title it would refuse is refused first, so nothing
    moves, and a numbered one is applied once, move included (its retry is
    answered from its record: docs/design/offline.md)."""
    try:
        return await settled(receipt, service.move_todo(
            todo_id, body["list_id"], body.get("title"), body.get("completed"), actor=actor, receipt=receipt,
            list_field="list_id",
        ))
    except NotFound as missing:
        if missing.kind != "list":
            raise
        # The resource (the URL's todo) is there; what is not is a value in
        # the body: 422, as for any bad value in a body, with the same code.
        raise RequestError(ErrorCode.NOT_FOUND, missing.message, status=422) from None
    except RequestError as refused:
        # Numbered, the rejection as recorded (its retry's too): a NOT_FOUND
        # that shows the row is the list's, the URL's todo being there.
        if refused.code is ErrorCode.NOT_FOUND and refused.details is not None:
            refused.status = 422
        raise


@functools.lru_cache(maxsize=8)
def _item_path(app: Starlette) -> tuple[str, str]:
    """A todo's path around its id, as url_path_for makes it: the routes are
    walked once per app, not once per POST."""
    before, _, after = app.url_path_for("todo", id=_ID_MARK).partition(_ID_MARK)
    return before, after


# No id has it: where the id goes.
_ID_MARK = "\x00id"


def todo_receipt(request: Request, body: dict[str, Any] | None) -> Receipt:
    """A mutation's receipt, with the key of its `Idempotency-Key` header
    ("<client>:<seq>", docs/design/offline.md); the fingerprint is of the
    method, the path and the body."""
    # The raw pairs read in C: most writes have no key (Headers.get raises and catches a KeyError then).
    header = first_values(request.scope["headers"]).get(b"idempotency-key")
    if header is None:
        return Receipt()
    fields = {"method": request.method, "path": request.url.path, "body": body}
    try:
        return Receipt(mutations.from_header(header_text(header), key_scope(principal_of(request.scope)), fields))
    except BadUserInput as exc:
        raise in_url(exc) from None


async def settled(receipt: Receipt, mutation: Awaitable[T]) -> T:
    """The mutation's result; a refusal it settled as (a verdict, a cursor)
    is answered with its receipt's headers too, and a rejection with the row
    it named as the server had it."""
    try:
        return await mutation
    except DomainError as exc:
        if receipt.cursor is None:
            raise
        row = exc.row if isinstance(exc, Rejected) else None
        details = None if row is None else {"row": todo_json(Todo.from_json(row))}
        raise RequestError(exc.code, exc.message, headers=named_receipt_headers(receipt), details=details) from exc


def receipt_headers(receipt: Receipt) -> list[tuple[bytes, bytes]]:
    """`Journal-Cursor` (where the mutation's effect, or no-op, is visible)
    and, for a numbered one, its key echoed: raw pairs, as a Response sends them."""
    headers = [] if receipt.cursor is None else [(b"journal-cursor", str(receipt.cursor).encode())]
    if receipt.key is not None:
        headers.append((b"idempotency-key", f'"{receipt.key.client}:{receipt.key.seq}"'.encode("latin-1")))
    return headers


def named_receipt_headers(receipt: Receipt) -> dict[str, str]:
    """receipt_headers() as a Response's `headers` argument takes them (and sends them as they were)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in receipt_headers(receipt)}


async def openapi_json(request: Request) -> Response:
    settings: Settings = request.state.settings
    return Response(_openapi_body(settings.max_list_rows), media_type="application/json")


@functools.lru_cache(maxsize=4)
def _openapi_body(max_list_rows: int) -> bytes:
    """The document as JSONResponse writes it, once per server's limit (a
    copy of it made and written at each request was some 200,000 bytecodes)."""
    return bytes(JSONResponse(document(max_list_rows)).body)


def _service(conn: HTTPConnection) -> TodoService:
    # Lifespan state, copied into every request's scope: read from the
    # scope's dict (as _journal and _hub), not through request.state (a
    # State made per request: some 50 bytecodes a write).
    service: TodoService = conn.scope["state"]["service"]
    return service


def _actor(conn: HTTPConnection) -> uuid.UUID | None:
    """Whom the request's writes act for (the guard's principal)."""
    return principal_of(conn.scope).actor


def _journal(conn: HTTPConnection) -> Journal:
    journal: Journal = conn.scope["state"]["journal"]
    return journal


def _hub(conn: HTTPConnection) -> Hub:
    hub: Hub = conn.scope["state"]["hub"]
    return hub


def _path_id(request: Request) -> str:
    todo_id: str = request.path_params["id"]
    # An id in its usual spelling is one parse_id takes, seen by a regex:
    # a UUID made and spelled again to check it was some 90 bytecodes a write.
    if USUAL_ID.fullmatch(todo_id) is None:
        try:
            parse_id(todo_id)
        except BadUserInput as exc:
            raise in_url(exc) from None
    return todo_id


async def json_body(
    request: Request, required: Collection[str], fields: dict[str, tuple[type, str]] = _FIELDS
) -> dict[str, Any]:
    """The JSON object in the body, each of its fields one of `fields`, of
    the right JSON type (the service judges the values)."""
    content_type = first_values(request.scope["headers"]).get(b"content-type", b"")
    # The usual one seen at once (its parse was some 30 bytecodes a write).
    if content_type != b"application/json" and not _json_in_utf8(content_type.decode("latin-1")):
        raise RequestError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the body must be application/json in UTF-8")
    body = json_intake.loads(await _body(request))
    if not isinstance(body, dict):
        raise BadUserInput("body", "must be a JSON object")
    for name, value in body.items():
        if name not in fields:
            raise BadUserInput(repr(name), "is not a known field")
        kind, kind_name = fields[name]
        if not isinstance(value, kind):
            raise BadUserInput(name, f"must be {kind_name}")
    for name in required:
        if name not in body:
            raise BadUserInput(name, "is missing")
    return body


def _json_in_utf8(content_type: str) -> bool:
    """A Content-Type of JSON in UTF-8: JSON is UTF-8 (RFC 8259), a body
    declared otherwise would be misread."""
    media_type, _, params = content_type.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params.strip() else "utf-8"
    return media_type.strip().lower() == "application/json" and charset == "utf-8"


async def _body(request: Request) -> bytes:
    """The request's body: one that has come whole as uvicorn's one message
    (the guard, or the write door, found it so: BODY_READ) taken in a step,
    not through Starlette's stream (a generator and its closing: some 130
    bytecodes a write); any other through Request.body, as before. A client
    gone leaves receive() answering that it left, which Request.body raises
    (ClientDisconnect)."""
    if request.scope.get(BODY_READ):
        message = await request.receive()
        if message["type"] == "http.request":
            body: bytes = message.get("body", b"")
            return body
    return await request.body()


async def _changes_start(websocket: WebSocket, after: str | None) -> int:
    """Where the collection socket's changes start: after the cursor, or now."""
    no_list_read_params(websocket)
    return await streams.start_after(_journal(websocket), after, _hub(websocket))


async def _broadcast_changes(websocket: WebSocket, start: int) -> None:
    """Every change after `start`, as one member of the process's one
    change-feed group: the same bytes go to every collection socket."""
    groups: Groups = websocket.state.broadcast_groups
    write, send = frame_writers(websocket)
    viewer = principal_of(websocket.scope).viewer
    await groups.run("rest changes", lambda: _change_bytes, Member(start, b"", b"", write, send), viewer=viewer)


def _change_message(change: Change) -> dict[str, Any]:
    """What the collection's socket and event stream send for a change."""
    return {"op": change.op.value, "todo": todo_json(change.todo), "cursor": change.cursor}


async def _change_bytes(change: Change) -> bytes:
    return orjson.dumps(_change_message(change))


async def _change_event(change: Change) -> bytes:
    """The event the collection's stream sends (as _events would)."""
    return event_stream.event(change.op.value, await _change_bytes(change), change.cursor)


async def _state_messages(conn: HTTPConnection, viewer: Viewer, todo_id: str) -> AsyncGenerator[dict[str, Any], None]:
    """An item stream's messages; NotFound (close 4404, an event stream's
    NOT_FOUND error) once the row is no longer the caller's to see, as for
    a row that is not there (people.md section 6)."""
    last: Todo | None = None
    key = parse_id(todo_id)
    states = streams.todo_states(_service(conn), _hub(conn), viewer, key)
    async with contextlib.aclosing(states):
        async for state in states:
            if state.removed:
                raise NotFound(key)
            # A deleted state has no row: show its last one, as the change feed does.
            todo = state.todo or last
            if todo is None:
                raise NotFound(key)
            last = todo
            op = "snapshot" if state.op is None else state.op.value
            yield {"op": op, "todo": todo_json(todo), "cursor": state.cursor}


# An event stream's headers, for its HEAD.
_STREAM_HEADERS = {name.decode(): value.decode() for name, value in event_stream.HEADERS}


def stream_head() -> Response:
    """A HEAD of an event stream: the stream's headers, as a GET's (its
    content type with no charset), and nothing more."""
    return Response(headers=_STREAM_HEADERS)


def event_stream_response(
    request: Request, events: AsyncGenerator[bytes, None] | event_stream.Produce, opening: bytes = b""
) -> Response | event_stream.EventStreamResponse:
    """`opening`: the stream's first chunk (EventStreamResponse's)."""
    if request.method == "HEAD":
        # No stream (`events` unstarted, holding nothing): one held open for
        # a HEAD is never read, and the next request on its keep-alive
        # connection waited on it for good.
        return stream_head()
    settings: Settings = request.state.settings
    return event_stream.EventStreamResponse(
        events, settings.keepalive_seconds, settings.send_timeout_seconds, opening=opening,
        revoked=event_stream.revoked_event,
    )


async def _events(messages: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[bytes, None]:
    """Each RESTSocket message as an event named for its op, its cursor as the id."""
    async with contextlib.aclosing(messages):
        async for message in messages:
            yield event_stream.event(message["op"], orjson.dumps(message), message["cursor"])


# Under /api (app.py mounts them, with rest/auth.py's).
routes: list[BaseRoute] = negotiated([
    Route("/openapi.json", openapi_json),
    Route("/todos/", TodoCollection),
    WebSocketRoute("/todos/", TodoCollection.websocket),
    Route("/todos/{id}/", TodoItem, name="todo"),
    WebSocketRoute("/todos/{id}/", TodoItem.websocket),
    Route("/mutations/{client}/", mutation_verdicts),
])
