"""edge/socket_routes.py: a handshake to a path no WebSocket route serves is
refused before the upgrade, on the way the GraphQL socket's front door sends
every other socket; HTTP passes from that door straight to Starlette."""

from __future__ import annotations

import inspect

from starlette.applications import Starlette
from starlette.types import Message

from graphql_todos.app import create_app
from graphql_todos.core.settings import Settings
from graphql_todos.edge import guard
from graphql_todos.edge.socket_routes import SocketRoutes
from graphql_todos.graphql.socket import GraphQLSockets


async def _never() -> Message:
    raise AssertionError("nothing is read before the coroutine runs")


async def _refuse(message: Message) -> None:
    raise AssertionError("nothing is sent before the coroutine runs")


def test_http_goes_from_the_socket_door_to_starlette_with_no_layer_between() -> None:
    app = create_app(Settings(database_url="postgresql://unused", web_dist=None))
    sockets = app._front.app  # type: ignore[attr-defined] # HostCheck's next
    assert isinstance(sockets, GraphQLSockets)
    assert getattr(sockets.app, "__func__", None) is Starlette.__call__, sockets.app
    assert isinstance(sockets.others, SocketRoutes)
    assert sockets.others.app is sockets.app


def test_each_scope_takes_its_way() -> None:
    """A socket where none is served: the refusal's coroutine; one served,
    and any HTTP request: Starlette's."""
    app = create_app(Settings(database_url="postgresql://unused", web_dist=None))
    for kind, path, door in [
        ("websocket", "/nope", guard.refused),
        ("websocket", "/api/feed/", Starlette.__call__),
        ("http", "/nope", Starlette.__call__),
        ("http", "/healthz", Starlette.__call__),
    ]:
        scope = {"type": kind, "path": path, "headers": [(b"host", b"127.0.0.1")], "method": "GET"}
        called = app(scope, _never, _refuse)
        assert inspect.iscoroutine(called)
        assert called.cr_code is door.__code__, (kind, path)
        called.close()
