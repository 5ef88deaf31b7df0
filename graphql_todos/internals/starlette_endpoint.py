"""Starlette's HTTPEndpoint, its methods worked out once per class: Starlette's
lists the allowed methods as each request's endpoint is made and asks whether
its handler is a coroutine function as each is dispatched (about 6% of a REST
write's CPU, py-spy under wrk). JsonBytes, a Response whose headers are
made without init_headers' general case. And ExceptionAnswers: what an
ExceptionMiddleware does to an HTTP request, for a layer whose own send
wrapper stands for the middleware's (one wrapper where there were two)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from starlette._exception_handler import wrap_app_handling_exceptions
from starlette._utils import is_async_callable
from starlette.endpoints import HTTPEndpoint
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The methods HTTPEndpoint answers, in the order of its Allow header.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")

Handler = Callable[[Any, Request], Awaitable[Response]]


class JsonBytes(Response):
    """Response(body, status_code, headers, media_type="application/json")
    for a body already in bytes, a status that has one (not 1xx, 204 or
    304), and headers (none a Content-Length or Content-Type) given as the
    raw pairs init_headers would make of them (names in lower case): the
    headers it makes for that (those given, the length, then the type),
    made directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200, raw_headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(body, status_code)
        if raw_headers:
            self.raw_headers[:0] = raw_headers

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        self.raw_headers = [(b"content-length", str(len(self.body)).encode()), (b"content-type", b"application/json")]


class Endpoint(HTTPEndpoint):
    """An HTTPEndpoint whose handlers (all async) are found as its class is
    made; a method it has none for is answered by Starlette's
    method_not_allowed, with the same Allow header."""

    _handlers: ClassVar[dict[str, Handler]] = {}
    _allowed: ClassVar[list[str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, Handler] = {}
        for method in METHODS:
            # HEAD without a head() is answered by get(), as in HTTPEndpoint.dispatch.
            handler = getattr(cls, method.lower(), None) or (getattr(cls, "get", None) if method == "HEAD" else None)
            if handler is None:
                continue
            if not is_async_callable(handler):
                # HTTPEndpoint would run it in a thread; none of ours is meant to.
                raise TypeError(f"{cls.__name__}.{method.lower()} is not async")
            handlers[method] = handler
        cls._handlers = handlers
        cls._allowed = list(handlers)

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HTTPEndpoint.__init__ less its per-request list of the allowed methods.
        self.scope = scope
        self.receive = receive
        self.send = send
        self._allowed_methods = self._allowed  # read by method_not_allowed

    async def dispatch(self) -> None:
        request = Request(self.scope, receive=self.receive, send=self.send)
        handler = self._handlers.get(request.method)
        if handler is None:
            response = await self.method_not_allowed(request)
        else:
            response = await handler(self, request)
        await response(self.scope, self.receive, self.send)


# Where ExceptionMiddleware leaves its handler tables for the routes.
HANDLERS = "starlette.exception_handlers"
# The start _again replays to Starlette's own layer, and keeps from the client.
_BEGUN: Message = {"type": "http.response.start", "status": 500, "headers": []}


class ExceptionAnswers:
    """ExceptionMiddleware(app, handlers)'s work on an HTTP request, for a
    layer that runs the app itself with a send wrapper of its own, which
    notes when the response starts (as Starlette's does) besides its own
    part: the tables put in the scope (`tables`, before the app runs), and
    the answer to an exception the app raised (`answer`), given whether the
    response had started. No Request is made but for an exception.

    Assumes (tests/internals/test_starlette_endpoint.py pins it): for an
    HTTP request, ExceptionMiddleware.__call__ sets scope[HANDLERS] to its
    exception and status tables, makes Request(scope, receive, send) and
    runs wrap_app_handling_exceptions(app, that request), whose wrapper of
    send notes a start message before passing it on, and which alone decides
    what an exception gets."""

    def __init__(self, middleware: ExceptionMiddleware) -> None:
        self.tables = (middleware._exception_handlers, middleware._status_handlers)

    async def answer(self, exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send) -> None:
        """What wrap_app_handling_exceptions does with `exc` raised by its app
        (`started`: after a start message): its own code, run again."""
        request = Request(scope, receive, send)
        await _again(lambda app: wrap_app_handling_exceptions(app, request), exc, started, scope, receive, send)


async def _again(
    layer: Callable[[ASGIApp], ASGIApp], exc: Exception, started: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    """What `layer` does with `exc` raised by the app it wraps, after a start
    message when `started` (a start it notes and `send` never sees)."""

    async def raising(scope: Scope, receive: Receive, sender: Send) -> None:
        if started:
            await sender(_BEGUN)
        raise exc

    async def passing(message: Message) -> None:
        if message is not _BEGUN:
            await send(message)

    await layer(raising)(scope, receive, passing)

