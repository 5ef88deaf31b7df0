"""The fan-out's group keys."""

from __future__ import annotations

from graphql import parse

from graphql_todos.graphql.fanout import _DocumentKey

CHANGES = "subscription { todoChanges { op todo { id title completed } } }"


def test_a_document_key_is_equal_as_its_document_is() -> None:
    first, again = _DocumentKey(parse(CHANGES)), _DocumentKey(parse(CHANGES))
    other = _DocumentKey(parse(CHANGES.replace(" completed", "")))
    assert first == again and hash(first) == hash(again)
    assert first != other
    assert {(None, first): "group"}.get((None, again)) == "group"
