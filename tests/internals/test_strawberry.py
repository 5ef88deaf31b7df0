"""One test per assumption internals/strawberry*.py make of Strawberry and
graphql-core: after an upgrade, a failure here names what changed."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, GraphQLSyntaxError, execute, parse, specified_rules
from graphql import Executor as GraphQLCoreExecutor
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.schema.schema import (
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    _parse_operation_document,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionContext as StrawberryExecutionContext
from strawberry.utils.operation import get_operation_type
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from graphql_todos.core.models import Todo
from graphql_todos.edge import json_intake
from graphql_todos.edge.json_intake import RefusedJson
from graphql_todos.graphql.schema import build_schema
from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.internals.strawberry import (
    OneResultSchema,
    TodoExecutionContext,
    checked_operation,
    over_token_limit,
    plain_attribute,
)
from graphql_todos.internals.strawberry_legacy_ws import FanoutWSHandler
from graphql_todos.internals.strawberry_sockets import TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON
from graphql_todos.internals.strawberry_view import JsonIntake, MultipartSubscriptions
from graphql_todos.internals.uvicorn_websocket import WebSocketProtocol, _text_frame_header
from tests.helpers import Server

NULL_ID = ("query($id: ID!) { todo(id: $id) { id } }", {"id": None})


def test_strawberry_keeps_itself_on_the_graphql_core_schema() -> None:
    schema = build_schema(execution_cache_size=16)
    assert schema._schema._strawberry_schema is schema  # type: ignore[attr-defined]


def test_graphql_core_returns_coercion_errors_from_build_and_says_none() -> None:
    # If graphql-core learns to say null, drop the rewording in build().
    query, variables = NULL_ID
    built = GraphQLCoreExecutor.build(build_schema(execution_cache_size=16)._schema, parse(query), raw_variable_values=variables)
    assert isinstance(built, list)
    assert built[0].message.endswith(" not to be None.")


def test_build_tags_coercion_errors_and_says_null() -> None:
    query, variables = NULL_ID
    result = execute(
        build_schema(execution_cache_size=16)._schema, parse(query), variable_values=variables, executor_class=TodoExecutionContext
    )
    assert isinstance(result, ExecutionResult)
    [error] = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT"}
    assert error.message == "Variable '$id' has invalid value: Expected value of non-null type 'ID!' not to be null."


def test_per_event_executors_are_built_and_run_as_assumed() -> None:
    assert hasattr(StrawberryGraphQLCoreExecutionContext, "build_per_event_executor")
    parameters = inspect.signature(StrawberryGraphQLCoreExecutionContext.build_per_event_executor).parameters
    assert list(parameters) == ["self", "payload"]
    assert "serially" in inspect.signature(StrawberryGraphQLCoreExecutionContext.execute_operation).parameters


def test_strawberry_parses_only_when_no_document_is_set() -> None:
    assert "graphql_document is not None" in inspect.getsource(_parse_operation_document)


def test_the_same_text_gives_the_same_document_parsed_once() -> None:
    schema = build_schema(execution_cache_size=16)
    query = "{ todos { id } } # a text of this test's own"
    parsed: list[object] = []

    class Spy(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            parsed.append(self.execution_context.graphql_document)
            yield

    schema.extensions = (*schema.extensions, Spy)
    for _ in range(2):
        asyncio.run(schema.execute(query, context_value=None))
    assert parsed[0] is parsed[1]


def test_a_syntax_error_becomes_a_result_not_an_exception() -> None:
    schema = build_schema(execution_cache_size=16)

    async def first_result() -> object:
        stream = await schema.subscribe("subscription {")
        return await anext(aiter(stream))  # type: ignore[call-overload]

    result = asyncio.run(first_result())
    assert [e.extensions for e in result.errors] == [{"code": "GRAPHQL_PARSE_FAILED"}]  # type: ignore[attr-defined]


def test_mask_errors_processes_each_result_in_process_result() -> None:
    assert "_process_result" in inspect.getsource(MaskErrors.on_operation)
    assert "_process_result" in inspect.getsource(MaskErrors._process_stream_result)


def test_schema_execute_takes_the_parameters_we_pass_on() -> None:
    ours = list(inspect.signature(OneResultSchema.execute).parameters)
    theirs = list(inspect.signature(strawberry.Schema.execute).parameters)
    assert ours == theirs


def test_strawberry_asgi_adapter_keeps_the_starlette_websocket_as_ws() -> None:
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)


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


def test_legacy_ws_runs_each_operation_as_handle_async_results_in_tasks() -> None:
    start = inspect.getsource(BaseGraphQLWSHandler.handle_start)
    assert "self.handle_async_results(\n            operation_id, query, operation_name, variables\n        )" in start
    assert "self.tasks[operation_id] = asyncio.create_task(result_handler)" in start
    assert "task.cancel()" in inspect.getsource(BaseGraphQLWSHandler.cleanup_operation)
    ours = list(inspect.signature(FanoutWSHandler.handle_async_results).parameters)
    assert ours == list(inspect.signature(BaseGraphQLWSHandler.handle_async_results).parameters)


def test_uvicorn_sansio_protocol_has_what_direct_write_uses() -> None:
    init = inspect.getsource(WebSocketsSansIOProtocol.__init__)
    for attribute in ("self.conn =", "self.writable =", "self.disconnected =", "self.close_sent ="):
        assert attribute in init
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    # Its own frames: one synchronous transport.write each, after awaiting writable.
    assert send.index("await self.writable.wait()") < send.index("self.conn.send_text(text_data.encode())")
    assert "self.transport.write(b\"\".join(output))" in send
    assert "self.app(self.scope, self.receive, self.send)" in inspect.getsource(WebSocketsSansIOProtocol.run_asgi)


def test_our_frame_header_is_the_one_websockets_writes() -> None:
    for length in (0, 125, 126, 65535, 65536):
        data = b"x" * length
        theirs = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
        assert _text_frame_header(length) + data == theirs


def test_direct_write_is_used_under_the_server_config(server: Server) -> None:
    # The app's own server config picks the protocol direct_write knows.
    assert server._uvicorn is not None
    assert server._uvicorn.config.ws is WebSocketProtocol
    protocol = server._uvicorn.config.ws_protocol_class
    assert protocol is not None and issubclass(protocol, WebSocketsSansIOProtocol)
def test_strawberry_resolve_info_has_the_fields_resolve_info_fills() -> None:
    assert _OperationContextAwareGraphQLResolveInfo._fields == (
        "field_name", "field_nodes", "return_type", "parent_type", "path", "schema", "fragments",
        "root_value", "operation", "variable_values", "context", "is_awaitable", "abort_signal",
        "async_helpers", "operation_extensions",
    )  # fmt: skip


def test_strawberry_reads_plain_fields_with_getattr_and_marks_them() -> None:
    graphql_schema = build_schema(execution_cache_size=16)._schema
    now = datetime.now(UTC)
    todo = Todo(uuid.uuid4(), "t", True, now, now + timedelta(days=1))
    todo_type = graphql_schema.get_type("Todo")
    assert isinstance(todo_type, GraphQLObjectType)
    for name, field_def in todo_type.fields.items():
        attribute = plain_attribute(field_def)
        assert attribute is not None, name
        assert field_def.resolve is not None
        assert field_def.resolve(todo, None) == getattr(todo, attribute), name
    assert graphql_schema.query_type is not None
    assert plain_attribute(graphql_schema.query_type.fields["todos"]) is None


def test_strawberry_validates_with_graphql_cores_specified_rules() -> None:
    schema = build_schema(execution_cache_size=16)
    context = StrawberryExecutionContext(query=None, schema=schema, allowed_operations=())
    assert context.validation_rules == tuple(specified_rules)


def test_only_the_legacy_graphql_ws_handler_calls_subscribe_and_streams_what_it_returns() -> None:
    source = inspect.getsource(BaseGraphQLWSHandler.handle_async_results)
    assert "self.schema.subscribe(" in source
    assert "async for result in result_source" in source
    assert "self.schema.subscribe(" not in inspect.getsource(BaseGraphQLTransportWSHandler)


def test_the_view_sends_a_stream_transports_headers() -> None:
    assert "headers=transport.headers" in inspect.getsource(AsyncBaseHTTPView._create_streaming_response)


def test_broadcast_multipart_parts_are_the_ones_strawberry_frames() -> None:
    transport = MultipartSubscriptions()
    response = {"data": {"todoChanges": {"op": "CREATED", "title": "\u00e9t\u00e9"}}}
    # As TodoGraphQL.encode_json encodes.
    def encode(data: object) -> str:
        return orjson.dumps(data).decode()

    assert transport.next_part(orjson.dumps(response)) == transport.encode_next(response, encode).encode()  # type: ignore[arg-type]
    assert transport.heartbeat_part() == transport.heartbeat_message(encode).encode()
    source = inspect.getsource(AsyncBaseHTTPView._stream_result)
    assert "transport.encode_complete()" in source
    assert "send_initial_heartbeat=transport.send_initial_heartbeat" in source
    assert "interval=transport.heartbeat_interval" in source


def test_schema_stream_takes_the_parameters_we_pass_on() -> None:
    parameters = list(inspect.signature(strawberry.Schema.stream).parameters)
    assert parameters == [
        "self", "query", "variable_values", "context_value", "root_value",
        "operation_name", "operation_extensions", "allowed_operation_types",
    ]


def test_graphql_transport_ws_subscribe_reads_the_query_and_drops_extensions() -> None:
    source = inspect.getsource(BaseGraphQLTransportWSHandler.handle_subscribe)
    assert 'message["payload"]["query"]' in source
    assert "extensions" not in source


def test_the_operation_checked_before_validation_is_strawberrys() -> None:
    # Strawberry's path checks it against the method between parsing and
    # validating; the fast path answers a document that fails validation only
    # where Strawberry's path would get that far.
    for text, name in [
        ("{ a } mutation M { b }", None),
        ("{ a } mutation M { b }", "M"),
        ("mutation { a } query { b }", None),
        ("query Q { a } subscription Q { b }", "Q"),
        ("fragment F on T { a } subscription { b }", None),
    ]:
        document = parse(text)
        checked = checked_operation(document, name)
        assert checked is not None and checked.value == get_operation_type(document, name).value, text
    for text, name in [("{ a }", "Nope"), ("fragment F on T { a }", None)]:
        assert checked_operation(parse(text), name) is None
        with pytest.raises(RuntimeError):
            get_operation_type(parse(text), name)


def test_graphql_core_says_a_parse_error_is_the_token_limit_in_its_message_alone() -> None:
    with pytest.raises(GraphQLSyntaxError) as over:
        parse("{ a b c }", max_tokens=3)
    with pytest.raises(GraphQLSyntaxError) as malformed:
        parse("{ a tokens. Parsing aborted.")
    assert (over_token_limit(over.value), over_token_limit(malformed.value)) == (True, False)


def test_transport_ws_starts_the_init_timeout_on_accept_and_cancels_its_task_at_shutdown() -> None:
    handle = inspect.getsource(BaseGraphQLTransportWSHandler.handle)
    assert handle.index("self.on_request_accepted()") < handle.index("iter_json") < handle.index("self.shutdown()")
    shutdown = inspect.getsource(BaseGraphQLTransportWSHandler.shutdown)
    assert "self.connection_init_timeout_task.cancel()" in shutdown
    assert "await self.connection_init_timeout_task" in shutdown
    init = inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init)
    assert init.index("if self.connection_timed_out:") < init.index("self.connection_init_received = True")
    assert "code=4408" in inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init_timeout)


class _IntakeView(JsonIntake, GraphQL[None, None]):
    loads = staticmethod(json_intake.loads)


DEEP = "[" * 1025 + "]" * 1025


def test_strawberry_decodes_bodies_and_get_parameters_through_decode_json_and_lets_refusals_by() -> None:
    assert TodoGraphQL.decode_json is JsonIntake.decode_json
    view = _IntakeView(build_schema(execution_cache_size=16))
    with pytest.raises(RefusedJson):
        view.parse_json(DEEP.encode())  # a body: parse_http_body, parse_multipart_subscriptions
    for name in ("variables", "extensions"):
        with pytest.raises(RefusedJson):
            view.parse_query_params({"query": "{ todos { id } }", name: DEEP})  # type: ignore[arg-type]
    for parses_body in (AsyncBaseHTTPView.parse_http_body, AsyncBaseHTTPView.parse_multipart_subscriptions):
        assert "self.parse_json(await request.get_body())" in inspect.getsource(parses_body)


def test_strawberry_decodes_each_websocket_message_with_the_views_decode_json() -> None:
    # Both protocols' handlers read messages only through iter_json, which
    # catches json's own error alone: a RefusedJson ends the handler.
    source = inspect.getsource(ASGIWebSocketAdapter.iter_json)
    assert "yield self.view.decode_json(text)" in source
    assert "except JSONDecodeError as e:" in source
    assert "except Exception" not in source
    for handler in (BaseGraphQLTransportWSHandler, BaseGraphQLWSHandler):
        handle = inspect.getsource(handler.handle)
        assert "self.websocket.iter_json(" in handle and "except Exception" not in handle


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


def test_transport_ws_refuses_a_second_init_as_the_legacy_handler_does_now() -> None:
    init = inspect.getsource(BaseGraphQLTransportWSHandler.handle_connection_init)
    assert f'reason = "{TOO_MANY_INITS_REASON}"' in init
    assert f"code={TOO_MANY_INITS_CODE}" in init


def test_strawberrys_adapter_turns_only_websocket_disconnect_into_disconnected() -> None:
    send = inspect.getsource(ASGIWebSocketAdapter.send_json)
    assert "except WebSocketDisconnect as exc:" in send
    assert "raise WebSocketDisconnected from exc" in send
    assert send.count("except") == 1  # Starlette's send after close passes through
