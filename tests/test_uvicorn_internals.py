"""Pins what graphql_todos/uvicorn_internals.py assumes of uvicorn (the
behaviour itself, real clients of every transport on SIGTERM, is in
tests/test_cli.py and tests/test_subscriptions.py)."""

from __future__ import annotations

import inspect

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import Server as UvicornServer

from graphql_todos.uvicorn_internals import HttpProtocol, WebSocketProtocol
from tests.helpers import Server


def test_uvicorn_tells_each_connection_to_shut_down_before_it_waits_and_before_the_lifespan() -> None:
    source = inspect.getsource(UvicornServer.shutdown)
    told = source.index("connection.shutdown()")
    assert told < source.index("self._wait_tasks_to_complete()") < source.index("self.lifespan.shutdown()")
    # Each protocol gets the lifespan state, where the hub is.
    assert "app_state=self.lifespan.state" in inspect.getsource(UvicornServer.startup)


def test_uvicorns_websocket_shutdown_is_the_one_ours_repeats_with_a_reason() -> None:
    source = inspect.getsource(WebSocketsSansIOProtocol.shutdown)
    assert "if self.close_sent:" in source
    assert 'self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})' in source
    assert "self.conn.send_close(1012)" in source
    assert "self.close_sent = True" not in source
    for attribute in ("self.app_state =", "self.handshake_complete =", "self.queue:"):
        assert attribute in inspect.getsource(WebSocketsSansIOProtocol.__init__)


def test_uvicorns_http_shutdown_lets_a_response_in_progress_run_on() -> None:
    source = inspect.getsource(HttpToolsProtocol.shutdown)
    assert "self.cycle.keep_alive = False" in source
    assert "self.app_state =" in inspect.getsource(HttpToolsProtocol.__init__)


def test_the_server_config_uses_our_protocols(server: Server) -> None:
    assert server._uvicorn is not None
    config = server._uvicorn.config
    assert config.ws_protocol_class is WebSocketProtocol
    assert config.http_protocol_class.func is HttpProtocol  # type: ignore[attr-defined]
