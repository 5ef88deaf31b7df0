"""Input values, checked in time linear in their length: graphql-core's
ValuesOfCorrectTypeRule prints the value each of its errors is about into
the error's message, walking the whole value for each (however short the
text kept), so an input object of 320 unknown fields (within MAX_TOKENS)
took 0.3 s to refuse with its 100 errors. Each value is now printed once
(internals/graphql_core.py, print_values_once). Bound on growth, as in
tests/edge/test_slowparse_headers.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from graphql import parse

from graphql_todos.core.settings import Settings
from graphql_todos.graphql.outcomes import QueryLimits
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.strawberry import validation_errors
from tests.edge.test_slowparse_headers import GROWTH, growth
from tests.gql import error_codes, gql
from tests.helpers import Server, errors_logged, serving


def unknown_fields(n: int) -> str:
    inner = " ".join(f"f{i}:1" for i in range(n))
    return f"mutation{{createTodo(input:{{{inner}}}){{id}}}}"


def test_an_input_object_is_refused_in_time_linear_in_its_fields() -> None:
    schema = build_schema(16, QueryLimits.of(Settings()))

    def refused(n: int) -> None:
        assert validation_errors(schema, parse(unknown_fields(n)), schema.limits.rules)

    # Under 100 errors at both sizes: each printed its object whole, n * n.
    assert growth(refused, 24) < GROWTH


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn) as srv:
        yield srv


def test_an_input_object_of_unknown_fields_gets_its_errors(server: Server) -> None:
    with errors_logged() as logged, httpx.Client(base_url=server.url, timeout=10) as client:
        body = gql(client, unknown_fields(320))
    assert "data" not in body
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    messages = [e["message"] for e in body["errors"]]
    assert messages[1].startswith("Expected value of type 'CreateTodoInput' not to include unknown field 'f0', found: {")
    assert len(messages) == 101 and messages[-1].startswith("Too many validation errors")
    # Each says what it found in 200 characters at most, not the whole value (360 KB of errors).
    assert all(len(message) < 320 for message in messages), max(map(len, messages))
    assert logged == []
