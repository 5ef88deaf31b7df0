"""One GraphQL WebSocket's order (README, "One socket's order"): a
subscription sent before a query or mutation on the same socket has its
start fixed before that operation runs, so it sees the mutation's change
(Apollo's and urql's way: subscribe, then mutate, one socket). Over both
protocols, for each subscription that fixes where it starts (the change feed
from now, taken by the fan-out or run by Strawberry, the `feed`) and those
that read their start after they join (a row, a live list); subscriptions
wait for no one; an opening that fails, or hangs, or a socket that closes,
keeps no operation waiting."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.decoded import Journaled
from tests.gql import create
from tests.helpers import Server, errors_logged, serving, wait_until

ROUNDS = 30
# Seconds a round's subscriber has to see the change: less than the bound
# (DATABASE_TIMEOUT_SECONDS), so an opening that never says it started fails too.
SEEN_WITHIN = 3.0
CHANGES_FROM_NOW = "subscription { todoChanges { op todo { title } } }"
# Strawberry runs these: the fan-out plans none with a directive.
CHANGES_BY_STRAWBERRY = "subscription { todoChanges { op todo { title @include(if: true) } } }"
FEED = "subscription { feed { kind todo { title } } }"
ROW = "subscription($id: ID!) { todo(id: $id) { title } }"
ROW_BY_STRAWBERRY = "subscription($id: ID!) { todo(id: $id) { title @include(if: true) } }"
LIVE = "subscription { todos { title } }"
LIVE_BY_STRAWBERRY = "subscription { todos { title @include(if: true) } }"
CREATE = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"
UPDATE = "mutation($id: ID!, $t: String!) { updateTodo(id: $id, input: {title: $t}) { id } }"
TITLES = "{ todos { title } }"

# Each protocol's messages: to start an operation, a result, its end, to stop one.
_PROTOCOLS = {
    "graphql-transport-ws": ("subscribe", "next", "complete", "complete"),
    "graphql-ws": ("start", "data", "complete", "stop"),
}


class _Socket:
    """A raw client of either protocol: what it sends goes out at once, in order."""

    def __init__(self, server: Server, protocol: str) -> None:
        self.ws: ClientConnection = connect(server.ws_url + "/graphql", subprotocols=[Subprotocol(protocol)], open_timeout=5)
        self.start, self.result, self.end, self.stop = _PROTOCOLS[protocol]
        self.ws.send(json.dumps({"type": "connection_init"}))
        assert self.recv(5)["type"] == "connection_ack"

    def recv(self, timeout: float) -> Any:
        while True:
            message = json.loads(self.ws.recv(timeout=timeout))
            if message["type"] not in ("ka", "ping", "pong"):
                return message

    def send(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        self.ws.send(json.dumps({"id": op_id, "type": self.start, "payload": payload}))

    def stop_it(self, op_id: str) -> None:
        self.ws.send(json.dumps({"id": op_id, "type": self.stop}))

    def quiet(self, seconds: float) -> None:
        """Nothing comes for `seconds`."""
        try:
            message = self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"not waiting: {message}")

    def until(self, seen: Callable[[Any], bool], seconds: float) -> bool:
        """Read until `seen(message)` of a message other than an operation's
        end is true; False once `seconds` pass."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.recv(left)
            except TimeoutError:
                return False
            if message["type"] != self.end and seen(message):
                return True
        return False

    def result_of(self, op_id: str, seconds: float = 5.0) -> Any:
        """The data of the operation's result, reading past the others'."""
        found: list[Any] = []

        def of_it(message: Any) -> bool:
            if message.get("id") == op_id and message["type"] == self.result:
                assert "errors" not in message["payload"], message
                found.append(message["payload"]["data"])
            return bool(found)

        assert self.until(of_it, seconds), f"no result for {op_id}"
        return found[0]

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(params=list(_PROTOCOLS))
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _lost(
    server: Server,
    protocol: str,
    subscription: str,
    variables: Callable[[int], dict[str, Any]],
    mutate: Callable[[int], tuple[str, dict[str, Any], str]],
) -> list[int]:
    """The rounds whose subscriber never saw the mutation sent right after
    it on the same socket: each round subscribes, then at once mutates."""
    lost = []
    ws = _Socket(server, protocol)
    try:
        for n in range(ROUNDS):
            mutation, mutation_variables, title = mutate(n)
            ws.send(f"s{n}", subscription, variables(n))
            ws.send(f"m{n}", mutation, mutation_variables)

            def seen(message: Any, n: int = n, title: str = title) -> bool:
                if message["type"] != ws.result:
                    raise AssertionError(message)
                assert "errors" not in message["payload"], message
                return bool(message["id"] == f"s{n}" and title in json.dumps(message["payload"]["data"]))

            if not ws.until(seen, SEEN_WITHIN):
                lost.append(n)
            ws.stop_it(f"s{n}")
    finally:
        ws.close()
    return lost


def _created(n: int) -> tuple[str, dict[str, Any], str]:
    return CREATE, {"t": f"made {n}"}, f"made {n}"


@pytest.fixture
def journaled_server(journaled_db: Journaled) -> Iterator[Server]:
    with serving(journaled_db.dsn, journal=journaled_db.journal) as server:
        yield server


@pytest.mark.parametrize(
    "subscription", [CHANGES_FROM_NOW, CHANGES_BY_STRAWBERRY, FEED], ids=["fanout", "strawberry", "feed"]
)
def test_a_change_feed_from_now_sees_the_mutation_sent_after_it(
    journaled_server: Server, protocol: str, subscription: str
) -> None:
    assert _lost(journaled_server, protocol, subscription, lambda n: {}, _created) == []


@pytest.mark.parametrize("subscription", [ROW, ROW_BY_STRAWBERRY], ids=["fanout", "strawberry"])
def test_a_row_sees_the_mutation_sent_after_it(server: Server, client: httpx.Client, protocol: str, subscription: str) -> None:
    ids = [create(client, f"row {n}")["id"] for n in range(ROUNDS)]

    def updated(n: int) -> tuple[str, dict[str, Any], str]:
        return UPDATE, {"id": ids[n], "t": f"renamed {n}"}, f"renamed {n}"

    assert _lost(server, protocol, subscription, lambda n: {"id": ids[n]}, updated) == []


@pytest.mark.parametrize("subscription", [LIVE, LIVE_BY_STRAWBERRY], ids=["fanout", "strawberry"])
def test_a_live_list_sees_the_mutation_sent_after_it(server: Server, protocol: str, subscription: str) -> None:
    assert _lost(server, protocol, subscription, lambda n: {}, _created) == []


class _HeldNow:
    """The hub's "now", held: every subscribe from now waits until released."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.asks: list[asyncio.Future[int]] = []

    def __enter__(self) -> Self:
        def now() -> asyncio.Future[int]:
            ask: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.asks.append(ask)
            return ask

        self.server.call(lambda: setattr(self.server.hub, "now", now))
        return self

    def release(self) -> None:
        hub = self.server.hub

        def answer() -> None:
            for ask in self.asks:
                if not ask.done():
                    ask.set_result(hub.position)

        self.server.call(answer)

    def __exit__(self, *exc: object) -> None:
        self.server.call(lambda: vars(self.server.hub).pop("now", None))
        self.release()


def _awaiting(task: asyncio.Task[Any]) -> Iterator[str]:
    """The names of the coroutines a task is in, outermost first."""
    coroutine: Any = task.get_coro()
    while coroutine is not None and hasattr(coroutine, "cr_code"):
        yield coroutine.cr_code.co_name
        coroutine = coroutine.cr_await


def _operations_waiting(server: Server) -> int:
    """The server's operation tasks waiting for the socket's order."""
    return int(server.call(lambda: sum("in_order" in _awaiting(task) for task in asyncio.all_tasks())))


@pytest.fixture
def roomy(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, max_subscriptions=101) as server:
        yield server


def test_subscriptions_wait_for_no_one_and_a_mutation_for_all_sent_before_it(roomy: Server, protocol: str) -> None:
    ws = _Socket(roomy, protocol)
    try:
        with _HeldNow(roomy) as now:
            for n in range(100):
                ws.send(f"s{n}", CHANGES_FROM_NOW)
            # All 100 ask at once, none after another's answer.
            wait_until(lambda: len(now.asks) == 100)
            ws.send("m", CREATE, {"t": "after all"})
            ws.quiet(0.3)
            assert _operations_waiting(roomy) == 1
            now.release()
            seen = set()

            def every(message: Any) -> bool:
                # The mutation's answer may come after the changes it made.
                if message["type"] == ws.result and ("after all" in json.dumps(message["payload"]) or message["id"] == "m"):
                    seen.add(message["id"])
                return len(seen) == 101

            assert ws.until(every, 10.0), f"not seen: {101 - len(seen)} of the mutation and its 100 subscribers"
    finally:
        ws.close()


def test_a_query_waits_too(server: Server, client: httpx.Client, protocol: str) -> None:
    """A list read after a subscription from now was sent misses nothing the
    subscription will not bring (the read comes after its start)."""
    ws = _Socket(server, protocol)
    try:
        with _HeldNow(server) as now:
            ws.send("s", CHANGES_FROM_NOW)
            wait_until(lambda: len(now.asks) == 1)
            ws.send("q", TITLES)
            ws.quiet(0.3)
            create(client, "between")
            now.release()
            titles = [todo["title"] for todo in ws.result_of("q")["todos"]]
            assert "between" in titles
    finally:
        ws.close()


def test_an_opening_that_hangs_holds_an_operation_a_bounded_time(db_dsn: str, protocol: str) -> None:
    # The bound is the server's DATABASE_TIMEOUT_SECONDS (strawberry_sockets.in_order).
    with serving(db_dsn, database_timeout_seconds=0.5) as server:
        ws = _Socket(server, protocol)
        try:
            with _HeldNow(server) as now:
                ws.send("s", CHANGES_FROM_NOW)
                wait_until(lambda: len(now.asks) == 1)
                began = time.monotonic()
                ws.send("m", CREATE, {"t": "late"})
                assert ws.result_of("m")["createTodo"]["id"]
                assert 0.4 < time.monotonic() - began < 3.0
        finally:
            ws.close()


@pytest.mark.parametrize(
    "refused", ["subscription { todoChanges(after: \"99999999\") { op } }", "subscription { feed(after: \"x\") { kind } }"],
    ids=["fanout", "strawberry"],
)
def test_an_opening_refused_keeps_no_operation_waiting(server: Server, protocol: str, refused: str) -> None:
    ws = _Socket(server, protocol)
    try:
        ws.send("s", refused)
        began = time.monotonic()
        ws.send("m", CREATE, {"t": "after a refusal"})
        errors: list[Any] = []

        def both(message: Any) -> bool:
            if message["id"] == "s":
                errors.append(message)
            elif message["id"] == "m":
                assert message["type"] == ws.result and "errors" not in message["payload"], message
                errors.append(None)
            return len(errors) == 2

        assert ws.until(both, 5.0)
        # What breaks holds the mutation DATABASE_TIMEOUT_SECONDS (5 s here):
        # half of it, as a loaded machine may add a second to the trip.
        assert time.monotonic() - began < 2.5
        [refusal] = [message for message in errors if message is not None]
        # The refusal reaches the client as before: the protocol's error.
        assert refusal["type"] in ("error", "next", "data"), refusal
        assert "BAD_USER_INPUT" in json.dumps(refusal) or "errors" in json.dumps(refusal), refusal
    finally:
        ws.close()


def test_a_socket_closed_leaves_no_operation_waiting(server: Server, client: httpx.Client, protocol: str) -> None:
    ws = _Socket(server, protocol)
    with _HeldNow(server) as now:
        ws.send("s", CHANGES_FROM_NOW)
        wait_until(lambda: len(now.asks) == 1)
        ws.send("m", CREATE, {"t": "never"})
        wait_until(lambda: _operations_waiting(server) == 1)
        ws.close()
        wait_until(lambda: _operations_waiting(server) == 0)
    # Cancelled while it waited: it never ran.
    assert "never" not in json.dumps(client.post("/graphql", json={"query": TITLES}).json())


def test_a_stop_before_the_start_lets_the_mutation_go(server: Server, protocol: str) -> None:
    ws = _Socket(server, protocol)
    try:
        with _HeldNow(server) as now:
            ws.send("s", CHANGES_FROM_NOW)
            wait_until(lambda: len(now.asks) == 1)
            ws.send("m", CREATE, {"t": "unheld"})
            wait_until(lambda: _operations_waiting(server) == 1)
            ws.stop_it("s")
            assert ws.result_of("m", 2.0)["createTodo"]["id"]
    finally:
        ws.close()


@pytest.mark.parametrize("start", [{"type": "start"}, {"type": "start", "id": ["x"], "payload": 1}])
def test_a_legacy_start_before_the_acknowledgement_still_closes_4401_whatever_its_id(server: Server, start: dict[str, Any]) -> None:
    """The order's register reads a start's id only once Strawberry took it."""
    with errors_logged() as errors:
        ws = connect(server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-ws")], open_timeout=5)
        ws.send(json.dumps(start))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert errors == []
