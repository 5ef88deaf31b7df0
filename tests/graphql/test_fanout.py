"""The fan-out: a `todo(id)` stream's render (fanout._row_render) writes the
same bytes as graphql-core's execution of the event, by its shortcut for a
selection of the row's plain leaves, and by the plan's render for the rest;
so does a row sink's render of an entry (fanout._entry_render: the root
field's value, within the payload's head and `}}`), from a RowEntry's
snapshot with no Todo made where it can, and its frames are the task's
frames (prefix, payload, suffix); a group key is equal as its document is."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from graphql import OperationDefinitionNode, parse
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from graphql_todos.core.models import Entry, RowEntry, Todo
from graphql_todos.graphql.fanout import (
    _DocumentKey,
    _entry_render,
    _HasErrors,
    _head,
    _row_render,
    _RowRenders,
)
from graphql_todos.graphql.fast.plans import Plan, compile_events
from graphql_todos.graphql.intake import coerce
from tests.graphql.fast.test_events import ROWS, SCHEMA, _strawberry
from tests.graphql.fast.test_plans import ABSENT, IDS, Document, _todo_selection

ROW = Todo(
    uuid.UUID(IDS[0]), "a \"quoted\" title ✓", True, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.UUID(IDS[1]),
)


def _plan(query: str, variables: dict[str, Any]) -> Plan | None:
    document = parse(query)
    operation = cast(OperationDefinitionNode, document.definitions[0])
    compiled = compile_events(SCHEMA._schema, document, operation)
    assert compiled is not None
    coerced = coerce(SCHEMA._schema, operation, variables)
    return None if coerced is None else compiled.plan(coerced)


def _renders(query: str, variables: dict[str, Any]) -> tuple[Callable[[Any], bytes], list[Any]]:
    """The row render of the query's plan, and the events it left to graphql-core."""
    render, _, passed = _all_renders(query, variables)
    return render, passed


def _all_renders(
    query: str, variables: dict[str, Any]
) -> tuple[Callable[[Any], bytes], Callable[[Entry], bytes], list[Any]]:
    """The row and entry renders of the query's plan, and the events they left to graphql-core."""
    plan = _plan(query, variables)
    assert plan is not None
    passed: list[Any] = []

    def graphql_core(event: Any) -> bytes:
        passed.append(event)
        return _strawberry(query, variables, event)

    entry_render = _entry_render(plan)

    def payload(entry: Entry) -> bytes:
        # The sink's body within the payload's head and tail, as _RowFrames writes it.
        return _head(plan) + entry_render(entry) + b"}}"

    return _row_render(plan, graphql_core), payload, passed


def _snapshot(row: Todo) -> dict[str, Any]:
    """The row's jsonb snapshot, as the journal trigger writes it (a time
    that is no time kept as it is)."""
    def time(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "id": str(row.id), "title": row.title, "completed": row.completed, "created_time": time(row.created_time),
        "updated_time": time(row.updated_time), "list_id": str(row.list_id),
    }


def _row_entry(row: Todo) -> RowEntry:
    """The row's entry as a notification reads it, its Todo (`row` itself) made when read."""
    return RowEntry.of(7, row.id, row.list_id, None, _snapshot(row), lambda _: row)


@st.composite
def _rows(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    doc = Document()
    alias = draw(st.sampled_from(["", "r: "]))
    selection = _todo_selection(draw, doc)
    declared = ", ".join(f"${name}: {type_}" for name, (type_, _) in doc.variables.items())
    fragments = " ".join(f"fragment {name} on Todo {{ {body} }}" for name, body in doc.fragments.items())
    query = f'subscription{f"({declared})" if declared else ""} {{ {alias}todo(id: "{IDS[0]}") {{ {selection} }} }} {fragments}'
    return query, {name: value for name, (_, value) in doc.variables.items() if value is not ABSENT}


@settings(max_examples=300, deadline=None)
@given(request=_rows(), row=st.one_of(st.none(), ROWS))
def test_a_row_is_rendered_as_graphql_core_executes_it(request: tuple[str, dict[str, Any]], row: Todo | None) -> None:
    query, variables = request
    assume(_plan(query, variables) is not None)
    render, _ = _renders(query, variables)
    assert render(row) == _strawberry(query, variables, row)


@settings(max_examples=300, deadline=None)
@given(request=_rows(), row=ROWS)
def test_an_entry_is_rendered_as_graphql_core_executes_its_row(request: tuple[str, dict[str, Any]], row: Todo) -> None:
    """A row sink's render of a RowEntry (from its snapshot where it can)
    and of an Entry holding its Todo: the bytes of graphql-core's execution
    of the row."""
    query, variables = request
    assume(_plan(query, variables) is not None)
    _, render, _ = _all_renders(query, variables)
    expected = _strawberry(query, variables, row)
    for entry in (_row_entry(row), Entry(7, "updated", row.id, row, row.list_id, row.list_id)):
        if b'"errors":' in expected:
            # A payload with errors is no value in a frame: the task sends it.
            with pytest.raises(_HasErrors):
                render(entry)
        else:
            assert render(entry) == expected


def test_a_row_entry_of_stored_leaves_is_rendered_with_no_todo_made() -> None:
    """Leaves Todo holds as its snapshot does (and __typename): rendered
    from the RowEntry's snapshot, its Todo never made; any other leaf (an
    id, parsed into a UUID) makes it, as does a value not of its type (here
    a null title: an error, which the task sends)."""
    plain = 'subscription { t: todo(id: "x") { title done: completed __typename } }'
    render, passed = _all_renders(plain, {})[1:]
    entry = _row_entry(ROW)
    assert render(entry) == _strawberry(plain, {}, ROW)
    assert entry.made is None and passed == []
    with_id = 'subscription { todo(id: "x") { id title } }'
    entry = _row_entry(ROW)
    assert _all_renders(with_id, {})[1](entry) == _strawberry(with_id, {}, ROW)
    assert entry.made is ROW
    broken = Todo(ROW.id, cast(str, None), True, ROW.created_time, ROW.updated_time)
    entry = _row_entry(broken)
    with pytest.raises(_HasErrors):
        render(entry)
    assert entry.made is broken and b'"errors":' in _strawberry(plain, {}, broken)


@pytest.mark.parametrize(
    "query",
    [
        'subscription { t: todo(id: "x") { title done: completed __typename } }',  # from the snapshot
        'subscription { todo(id: "x") { id title } }',  # from the Todo
        'subscription { todo(id: "x") { title createdTime } }',  # by the plan
    ],
)
def test_a_row_sinks_frame_is_the_frame_the_task_sends(query: str) -> None:
    """The hub's row sink (RowStream's, by _RowRenders.frames) writes the
    bytes of the task's frame for the same row: prefix + payload + suffix,
    the payload as graphql-core renders it; two watchers of the row share
    its body, their frames differ by their prefixes."""
    plan = _plan(query, {})
    assert plan is not None
    renders = _RowRenders.of(plan, lambda row: _strawberry(query, {}, row))
    written: list[bytes] = []

    def burst(head: bytes, tail: bytes) -> Callable[[bytes], bool]:
        # As Burst's writer frames what it is given: head + body + tail (its
        # header: tests/internals/test_uvicorn_websocket.py).
        def write(body: bytes) -> bool:
            written.append(head + body + tail)
            return True

        return write

    entry = _row_entry(ROW)
    for prefix in (b'{"id":"1","type":"next","payload":', b'{"type":"data","id":"2","payload":'):
        sink = renders.frames(prefix, b"}", burst)
        assert sink.shares is plan
        assert sink.write(sink.render(entry))
    payload = _strawberry(query, {}, ROW)
    assert written == [
        b'{"id":"1","type":"next","payload":' + payload + b"}", b'{"type":"data","id":"2","payload":' + payload + b"}",
    ]
    assert renders.row(ROW) == payload


def test_a_selection_of_plain_leaves_is_rendered_without_graphql_core() -> None:
    query = 'subscription { t: todo(id: "x") { title done: completed id listId __typename kind: __typename } }'
    render, passed = _renders(query, {})
    assert render(ROW) == _strawberry(query, {}, ROW)
    assert passed == []


def test_what_the_shortcut_does_not_cover_is_left_to_the_plan() -> None:
    broken = Todo(ROW.id, cast(str, None), True, ROW.created_time, ROW.updated_time)
    for query, event in [
        ('subscription { todo(id: "x") { title createdTime } }', ROW),  # a custom scalar
        ('subscription { todo(id: "x") { ... on Todo { title } } }', ROW),  # not a field
        ('subscription { todo(id: "x") { title title } }', ROW),  # a key twice
        ('subscription { todo(id: "x") { title @include(if: false) } }', ROW),
        ('subscription { todo(id: "x") { title completed } }', broken),  # a null title: an error
        ('subscription { todo(id: "x") { title completed } }', None),  # gone
    ]:
        render, passed = _renders(query, {})
        assert render(event) == _strawberry(query, {}, event)
        assert passed == [event], query


CHANGES = "subscription { todoChanges { op todo { id title completed } } }"


def test_a_document_key_is_equal_as_its_document_is() -> None:
    first, again = _DocumentKey(parse(CHANGES)), _DocumentKey(parse(CHANGES))
    other = _DocumentKey(parse(CHANGES.replace(" completed", "")))
    assert first == again and hash(first) == hash(again)
    assert first != other
    assert {(None, first): "group"}.get((None, again)) == "group"
