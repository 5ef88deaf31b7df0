"""Cursors, as clients spell them."""

from __future__ import annotations

import pytest

from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.journal import parse_cursor


@pytest.mark.parametrize(("cursor", "position"), [("0", 0), ("42", 42), ("9223372036854775807", 2**63 - 1)])
def test_cursors_are_decimal_positions(cursor: str, position: int) -> None:
    assert parse_cursor(cursor) == position


@pytest.mark.parametrize("cursor", ["", "-1", "1.0", " 1", "x", "٣", "1" * 20])
def test_other_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        parse_cursor(cursor)
    assert refused.value.field == "after"
