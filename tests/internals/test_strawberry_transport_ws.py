"""What internals/strawberry_transport_ws.py assumes of Strawberry's graphql-transport-ws
handler."""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any

import httpx
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from graphql_todos.internals.strawberry_sockets import TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON, init_timer
from graphql_todos.internals.strawberry_transport_ws import GatedTransportWs
from tests.gql import CHANGES, TransportWs, create
from tests.helpers import Server, wait_until


def test_transport_ws_runs_each_operation_in_its_task_and_cancels_it_to_end() -> None:
    subscribe = inspect.getsource(BaseGraphQLTransportWSHandler.handle_subscribe)
    assert "asyncio.create_task(self.run_operation(operation))" in subscribe
    assert subscribe.index("already exists") < subscribe.index("create_task")  # checks come first
    assert "operation.task.cancel()" in inspect.getsource(BaseGraphQLTransportWSHandler.cleanup_operation)
    assert list(inspect.signature(BaseGraphQLTransportWSHandler.run_operation).parameters) == ["self", "operation"]
    assert "self.handler.forget_id(self.id)" in inspect.getsource(Operation.send_operation_message)


def test_transport_ws_cancels_and_awaits_whatever_task_an_operation_holds_when_it_ends() -> None:
    # A task-less broadcast member's operation gets its task only later.
    shutdown = inspect.getsource(BaseGraphQLTransportWSHandler.shutdown)
    assert "tasks = [op.task for op in self.operations.values() if op.task]" in shutdown
    assert shutdown.index("self.cleanup_operation(operation_id)") < shutdown.index("await task")
    assert "self.handle_complete(message)" in inspect.getsource(BaseGraphQLTransportWSHandler.handle_message)
    assert "self.cleanup_operation(" in inspect.getsource(BaseGraphQLTransportWSHandler.handle_complete)
    assert "task.exception()" in inspect.getsource(BaseGraphQLTransportWSHandler._task_done)


def test_graphql_transport_ws_subscribe_reads_the_query_and_drops_extensions() -> None:
    source = inspect.getsource(BaseGraphQLTransportWSHandler.handle_subscribe)
    assert 'message["payload"]["query"]' in source
    assert "extensions" not in source


def test_transport_ws_starts_the_init_timeout_on_accept_and_cancels_its_task_at_shutdown() -> None:
    handle = inspect.getsource(BaseGraphQLTransportWSHandler.handle)
    assert handle.index("self.on_request_accepted()") < handle.index("iter_json") < handle.index("self.shutdown()")
    shutdown = inspect.getsource(BaseGraphQLTransportWSHandler.shutdown)
    assert "self.connection_init_timeout_task.cancel()" in shutdown
    assert "await self.connection_init_timeout_task" in shutdown
    init = inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init)
    assert init.index("if self.connection_timed_out:") < init.index("self.connection_init_received = True")
    assert "code=4408" in inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init_timeout)


def test_transport_ws_refuses_a_second_init_as_the_legacy_handler_does_now() -> None:
    init = inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init)
    assert f'reason = "{TOO_MANY_INITS_REASON}"' in init
    assert f"code={TOO_MANY_INITS_CODE}" in init


def test_a_stopped_init_timer_is_let_go() -> None:
    # A cancelled handle keeps its copy of the context beside every open socket.
    async def scenario() -> tuple[bool, object]:
        handler = GatedTransportWs.__new__(GatedTransportWs)
        handler._init_timer = timer = init_timer(60, lambda: None)
        handler._stopinit_timer()
        return timer.cancelled(), handler._init_timer

    assert asyncio.run(scenario()) == (True, None)


def test_a_broadcast_member_keeps_no_task_and_completing_it_frees_its_id(server: Server, client: httpx.Client) -> None:
    def registered() -> list[Operation[Any, None]]:
        # The operations sockets hold now (those of ended sockets are garbage).
        return [
            o for o in gc.get_objects()
            if isinstance(o, Operation) and o.handler.operations.get(o.id) is o
        ]

    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        # Joined with no task: its finished one is not kept beside the socket.
        assert [o.task for o in server.call(registered)] == [None]
        ws.complete(op_id)
        wait_until(lambda: server.subscriber_count() == 0)
        assert server.call(registered) == []
        # The id is free again (a registered one would close the socket 4409).
        ws.send({"id": op_id, "type": "subscribe", "payload": {"query": CHANGES}})
        wait_until(lambda: server.subscriber_count() == 1)
        create(client, "after")
        message = ws.recv()
        assert (message["id"], message["type"]) == (op_id, "next")
