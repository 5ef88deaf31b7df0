"""What internals/strawberry_legacy_ws.py assumes of Strawberry's legacy graphql-ws handler."""

from __future__ import annotations

import inspect
from datetime import timedelta

from strawberry.asgi import GraphQL
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graphql_todos.internals.strawberry_legacy_ws import FanoutWSHandler


def test_legacy_ws_runs_each_operation_as_handle_async_results_in_tasks() -> None:
    start = inspect.getsource(BaseGraphQLWSHandler.handle_start)
    assert "self.handle_async_results(\n            operation_id, query, operation_name, variables\n        )" in start
    assert "self.tasks[operation_id] = asyncio.create_task(result_handler)" in start
    assert "task.cancel()" in inspect.getsource(BaseGraphQLWSHandler.cleanup_operation)
    ours = list(inspect.signature(FanoutWSHandler.handle_async_results).parameters)
    assert ours == list(inspect.signature(BaseGraphQLWSHandler.handle_async_results).parameters)


def test_legacy_ws_starts_a_keep_alive_task_at_each_init_and_cancels_only_the_last() -> None:
    init = inspect.getsource(BaseGraphQLWSHandler.handle_connection_init)
    assert "self.keep_alive_task = asyncio.create_task(keep_alive_handler)" in init
    assert "cancel" not in init and "connection_acknowledged:" not in init  # nothing refuses a second init
    handle = inspect.getsource(BaseGraphQLWSHandler.handle)
    assert "self.keep_alive_task.cancel()" in handle


def test_legacy_ws_sets_no_init_deadline_and_the_view_keeps_transport_ws_one() -> None:
    # A deadline of Strawberry's own would make ours a second one.
    assert "connection_init_wait_timeout" not in inspect.signature(BaseGraphQLWSHandler.__init__).parameters
    handle = inspect.getsource(BaseGraphQLWSHandler.handle)
    assert "timeout" not in handle
    assert handle.index("self.websocket.iter_json(") < handle.index("await self.cleanup()")
    assert isinstance(AsyncBaseHTTPView.connection_init_wait_timeout, timedelta)
    assert "self.connection_init_wait_timeout = connection_init_wait_timeout" in inspect.getsource(GraphQL.__init__)


def test_legacy_ws_makes_an_operation_s_task_last_and_stops_each_through_cleanup_operation() -> None:
    """FanoutWSHandler keys a socket's openings by the task handle_start
    made, once it returns (the task not run yet: no await after it), and
    drops it in cleanup_operation, which a stop, a start of the same id and
    the socket's end each go through. The task's stream runs in it (the
    schema's `subscribe` awaited there: the context variable set in it)."""
    start = inspect.getsource(BaseGraphQLWSHandler.handle_start).rstrip()
    assert start.endswith("self.tasks[operation_id] = asyncio.create_task(result_handler)")
    last_await = start.rindex("await ")
    assert last_await < start.index("result_handler = self.handle_async_results(")
    assert "await self.cleanup_operation(operation_id)" in start
    assert "await self.cleanup_operation(operation_id)" in inspect.getsource(BaseGraphQLWSHandler.cleanup)
    assert "await self.cleanup_operation(" in inspect.getsource(BaseGraphQLWSHandler.handle_stop)
    results = inspect.getsource(BaseGraphQLWSHandler.handle_async_results)
    assert "await self.schema.subscribe(" in results and "create_task" not in results
