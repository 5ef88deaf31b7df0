"""What internals/strawberry_sockets.py assumes of Strawberry's WebSocket handlers."""

from __future__ import annotations

import inspect

from strawberry.asgi import ASGIWebSocketAdapter


def test_strawberry_asgi_adapter_keeps_the_starlette_websocket_as_ws() -> None:
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)
