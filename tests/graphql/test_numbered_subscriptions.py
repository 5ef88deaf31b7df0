"""Only a mutation sent alone takes a number (README, Numbered mutations):
a subscription with `extensions.mutation` is BAD_USER_INPUT on every
transport, whichever path would run it (the change feed's group, a row's
stream, a live list, Strawberry's), as a query with one is."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gql import LegacyWs, TransportWs, create
from tests.helpers import Server

NUMBERED = {"mutation": {"client": "2b1f5e0e-8c1a-4f57-9d0c-0a6d8f3c1e11", "seq": 1}}
SUBSCRIPTIONS = {
    "todoChanges": "subscription { todoChanges { cursor } }",
    "todo": "subscription($id: ID!) { todo(id: $id) { title } }",
    "todos": "subscription { todos { title } }",
    "feed": "subscription { feed { cursor } }",
}
REFUSED = "extensions.mutation numbers one mutation sent alone"


def _payload(client: httpx.Client, root: str) -> dict[str, object]:
    variables = {"id": create(client, "watched")["id"]} if root == "todo" else {}
    return {"query": SUBSCRIPTIONS[root], "variables": variables, "extensions": NUMBERED}


@pytest.mark.parametrize("root", SUBSCRIPTIONS)
def test_graphql_transport_ws_refuses_a_numbered_subscription(server: Server, client: httpx.Client, root: str) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.send({"id": "1", "type": "subscribe", "payload": _payload(client, root)})
        message = ws.recv()
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert message["payload"][0]["message"].startswith(REFUSED)


@pytest.mark.parametrize("root", SUBSCRIPTIONS)
def test_legacy_graphql_ws_refuses_a_numbered_subscription(server: Server, client: httpx.Client, root: str) -> None:
    ws = LegacyWs(server.ws_url)
    try:
        ws.send({"id": "1", "type": "start", "payload": _payload(client, root)})
        message = ws.recv()
    finally:
        ws.close()
    errors = message["payload"]["errors"] if message["type"] == "data" else message["payload"]
    errors = errors if isinstance(errors, list) else [errors]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", message
    assert errors[0]["message"].startswith(REFUSED)


@pytest.mark.parametrize("accept", ["text/event-stream", "multipart/mixed;subscriptionSpec=1.0"])
@pytest.mark.parametrize("root", SUBSCRIPTIONS)
def test_http_streams_refuse_a_numbered_subscription(server: Server, client: httpx.Client, root: str, accept: str) -> None:
    seen = ""
    with httpx.stream(
        "POST", server.url + "/graphql", json=_payload(client, root), headers={"accept": accept},
        timeout=httpx.Timeout(5, read=3),
    ) as response:
        for chunk in response.iter_text():
            seen += chunk
            if '"data"' in seen or "errors" in seen:
                break
    payloads = [json.loads(line.removeprefix("data: ")) for line in seen.splitlines() if '"errors"' in line or '"data"' in line]
    assert payloads, seen
    body = payloads[0].get("payload", payloads[0])
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", seen


@pytest.mark.parametrize("extensions", [5, "mutation", ["mutation"], None, {}])
def test_odd_extensions_on_a_subscription_are_answered_not_a_fault(server: Server, extensions: object) -> None:
    # (A socket closes 4400 on extensions that are not an object, before any path.)
    with httpx.stream(
        "POST", server.url + "/graphql", json={"query": SUBSCRIPTIONS["todos"], "extensions": extensions},
        headers={"accept": "text/event-stream"}, timeout=httpx.Timeout(5, read=3),
    ) as response:
        assert response.status_code in (200, 400)
        first = next(response.iter_text())
    assert "INTERNAL_SERVER_ERROR" not in first
