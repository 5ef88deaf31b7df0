"""Subscriptions over both WebSocket protocols and multipart HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from websockets.exceptions import ConnectionClosed

from tests.gql import CHANGES, LegacyWs, TransportWs, create, data, subscribed
from tests.graphql.test_live_lists import list_renders
from tests.helpers import Server, wait_until


def test_todo_changes_over_graphql_transport_ws(server: Server, client: httpx.Client) -> None:
    with subscribed(server) as ws:
        a = create(client, "a")
        created = ws.next_data()["todoChanges"]
        assert (created["op"], created["todo"]) == ("CREATED", a)
        data(client, 'mutation($id: ID!) { updateTodo(id: $id, input: {title: "b"}) { id } }', {"id": a["id"]})
        updated = ws.next_data()["todoChanges"]
        assert (updated["op"], updated["todo"]["title"]) == ("UPDATED", "b")
        data(client, "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": a["id"]})
        deleted = ws.next_data()["todoChanges"]
        assert (deleted["op"], deleted["todo"]["title"]) == ("DELETED", "b")
        assert int(created["cursor"]) < int(updated["cursor"]) < int(deleted["cursor"])


def test_todo_changes_over_legacy_graphql_ws(server: Server, client: httpx.Client) -> None:
    ws = LegacyWs(server.ws_url)
    try:
        ws.send({"id": "1", "type": "start", "payload": {"query": CHANGES, "variables": {}}})
        wait_until(lambda: server.subscriber_count() == 1)
        a = create(client, "legacy")
        message = ws.recv()
        assert message["type"] == "data"
        assert message["payload"]["data"]["todoChanges"]["todo"]["id"] == a["id"]
        ws.send({"id": "1", "type": "stop"})
        assert ws.recv() == {"type": "complete", "id": "1"}
        wait_until(lambda: server.subscriber_count() == 0)
    finally:
        ws.close()


def test_todo_changes_over_multipart_http(server: Server, client: httpx.Client) -> None:
    headers = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    body = {"query": "subscription { todoChanges { op todo { title } } }"}
    with httpx.stream("POST", server.url + "/graphql", json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/mixed")
        wait_until(lambda: server.subscriber_count() == 1)
        create(client, "over http")
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk
            if "over http" in buffer:
                break
    part = next(p for p in buffer.split("--graphql") if "over http" in p)
    payload = json.loads(part[part.index("{"):])
    assert payload["payload"]["data"]["todoChanges"] == {"op": "CREATED", "todo": {"title": "over http"}}


def test_change_made_with_plain_sql_reaches_subscriber(server: Server) -> None:
    with subscribed(server) as ws:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO todos (title) VALUES ('from psql')")
            conn.execute("UPDATE todos SET completed = true")
            conn.execute("DELETE FROM todos")
        ops = [ws.next_data()["todoChanges"] for _ in range(3)]
        assert [(c["op"], c["todo"]["title"], c["todo"]["completed"]) for c in ops] == [
            ("CREATED", "from psql", False),
            ("UPDATED", "from psql", True),
            ("DELETED", "from psql", True),
        ]


def test_no_op_update_is_not_a_change(server: Server, client: httpx.Client) -> None:
    a = create(client, "same")
    with subscribed(server) as ws:
        q = 'mutation($id: ID!) { updateTodo(id: $id, input: {title: "same"}) { updatedTime } }'
        assert data(client, q, {"id": a["id"]})["updateTodo"]["updatedTime"] == a["updatedTime"]
        create(client, "next")
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "next"


def test_todo_list_then_changes_after_its_cursor_is_gap_free(server: Server, client: httpx.Client) -> None:
    create(client, "before")
    listed = data(client, "{ todoList { cursor todos { title } } }")["todoList"]
    # Changes between loading the list and subscribing must not be lost...
    create(client, "between 1")
    create(client, "between 2")
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES, {"after": listed["cursor"]})
        titles = [ws.next_data()["todoChanges"]["todo"]["title"] for _ in range(2)]
        assert titles == ["between 1", "between 2"]
        # ...nor doubled, and live changes follow.
        create(client, "after")
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "after"
    assert [t["title"] for t in listed["todos"]] == ["before"]


def test_cursor_zero_replays_the_whole_journal(server: Server, client: httpx.Client) -> None:
    a = create(client, "one")
    data(client, "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": a["id"]})
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES, {"after": "0"})
        ops = [ws.next_data()["todoChanges"] for _ in range(2)]
        assert [(c["op"], c["cursor"]) for c in ops] == [("CREATED", "1"), ("DELETED", "2")]


def test_bad_cursors_are_bad_user_input(server: Server, client: httpx.Client) -> None:
    create(client, "a")
    with TransportWs(server.ws_url) as ws:
        for bad in ["abc", "-1", "1.5", "", "99", "1" * 40]:
            op_id = ws.subscribe(CHANGES, {"after": bad})
            message = ws.recv()
            assert (message["type"], message["id"]) == ("error", op_id), message
            assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"], bad
    assert server.subscriber_count() == 0


def test_todo_subscription_first_state_then_changes_then_null(server: Server, client: httpx.Client) -> None:
    a = create(client, "watched")
    other = create(client, "other")
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe("subscription($id: ID!) { todo(id: $id) { id title completed } }", {"id": a["id"]})
        assert ws.next_data()["todo"] == {"id": a["id"], "title": "watched", "completed": False}
        data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }", {"id": other["id"]})
        data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }", {"id": a["id"]})
        assert ws.next_data()["todo"]["completed"] is True
        data(client, "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": a["id"]})
        assert ws.next_data()["todo"] is None
        assert ws.recv() == {"id": op_id, "type": "complete"}
    wait_until(lambda: server.subscriber_count() == 0)


def test_row_watchers_changes_are_written_by_the_hubs_row_sinks(server: Server, client: httpx.Client) -> None:
    """In the running server a watched row's change is written by its
    watcher's sink in the hub's turn (graphql/fanout.py's frames through the
    burst), not by the subscription's task. A sink that fails hands the
    change to the task, which sends the same frame: only the count tells."""
    rows = [create(client, f"row {i}") for i in range(5)]
    query = "subscription($id: ID!) { todo(id: $id) { title completed } }"
    before = REGISTRY.get_sample_value("graphql_todos_row_sink_events_total") or 0.0
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(TransportWs(server.ws_url)) for _ in rows]
        for ws, row in zip(sockets, rows, strict=True):
            ws.subscribe(query, {"id": row["id"]})
            assert ws.next_data()["todo"] == {"title": row["title"], "completed": False}
        data(client, "mutation { toggleAll(completed: true) { id } }")
        for ws, row in zip(sockets, rows, strict=True):
            assert ws.next_data()["todo"] == {"title": row["title"], "completed": True}
    assert (REGISTRY.get_sample_value("graphql_todos_row_sink_events_total") or 0.0) > before


def test_watchers_of_one_row_with_other_selections_each_get_their_own(server: Server, client: httpx.Client) -> None:
    """Documents, and one document's @include values, each keep their own
    shape, in the first state and in a change the hub writes (each
    subscriber's compiled plan: graphql/fanout.py `_row`)."""
    row = create(client, "shapes")
    titled = "subscription($id: ID!, $done: Boolean!) { todo(id: $id) { title completed @include(if: $done) } }"
    shapes = [
        ("subscription($id: ID!) { todo(id: $id) { title } }", {}, lambda t, c: {"title": t}),
        ("subscription($id: ID!) { todo(id: $id) { done: completed } }", {}, lambda t, c: {"done": c}),
        (titled, {"done": True}, lambda t, c: {"title": t, "completed": c}),
        (titled, {"done": False}, lambda t, c: {"title": t}),
    ]
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(TransportWs(server.ws_url)) for _ in shapes]
        for ws, (query, variables, shape) in zip(sockets, shapes, strict=True):
            ws.subscribe(query, {"id": row["id"], **variables})
            assert ws.next_data()["todo"] == shape("shapes", False)
        data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }", {"id": row["id"]})
        for ws, (_, _, shape) in zip(sockets, shapes, strict=True):
            assert ws.next_data()["todo"] == shape("shapes", True)


def test_todo_subscription_over_graphql_ws_is_state_changes_null_then_complete(
    server: Server, client: httpx.Client
) -> None:
    """The legacy protocol's row stream (graphql/fanout.py's RowStream) says
    what graphql-transport-ws's does, in `data` messages."""
    a = create(client, "watched")
    ws = LegacyWs(server.ws_url)
    try:
        query = "subscription($id: ID!) { todo(id: $id) { title completed } }"
        ws.send({"id": "1", "type": "start", "payload": {"query": query, "variables": {"id": a["id"]}}})
        assert ws.recv() == {"type": "data", "id": "1", "payload": {"data": {"todo": {"title": "watched", "completed": False}}}}
        data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }", {"id": a["id"]})
        assert ws.recv()["payload"] == {"data": {"todo": {"title": "watched", "completed": True}}}
        data(client, "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": a["id"]})
        assert ws.recv()["payload"] == {"data": {"todo": None}}
        assert ws.recv() == {"type": "complete", "id": "1"}
    finally:
        ws.close()
    wait_until(lambda: server.subscriber_count() == 0)


def test_todo_subscription_for_absent_row_is_null_then_complete(server: Server) -> None:
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe("subscription($id: ID!) { todo(id: $id) { id } }", {"id": str(uuid.uuid4())})
        assert ws.next_data()["todo"] is None
        assert ws.recv() == {"id": op_id, "type": "complete"}
        ws.subscribe("subscription { todo(id: \"nope\") { id } }")
        message = ws.recv()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_live_todos_query_sends_the_list_again_coalesced(server: Server, client: httpx.Client) -> None:
    for i in range(20):
        create(client, f"t{i}")
    with TransportWs(server.ws_url) as ws:
        ws.subscribe("subscription { todos(completed: true) { title } }")
        assert ws.next_data()["todos"] == []
        # Twenty updates committed together arrive as one new list.
        data(client, "mutation { toggleAll(completed: true) { id } }")
        assert len(ws.next_data()["todos"]) == 20
        # A change outside the filter sends nothing; the next one inside does.
        create(client, "active")
        data(client, "mutation { clearCompleted { id } }")
        assert ws.next_data()["todos"] == []


def test_subscriber_cleanup_on_complete_and_on_socket_drop(server: Server) -> None:
    ws = TransportWs(server.ws_url)
    first = ws.subscribe(CHANGES)
    ws.subscribe("subscription { todos { id } }")
    wait_until(lambda: server.subscriber_count() == 2)
    ws.complete(first)
    wait_until(lambda: server.subscriber_count() == 1)
    ws.ws.close_socket()  # no close frame: the TCP connection just goes away
    wait_until(lambda: server.subscriber_count() == 0)


def test_subscription_execution_is_shared_by_identical_subscriptions(server: Server, client: httpx.Client) -> None:
    query = "subscription($full: Boolean!) { todoChanges { cursor todo @include(if: $full) { title } } }"
    sockets = [TransportWs(server.ws_url) for _ in range(6)]
    try:
        for ws in sockets[:5]:
            ws.subscribe(query, {"full": True})
        # Same document and event, other variables: must not get those bytes.
        sockets[5].subscribe(query, {"full": False})
        wait_until(lambda: server.subscriber_count() == 6)
        before = server.executions()
        create(client, "shared")
        payloads = [json.loads(ws.ws.recv(timeout=5))["payload"] for ws in sockets]
        # One execution for the five identical subscriptions, one for the other.
        assert server.executions() - before == 2
        assert payloads[:5] == [{"data": {"todoChanges": {"cursor": "1", "todo": {"title": "shared"}}}}] * 5
        assert payloads[5] == {"data": {"todoChanges": {"cursor": "1"}}}
    finally:
        for ws in sockets:
            ws.close()


def test_subscription_errors_for_malformed_documents(server: Server) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.subscribe("subscription { nope }")
        message = ws.recv()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_live_todos_are_one_list_shared_by_every_watcher(server: Server, client: httpx.Client) -> None:
    query = "subscription($c: Boolean) { todos(completed: $c) { title } }"
    sockets = [TransportWs(server.ws_url) for _ in range(4)]
    try:
        for ws in sockets:
            ws.subscribe(query, {"c": None})
        assert [ws.next_data() for ws in sockets] == [{"todos": []}] * 4
        # Four watchers, one hub subscription keeping the list.
        assert server.subscriber_count() == 1
        before = list_renders(server)
        create(client, "once")
        assert [ws.next_data() for ws in sockets] == [{"todos": [{"title": "once"}]}] * 4
        assert list_renders(server) - before == 1
        for ws in sockets[1:]:
            ws.close()
        create(client, "twice")
        assert sockets[0].next_data() == {"todos": [{"title": "once"}, {"title": "twice"}]}
    finally:
        for ws in sockets:
            ws.close()
    wait_until(lambda: server.subscriber_count() == 0)
    assert server.call(lambda: len(server.live_lists)) == 0


def test_a_second_connection_init_is_refused_on_both_protocols(server: Server) -> None:
    # Strawberry's legacy handler would acknowledge it and start one more
    # keep-alive task, never to end; graphql-transport-ws refuses it.
    for ws in (LegacyWs(server.ws_url), TransportWs(server.ws_url)):
        ws.send({"type": "connection_init"})
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4429, "Too many initialisation requests")


def _tasks(server: Server) -> int:
    return int(server.call(lambda: len(asyncio.all_tasks())))


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
def test_every_task_a_socket_starts_ends_with_it(server: Server, client: httpx.Client, protocol: str) -> None:
    """Operations of every kind started, stopped, replaced and left running,
    inits and pings: once the socket is gone, so is every task it made."""
    before = _tasks(server)
    todo = create(client, "watched")
    operations = [
        CHANGES,
        "subscription { todoChanges { cursor @include(if: true) } }",  # Strawberry's path
        "subscription { todos { id } }",
        f'subscription {{ todo(id: "{todo["id"]}") {{ title }} }}',
        "subscription { todos { id } }",
    ]
    if protocol == "graphql-ws":
        legacy = LegacyWs(server.ws_url)
        for round_ in range(3):
            for n, query in enumerate(operations):
                legacy.send({"id": str(n), "type": "start", "payload": {"query": query}})
            for n in range(0, len(operations), 2):
                legacy.send({"id": str(n), "type": "stop"})
        legacy.send({"type": "connection_init"})  # refused: the socket ends
        with pytest.raises(ConnectionClosed):
            while True:
                legacy.recv()
    else:
        with TransportWs(server.ws_url) as ws:
            for _ in range(3):
                ids = [ws.subscribe(query) for query in operations]
                ws.send({"type": "ping"})
                for op_id in ids[::2]:
                    ws.complete(op_id)
            wait_until(lambda: server.subscriber_count() > 0)
    wait_until(lambda: server.subscriber_count() == 0)
    wait_until(lambda: _tasks(server) == before)
