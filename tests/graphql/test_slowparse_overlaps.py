"""Fields sharing a response name, checked to merge in bounded time:
graphql-core's OverlappingFieldsCanBeMergedRule compares them in pairs, so
247 copies of `me{id}` (within MAX_TOKENS) held the one event loop 0.35 s a
request. Its comparisons now stop at OVERLAP_BUDGET (graphql/limits.py),
refusing the document with a validation error. Bound on growth, as in
tests/edge/test_slowparse_headers.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from graphql import parse

from graphql_todos.core.settings import Settings
from graphql_todos.graphql.limits import OVERLAP_BUDGET, OverlapsExceeded
from graphql_todos.graphql.outcomes import QueryLimits, refused_limit
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.strawberry import validation_errors
from tests.edge.test_slowparse_headers import GROWTH, growth, server_cpu
from tests.gql import TransportWs, data, error_codes, gql
from tests.helpers import Server, errors_logged, serving

SHAPES = ["me{id}", "...on Query{me{id}}"]


def copies(n: int, field: str = "me{id}") -> str:
    return "{" + f"{field} " * n + "}"


@pytest.mark.parametrize("field", SHAPES)
def test_fields_sharing_a_response_name_are_checked_in_bounded_time(field: str) -> None:
    schema = build_schema(16, QueryLimits.of(Settings()))

    def checked(n: int) -> None:
        validation_errors(schema, parse(copies(n, field)), schema.limits.rules)

    # From n copies past the budget: within it, the rule's pairs grow as n squared.
    assert growth(checked, 160) < GROWTH


def test_the_budget_refuses_only_documents_beyond_it() -> None:
    schema = build_schema(16, QueryLimits.of(Settings()))
    # n copies of me{id} take n * (n - 1) / 2 comparisons, and as many of their ids:
    # 89 pass.
    assert OVERLAP_BUDGET == 20_000
    assert validation_errors(schema, parse(copies(85)), schema.limits.rules) == []
    errors = validation_errors(schema, parse(copies(95)), schema.limits.rules)
    assert [type(e) for e in errors] == [OverlapsExceeded]
    assert refused_limit(errors[0]) == "fields"


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn) as srv:
        yield srv


def test_many_fields_of_one_response_name_are_refused_with_a_validation_error(server: Server) -> None:
    assert server.settings.max_tokens == 1000
    with errors_logged() as logged, httpx.Client(base_url=server.url, timeout=10) as client:
        body = gql(client, copies(247))
        assert ("data" in body, error_codes(body)) == (False, ["GRAPHQL_VALIDATION_FAILED"])
        assert body["errors"][0]["message"] == OverlapsExceeded().message
        assert "sharing a response name" in body["errors"][0]["message"]
        with TransportWs(server.ws_url) as ws:
            op_id = ws.subscribe("subscription { todoChanges { todo {" + " id" * 200 + " } } }")
            message = ws.recv()
        assert (message["type"], message["id"]) == ("error", op_id)
        assert [e["extensions"]["code"] for e in message["payload"]] == ["GRAPHQL_VALIDATION_FAILED"]
        assert "sharing a response name" in message["payload"][0]["message"]
    assert logged == []


def side_by_side(fragments: int) -> str:
    """A list's rows read through `fragments` fragments of 6 fields each, as
    Relay and codegen write a screen of components."""
    fields = "id title completed createdTime updatedTime listId"
    spreads = " ".join(f"...F{i}" for i in range(fragments))
    definitions = " ".join(f"fragment F{i} on Todo {{ {fields} }}" for i in range(fragments))
    return f"{{ todos {{ {spreads} }} }} {definitions}"


def test_fragments_spread_side_by_side_as_relay_writes_them_are_taken(server: Server) -> None:
    """review22: 23 such fragments (1.9 KB) cost 5,001 units, over the first
    budget; 40 are within this one. Many more are refused, saying so."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for fragments in (23, 40):
            assert data(client, side_by_side(fragments)) == {"todos": []}
        schema = build_schema(16, QueryLimits.of(Settings()))
        errors = validation_errors(schema, parse(side_by_side(60)), schema.limits.rules)
    assert [type(e) for e in errors] == [OverlapsExceeded]
    assert "spread fewer fragments side by side" in errors[0].message


def test_fields_within_the_budget_still_merge_or_conflict_as_graphql_core_says(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert data(client, copies(20, "todos{id}")) == {"todos": []}
        body = gql(client, "{ a: todos { id } a: me { id } }")
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert body["errors"][0]["message"].startswith("Fields 'a' conflict because 'todos' and 'me' are different fields.")


def test_a_document_of_fields_sharing_a_response_name_is_refused_in_time_linear_in_its_length(server: Server) -> None:
    # __typename, one token: 142 copies (the fewest refused) to 4 times as many, within MAX_TOKENS.
    def refused(n: int) -> None:
        answer = httpx.post(server.url + "/graphql", json={"query": copies(n, "__typename")}, timeout=10)
        assert "sharing a response name" in answer.json()["errors"][0]["message"]

    assert growth(refused, 150, clock=server_cpu(server)) < GROWTH
