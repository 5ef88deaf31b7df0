"""What internals/strawberry_sockets.py assumes of Strawberry's WebSocket handlers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import strawberry
from starlette.types import Message, Scope
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol

from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.internals.strawberry_legacy_ws import GatedLegacyWs
from graphql_todos.internals.strawberry_sockets import (
    LIMIT_REACHED,
    WEBSOCKET_PROTOCOLS,
    SendsUntilClosed,
    _serve_transport_ws,
    closed,
    new_websocket,
)
from graphql_todos.internals.strawberry_transport_ws import GatedTransportWs


def test_strawberry_asgi_adapter_keeps_the_starlette_websocket_as_ws() -> None:
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)


def test_new_websocket_is_what_starlette_s_init_makes() -> None:
    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": "websocket", "path": "/graphql", "headers": [(b"host", b"here")]}
    ours, starlette = new_websocket(scope, receive, send), WebSocket(scope, receive, send)
    assert type(ours) is WebSocket and vars(ours) == vars(starlette)
    assert ours.client_state is ours.application_state is WebSocketState.CONNECTING
    assert ours.headers == starlette.headers


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
    # serve_socket reads `protocols` and WEBSOCKET_PROTOCOLS for this list.
    speaks = inspect.getsource(AsyncBaseHTTPView.websocket_subprotocols.fget)  # type: ignore[attr-defined]
    assert "for protocol in self.protocols" in speaks
    assert "if protocol in (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL)" in speaks
    assert set(WEBSOCKET_PROTOCOLS) == {GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL}
    # Ours overrides none of them.
    for name in ("run", "get_root_value", "create_websocket_response", "pick_websocket_subprotocol"):
        assert getattr(TodoGraphQL, name) is getattr(GraphQL, name), name


def test_strawberrys_origin_check_passes_a_socket_without_origin_which_serve_socket_does_not_ask_it() -> None:
    # _serve_transport_ws asks the check only of a handshake with an Origin:
    # without one, the check passes it (so asking is only CPU).
    check = inspect.getsource(AsyncBaseHTTPView._check_websocket_origin)
    assert check.index("headers = self.get_websocket_headers(request)") < check.index(
        'origin = headers.get("origin")'
    ) < check.index("if origin is None:\n            return True")
    assert "return request.headers" in inspect.getsource(GraphQL.get_websocket_headers)
    for name in ("_check_websocket_origin", "get_websocket_headers"):
        assert getattr(TodoGraphQL, name) is getattr(GraphQL, name), name
    view = GraphQL[None, None](strawberry.Schema(query=_Query), allowed_origins=["https://app.example"])
    host = (b"host", b"127.0.0.1:8000")

    def socket(*headers: tuple[bytes, bytes]) -> WebSocket:
        async def receive() -> Message:
            raise AssertionError("nothing read")

        async def send(message: Message) -> None:
            raise AssertionError("nothing sent")

        return WebSocket({"type": "websocket", "path": "/graphql", "headers": list(headers)}, receive, send)

    assert view._check_websocket_origin(socket(host))
    assert view._check_websocket_origin(socket(host, (b"origin", b"https://app.example")))
    assert not view._check_websocket_origin(socket(host, (b"origin", b"https://evil.example")))

    # With an Origin, the check decides: a refused one is rejected, nothing accepted.
    rejected: list[WebSocket] = []

    class Refusing(GraphQL[None, None]):
        def _check_websocket_origin(self, request: Any) -> bool:
            return False

        async def reject_websocket(self, request: Any) -> Any:
            rejected.append(request)

    foreign = socket(host, (b"origin", b"https://evil.example"))
    asyncio.run(_serve_transport_ws(Refusing(strawberry.Schema(query=_Query)), foreign))
    assert rejected == [foreign]


class _Stop(Exception):
    pass


def _stop(*_: object) -> None:
    raise _Stop


async def _accepted(accept: Any, first: Message) -> tuple[object, ...]:
    """What `accept` sends, and the states it leaves, on a new WebSocket whose first message is `first`."""
    sent: list[Message] = []

    async def receive() -> Message:
        return first

    async def send(message: Message) -> None:
        sent.append(message)

    websocket = WebSocket({"type": "websocket", "path": "/graphql", "headers": []}, receive, send)
    try:
        await accept(websocket)
    except RuntimeError as refused:
        return (str(refused),)
    return sent, websocket.client_state, websocket.application_state


def test_serve_transport_ws_accepts_as_starlette_s_accept_does() -> None:
    async def ours(websocket: WebSocket) -> None:
        # The view's adapter, the step after the accept, stops it there.
        view: Any = type("View", (), {"websocket_adapter_class": staticmethod(_stop)})()
        try:
            await _serve_transport_ws(view, websocket)
        except _Stop:
            return

    async def starlette_s(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=GRAPHQL_TRANSPORT_WS_PROTOCOL)

    for first in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "{}"}):
        assert asyncio.run(_accepted(ours, first)) == asyncio.run(_accepted(starlette_s, first))
    assert asyncio.run(_accepted(ours, {"type": "websocket.connect"}))[1:] == (
        WebSocketState.CONNECTED, WebSocketState.CONNECTED)


# strawberry_sockets.closed: a send to a closed socket, dropped quietly.


def test_every_message_of_both_handlers_goes_out_through_send_message() -> None:
    # Their `send_message` (ours) is where a send to a closed socket is
    # dropped: the transport-ws Operation's `next`, `error` and `complete`
    # call the handler's, and nothing else of either handler sends.
    assert "await self.handler.send_message(message)" in inspect.getsource(Operation.send_operation_message)
    for base in (BaseGraphQLTransportWSHandler, BaseGraphQLWSHandler):
        source = inspect.getsource(base)
        assert source.count(".send_json(") == 1
        assert "await self.websocket.send_json(message)" in inspect.getsource(base.send_message)
    # Why it must be there: Strawberry's run logs whatever a send raises
    # (but its own _OperationStreamClosed), and its legacy operation
    # answers `complete` when cancelled, which the socket's end does.
    run = inspect.getsource(BaseGraphQLTransportWSHandler.run_operation)
    assert "except Exception as error:" in run and "await self.handle_task_exception(error)" in run
    legacy = inspect.getsource(BaseGraphQLWSHandler.handle_async_results)
    assert "except asyncio.CancelledError:\n            await self.send_message(" in legacy
    # Both handlers send through ours: it stands first among their bases.
    assert GatedTransportWs.send_message is GatedLegacyWs.send_message is SendsUntilClosed.send_message


def test_the_asgi_adapter_says_a_client_gone_as_websocket_disconnected() -> None:
    # Starlette's WebSocketDisconnect (its send's answer to the server's
    # OSError, ClientDisconnected: 1006) becomes Strawberry's.
    source = inspect.getsource(ASGIWebSocketAdapter.send_json)
    assert "except WebSocketDisconnect as exc:\n            raise WebSocketDisconnected from exc" in source
    send = inspect.getsource(WebSocket.send)
    assert "except OSError:" in send and "raise WebSocketDisconnect(code=1006)" in send


def test_uvicorn_s_websockets_protocol_refuses_a_send_after_the_client_s_close_with_a_bare_runtime_error() -> None:
    # Its receive, handed the close, sets closed_event; a send then raises a
    # RuntimeError, no OSError (which Starlette would turn into a
    # disconnect) nor Starlette's WebSocketDisconnected; Starlette's receive
    # (and our receive loop, tests/internals/test_strawberry_transport_ws)
    # has set the client's state DISCONNECTED by then.
    pinned: dict[Callable[..., Any], list[str]] = {
        WebSocketProtocol.asgi_receive: ["except ConnectionClosed:\n            self.closed_event.set()"],
        WebSocketProtocol.asgi_send: [
            "elif not self.closed_event.is_set() and self.initial_response is None:",
            "raise RuntimeError(\n                f\"Unexpected ASGI message '{message['type']}', after sending 'websocket.close' ",
        ],
        WebSocket.receive: ["self.client_state = WebSocketState.DISCONNECTED"],
    }
    for function, fragments in pinned.items():
        source = inspect.getsource(function)
        assert all(fragment in source for fragment in fragments), function


def test_closed_is_a_disconnect_or_a_runtime_error_once_the_socket_is_closed() -> None:
    def socket(client: WebSocketState, application: WebSocketState) -> WebSocket:
        websocket = new_websocket({"type": "websocket", "headers": []}, _never, _never)
        websocket.client_state, websocket.application_state = client, application
        return websocket

    open_ = socket(WebSocketState.CONNECTED, WebSocketState.CONNECTED)
    client_gone = socket(WebSocketState.DISCONNECTED, WebSocketState.CONNECTED)
    app_closed = socket(WebSocketState.CONNECTED, WebSocketState.DISCONNECTED)
    assert closed(open_, WebSocketDisconnected())
    assert closed(client_gone, RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'"))
    assert closed(app_closed, RuntimeError("Cannot call send once a close message has been sent."))
    # A bug, on a socket still open: raised, and logged as it is now.
    assert not closed(open_, RuntimeError("a message that cannot be sent"))


async def _never(*args: Any) -> Any:
    raise AssertionError("not used")


# The limits per socket (README, "One socket's limits"): MAX_SUBSCRIPTIONS
# counts subscriptions alone, the legacy handler's check ours.


def test_the_view_hands_the_legacy_handler_its_limit_by_keyword_which_strawberry_then_never_checks() -> None:
    pinned: dict[Callable[..., Any], tuple[str, ...]] = {
        AsyncBaseHTTPView.run: ("max_subscriptions_per_connection=self.max_subscriptions_per_connection,",),
        BaseGraphQLWSHandler.handle_start: (
            "self.max_subscriptions_per_connection is not None\n            and len(self.tasks) >=",
            f'payload={{"message": "{LIMIT_REACHED}"}}',
        ),
    }
    for function, lines in pinned.items():
        assert [line in inspect.getsource(function) for line in lines] == [True] * len(lines), function
    handler = GatedLegacyWs(
        view=None, websocket=None, context=None, root_value=None, schema=None,  # type: ignore[arg-type]
        keep_alive=False, keep_alive_interval=None, max_subscriptions_per_connection=3,
    )
    assert (handler.max_subscriptions_per_connection, handler.subscription_limit) == (None, 3)


def test_a_legacy_stop_awaits_the_task_it_cancels_and_a_task_never_run_answers_nothing() -> None:
    """FanoutWSHandler.cleanup_operation answers `complete` for a task that
    ended cancelled: one stopped before its first step, whose coroutine
    (Strawberry's `except asyncio.CancelledError` that answers it) never ran."""
    cleanup = inspect.getsource(BaseGraphQLWSHandler.cleanup_operation)
    assert "task.cancel()\n        with suppress(BaseException):\n            await task" in cleanup

    async def never_run() -> bool:
        ran: list[bool] = []

        async def operation() -> None:
            try:
                ran.append(True)
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass

        task = asyncio.create_task(operation())
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return not ran and task.cancelled()

    assert asyncio.run(never_run())
