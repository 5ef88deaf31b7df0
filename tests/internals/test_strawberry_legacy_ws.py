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
