"""Compiled subscription events (compile_events, execute_event) answer
exactly as graphql-core executes them for Strawberry: random `todo(id)` and
`todoChanges` documents over our schema, random events (rows, none, changes,
and rows broken so that completing them fails), written both ways."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from graphql import OperationDefinitionNode, parse
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strawberry.http import process_result

from graphql_todos.core.models import Change, Op, Todo
from graphql_todos.graphql.fast.execution import execute_event
from graphql_todos.graphql.fast.plans import compile_events, compile_operation
from graphql_todos.graphql.intake import coerce
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.strawberry import TodoExecutionContext
from tests.graphql.fast.test_plans import ABSENT, IDS, TITLES, Document, _todo_selection

SCHEMA = build_schema(execution_cache_size=16)


@st.composite
def subscriptions(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    doc = Document()
    alias = draw(st.sampled_from(["", "r: "]))
    selection = _todo_selection(draw, doc)
    if draw(st.booleans()):
        root = f'{alias}todo(id: "{IDS[0]}") {{ {selection} }}'
    else:
        parts = draw(st.lists(st.sampled_from(["op", "cursor", f"todo {{ {selection} }}", "__typename"]), min_size=1))
        root = f"{alias}todoChanges {{ {' '.join(parts)} }}"
    declared = ", ".join(f"${name}: {type_}" for name, (type_, _) in doc.variables.items())
    fragments = " ".join(f"fragment {name} on Todo {{ {body} }}" for name, body in doc.fragments.items())
    query = f"subscription{f'({declared})' if declared else ''} {{ {root} }} {fragments}"
    return query, {name: value for name, (_, value) in doc.variables.items() if value is not ABSENT}


# A row, or one whose title is missing or whose time is no time: completing
# those fails (a non-null field, a scalar that cannot serialize it).
ROWS = st.builds(
    Todo,
    id=st.sampled_from([uuid.UUID(i) for i in IDS]),
    title=st.one_of(TITLES, st.none()),
    completed=st.booleans(),
    created_time=st.one_of(st.datetimes(timezones=st.just(UTC)), st.just("later")),
    updated_time=st.just(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)),
)
EVENTS = st.one_of(
    st.none(),
    ROWS,
    st.builds(Change, position=st.integers(1, 2**40), op=st.sampled_from(list(Op)), todo=ROWS),
)


def _strawberry(query: str, variables: dict[str, Any], event: Any) -> bytes:
    """What the fan-out wrote for an event before compiled plans: graphql-core's execution."""
    executor = TodoExecutionContext.build(SCHEMA._schema, parse(query), raw_variable_values=variables)
    assert not isinstance(executor, list)
    result = executor.build_per_event_executor(event).execute_operation(False)
    result.errors = SCHEMA.finish_errors(result.errors) if result.errors else None
    return orjson.dumps(process_result(result))


@settings(max_examples=300, deadline=None)
@given(request=subscriptions(), event=EVENTS)
def test_compiled_events_answer_as_graphql_core_does(request: tuple[str, dict[str, Any]], event: Any) -> None:
    query, variables = request
    document = parse(query)
    operation = cast(OperationDefinitionNode, document.definitions[0])
    compiled = compile_events(SCHEMA._schema, document, operation)
    assert compiled is not None
    coerced = coerce(SCHEMA._schema, operation, variables)
    # Variables that fail coercion, a null condition: the fan-out leaves those to Strawberry.
    assume(coerced is not None)
    plan = compiled.plan(cast(Any, coerced))
    assume(plan is not None)
    data, errors = execute_event(cast(Any, plan), event)
    result: dict[str, Any] = {"data": data}
    if errors:
        result["errors"] = [e.formatted for e in SCHEMA.finish_errors(errors)]
    assert orjson.dumps(result) == _strawberry(query, variables, event)


def test_only_subscriptions_compile_for_events_and_only_queries_and_mutations_for_requests() -> None:
    for query, events in [("subscription { todo(id: \"1\") { title } }", True), ("{ todos { title } }", False)]:
        document = parse(query)
        operation = cast(OperationDefinitionNode, document.definitions[0])
        assert (compile_events(SCHEMA._schema, document, operation) is not None) is events
        assert (compile_operation(SCHEMA._schema, document, operation) is not None) is not events
