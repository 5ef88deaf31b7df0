"""edge/guard.py's SocketGate: the sockets a client address holds, read from the scope."""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocket

from graphql_todos.core.settings import Settings
from graphql_todos.edge.guard import SocketGate


async def _unused() -> None:
    raise AssertionError("a socket admitted sends nothing")


def _socket(client: tuple[str, int] | None) -> WebSocket:
    scope = {"type": "websocket", "path": "/graphql", "headers": [(b"host", b"127.0.0.1:8000")], "client": client}
    return WebSocket(scope, receive=_unused, send=_unused)  # type: ignore[arg-type]


def test_sockets_are_counted_by_the_client_s_host_not_its_port_and_without_one_as_one() -> None:
    gate = SocketGate(Settings(max_sockets_per_client=2))

    def admit(client: tuple[str, int] | None) -> bool:
        return asyncio.run(gate.admit(_socket(client)))

    assert admit(("10.0.0.1", 1000)) and admit(("10.0.0.1", 1001))
    assert admit(None) and admit(None)
    assert gate._sockets == {"10.0.0.1": 2, "": 2}
    gate.leave(_socket(("10.0.0.1", 1002)))
    gate.leave(_socket(None))
    assert gate._sockets == {"10.0.0.1": 1, "": 1}
