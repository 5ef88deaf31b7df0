"""The REST transport, and RESTSockets: each resource URL answers the HTTP
verbs and, as a WebSocket, streams that resource's changes.

A thin layer over the service and the live streams: it decodes JSON and URLs,
and maps domain errors to statuses (400 when the bad value came from the URL,
422 when it came from the body, 404) and to close codes (4400, 4404).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Collection, Mapping
from http import HTTPStatus
from typing import Any

import anyio
import orjson
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from . import streams
from .config import Settings
from .errors import BadUserInput, DomainError, NotFound
from .hub import Hub
from .models import Todo
from .openapi import DOCUMENT
from .service import TodoService, parse_id

logger = logging.getLogger(__name__)

_STATUS: dict[type[DomainError], int] = {BadUserInput: 422, NotFound: 404}
# A socket's input is all in its URL, so its codes are 4000 + the 400 and 404
# the same values would get in an HTTP URL.
_CLOSE_CODES: dict[type[DomainError], int] = {BadUserInput: 4400, NotFound: 4404}
_FIELDS: dict[str, tuple[type, str]] = {
    "title": (str, "a string"),
    "completed": (bool, "a boolean"),
}
# The longest close reason a WebSocket frame can carry, in UTF-8 bytes.
_MAX_REASON = 123


class _HTTPError(Exception):
    """An error response: its status, and the code and message of its body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def todo_json(todo: Todo) -> dict[str, Any]:
    """A row as REST clients see it: the column names, id and times as strings."""
    return {
        "id": str(todo.id),
        "title": todo.title,
        "completed": todo.completed,
        "created_time": todo.created_time.isoformat(),
        "updated_time": todo.updated_time.isoformat(),
    }


class TodoCollection(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        todos = await _service(request).list_todos(_completed_filter(request))
        return JSONResponse([todo_json(t) for t in todos])

    async def post(self, request: Request) -> Response:
        body = await _body(request, required=("title",))
        todo = await _service(request).create_todo(body["title"], body.get("completed", False))
        location = request.app.url_path_for("todo", id=str(todo.id))
        return JSONResponse(todo_json(todo), status_code=201, headers={"Location": location})

    @staticmethod
    async def websocket(websocket: WebSocket) -> None:
        """Every change after ?after= (from now when absent), in commit order."""
        after = websocket.query_params.get("after")
        await _relay(websocket, _change_messages(_service(websocket), _hub(websocket), after))


class TodoItem(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        todo_id = _path_id(request)
        todo = await _service(request).get_todo(todo_id)
        if todo is None:
            raise NotFound(f"no todo with id {todo_id}")
        return JSONResponse(todo_json(todo))

    async def put(self, request: Request) -> Response:
        return await self._update(request, required=("title", "completed"))

    async def patch(self, request: Request) -> Response:
        return await self._update(request, required=())

    async def delete(self, request: Request) -> Response:
        await _service(request).delete_todo(_path_id(request))
        return Response(status_code=204)

    async def _update(self, request: Request, required: Collection[str]) -> Response:
        todo_id = _path_id(request)
        body = await _body(request, required)
        todo = await _service(request).update_todo(
            todo_id, body.get("title"), body.get("completed")
        )
        return JSONResponse(todo_json(todo))

    @staticmethod
    async def websocket(websocket: WebSocket) -> None:
        """The row now ("snapshot"), then each change to it; closes after
        "deleted", or with 4404 when there is no such row."""
        todo_id = websocket.path_params["id"]
        await _relay(websocket, _state_messages(_service(websocket), _hub(websocket), todo_id))


async def openapi_json(request: Request) -> Response:
    return JSONResponse(DOCUMENT)


def _service(conn: HTTPConnection) -> TodoService:
    # Lifespan state, copied into every request's scope by Starlette.
    service: TodoService = conn.state.service
    return service


def _hub(conn: HTTPConnection) -> Hub:
    hub: Hub = conn.state.hub
    return hub


def _path_id(request: Request) -> str:
    todo_id: str = request.path_params["id"]
    try:
        parse_id(todo_id)
    except BadUserInput as exc:
        raise _HTTPError(400, exc.code, exc.message) from None
    return todo_id


def _completed_filter(request: Request) -> bool | None:
    value = request.query_params.get("completed")
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _HTTPError(400, BadUserInput.code, f"completed must be true or false, not {value!r}")
    return value == "true"


async def _body(request: Request, required: Collection[str]) -> dict[str, Any]:
    """The JSON object in the body, each field of the right JSON type (the
    service judges the values)."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params.strip() else "utf-8"
    # JSON is UTF-8 (RFC 8259): a body declared otherwise would be misread.
    if media_type.strip().lower() != "application/json" or charset != "utf-8":
        raise _HTTPError(
            415, "UNSUPPORTED_MEDIA_TYPE", "the body must be application/json in UTF-8"
        )
    try:
        # orjson, unlike json, refuses NaN, lone surrogates and deep nesting.
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise _HTTPError(400, "MALFORMED_JSON", f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadUserInput("the body must be a JSON object")
    for name, value in body.items():
        if name not in _FIELDS:
            raise BadUserInput(f"unknown field: {name!r}")
        kind, kind_name = _FIELDS[name]
        if not isinstance(value, kind):
            raise BadUserInput(f"{name} must be {kind_name}")
    for name in required:
        if name not in body:
            raise BadUserInput(f"missing field: {name}")
    return body


async def _change_messages(
    service: TodoService, hub: Hub, after: str | None
) -> AsyncGenerator[dict[str, Any], None]:
    changes = await streams.changes(service, hub, after)
    async with contextlib.aclosing(changes):
        async for change in changes:
            yield {"op": change.op.value, "todo": todo_json(change.todo), "cursor": change.cursor}


async def _state_messages(
    service: TodoService, hub: Hub, todo_id: str
) -> AsyncGenerator[dict[str, Any], None]:
    last: Todo | None = None
    states = await streams.todo_states(service, hub, todo_id)
    async with contextlib.aclosing(states):
        async for state in states:
            # A deleted state has no row: show its last one, as the change feed does.
            todo = state.todo or last
            if todo is None:
                raise NotFound(f"no todo with id {todo_id}")
            last = todo
            op = "snapshot" if state.op is None else state.op.value
            yield {"op": op, "todo": todo_json(todo), "cursor": state.cursor}


async def _relay(websocket: WebSocket, messages: AsyncGenerator[dict[str, Any], None]) -> None:
    """Send each message, and a keepalive every settings.keepalive_seconds, until the
    stream ends (close 1000), fails (close 4400 or 4404) or the client leaves.
    Closing the stream, whichever way, unsubscribes from the hub."""
    await websocket.accept()
    code, reason = 1000, ""
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_keep_alive, websocket)
            tasks.start_soon(_cancel_on_disconnect, websocket, tasks.cancel_scope)
            try:
                async with contextlib.aclosing(messages):
                    async for message in messages:
                        await websocket.send_json(message)
            except DomainError as exc:
                code, reason = _CLOSE_CODES.get(type(exc), 1011), exc.message
            except Exception:
                logger.exception("stream failed on %s", websocket.url.path)
                code, reason = 1011, "internal error"
            tasks.cancel_scope.cancel()
    except* WebSocketDisconnect:
        pass  # the client left while we were sending
    if code == 1000 and _hub(websocket).closed:
        # The server is going away, not the resource: clients should resume.
        code, reason = 1012, "server restarting"
    if WebSocketState.DISCONNECTED not in (websocket.client_state, websocket.application_state):
        await websocket.close(code, _truncate(reason))


async def _keep_alive(websocket: WebSocket) -> None:
    settings: Settings = websocket.state.settings
    while True:
        await anyio.sleep(settings.keepalive_seconds)
        await websocket.send_json({"op": "keepalive"})


async def _cancel_on_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    # Clients have nothing to say on these sockets: read only to notice leaving.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()


def _truncate(reason: str) -> str:
    return reason.encode()[:_MAX_REASON].decode(errors="ignore")


def _error_response(error: _HTTPError) -> Response:
    body = {"error": {"code": error.code, "message": error.message}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _HTTPError)
    return _error_response(exc)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = _STATUS.get(type(exc), 500)
    return _error_response(_HTTPError(status, exc.code, exc.message))


async def _on_unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error_response(_HTTPError(500, "INTERNAL_SERVER_ERROR", "unexpected error"))


async def on_starlette_error(request: Request, exc: Exception) -> Response:
    # Starlette's own 404 (no such route) and 405 (with its Allow header).
    assert isinstance(exc, HTTPException)
    code = HTTPStatus(exc.status_code).name
    return _error_response(_HTTPError(exc.status_code, code, exc.detail, exc.headers))


routes: list[BaseRoute] = [
    Mount(
        "/api",
        routes=[
            Route("/openapi.json", openapi_json),
            Route("/todos/", TodoCollection),
            WebSocketRoute("/todos/", TodoCollection.websocket),
            Route("/todos/{id}/", TodoItem, name="todo"),
            WebSocketRoute("/todos/{id}/", TodoItem.websocket),
        ],
        # Every error under /api, ours or Starlette's, is a JSON body.
        middleware=[
            Middleware(
                ExceptionMiddleware,
                handlers={
                    _HTTPError: _on_http_error,
                    DomainError: _on_domain_error,
                    HTTPException: on_starlette_error,
                    Exception: _on_unexpected_error,
                },
            )
        ],
    ),
]
