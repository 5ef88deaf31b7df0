"""What internals/strawberry_sockets.py assumes of Strawberry's WebSocket handlers."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import strawberry
from starlette.types import Message, Scope
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL


def test_strawberry_asgi_adapter_keeps_the_starlette_websocket_as_ws() -> None:
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)


def test_the_asgi_view_runs_a_socket_as_run_on_a_websocket_of_its_scope() -> None:
    # serve_socket calls `run` on the front door's WebSocket in its stead.
    ran: list[object] = []

    class Recording(GraphQL[None, None]):
        async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
            ran.append(request)

    async def receive() -> Message:
        raise AssertionError("the view's __call__ reads nothing itself")

    async def send(message: Message) -> None:
        raise AssertionError("the view's __call__ sends nothing itself")

    scope: Scope = {"type": "websocket", "path": "/graphql", "headers": []}
    view = Recording(strawberry.Schema(query=_Query))
    asyncio.run(view(scope, receive, send))
    [websocket] = ran
    assert type(websocket) is WebSocket
    assert websocket.scope is scope
    assert (websocket._receive, websocket._send) == (receive, send)


@strawberry.type
class _Query:
    hello: str = "hello"
