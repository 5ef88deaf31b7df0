"""What internals/starlette_endpoint.py assumes of Starlette's HTTPEndpoint
(it answers each method as HTTPEndpoint would, with the same Allow header)
and of its ExceptionMiddleware (ExceptionAnswers answers as it does)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_todos.internals.starlette_endpoint import (
    HANDLERS,
    METHODS,
    Endpoint,
    ExceptionAnswers,
    JsonBytes,
)
from graphql_todos.rest import auth, lists, resources


class _Handlers:
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("got " + request.method)

    async def post(self, request: Request) -> Response:
        return PlainTextResponse("posted", status_code=201)


class _Plain(_Handlers, HTTPEndpoint):
    pass


class _Ours(_Handlers, Endpoint):
    pass


class _HeadedPlain(_Plain):
    async def head(self, request: Request) -> Response:
        return PlainTextResponse("", headers={"x-head": "own"})


class _HeadedOurs(_Ours):
    async def head(self, request: Request) -> Response:
        return PlainTextResponse("", headers={"x-head": "own"})


def _everything(base: type) -> type:
    """A class with a handler for every method HTTPEndpoint knows."""
    async def handler(self: object, request: Request) -> Response:
        return PlainTextResponse(request.method)

    return type("Everything", (base,), {method.lower(): handler for method in METHODS})


def _scope(method: str) -> Scope:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "headers": [],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }


async def _nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _nowhere(message: Message) -> None:
    pass


def _answer(app: ASGIApp, method: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def call() -> None:
        await app(_scope(method), _nothing, send)

    asyncio.run(call())
    start, *bodies = sent
    return start["status"], start["headers"], b"".join(body.get("body", b"") for body in bodies)


ASKED = (*METHODS, "TRACE", "BREW")


@pytest.mark.parametrize(
    ("plain", "ours"), [(_Plain, _Ours), (_HeadedPlain, _HeadedOurs), (_everything(HTTPEndpoint), _everything(Endpoint))]
)
def test_each_method_is_answered_as_httpendpoint_answers_it(plain: type, ours: type) -> None:
    # In an app, a method without a handler raises HTTPException(405) to its handler.
    for app in (lambda cls: Starlette(routes=[Route("/", cls)]), lambda cls: cls):
        for method in ASKED:
            assert _answer(app(ours), method) == _answer(app(plain), method), method


def test_httpendpoint_sets_what_endpoint_sets_instead_of_its_init() -> None:
    """Endpoint skips HTTPEndpoint.__init__: Starlette's sets nothing more,
    and the allowed methods it lists as each is made are the ones listed per class."""
    rest: list[type[Endpoint]] = [resources.TodoCollection, resources.TodoItem, *(
        cls for module in (auth, lists) for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, Endpoint) and cls is not Endpoint
    )]
    assert len(rest) > 5
    classes: list[type[Endpoint]] = [_Ours, _HeadedOurs, _everything(Endpoint), *rest]
    for cls in classes:
        ours = cls(_scope("GET"), _nothing, _nowhere)
        plain = cls.__new__(cls)
        HTTPEndpoint.__init__(plain, _scope("GET"), _nothing, _nowhere)
        assert vars(plain) == vars(ours), cls


def test_a_handler_that_is_not_async_is_refused_as_its_class_is_made() -> None:
    """HTTPEndpoint would run it in a thread: none of ours is meant to."""
    with pytest.raises(TypeError, match="Sync.get is not async"):
        type("Sync", (Endpoint,), {"get": lambda self, request: PlainTextResponse("")})


@pytest.mark.parametrize("body", [b"", b"{}", b'{"data":{"createTodo":null}}', b"x" * 100_000])
@pytest.mark.parametrize("media_type", [None, "application/graphql-response+json"])
@pytest.mark.parametrize(
    ("status", "headers"), [(200, {}), (201, {"Location": "/api/todos/x/", "Journal-Cursor": "7"}), (422, {"X-A": "b"})]
)
def test_json_bytes_is_sent_as_a_json_response_of_the_same_bytes(
    body: bytes, media_type: str | None, status: int, headers: dict[str, str]
) -> None:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    plain = Response(body, status, headers or None, media_type="application/json")
    ours = JsonBytes(body) if status == 200 and not headers else JsonBytes(body, status, raw)
    for response in (plain, ours):
        # As graphql/http.negotiate gives a response the media type negotiated.
        if media_type is not None:
            response.headers["content-type"] = media_type
    assert (ours.status_code, ours.media_type, ours.body, ours.background) == (
        plain.status_code, plain.media_type, plain.body, plain.background
    )
    assert ours.raw_headers == plain.raw_headers
    assert _sent(ours) == _sent(plain)


def _sent(response: Response) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(response(_scope("POST"), _nothing, send))
    return sent


class _Raising:
    """An app that sends `sent` messages, then raises `exc` (when one is given)."""

    def __init__(self, sent: int, exc: Exception | None) -> None:
        self.sent, self.exc = sent, exc
        self.handlers: tuple[dict[Any, Any], dict[int, Any]] = ({}, {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.handlers = scope.get(HANDLERS, ({}, {}))
        messages: list[Message] = [
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]},
            {"type": "http.response.body", "body": b"ok"},
        ]
        for message in messages[: self.sent]:
            await send(message)
        if self.exc is not None:
            raise self.exc


async def _on_value(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"{request.url.path}: {exc}", status_code=418, headers={"x-seen": "1"})


async def _on_nothing(request: Request, exc: Exception) -> None:
    return None


_TABLE: dict[Any, Any] = {ValueError: _on_value, KeyError: _on_nothing, 409: _on_value}


class _OneWrapper:
    """A layer as the write door's: its own send wrapper notes the start,
    ExceptionAnswers does the rest of ExceptionMiddleware's work."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers = ExceptionAnswers(ExceptionMiddleware(app, handlers=_TABLE))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        scope[HANDLERS] = self.answers.tables
        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - as ExceptionMiddleware's
            await self.answers.answer(exc, started, scope, receive, sending)


@pytest.mark.parametrize("sent", [0, 1, 2])
@pytest.mark.parametrize(
    "exc",
    [None, ValueError("bad"), KeyError("k"), LookupError("unhandled"), HTTPException(409), HTTPException(404, headers={"x": "y"})],
    ids=repr,
)
def test_exception_answers_answer_as_exception_middleware(sent: int, exc: Exception | None) -> None:
    """ExceptionMiddleware's work, its tables in the scope and its answer to
    each exception before and after the start (a handler's own answer, none,
    one raised again, Starlette's RuntimeError) as ExceptionMiddleware's own."""

    def outcome(layer: Callable[[ASGIApp], ASGIApp]) -> tuple[list[Message], str, object]:
        app = _Raising(sent, exc)
        messages: list[Message] = []

        async def send(message: Message) -> None:
            messages.append(message)

        async def answered() -> None:
            await layer(app)(_scope("POST"), _nothing, send)

        try:
            asyncio.run(answered())
            raised = ""
        except Exception as caught:  # noqa: BLE001 - compared
            raised = f"{type(caught).__name__}: {caught} from {caught.__cause__!r}"
        exceptions, statuses = app.handlers
        return messages, raised, ({kind: getattr(h, "__func__", h) for kind, h in exceptions.items()}, statuses)

    assert outcome(_OneWrapper) == outcome(lambda app: ExceptionMiddleware(app, handlers=_TABLE))

