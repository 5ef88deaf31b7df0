"""The WebSocket handshake to a path no WebSocket route serves, refused
before the upgrade as the HTTP request would be (404, the Error shape).

Starlette's router answers such a handshake by closing before accepting
(uvicorn's bare 403 "Forbidden"), and behind the guard, which authenticates
a socket before routing it, one without a credential was upgraded (101) only
to be closed with 4401: either way a client could not tell a wrong URL from
a refusal of its credential."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_todos.core.errors import ErrorCode
from graphql_todos.edge.guard import refused

NOT_SERVED = "no WebSocket is served at this path"


class SocketRoutes:
    """ASGI app, on the way the GraphQL socket's front door (graphql/socket.py)
    sends every other WebSocket, before the guard (app.py): a handshake whose
    path `routes` serve no WebSocket at is refused with 404; anything else
    passes on to `app`. Not a layer of the front: HTTP never comes here."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: an HTTP request's stack gets no frame from it.
        if scope["type"] != "websocket" or served(self.routes, scope):
            return self.app(scope, receive, send)
        return refused(scope, receive, send, ErrorCode.NOT_FOUND, NOT_SERVED)


def served(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    """A WebSocket route of `routes` (within their Mounts) matches `scope`,
    as Starlette's router matches it (`matches`, a Mount's child scope)."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            if not isinstance(route, Mount):
                return True
            if served(route.routes, {**scope, **child}):
                return True
    return False
