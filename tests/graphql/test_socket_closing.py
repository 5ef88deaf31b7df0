"""A GraphQL WebSocket whose client goes away (a close frame, or a reset) as
its operations' last messages go out: nothing in the log (a client going
away is no error), over both protocols and both of uvicorn's WebSocket
protocols. Before strawberry_sockets.closed, each round could log
"Exception in worker task" with a traceback (Strawberry's run, its `next`
or `complete` sent to a socket gone), and, on uvicorn's `websockets`
protocol, a RuntimeError ("Unexpected ASGI message 'websocket.send', after
sending 'websocket.close'") from a legacy operation's `complete` as the
socket's end cancelled it ("broadcast subscription 0 failed", "Task
exception was never retrieved"). A send that fails on a socket still open
(a bug) is still logged, once."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from graphql_todos.graphql.view import TodoGraphQL
from tests.helpers import Server, errors_logged, make_server

ROUNDS = 60
TITLES = "{ todos { title } }"
# Strawberry runs it (the fan-out plans none with a directive); the fan-out takes the other.
CHANGES_BY_STRAWBERRY = "subscription { todoChanges { op todo { title @include(if: true) } } }"
CHANGES = "subscription { todoChanges { op todo { title } } }"
# Each protocol's start, result and end.
_MESSAGES = {"graphql-transport-ws": ("subscribe", "next", "complete"), "graphql-ws": ("start", "data", "complete")}


@pytest.fixture(params=["websockets-sansio", "websockets"])
def any_ws_server(request: pytest.FixtureRequest, db_dsn: str) -> Iterator[Server]:
    """The app under both of uvicorn's WebSocket protocols (ours, and the
    other, whose send after the client's close raises a bare RuntimeError)."""
    srv = Server(make_server(db_dsn).settings, uvicorn_overrides={"ws": request.param})
    srv.start()
    yield srv
    srv.stop()


def _opened(server: Server, protocol: str) -> ClientConnection:
    ws = connect(server.ws_url + "/graphql", subprotocols=[Subprotocol(protocol)], open_timeout=5)
    ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
    return ws


def _recv(ws: ClientConnection) -> Any:
    while (message := json.loads(ws.recv(timeout=5)))["type"] in ("ka", "ping", "pong"):
        pass
    return message


def _start(ws: ClientConnection, protocol: str, op_id: str, query: str) -> None:
    ws.send(json.dumps({"id": op_id, "type": _MESSAGES[protocol][0], "payload": {"query": query}}))


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_a_client_gone_as_its_operations_answer_logs_nothing(any_ws_server: Server, protocol: str, how: str) -> None:
    with errors_logged() as errors:
        for n in range(ROUNDS):
            ws = _opened(any_ws_server, protocol)
            # Subscriptions (Strawberry's, the fan-out's) and queries whose
            # answers and `complete` go out as the client leaves.
            for op_id, query in enumerate((CHANGES_BY_STRAWBERRY, CHANGES, TITLES, TITLES)):
                _start(ws, protocol, str(op_id), query)
            # The client leaves at a different moment each round (0 to 5.5 ms).
            time.sleep((n % 12) * 0.0005)
            if how == "reset":
                ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.socket.close()
            else:
                ws.close()
        # The last rounds' operations end.
        time.sleep(1.0)
    assert errors == []


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_a_send_that_fails_on_a_socket_still_open_is_logged_once(
    any_ws_server: Server, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here a result that cannot be encoded) is no client gone: the
    operation ends as before, logged once, the client told it is over."""
    encode = TodoGraphQL.encode_json
    _, result, end = _MESSAGES[protocol]

    def broken(self: TodoGraphQL, data: Any) -> str | bytes:
        if isinstance(data, dict) and data.get("type") == result and data.get("id") == "bug":
            raise RuntimeError("cannot encode this result")
        return encode(self, data)

    monkeypatch.setattr(TodoGraphQL, "encode_json", broken)
    with errors_logged() as errors:
        ws = _opened(any_ws_server, protocol)
        try:
            _start(ws, protocol, "bug", TITLES)
            assert _recv(ws) == {"id": "bug", "type": end}
            _start(ws, protocol, "fine", TITLES)
            assert _recv(ws)["type"] == result
        finally:
            ws.close()
        time.sleep(0.2)
    assert len(errors) == 1, errors
