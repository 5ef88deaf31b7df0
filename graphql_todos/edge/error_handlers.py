"""JSON errors for the whole app: every error outside GraphQL (which answers
in its own shape) becomes `{"error": {"code", "message"}}` with the status
the code has in errors.ErrorCode; on a WebSocket, a close with its code."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

# error_body's home is core (the doors answer in its shape too); imported from here as well.
from graphql_todos.core.errors import DomainError, ErrorCode, RequestError, error_body
from graphql_todos.internals.starlette_endpoint import METHODS

logger = logging.getLogger(__name__)

# The longest close reason a WebSocket frame can carry, in UTF-8 bytes.
MAX_CLOSE_REASON = 123


def close_reason(reason: str) -> str:
    return reason.encode()[:MAX_CLOSE_REASON].decode(errors="ignore")


def header_text(value: str | bytes) -> str:
    """A header value as its client wrote it: HTTP's charset is latin-1, so
    the server hands headers over decoded as latin-1 (or as bytes), but
    clients write their text in UTF-8; read as UTF-8 where its bytes are, so
    a message quoting it says what was sent, not its mojibake."""
    raw = value if isinstance(value, bytes) else value.encode("latin-1")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _answer(
    conn: HTTPConnection,
    code: ErrorCode,
    message: str,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, object] | None = None,
) -> Response | None:
    if isinstance(conn, WebSocket):
        await conn.close(code.close_code, close_reason(message))
        return None
    body = error_body(code, message, details)
    return JSONResponse(body, status_code=status or code.http_status, headers=headers)


async def _on_domain_error(conn: HTTPConnection, exc: Exception) -> Response | None:
    assert isinstance(exc, DomainError)
    return await _answer(conn, exc.code, exc.message, details=exc.details())


async def _on_request_error(conn: HTTPConnection, exc: Exception) -> Response | None:
    assert isinstance(exc, RequestError)
    return await _answer(conn, exc.code, exc.message, exc.status, exc.headers, exc.details)


async def _on_starlette_error(conn: HTTPConnection, exc: Exception) -> Response | None:
    # Starlette's own 404 (no such route) and 405 (with its Allow header).
    assert isinstance(exc, HTTPException)
    code = ErrorCode.for_status(exc.status_code)
    headers = exc.headers
    if headers is not None and "Allow" in headers:
        # A Route's Allow joins a set, in an order that changes with each
        # process's string hashes: put in METHODS' order, as an Endpoint's is.
        allowed = {method.strip() for method in headers["Allow"].split(",")}
        headers = {**headers, "Allow": ", ".join(method for method in METHODS if method in allowed)}
    return await _answer(conn, code, exc.detail, exc.status_code, headers)


async def _on_client_gone(conn: HTTPConnection, exc: Exception) -> Response | None:
    # The client left before its body was whole: nobody to answer, nothing failed.
    return None


async def _on_unexpected_error(conn: HTTPConnection, exc: Exception) -> Response | None:
    logger.error("%s failed", conn.url.path, exc_info=exc)
    return await _answer(conn, ErrorCode.INTERNAL_SERVER_ERROR, "unexpected error")


Handler = Callable[[HTTPConnection, Exception], Awaitable[Response | None]]

# For Starlette(exception_handlers=...): the router's own ExceptionMiddleware
# must answer Starlette's 404 and 405 before they reach anything else.
EXCEPTION_HANDLERS: dict[type[Exception], Handler] = {
    DomainError: _on_domain_error,
    RequestError: _on_request_error,
    HTTPException: _on_starlette_error,
    ClientDisconnect: _on_client_gone,
}


async def answer_socket(websocket: WebSocket, exc: Exception) -> None:
    """Answer an exception a WebSocket's app raised as the handlers above do,
    for the sockets no ExceptionMiddleware is in front of (graphql/socket.py)."""
    handler = next((h for kind, h in EXCEPTION_HANDLERS.items() if isinstance(exc, kind)), _on_unexpected_error)
    await handler(websocket, exc)


# Starlette hands an app-level Exception handler to ServerErrorMiddleware,
# which answers and then raises again (a second traceback in the log); an
# ExceptionMiddleware of our own answers and stops there.
MIDDLEWARE = [Middleware(ExceptionMiddleware, handlers={Exception: _on_unexpected_error})]  # type: ignore[dict-item]


def answering(app: ASGIApp) -> ASGIApp:
    """The stack's two ExceptionMiddlewares (the router's with
    EXCEPTION_HANDLERS inside ours with Exception's) as one, for a front door
    that skips the stack (graphql/fast/write_door.py): a handler is looked up
    by the exception's class, most specific first, so each exception gets
    the handler it gets in the stack."""
    return ExceptionMiddleware(app, handlers={**EXCEPTION_HANDLERS, Exception: _on_unexpected_error})  # type: ignore[dict-item]


class ShutdownCut:
    """ASGI middleware, outermost: a request still running when shutdown's
    SHUTDOWN_SECONDS run out is cancelled by uvicorn, which would log the
    cancellation with a traceback and answer a bare 500. It gets 503
    SHUTTING_DOWN instead (or, with its answer begun, the connection's end)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            hub = scope.get("state", {}).get("hub")
            if scope["type"] != "http" or hub is None or not hub.closed:
                raise
            body = error_body(ErrorCode.SHUTTING_DOWN, "the server is shutting down: try again")
            response = JSONResponse(body, ErrorCode.SHUTTING_DOWN.http_status, {"Connection": "close"})
            try:
                await response(scope, receive, send)
            except RuntimeError:
                # uvicorn refuses a second start: the answer had begun. It
                # closes the connection as the request returns.
                pass
