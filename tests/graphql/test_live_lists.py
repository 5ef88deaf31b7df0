"""The `todos` live query taken by the fan-out (graphql/live_lists.py): the
same lists on every transport, one render per version and document, a
stalled watcher that holds up no one and gets the newest list, and people
who never share a render of rows they may not both see."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graphql_todos.graphql.live_lists import ListGroup, ListMember
from tests.gql import LegacyWs, TransportWs, create
from tests.helpers import TOKEN, Server, serving, wait_until
from tests.live.test_broadcast import StalledClient
from tests.live_readers import _parts
from tests.sse_client import events
from tests.test_lists import CREATE, Caller
from tests.test_lists_live import _messages, _token, _transport_ws

LIVE = "subscription($c: Boolean) { todos(completed: $c) { title } }"


def _groups(server: Server) -> list[ListGroup]:
    """The live lists' groups: each list's watchers that are one."""
    lists = server.live_lists._lists.values()
    return server.call(lambda: [w for live in lists for w in live.watchers if isinstance(w, ListGroup)])


def list_renders(server: Server) -> int:
    """The versions the live lists' groups rendered so far (their app's
    ListGroups, reached through one of them)."""
    return _groups(server)[0].groups.renders


def _members(server: Server) -> list[ListMember]:
    return [member for group in _groups(server) for member in group.members]


def _behind(server: Server) -> bool:
    """Whether a member has a version not yet written (its own task sends it)."""
    return any(m.pending is not None or m.sending for m in _members(server))


def _legacy(ws: LegacyWs, variables: dict[str, Any]) -> Iterator[Any]:
    ws.send({"id": "1", "type": "start", "payload": {"query": LIVE, "variables": variables}})
    while True:
        yield ws.recv()["payload"]["data"]


@pytest.mark.parametrize("completed", [True, None])
def test_every_transport_gets_each_version_of_one_render(server: Server, client: httpx.Client, completed: bool | None) -> None:
    create(client, "done", completed=True)
    create(client, "open")
    body = {"query": LIVE, "variables": {"c": completed}}
    multipart = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    with contextlib.ExitStack() as stack:
        transport_ws = stack.enter_context(TransportWs(server.ws_url))
        transport_ws.subscribe(LIVE, {"c": completed})
        legacy_ws = LegacyWs(server.ws_url)
        stack.callback(legacy_ws.close)
        legacy = _legacy(legacy_ws, {"c": completed})
        sse = stack.enter_context(events(server.url + "/graphql", json=body))
        parts = stack.enter_context(httpx.stream("POST", server.url + "/graphql", json=body, headers=multipart, timeout=10))
        payloads = (p["payload"] for p in _parts(parts) if p.get("payload"))

        def versions() -> list[Any]:
            return [transport_ws.next_data(), next(legacy), json.loads(sse.next()["data"])["data"], next(payloads)["data"]]

        expected = ["done"] if completed else ["done", "open"]
        assert versions() == [{"todos": [{"title": t} for t in expected]}] * 4
        # A group per frame (both WebSocket protocols' is none), of one list,
        # each rendering a version once for its members.
        assert len(_members(server)) == 4 and len(_groups(server)) == 3
        before = list_renders(server)
        create(client, "late", completed=True)
        expected.append("late")
        assert versions() == [{"todos": [{"title": t} for t in expected]}] * 4
        assert list_renders(server) - before == 3
    wait_until(lambda: server.subscriber_count() == 0)
    assert _groups(server) == []


def test_a_stalled_watcher_holds_up_no_one_and_gets_the_newest_list(server: Server, client: httpx.Client) -> None:
    stalled = StalledClient(server)
    stalled.send({"type": "connection_init"})
    assert stalled.recv()["type"] == "connection_ack"
    stalled.send({"id": "s", "type": "subscribe", "payload": {"query": LIVE}})
    assert stalled.recv()["payload"]["data"] == {"todos": []}
    with TransportWs(server.ws_url) as live:
        live.subscribe(LIVE)
        assert live.next_data() == {"todos": []}
        titles: list[str] = []
        # Long rows, so a version fills the stalled socket's buffer soon.
        while not _behind(server):
            titles.append(f"{len(titles):03} " + "x" * 500)
            create(client, titles[-1])
            # Each version reaches the watcher that reads, whatever the other does.
            while [t["title"] for t in live.next_data()["todos"]] != titles:
                pass
        # More versions meanwhile: the stalled one is sent the newest only.
        newest = [*titles, *(f"late {n}" for n in range(5))]
        for title in newest[len(titles):]:
            create(client, title)
            while [t["title"] for t in live.next_data()["todos"]][-1] != title:
                pass
        # The stalled one gets versions in order, the newest last, and not each one.
        got: list[list[str]] = []
        while not got or got[-1] != newest:
            message = stalled.recv()
            assert message["id"] == "s" and message["type"] == "next", message
            got.append([t["title"] for t in message["payload"]["data"]["todos"]])
        assert got == sorted(got, key=len) and len(got) < len(newest)
        # Caught up, it is written to directly again.
        wait_until(lambda: not _behind(server))
        create(client, "after")
        assert [t["title"] for t in live.next_data()["todos"]][-1] == "after"
        assert [t["title"] for t in stalled.recv()["payload"]["data"]["todos"]][-1] == "after"
    stalled.sock.close()
    wait_until(lambda: server.subscriber_count() == 0)


def test_a_list_over_the_cap_fails_every_watcher_as_strawberry_would(db_dsn: str) -> None:
    with serving(db_dsn, max_list_rows=2) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        with (
            TransportWs(server.ws_url) as a,
            TransportWs(server.ws_url) as b,
            events(server.url + "/graphql", json={"query": LIVE}) as sse,
        ):
            for ws in (a, b):
                ws.subscribe(LIVE)
                assert ws.next_data() == {"todos": []}
            assert json.loads(sse.next()["data"]) == {"data": {"todos": []}}
            for title in ("1", "2", "3"):
                create(client, title)
            for ws in (a, b):
                while (message := ws.recv())["type"] == "next" and "errors" not in message["payload"]:
                    pass
                assert message["payload"]["data"] is None
                assert message["payload"]["errors"][0]["extensions"]["code"] == "LIST_TOO_LARGE"
                assert ws.recv()["type"] == "complete"
            while "errors" not in (result := json.loads((event := sse.next())["data"])):
                assert event["event"] == "next"
            assert event["event"] == "next" and "id" not in event
            assert list(result) == ["errors"] and result["errors"][0]["extensions"]["code"] == "LIST_TOO_LARGE"
            assert sse.next()["event"] == "complete"
        wait_until(lambda: server.subscriber_count() == 0)


def test_people_never_share_a_render_of_rows_only_one_may_see(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", token=TOKEN) as server:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        sockets = {name: _transport_ws(server, _token(caller)[0]) for name, caller in (("ann", ann), ("bob", bob))}
        try:
            messages = {}
            for name, ws in sockets.items():
                ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": LIVE}}))
                messages[name] = _messages(ws)
                assert next(messages[name])["payload"]["data"] == {"todos": []}
            # The same document, two people: two lists, two groups.
            assert len(_groups(server)) == 2
            ann.data(CREATE, t="ann's", l=None)
            bob.data(CREATE, t="bob's", l=None)

            def newest(name: str, last: str) -> list[str]:
                while True:
                    titles = [t["title"] for t in next(messages[name])["payload"]["data"]["todos"]]
                    if titles and titles[-1] == last:
                        return titles

            assert newest("ann", "ann's") == ["ann's"]
            assert newest("bob", "bob's") == ["bob's"]
        finally:
            for ws in sockets.values():
                ws.close()
