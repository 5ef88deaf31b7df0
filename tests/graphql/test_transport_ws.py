"""graphql-transport-ws's rules (graphql-ws's PROTOCOL.md), each through a real
socket, as internals/strawberry_transport_ws.py's GatedTransportWs keeps them
(its own message handling, Strawberry's answers): the ones no other test
sends. Elsewhere: a second connection_init (tests/test_subscriptions.py),
the init timeout and the limit per socket (tests/edge/test_guard.py),
malformed messages (tests/test_bad_input.py), persisted documents
(tests/graphql/test_persisted.py), revocation, stalled clients."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from tests.gql import CHANGES, TransportWs
from tests.helpers import BEARER, Server, errors_logged, serving, wait_until

# Strawberry runs these: the fan-out takes subscriptions only, and plans
# none with a directive (checked once: this one's task awaits Strawberry's
# `_send_result_stream`). It stays open, as the shared feed does.
QUERY = "{ __typename }"
STRAWBERRY_RUNS = "subscription { todoChanges { cursor todo @skip(if: true) { id } } }"


def _gauge() -> float:
    return REGISTRY.get_sample_value("graphql_todos_subscriptions", {"transport": "graphql-transport-ws"}) or 0.0


def _closed(ws: Connection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    received = closed.value.rcvd
    assert received is not None
    return received.code, received.reason


def _raw(server: Server) -> ClientConnection:
    return connect(server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5)


# Strawberry's order: the acknowledgement is checked before the id and the payload are read.
@pytest.mark.parametrize(
    "message",
    [{"id": "1", "type": "subscribe", "payload": {"query": CHANGES}}, {"id": "1", "type": "subscribe"}, {"type": "subscribe"}],
)
def test_a_subscribe_before_the_acknowledgement_closes_4401(server: Server, message: dict[str, Any]) -> None:
    with _raw(server) as ws:
        ws.send(json.dumps(message))
        assert _closed(ws) == (4401, "Unauthorized")


def test_a_connection_init_payload_not_an_object_closes_4400(server: Server) -> None:
    with _raw(server) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": [1]}))
        assert _closed(ws) == (4400, "Invalid connection init payload")


# Strawberry's order on a server that wants a credential too: the payload is
# checked (an object, the first) before it is looked in for one.
@pytest.mark.parametrize("payload", [[1], "Bearer x"])
def test_a_connection_init_payload_not_an_object_closes_4400_before_the_credential_is_asked(
    guarded: Server, payload: object
) -> None:
    with _raw(guarded) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert _closed(ws) == (4400, "Invalid connection init payload")


def test_a_connection_init_payload_null_is_none(server: Server, guarded: Server) -> None:
    """PROTOCOL.md: connection_init's payload is an object or null (graphql-ws's
    server takes both); Strawberry closes 4400 at a null."""
    for serving_it, headers in ((server, {}), (guarded, BEARER)):
        with connect(
            serving_it.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], additional_headers=headers
        ) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": None}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}


def test_a_second_connection_init_closes_4429_whatever_credential_it_offers(guarded: Server) -> None:
    with _raw(guarded) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": BEARER}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}
        ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer not-ours"}}))
        assert _closed(ws) == (4429, "Too many initialisation requests")


@pytest.mark.parametrize("running", [CHANGES, STRAWBERRY_RUNS], ids=["broadcast", "strawberry"])
def test_a_running_id_subscribed_again_closes_4409(server: Server, running: str) -> None:
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe(running)
        wait_until(lambda: server.subscriber_count() == 1)
        ws.send({"id": op_id, "type": "subscribe", "payload": {"query": QUERY}})
        assert _closed(ws.ws) == (4409, f"Subscriber for {op_id} already exists")


def test_ping_is_answered_pong_and_pong_not_at_all(server: Server) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.send({"type": "pong"})
        ws.send({"type": "ping", "payload": {"n": 1}})
        assert json.loads(ws.ws.recv(timeout=5)) == {"type": "pong"}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "nope"}, "Unknown message type: nope"),
        ({"type": "subscribe", "payload": {"query": CHANGES}}, "Failed to parse message"),
        ({"id": "1", "type": "subscribe"}, "Failed to parse message"),
        ({"id": "1", "type": "subscribe", "payload": {"variables": {}}}, "subscribe payload.query must be a string"),
        ({"type": "complete"}, "Failed to parse message"),
    ],
)
def test_a_message_strawberry_cannot_read_closes_4400(server: Server, message: dict[str, Any], reason: str) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.send(message)
        assert _closed(ws.ws) == (4400, reason)


def test_an_operation_the_fan_out_leaves_runs_to_next_and_complete_and_frees_its_id(server: Server) -> None:
    with TransportWs(server.ws_url) as ws:
        for _ in range(2):  # the id again, once completed
            ws.send({"id": "q", "type": "subscribe", "payload": {"query": QUERY}})
            assert ws.recv() == {"id": "q", "type": "next", "payload": {"data": {"__typename": "Query"}}}
            assert ws.recv() == {"id": "q", "type": "complete"}


def test_an_error_ends_an_operation_with_no_complete(server: Server) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.send({"id": "e", "type": "subscribe", "payload": {"query": "subscription { nope }"}})
        message = ws.recv()
        assert (message["id"], message["type"]) == ("e", "error")
        # The next message is the pong: no `complete` came between.
        ws.send({"type": "ping"})
        assert json.loads(ws.ws.recv(timeout=5)) == {"type": "pong"}


@pytest.fixture
def two_per_socket(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, max_subscriptions=2) as server:
        yield server


def test_the_limit_counts_both_kinds_of_operation_and_a_complete_frees_one(two_per_socket: Server) -> None:
    server = two_per_socket
    before = _gauge()
    with TransportWs(server.ws_url) as ws:
        broadcast = ws.subscribe(CHANGES)
        strawberry = ws.subscribe(STRAWBERRY_RUNS)
        wait_until(lambda: _gauge() == before + 2)
        ws.send({"id": "3", "type": "subscribe", "payload": {"query": CHANGES}})
        message = ws.recv()
        assert (message["id"], message["type"], message["payload"][0]["message"]) == ("3", "error", "Subscription limit reached")
        assert message["payload"][0]["extensions"] == {"code": "TOO_MANY_REQUESTS"}
        ws.complete(broadcast)
        wait_until(lambda: _gauge() == before + 1)
        ws.send({"id": "3", "type": "subscribe", "payload": {"query": CHANGES}})
        wait_until(lambda: _gauge() == before + 2)
        ws.complete(strawberry)
        wait_until(lambda: _gauge() == before + 1)
    wait_until(lambda: _gauge() == before)


@pytest.fixture
def impatient(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, send_timeout_seconds=1.0) as server:
        yield server


def test_refusals_to_a_client_that_stopped_reading_close_it_and_log_nothing(impatient: Server) -> None:
    """A refusal's `error` that times out ends the socket (as any send
    does): the operation's end, not an error of the server's to log."""
    sock = socket.socket()
    # A small receive buffer, a client taking one message at a time: the
    # refusals (each some 20 kB, naming the operation) fill the buffers.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", impatient.port))
    with errors_logged() as logged, connect(
        impatient.ws_url + "/graphql", sock=sock, max_queue=1, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}
        refused = {"query": CHANGES, "operationName": "N" * 20_000}
        for n in range(300):
            ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": refused}))
        time.sleep(2)  # past the send timeout, not reading
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=5)
    assert logged == []
