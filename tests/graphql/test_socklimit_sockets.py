"""A GraphQL WebSocket's limits and stops (README, "One socket's limits"),
over both protocols, through a real server: MAX_SUBSCRIPTIONS counts
subscriptions alone (a query or mutation on a socket holding that many
runs), queries and mutations have their own bound in flight, and a
subscription stopped while it is still starting ends as a running one does
(legacy graphql-ws: `complete`; graphql-transport-ws: nothing, its id free)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graphql_todos.internals.strawberry_sockets import REQUESTS_IN_FLIGHT, REQUESTS_IN_FLIGHT_REASON
from tests.graphql.test_socket_order import (
    CHANGES_BY_STRAWBERRY,
    CHANGES_FROM_NOW,
    CREATE,
    TITLES,
    _HeldNow,
    _Socket,
)
from tests.helpers import Server, serving, wait_until

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]


@pytest.fixture
def server_with(db_dsn: str) -> Iterator[Callable[..., Server]]:
    """Servers with these settings, for the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **settings: stack.enter_context(serving(db_dsn, **settings))


def _refusal(message: Any) -> str:
    """The message of an `error` (a list of errors on graphql-transport-ws, one on the legacy protocol)."""
    assert message["type"] == "error", message
    payload = message["payload"]
    return str((payload[0] if isinstance(payload, list) else payload)["message"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_socket_at_the_subscription_limit_still_runs_queries_and_mutations(
    server_with: Callable[..., Server], protocol: str
) -> None:
    """Apollo and urql send their mutations over the socket that holds the
    app's subscriptions: at MAX_SUBSCRIPTIONS, a mutation and a query run,
    and a third subscription is still refused."""
    server = server_with(max_subscriptions=2)
    ws = _Socket(server, protocol)
    try:
        ws.send("s1", CHANGES_FROM_NOW)
        ws.send("s2", CHANGES_FROM_NOW)
        wait_until(lambda: server.subscriber_count() >= 1)
        ws.send("m", CREATE, {"t": "at the limit"})
        assert ws.result_of("m")["createTodo"]["id"]
        ws.send("q", TITLES)
        assert "at the limit" in json.dumps(ws.result_of("q"))
        ws.send("s3", CHANGES_FROM_NOW)
        refusals: list[Any] = []

        def refused(message: Any) -> bool:
            if message["id"] == "s3":
                refusals.append(message)
            return bool(refusals)

        assert ws.until(refused, 5.0)
        assert _refusal(refusals[0]) == "Subscription limit reached"
    finally:
        ws.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_queries_and_mutations_in_flight_on_one_socket_are_bounded(
    server_with: Callable[..., Server], protocol: str
) -> None:
    """REQUESTS_IN_FLIGHT queries wait behind a subscription whose opening is
    held; one more is refused (TOO_MANY_REQUESTS, the socket kept); once
    they ran, a query runs again."""
    server = server_with(max_subscriptions=1)
    ws = _Socket(server, protocol)
    try:
        with _HeldNow(server) as now:
            ws.send("s", CHANGES_FROM_NOW)
            wait_until(lambda: len(now.asks) == 1)
            for n in range(REQUESTS_IN_FLIGHT):
                ws.send(f"q{n}", TITLES)
            ws.send("over", TITLES)
            refusal = ws.recv(5)
            assert refusal["id"] == "over" and _refusal(refusal) == REQUESTS_IN_FLIGHT_REASON, refusal
            assert "TOO_MANY_REQUESTS" in json.dumps(refusal)
            now.release()
            answered: set[str] = set()

            def every(message: Any) -> bool:
                if message["type"] == ws.result and message["id"].startswith("q"):
                    answered.add(message["id"])
                return len(answered) == REQUESTS_IN_FLIGHT

            assert ws.until(every, 20.0), f"{len(answered)} answered"
        ws.send("after", TITLES)
        assert "todos" in ws.result_of("after")
    finally:
        ws.close()


@pytest.mark.parametrize("subscription", [CHANGES_FROM_NOW, CHANGES_BY_STRAWBERRY], ids=["fanout", "strawberry"])
@pytest.mark.parametrize("held", [True, False], ids=["starting", "running"])
def test_a_legacy_stop_is_answered_complete_whether_the_subscription_started_or_not(
    server: Server, held: bool, subscription: str
) -> None:
    """subscriptions-transport-ws's PROTOCOL.md: when the client
    unsubscribes, the server sends GQL_COMPLETE; Strawberry does for a
    running subscription, and a starting one (its opening held) gets the
    same."""
    ws = _Socket(server, "graphql-ws")
    try:
        with _HeldNow(server) as now:
            ws.send("s", subscription)
            wait_until(lambda: len(now.asks) == 1)
            if not held:
                now.release()
                ws.send("m", CREATE, {"t": "running"})
                assert ws.result_of("m")["createTodo"]["id"]
            ws.stop_it("s")
            ended: list[Any] = []
            with contextlib.suppress(TimeoutError):
                while not ended:
                    message = ws.recv(3)
                    if message["id"] == "s" and message["type"] != "data":
                        ended.append(message)
            assert ended == [{"type": "complete", "id": "s"}]
    finally:
        ws.close()


def test_a_legacy_stop_sent_with_its_start_is_answered_complete(server: Server) -> None:
    """A start and its stop read together: the stop may come before the
    operation's task ever ran; each still gets its `complete`."""
    ws = _Socket(server, "graphql-ws")
    try:
        for n in range(20):
            ws.send(f"s{n}", CHANGES_FROM_NOW)
            ws.stop_it(f"s{n}")
        completed: set[str] = set()
        # `until` skips each protocol's end: read the completes themselves.
        with contextlib.suppress(TimeoutError):
            while len(completed) < 20:
                message = ws.recv(3)
                if message["type"] == "complete":
                    completed.add(message["id"])
        assert completed == {f"s{n}" for n in range(20)}
    finally:
        ws.close()


def test_a_transport_ws_complete_of_a_starting_subscription_is_answered_as_a_running_one_s(server: Server) -> None:
    """graphql-ws's PROTOCOL.md: a client's `complete` gets nothing back,
    running or starting; the id is free at once (no 4409), and the new
    subscription of that id brings the next change."""
    ws = _Socket(server, "graphql-transport-ws")
    try:
        with _HeldNow(server) as now:
            ws.send("s", CHANGES_FROM_NOW)
            wait_until(lambda: len(now.asks) == 1)
            ws.stop_it("s")
            ws.send("s", CHANGES_FROM_NOW)
            wait_until(lambda: len(now.asks) == 2)
            ws.quiet(0.3)
            now.release()
            ws.send("m", CREATE, {"t": "after a complete"})
            seen: set[str] = set()
            # Read past nothing (`until` skips a `complete`): only results come.
            while seen != {"m", "s"}:
                message = ws.recv(5)
                if message == {"id": "m", "type": "complete"}:
                    continue  # the mutation's end
                assert message["type"] == "next", message
                if message["id"] == "m" or "after a complete" in json.dumps(message["payload"]):
                    seen.add(message["id"])
    finally:
        ws.close()
