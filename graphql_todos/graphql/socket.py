"""The GraphQL WebSocket's front door: a socket on /graphql goes straight to
the GraphQL view's socket handling, past Starlette itself (app.py's TodoApp
puts this door ahead of it), its middleware stack and router, and the
view's ASGI entry.

Every layer there stays on an open socket's stack for as long as it lives
(a coroutine frame each, and a WebSocket object of their own for the two
ExceptionMiddlewares and the view): memory that 10,000 subscribers pay
10,000 times, and CPU at every handshake. This front does what those
layers do for this one socket, with the same code: guard.SocketGate's Origin and
sockets-per-client checks (security.HostCheck, outside it, has checked the
Host; the upgrade's credential is found here, and one in connection_init's
payload is checked there, see graphql/view.py),
metrics.open_stream's gauges, error_handlers' answers. HTTP, and every other
socket, go through the stack as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_todos.core import metrics, paths
from graphql_todos.core.errors import DomainError
from graphql_todos.edge import error_handlers
from graphql_todos.edge.access import PRINCIPAL, Access, authorization, is_bearer
from graphql_todos.edge.guard import SocketGate
from graphql_todos.graphql.view import OFFER_DECIDES, TodoGraphQL
from graphql_todos.internals.strawberry_sockets import WEBSOCKET_PROTOCOLS, new_websocket, serve_socket


class GraphQLSockets:
    """ASGI middleware, outermost but the Host check: the /graphql WebSocket to `graphql`."""

    def __init__(
        self, app: ASGIApp, graphql: TodoGraphQL, sockets: SocketGate, access: Access,
        others: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.graphql = graphql
        self.sockets = sockets
        self.access = access
        # Every other socket's way to `app` (app.py: edge/socket_routes.py's,
        # which refuses a path no socket serves): no layer of its own on HTTP's.
        self.others = app if others is None else others(app)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: what it lets through is the next layer's own
        # coroutine, so this layer adds no frame to every HTTP request.
        if scope["type"] != "websocket":
            return self.app(scope, receive, send)
        if scope["path"] != paths.GRAPHQL:
            return self.others(scope, receive, send)
        return self._socket(scope, receive, send)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = new_websocket(scope, receive, send)
        if not await self.sockets.admit(websocket):
            return
        try:
            # The upgrade's credential (header or cookie); connection_init's
            # payload may bring one yet (graphql/view.py).
            headers = websocket.headers
            try:
                principal = await self.access.authenticate(scope, headers)
            except DomainError:
                # Accepted only to say why (a refused handshake carries no
                # close code), in the subprotocol the view would speak.
                await websocket.accept(self._spoken(scope))
                raise
            scope[PRINCIPAL] = principal
            # The first bearer credential decides: one in connection_init's
            # payload, unless the upgrade's Authorization was one (even a
            # wrong one: never passed over), and over the upgrade's cookie.
            # Open mode has no cookie: a principal it let in stands.
            scope[OFFER_DECIDES] = (
                not is_bearer(authorization(headers.raw)) if self.access.accounts else principal is None
            )
            with metrics.open_stream(metrics.transport_of(scope)):
                # The view's socket, on this WebSocket (and the headers it read).
                await serve_socket(self.graphql, websocket)
        except Exception as exc:  # noqa: BLE001 - answered as ExceptionMiddleware would
            await error_handlers.answer_socket(websocket, exc)
        finally:
            self.sockets.leave(websocket)
            metrics.observe_pool(scope)

    def _spoken(self, scope: Scope) -> str | None:
        """The first subprotocol the client offers that the view speaks."""
        speaks = self.graphql.protocols
        return next((p for p in scope.get("subprotocols", ()) if p in speaks and p in WEBSOCKET_PROTOCOLS), None)
