"""Small real clients for the tests: GraphQL over HTTP and both WS protocols."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import httpx
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.helpers import Server, wait_until

TODO_FIELDS = "id title completed createdTime updatedTime"
CHANGES = f"subscription($after: String) {{ todoChanges(after: $after) {{ op cursor todo {{ {TODO_FIELDS} }} }} }}"


def gql(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    """POST a GraphQL request; return the decoded body (data and/or errors)."""
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


def data(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = gql(client, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


CREATE = f"mutation($t: String!, $c: Boolean) {{ createTodo(input: {{title: $t, completed: $c}}) {{ {TODO_FIELDS} }} }}"


def create(client: httpx.Client, title: str, completed: bool = False) -> Any:
    return data(client, CREATE, {"t": title, "c": completed})["createTodo"]


class TransportWs:
    """A graphql-transport-ws client."""

    def __init__(self, ws_url: str, timeout: float = 5.0) -> None:
        self.ws: ClientConnection = connect(
            ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=timeout
        )
        self.timeout = timeout
        self._ids = itertools.count(1)
        self.send({"type": "connection_init"})
        assert self.recv()["type"] == "connection_ack"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float | None = None) -> Any:
        while True:
            message = json.loads(self.ws.recv(timeout=timeout or self.timeout))
            if message["type"] not in ("ping", "pong"):
                return message

    def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op_id = str(next(self._ids))
        self.send({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        return op_id

    def next_data(self, timeout: float | None = None) -> Any:
        message = self.recv(timeout)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]

    def complete(self, op_id: str) -> None:
        self.send({"id": op_id, "type": "complete"})

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LegacyWs:
    """A subscriptions-transport-ws ("graphql-ws") client."""

    def __init__(self, ws_url: str, timeout: float = 5.0) -> None:
        self.ws = connect(ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")], open_timeout=timeout)
        self.timeout = timeout
        self.send({"type": "connection_init"})
        assert self.recv()["type"] == "connection_ack"

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self) -> Any:
        while True:
            message = json.loads(self.ws.recv(timeout=self.timeout))
            if message["type"] != "ka":
                return message

    def close(self) -> None:
        self.ws.close()


@contextmanager
def subscribed(
    server: Server, query: str = CHANGES, variables: dict[str, Any] | None = None
) -> Iterator[TransportWs]:
    """A graphql-transport-ws socket subscribed to query, once the hub has it:
    a change made after this is sure to reach it."""
    before = server.subscriber_count()
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(query, variables)
        wait_until(lambda: server.subscriber_count() > before)
        yield ws
