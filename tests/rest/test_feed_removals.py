"""The feed's removal of a row moved out of its reader's sight
(docs/design/people.md section 9: `todo_removed` carries the id alone):
it names the row and the list it left, and nothing of the list it went
to, which the reader cannot see, on /api/feed/'s two transports and
GraphQL's `feed`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.helpers import TOKEN, Server, serving
from tests.sse_client import Events
from tests.test_item_endings import MOVE, Sharing


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


def _feed(server: Server, sharing: Sharing, after: str, transport: str) -> tuple[dict[str, object], str]:
    """The first event after the cursor, and every byte sent up to it."""
    auth = {"authorization": f"Bearer {sharing.token}"}
    if transport == "GraphQL":
        with connect(f"{server.ws_url}/graphql", subprotocols=[PROTOCOL], compression=None) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": auth["authorization"]}}))
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": FEED, "variables": {"after": after}}}))
            raw = str(ws.recv(timeout=10))
            feed = json.loads(raw)["payload"]["data"]["feed"]
            return {"kind": feed["kind"], "cursor": feed["cursor"], "todo_id": feed["todoId"], "list_id": feed["listId"]}, raw
    if transport == "RESTSocket":
        with connect(f"{server.ws_url}/api/feed/?after={after}", additional_headers=auth, compression=None) as ws:
            raw = str(ws.recv(timeout=10))
            while json.loads(raw).get("op") == "keepalive":
                raw = str(ws.recv(timeout=10))
            return json.loads(raw), raw
    headers = {"accept": "text/event-stream", **auth}
    with httpx.stream("GET", f"{server.url}/api/feed/?after={after}", headers=headers, timeout=10) as response:
        event = next(e for e in Events(response) if "data" in e)
        return json.loads(event["data"]), json.dumps(event)


FEED = "subscription($after: String) { feed(after: $after) { kind cursor todoId listId } }"
PROTOCOL = cast(Subprotocol, "graphql-transport-ws")
# GraphQL's kind, in REST's spelling.
_KINDS = {"TODO_REMOVED": "todo_removed"}


@pytest.mark.parametrize("transport", ["RESTSocket", "REST SSE", "GraphQL"])
def test_a_row_moved_out_of_sight_is_removed_from_the_list_it_left(accounts: Server, transport: str) -> None:
    sharing = Sharing(accounts, f"moved-{transport}".lower().replace(" ", "-"))
    after = sharing.bob.data("{ todoList { cursor } }")["todoList"]["cursor"]
    sharing.ann.data(MOVE, id=sharing.row, l=sharing.hidden)
    event, received = _feed(accounts, sharing, after, transport)
    event["kind"] = _KINDS.get(str(event["kind"]), event["kind"])
    assert event == {"kind": "todo_removed", "cursor": event["cursor"], "todo_id": sharing.row, "list_id": sharing.shared}
    assert int(str(event["cursor"])) > int(after)
    assert sharing.hidden not in received
