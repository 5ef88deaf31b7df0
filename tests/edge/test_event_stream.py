"""Server-Sent Events: GraphQL over SSE (with the graphql-sse npm client)
and the REST event streams, resuming by Last-Event-ID exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import psycopg
import pytest

from graphql_todos.core import repository
from graphql_todos.internals.strawberry_view import MultipartSubscriptions
from graphql_todos.live.broadcast import Groups
from tests.gql import create
from tests.helpers import Server, errors_logged, make_server, serving, wait_until
from tests.js_clients import node
from tests.sse_client import Events, events

FEED = "subscription($after: String) { todoChanges(after: $after) { op cursor todo { title } } }"


def _graphql_feed(server: Server, headers: dict[str, str]) -> Any:
    # The document asks for the whole journal: Last-Event-ID must win.
    return events(server.url + "/graphql", headers, json={"query": FEED, "variables": {"after": "0"}})


def _graphql_change(event: dict[str, str]) -> tuple[str, str]:
    change = json.loads(event["data"])["data"]["todoChanges"]
    assert event["id"] == change["cursor"]
    return change["cursor"], change["todo"]["title"]


def _rest_feed(server: Server, headers: dict[str, str]) -> Any:
    return events(server.url + "/api/todos/?after=0", headers)


def _rest_change(event: dict[str, str]) -> tuple[str, str]:
    message = json.loads(event["data"])
    assert (event["event"], event["id"]) == (message["op"], message["cursor"])
    return message["cursor"], message["todo"]["title"]


FEEDS = {"graphql": (_graphql_feed, _graphql_change), "rest": (_rest_feed, _rest_change)}


@pytest.fixture
def writers(server: Server) -> Iterator[Callable[[], list[str]]]:
    """Three threads creating 20 todos each; the fixture's value waits for
    them and returns every title they wrote."""
    titles = [[f"w{w}-{i}" for i in range(20)] for w in range(3)]

    def write(mine: list[str]) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for title in mine:
                create(client, title)

    threads = [threading.Thread(target=write, args=(mine,)) for mine in titles]
    for thread in threads:
        thread.start()

    def done() -> list[str]:
        for thread in threads:
            thread.join(30)
        return [title for mine in titles for title in mine]

    yield done
    done()


@pytest.mark.parametrize("route", FEEDS)
def test_last_event_id_resumes_exactly_once_under_concurrent_writers(
    server: Server, writers: Callable[[], list[str]], route: str
) -> None:
    open_feed, change_of = FEEDS[route]
    seen: list[tuple[str, str]] = []
    with open_feed(server, {}) as feed:
        for event in feed:
            if "comment" not in event:
                seen.append(change_of(event))
            if len(seen) == 10:
                break
    # Reconnect as an EventSource does, while the writers go on.
    with open_feed(server, {"last-event-id": seen[-1][0]}) as feed:
        for event in feed:
            if "comment" not in event:
                seen.append(change_of(event))
            if len(seen) == 60:
                break
    cursors = [int(cursor) for cursor, _ in seen]
    assert cursors == sorted(set(cursors))
    assert sorted(title for _, title in seen) == sorted(writers())


def test_graphql_sse_client_from_npm_streams_and_resumes(server: Server, client: httpx.Client) -> None:
    titles = [create(client, f"t{i}")["title"] for i in range(5)]
    url = server.url + "/graphql"
    request = json.dumps({"query": FEED, "variables": {"after": "0"}})
    first = [r["data"]["todoChanges"] for r in node("sse.mjs", url, request, "3")]
    assert [c["todo"]["title"] for c in first] == titles[:3]
    # The client sends Last-Event-ID itself through its headers option.
    rest = [r["data"]["todoChanges"] for r in node("sse.mjs", url, request, "2", first[-1]["cursor"])]
    assert [c["todo"]["title"] for c in rest] == titles[3:]
    # Queries run too, then complete; a request error is a next event.
    query = json.dumps({"query": "{ todos { title } }"})
    assert node("sse.mjs", url, query, "5") == [{"data": {"todos": [{"title": t} for t in titles]}}, {"complete": True}]
    [error, complete] = node("sse.mjs", url, json.dumps({"query": "{ nope }"}), "5")
    assert "data" not in error
    assert [e["extensions"]["code"] for e in error["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    assert complete == {"complete": True}


def test_a_bad_last_event_id_is_an_error_event_or_a_400(server: Server) -> None:
    with _graphql_feed(server, {"last-event-id": "nope"}) as feed:
        error = feed.next()
        assert error["event"] == "next"
        assert [e["extensions"]["code"] for e in json.loads(error["data"])["errors"]] == ["BAD_USER_INPUT"]
        assert feed.next()["event"] == "complete"
    response = httpx.get(server.url + "/api/todos/", headers={"accept": "text/event-stream", "last-event-id": "nope"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "BAD_USER_INPUT")


def test_rest_item_stream_sends_the_row_then_each_change_and_ends_after_delete(
    server: Server, client: httpx.Client
) -> None:
    todo = create(client, "watched")
    with events(f"{server.url}/api/todos/{todo['id']}/") as feed:
        snapshot = feed.next()
        assert snapshot["event"] == "snapshot"
        client.patch(f"/api/todos/{todo['id']}/", json={"completed": True})
        client.delete(f"/api/todos/{todo['id']}/")
        rest = [e for e in feed if "comment" not in e]
    assert [e["event"] for e in rest] == ["updated", "deleted"]
    assert json.loads(rest[0]["data"])["todo"]["completed"] is True
    assert int(snapshot["id"]) < int(rest[0]["id"]) < int(rest[1]["id"])
    missing = httpx.get(f"{server.url}/api/todos/{todo['id']}/", headers={"accept": "text/event-stream"})
    assert missing.status_code == 404


def test_an_idle_stream_gets_comment_heartbeats(db_dsn: str) -> None:
    server = make_server(db_dsn, keepalive_seconds=0.05)
    server.start()
    try:
        for open_feed, _ in FEEDS.values():
            with open_feed(server, {}) as feed:
                # One after another, for as long as it is quiet.
                beats = iter(feed)
                assert [next(beats) for _ in range(3)] == [{"comment": "keepalive"}] * 3
    finally:
        server.stop()


def test_a_stream_that_ended_sends_no_more_heartbeats(db_dsn: str) -> None:
    # Its heartbeat timer goes with it: one left would beat into the closed
    # channel, an error in the log every keepalive.
    with serving(db_dsn, keepalive_seconds=0.05) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        todo = create(client, "watched")
        with errors_logged() as errors, events(f"{server.url}/api/todos/{todo['id']}/") as feed:
            assert feed.next()["event"] == "snapshot"
            client.delete(f"/api/todos/{todo['id']}/")
            assert [e["event"] for e in feed if "comment" not in e] == ["deleted"]
            time.sleep(0.3)
        assert errors == []


def _connections(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_many_streams_share_one_listening_connection(db_dsn: str) -> None:
    server = make_server(db_dsn, pool_size=2)
    server.start()
    try:
        with ExitStack() as stack, httpx.Client(base_url=server.url, timeout=10) as client:
            feeds: list[Events] = []
            for i in range(16):
                open_feed, _ = list(FEEDS.values())[i % 2]
                feeds.append(stack.enter_context(open_feed(server, {})))
            wait_until(lambda: server.subscriber_count() == 16)
            # The pool (2) and the hub's one listener, however many streams.
            assert _connections(server.dsn) <= 3
            create(client, "to all")
            for i, feed in enumerate(feeds):
                _, change_of = list(FEEDS.values())[i % 2]
                assert change_of(feed.next())[1] == "to all"
    finally:
        server.stop()


def test_a_client_that_leaves_is_unsubscribed_at_once(server: Server) -> None:
    # The default keepalive (15 s) is far off: nothing is written meanwhile.
    groups: Groups = server.state("broadcast_groups")
    for open_feed, _ in FEEDS.values():
        with open_feed(server, {}):
            with open_feed(server, {}):
                wait_until(lambda: server.subscriber_count() == 2)
            # The group loses that member at once, and goes with its last.
            wait_until(lambda: server.subscriber_count() == 1)
            assert server.call(lambda: len(groups)) == 1
        wait_until(lambda: server.subscriber_count() == 0)
        assert server.call(lambda: len(groups)) == 0


@pytest.mark.parametrize("route", FEEDS)
def test_many_streams_share_one_group_and_one_rendering_per_change(
    server: Server, client: httpx.Client, route: str
) -> None:
    open_feed, change_of = FEEDS[route]
    groups: Groups = server.state("broadcast_groups")
    with ExitStack() as stack:
        # Every stream asks for the whole journal: where it starts is its own.
        feeds = [stack.enter_context(open_feed(server, {})) for _ in range(12)]
        wait_until(lambda: server.subscriber_count() == 12)
        assert server.call(lambda: len(groups)) == 1
        renders = server.call(lambda: groups.renders)
        titles = [create(client, f"shared {i}")["title"] for i in range(5)]
        got = [[change_of(feed.next()) for _ in titles] for feed in feeds]
        assert all(g == got[0] for g in got)
        assert [title for _, title in got[0]] == titles
        assert server.call(lambda: groups.renders) - renders == len(titles)


def test_openapi_describes_the_event_streams(client: httpx.Client) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/todos/", "/api/todos/{id}/"):
        assert "text/event-stream" in paths[path]["get"]["responses"]["200"]["content"]
    parameters = {p["name"] for p in paths["/api/todos/"]["get"]["parameters"]}
    assert {"after", "Last-Event-ID"} <= parameters


# The same field at the same place; the directive sends the second one
# Strawberry's way (the fan-out takes no document with a directive).
REFUSED = 'subscription { todoChanges(after: "%s") { cursor } }'
REFUSED_BY_STRAWBERRY = 'subscription { todoChanges(after: "%s") { cursor @include(if: true) } }'
STREAMING = {"sse": "text/event-stream", "multipart": "multipart/mixed;subscriptionSpec=1.0,application/json"}


def _whole_body(server: Server, accept: str, query: str) -> bytes:
    response = httpx.post(server.url + "/graphql", json={"query": query}, headers={"accept": accept}, timeout=10)
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("accept", STREAMING.values(), ids=STREAMING.keys())
@pytest.mark.parametrize(("cursor", "code"), [("nope", "BAD_USER_INPUT"), ("999", "BAD_USER_INPUT"), ("1", "CURSOR_EXPIRED")])
def test_a_refused_subscription_is_answered_as_strawberrys_path_answers_it(
    server: Server, accept: str, cursor: str, code: str
) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c')")
        params = {"below": 2**62, "keep_seconds": 3600, "keep_rows": 1, "limit": 100}
        conn.execute(repository.PRUNE_JOURNAL, params)  # cursor 1 expires
    broadcast = _whole_body(server, accept, REFUSED % cursor)
    assert broadcast == _whole_body(server, accept, REFUSED_BY_STRAWBERRY % cursor)
    assert f'"code":"{code}"'.encode() in broadcast
    # With a good cursor, the first document is a broadcast member indeed.
    with httpx.stream("POST", server.url + "/graphql", json={"query": REFUSED % "3"}, headers={"accept": accept}):
        wait_until(lambda: server.call(lambda: len(server.state("broadcast_groups"))) == 1)


def test_a_multipart_subscription_opens_with_a_heartbeat_part(server: Server) -> None:
    # As Strawberry's subscriptions open (send_initial_heartbeat): at once,
    # not after the interval (5 s), before any change.
    transport = MultipartSubscriptions()
    heartbeat = transport.heartbeat_part()
    started = time.monotonic()
    with httpx.stream(
        "POST", server.url + "/graphql", json={"query": FEED}, headers={"accept": STREAMING["multipart"]}, timeout=10
    ) as response:
        assert response.status_code == 200
        got = b""
        for chunk in response.iter_raw():
            got += chunk
            if len(got) >= len(heartbeat):
                break
        assert got == heartbeat
    assert time.monotonic() - started < transport.heartbeat_interval / 2
