"""Each GraphQL socket's bound on queries and mutations in flight
(REQUESTS_IN_FLIGHT, strawberry_sockets.Limited.requests_limit) is the
view's attribute, set from the settings once (graphql/view.py), as
send_timeout_seconds is: both handlers read it at each open without the
socket's scope (`scope["state"]["settings"]`, and for the legacy handler
websocket_of's call): 9 bytecodes an open to 4 (graphql-transport-ws,
_serve_transport_ws: 101 -> 96 per open, bench.opening --bytecodes), 13 and
a call to 5 (graphql-ws). tests/graphql/test_sockunify_sockets.py holds the
setting's bound through a real server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from starlette.types import Message
from starlette.websockets import WebSocket

from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import Access
from graphql_todos.edge.response_cache import ResponseCache
from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.internals.strawberry_legacy_ws import GatedLegacyWs
from graphql_todos.internals.strawberry_sockets import _serve_transport_ws


class _Served(Exception):
    pass


def _stateless_websocket() -> WebSocket:
    """A socket whose scope has no lifespan state at all."""

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    return WebSocket({"type": "websocket", "path": "/graphql", "headers": []}, receive, send)


def test_a_graphql_transport_ws_handler_takes_its_bound_from_the_view() -> None:
    limits: list[int] = []

    class Handler:
        def __init__(self, **_: Any) -> None:
            pass

        async def handle(self) -> None:
            limits.append(self.requests_limit)  # type: ignore[attr-defined]

    async def get_context(*_: Any, **__: Any) -> None:
        return None

    view = SimpleNamespace(
        websocket_adapter_class=lambda *_: None, get_context=get_context, graphql_transport_ws_handler_class=Handler,
        schema=None, connection_init_wait_timeout=timedelta(seconds=1), max_subscriptions_per_connection=None,
        requests_in_flight=7,
    )
    asyncio.run(_serve_transport_ws(view, _stateless_websocket()))  # type: ignore[arg-type]
    assert limits == [7]


def test_a_graphql_ws_handler_takes_its_bound_from_the_view() -> None:
    async def no_messages(**_: Any) -> Any:
        return
        yield

    adapter = SimpleNamespace(ws=_stateless_websocket(), iter_json=no_messages)
    view = SimpleNamespace(connection_init_wait_timeout=timedelta(seconds=1), requests_in_flight=7)
    handler = GatedLegacyWs(
        view=view, websocket=adapter, context=None, root_value=None, schema=None,  # type: ignore[arg-type]
        keep_alive=False, keep_alive_interval=None, max_subscriptions_per_connection=None,
    )
    asyncio.run(handler.handle())
    assert handler.requests_limit == 7


def test_the_view_keeps_the_setting() -> None:
    settings = Settings(requests_in_flight=9)
    view = TodoGraphQL(settings, ResponseCache(0), Access(settings))
    assert view.requests_in_flight == 9
