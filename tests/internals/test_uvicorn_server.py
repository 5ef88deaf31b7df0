"""What internals/uvicorn_server.py assumes of uvicorn's server and supervisor, and that the
app's server config uses the doors' protocols."""

from __future__ import annotations

import inspect

from uvicorn.main import run as uvicorn_run
from uvicorn.server import Server as UvicornServer
from uvicorn.supervisors import Multiprocess

from graphql_todos.internals.uvicorn_http import HttpProtocol
from graphql_todos.internals.uvicorn_server import Supervisor
from graphql_todos.internals.uvicorn_websocket import WebSocketProtocol
from tests.helpers import Server


def test_the_server_config_uses_our_protocols(server: Server) -> None:
    assert server._uvicorn is not None
    config = server._uvicorn.config
    assert config.ws_protocol_class is WebSocketProtocol
    assert config.http_protocol_class.func is HttpProtocol  # type: ignore[attr-defined]


def test_uvicorn_runs_workers_as_serve_does_and_replaces_them_where_the_supervisor_looks() -> None:
    run = inspect.getsource(uvicorn_run)
    assert "sock = config.bind_socket()\n            Multiprocess(config, sockets=[sock]).run()" in run
    loop = inspect.getsource(Multiprocess.run)
    assert "self.handle_signals()\n            self.keep_subprocess_alive()" in loop
    for method in (Multiprocess.keep_subprocess_alive, Multiprocess.restart_all):
        assert "self.processes[idx] = " in inspect.getsource(method)
    assert "self.processes.pop()" in inspect.getsource(Multiprocess.handle_ttou)
    assert "restart_all" in inspect.getsource(Multiprocess.handle_hup)
    assert issubclass(Supervisor, Multiprocess)


def test_uvicorn_raises_each_captured_signal_again_after_serving() -> None:
    """What uvicorn_server.Server assumes: dropping SIGTERM from the
    captured signals before capture_signals' yield returns spares the
    process from dying of it."""
    source = inspect.getsource(UvicornServer.capture_signals)
    assert source.index("yield") < source.index("for captured_signal in reversed(self._captured_signals)")
    assert "signal.raise_signal(captured_signal)" in source
    assert "self._captured_signals.append(sig)" in inspect.getsource(UvicornServer.handle_exit)
