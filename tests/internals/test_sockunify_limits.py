"""One socket's limits, counted in one place on both protocols
(strawberry_sockets.Limited): an operation's kind is asked only of a socket
holding as many operations as a limit, once; the legacy start excludes the
operation of the same id it stops; and the legacy start's steps are
Strawberry's (ours run instead of its `handle_start`)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import OperationType
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graphql_todos.core.settings import Settings
from graphql_todos.internals.strawberry_legacy_ws import GatedLegacyWs, _Started
from graphql_todos.internals.strawberry_sockets import REQUESTS_IN_FLIGHT, Limited
from graphql_todos.internals.strawberry_transport_ws import GatedTransportWs

SUBSCRIPTION = "subscription { todoChanges { cursor } }"
QUERY = "{ todos { id } }"


class _Intake:
    """The view's intake, counting what it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def operation_type(self, query: str, operation_name: str | None) -> OperationType:
        self.asked.append(query)
        return OperationType.SUBSCRIPTION if query.startswith("subscription") else OperationType.QUERY


async def _never(*_: object) -> None:
    await asyncio.Event().wait()


Send = Callable[[str, str], Coroutine[Any, Any, None]]


def _handler(protocol: str, limit: int, said: list[Any]) -> tuple[Limited, Send, dict[str, Any]]:
    """An acknowledged handler of the protocol (the fan-out never answers),
    its send of an operation, and its register of operations."""

    async def send_json(message: object) -> None:
        said.append(message)

    view = SimpleNamespace(intake=_Intake(), fanout=SimpleNamespace(take=_never))
    adapter = SimpleNamespace(ws=None, send_json=send_json)
    if protocol == "graphql-transport-ws":
        transport = GatedTransportWs(view, adapter, {}, None, None, timedelta(seconds=3), limit)  # type: ignore[arg-type]
        transport.connection_acknowledged = True

        async def subscribe(op_id: str, query: str) -> None:
            await transport.handle_subscribe({"id": op_id, "type": "subscribe", "payload": {"query": query}})

        return transport, subscribe, transport.operations
    legacy = GatedLegacyWs(
        view=view, websocket=adapter, context=None, root_value=None, schema=None,  # type: ignore[arg-type]
        keep_alive=False, keep_alive_interval=None, max_subscriptions_per_connection=limit,
    )
    legacy.connection_acknowledged = True

    async def start(op_id: str, query: str) -> None:
        await legacy.handle_start({"id": op_id, "type": "start", "payload": {"query": query}})

    return legacy, start, legacy.tasks


Test = Callable[[Limited, Send, dict[str, Any], list[Any]], Coroutine[Any, Any, None]]


def _run(protocol: str, limit: int, test: Test) -> None:
    """The test, on a handler of the protocol made in its loop."""

    async def run() -> None:
        said: list[Any] = []
        handler, send, register = _handler(protocol, limit, said)
        try:
            await test(handler, send, register, said)
        finally:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

    asyncio.run(run())


def _errors(said: list[Any]) -> list[tuple[str, str]]:
    return [
        (message["id"], (message["payload"][0] if isinstance(message["payload"], list) else message["payload"])["message"])
        for message in said
        if message["type"] == "error"
    ]


def test_the_handlers_default_bound_is_the_setting_s_default() -> None:
    assert Settings().requests_in_flight == REQUESTS_IN_FLIGHT == Limited.requests_limit
    assert issubclass(GatedTransportWs, Limited) and issubclass(GatedLegacyWs, Limited)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_kinds_are_asked_only_of_a_socket_holding_as_many_as_a_limit_and_once_each(protocol: str) -> None:
    async def test(handler: Limited, send: Send, _: dict[str, Any], said: list[Any]) -> None:
        asked: list[str] = handler.view.intake.asked
        for n in range(3):
            await send(f"s{n}", SUBSCRIPTION)
        assert asked == []  # below both limits: opening a subscription asks nothing
        await send("q", QUERY)  # at MAX_SUBSCRIPTIONS: its own kind, none other's (a query)
        assert asked == [QUERY]
        await send("over", SUBSCRIPTION)  # the new one's, then each held one's not asked yet
        assert asked == [QUERY] + [SUBSCRIPTION] * 4
        await send("over2", SUBSCRIPTION)
        assert asked == [QUERY] + [SUBSCRIPTION] * 5  # the held ones' kinds kept
        assert _errors(said) == [("over", "Subscription limit reached"), ("over2", "Subscription limit reached")]

    _run(protocol, 3, test)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_the_bound_on_requests_is_the_handler_s(protocol: str) -> None:
    async def test(handler: Limited, send: Send, _: dict[str, Any], said: list[Any]) -> None:
        handler.requests_limit = 2
        await send("q0", QUERY)
        await send("q1", QUERY)
        await send("s", SUBSCRIPTION)  # subscriptions are not its to count
        await send("q2", QUERY)
        assert _errors(said) == [("q2", "More than 2 queries and mutations in flight on this socket")]

    _run(protocol, 20, test)


@pytest.mark.parametrize(("limit", "requests", "query"), [(1, 100, SUBSCRIPTION), (20, 1, QUERY)], ids=["subscription", "query"])
def test_a_legacy_start_of_an_id_held_is_not_counted_with_the_one_it_stops(limit: int, requests: int, query: str) -> None:
    """A start of an id the socket holds stops that operation first
    (Strawberry's start): at a limit, it is not refused for it."""

    async def test(handler: Limited, start: Send, tasks: dict[str, Any], said: list[Any]) -> None:
        handler.requests_limit = requests
        await start("1", query)
        first = tasks["1"]
        await start("1", query)
        assert _errors(said) == []
        assert first.cancelled() and tasks["1"] is not first
        await start("2", query)
        assert [op_id for op_id, _ in _errors(said)] == ["2"]

    _run("graphql-ws", limit, test)


def test_a_legacy_start_runs_strawberry_s_steps_as_a_task_carrying_its_document() -> None:
    """FanoutWSHandler.handle_start makes the task itself (a _Started, which
    the limits read as graphql-transport-ws's Operation): Strawberry's steps,
    in its order, are these."""
    source = inspect.getsource(BaseGraphQLWSHandler.handle_start)
    steps = [
        "if not self.connection_acknowledged:",
        'await self.websocket.close(code=4401, reason="Unauthorized")',
        "if operation_id in self.tasks:",
        "await self.cleanup_operation(operation_id)",
        "len(self.tasks) >= self.max_subscriptions_per_connection",
        'payload = message["payload"]',
        'query = payload["query"]',
        'operation_name = payload.get("operationName")',
        'variables = payload.get("variables")',
        "self.handle_async_results(\n            operation_id, query, operation_name, variables\n        )",
        "self.tasks[operation_id] = asyncio.create_task(result_handler)",
    ]
    found = [source.find(step) for step in steps]
    assert -1 not in found and found == sorted(found), dict(zip(steps, found, strict=True))

    async def made() -> _Started:
        async def nothing() -> None:
            pass

        task = _Started(nothing())
        await task
        return task

    task = asyncio.run(made())
    assert isinstance(task, asyncio.Task) and not hasattr(task, "__dict__")
    assert set(_Started.__slots__) == {"query", "operation_name", "subscription"}
