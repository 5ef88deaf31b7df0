"""What internals/strawberry_sockets.py assumes of Strawberry's WebSocket handlers."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import strawberry
from starlette.types import Message, Scope
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.async_base_view import AsyncBaseHTTPView

from graphql_todos.graphql.view import TodoGraphQL


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


def test_run_makes_a_graphql_transport_ws_socket_as_serve_socket_does() -> None:
    # _serve_transport_ws does these steps itself, in this order.
    run = inspect.getsource(AsyncBaseHTTPView.run)
    steps = (
        "self._check_websocket_origin(",
        "return await self.reject_websocket(request)",
        "await self.get_root_value(request)",
        "websocket_subprotocol = await self.pick_websocket_subprotocol(request)",
        "await self.create_websocket_response(",
        "websocket = self.websocket_adapter_class(self, request, websocket_response)",
        "await self.get_context(request, response=websocket_response)",
        "if websocket_subprotocol == GRAPHQL_TRANSPORT_WS_PROTOCOL:",
        "await self.graphql_transport_ws_handler_class(",
    )
    positions = [run.index(step) for step in steps]
    assert positions == sorted(positions)
    handler = run[positions[-1] : run.index(").handle()", positions[-1])]
    assert handler.split() == [
        "await", "self.graphql_transport_ws_handler_class(", "view=self,", "websocket=websocket,",
        "context=context,", "root_value=root_value,", "schema=self.schema,",
        "connection_init_wait_timeout=self.connection_init_wait_timeout,",
        "max_subscriptions_per_connection=self.max_subscriptions_per_connection,",
    ]
    # The ASGI view's: no root value; the accept with the subprotocol, the
    # WebSocket its own response; the first offered subprotocol it speaks.
    assert asyncio.run(GraphQL.get_root_value(None, None)) is None  # type: ignore[arg-type]
    accept = inspect.getsource(GraphQL.create_websocket_response)
    assert "await request.accept(subprotocol=subprotocol)" in accept and "return request" in accept
    pick = inspect.getsource(GraphQL.pick_websocket_subprotocol)
    assert "sorted(intersection, key=protocols.index)" in pick and "self.websocket_subprotocols" in pick
    # Ours overrides none of them.
    for name in ("run", "get_root_value", "create_websocket_response", "pick_websocket_subprotocol"):
        assert getattr(TodoGraphQL, name) is getattr(GraphQL, name), name
