"""One document intake: every GraphQL path picks the operation Strawberry's
path runs, and a document is parsed and validated once whichever paths take it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from graphql_todos.graphql.intake import Intake, Operation, Refusal
from graphql_todos.graphql.schema import build_schema
from tests.gql import LegacyWs, TransportWs, subscribed
from tests.helpers import Server, errors_logged
from tests.sse_client import events

QUERIES = "query A { todos { id } } query B { todos { title } }"
SUBSCRIPTIONS = "subscription A { todoChanges { cursor } } subscription B { todoChanges { op } }"
INVALID_SUBSCRIPTION = "subscription A { nope }"
INVALID_QUERY = "query A { nope }"


def _fields(query: str | None, name: str | None) -> dict[str, Any]:
    return {**({"query": query} if query is not None else {}), **({"operationName": name} if name is not None else {})}


def _over_every_transport(client: httpx.Client, server: Server, fields: dict[str, Any]) -> list[Any]:
    """The answer over POST, GET, Strawberry's own path (`extensions`), SSE and graphql-transport-ws."""
    posted = client.post("/graphql", json=fields)
    got = client.get("/graphql", params=fields)
    theirs = client.post("/graphql", json={**fields, "extensions": {}})
    with events(server.url + "/graphql", json=fields) as stream:
        event = stream.next()
    with TransportWs(server.ws_url) as ws:
        ws.send({"id": "1", "type": "subscribe", "payload": {**fields, "variables": {}}})
        message = ws.recv()
    return [
        *((r.status_code, r.json()) for r in (posted, got, theirs)),
        (event["event"], json.loads(event["data"])),
        (message["type"], message["payload"]),
    ]


def test_several_operations_without_a_name_run_the_first_on_every_transport(
    client: httpx.Client, server: Server
) -> None:
    first: dict[str, Any] = {"data": {"todos": []}}
    assert _over_every_transport(client, server, _fields(QUERIES, None)) == [
        (200, first), (200, first), (200, first), ("next", first), ("next", first)
    ]


@pytest.mark.parametrize(("query", "name", "message"), [
    (QUERIES, "Nope", 'Unknown operation named "Nope".'),
    (None, None, "No GraphQL query found in the request"),
    ("", None, "No GraphQL query found in the request"),
    (INVALID_QUERY, "Nope", 'Unknown operation named "Nope".'),
])
def test_no_operation_to_run_is_the_same_error_over_http(
    client: httpx.Client, query: str | None, name: str | None, message: str
) -> None:
    fields = _fields(query, name)
    answers = [client.post("/graphql", json=fields), client.post("/graphql", json={**fields, "extensions": {}})]
    if query is not None:
        answers.append(client.get("/graphql", params=fields))
    error = {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}
    assert [(a.status_code, a.json()) for a in answers] == [(400, error)] * len(answers)


def test_a_document_is_parsed_and_validated_once_per_operation_name() -> None:
    intake = Intake(build_schema(execution_cache_size=16))
    query = "query A { todos { id } } subscription B { todoChanges { cursor } }"
    a = intake.operation(query, "A")
    assert isinstance(a, Operation) and a.definition.operation.value == "query"
    assert intake.operation(query, "A") is a
    b = intake.operation(query, "B")
    assert isinstance(b, Operation) and b.definition.operation.value == "subscription"
    assert intake.operation(query, "Nope") is None
    assert intake.operation("", None) is None
    assert intake.parses == 3
    assert intake.operation(query, "Nope") is None
    assert intake.parses == 3
    variables = intake.variables(a, {"unused": 1})
    assert variables is not None and variables.key == b"{}"
    assert intake.variables(a, {"unused": 1}) is variables


def test_refusals_keep_the_document_that_parsed_and_are_not_kept() -> None:
    intake = Intake(build_schema(execution_cache_size=16))
    unparsed = intake.operation("{ todos { id ", None)
    assert isinstance(unparsed, Refusal) and unparsed.document is None
    invalid = intake.operation("mutation { nope }", None)
    assert isinstance(invalid, Refusal) and invalid.document is not None
    assert [(e.extensions or {}).get("code") for e in invalid.errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert intake.operation("mutation { nope }", None) is not invalid
    assert intake.parses == 3


def test_a_request_again_takes_no_parse_on_any_path(client: httpx.Client, server: Server) -> None:
    intake = server.fast_path().intake
    query = "query($first: Int) { todos(first: $first) { id } }"
    subscription = "subscription { todoChanges { cursor } }"
    for variables in ({"first": 1}, {"first": 2}):
        assert client.post("/graphql", json={"query": query, "variables": variables}).status_code == 200
    with subscribed(server, subscription):
        parses = server.call(lambda: intake.parses)
    for _ in range(3):
        assert client.post("/graphql", json={"query": query, "variables": {"first": 1}}).status_code == 200
        assert client.get("/graphql", params={"query": query}).status_code == 200
        with subscribed(server, subscription):
            pass
    assert server.call(lambda: intake.parses) == parses


@pytest.mark.parametrize(("query", "name", "message"), [
    (SUBSCRIPTIONS, "Nope", 'Unknown operation named "Nope".'),
    (QUERIES, "Nope", 'Unknown operation named "Nope".'),
    ("", None, "No GraphQL query found in the request"),
    # A document that would fail validation, but names no operation first
    # (as over HTTP): Strawberry's stream raised, masked ("Unexpected error.",
    # INTERNAL_SERVER_ERROR) with an ERROR logged.
    (INVALID_SUBSCRIPTION, "Nope", 'Unknown operation named "Nope".'),
    (INVALID_QUERY, "", 'Unknown operation named "".'),
])
def test_no_operation_to_run_is_a_bad_request_on_every_stream(
    server: Server, query: str, name: str | None, message: str
) -> None:
    fields = _fields(query, name)
    error = {"message": message, "extensions": {"code": "BAD_REQUEST"}}
    with errors_logged() as logged:
        with events(server.url + "/graphql", json=fields) as stream:
            event = stream.next()
        with events(server.url + "/graphql?" + urlencode(fields)) as stream:
            got = stream.next()
        with TransportWs(server.ws_url) as ws:
            ws.send({"id": "1", "type": "subscribe", "payload": {**fields, "variables": {}}})
            transport = ws.recv()
        legacy = LegacyWs(server.ws_url)
        try:
            legacy.send({"id": "1", "type": "start", "payload": {**fields, "variables": {}}})
            answer = legacy.recv()
        finally:
            legacy.close()
    assert (event["event"], json.loads(event["data"])) == ("next", {"errors": [error]})
    assert (got["event"], json.loads(got["data"])) == ("next", {"errors": [error]})
    assert transport == {"id": "1", "type": "error", "payload": [error]}
    assert answer == {"id": "1", "type": "error", "payload": error}
    assert logged == []


def test_a_mutation_picked_first_over_get_is_refused_as_one_alone(client: httpx.Client) -> None:
    # The view checks the operation the intake picks: the first, as Strawberry runs it.
    alone = client.get("/graphql", params={"query": "mutation A { clearCompleted { id } }"})
    first = client.get("/graphql", params={"query": "mutation B { clearCompleted { id } } query A { todos { id } }"})
    assert (first.status_code, first.headers["allow"], first.content) == (405, "POST", alone.content)
