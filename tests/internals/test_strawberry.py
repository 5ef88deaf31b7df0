"""One test per assumption internals/strawberry.py makes of Strawberry and
graphql-core: after an upgrade, a failure here names what changed."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLObjectType, GraphQLSyntaxError, execute, parse, specified_rules
from graphql import Executor as GraphQLCoreExecutor
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.schema import (
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
    _parse_operation_document,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionContext as StrawberryExecutionContext
from strawberry.utils.operation import get_operation_type

from graphql_todos.core.models import Todo
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.strawberry import (
    OneResultSchema,
    TodoExecutionContext,
    over_token_limit,
    plain_attribute,
    strawberry_operation,
)

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


def test_schema_stream_takes_the_parameters_we_pass_on() -> None:
    parameters = list(inspect.signature(strawberry.Schema.stream).parameters)
    assert parameters == [
        "self", "query", "variable_values", "context_value", "root_value",
        "operation_name", "operation_extensions", "allowed_operation_types",
    ]


def test_the_operation_picked_is_the_one_strawberrys_path_runs() -> None:
    for text, name in [
        ("{ a } mutation M { b }", None),
        ("{ a } mutation M { b }", "M"),
        ("query A { a } query B { b }", None),
        ("query Q { a } subscription Q { b }", "Q"),
        ("fragment F on T { a } subscription { b }", None),
    ]:
        document = parse(text)
        picked = strawberry_operation(document, name)
        assert picked is not None and picked.operation.value == get_operation_type(document, name).value, text
    for text, name in [("{ a }", "Nope"), ("fragment F on T { a }", None)]:
        assert strawberry_operation(parse(text), name) is None
        with pytest.raises(RuntimeError):
            get_operation_type(parse(text), name)


def test_graphql_core_says_a_parse_error_is_the_token_limit_in_its_message_alone() -> None:
    with pytest.raises(GraphQLSyntaxError) as over:
        parse("{ a b c }", max_tokens=3)
    with pytest.raises(GraphQLSyntaxError) as malformed:
        parse("{ a tokens. Parsing aborted.")
    assert (over_token_limit(over.value), over_token_limit(malformed.value)) == (True, False)
