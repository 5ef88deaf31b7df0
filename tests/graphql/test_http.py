"""GraphQL over HTTP to the letter: graphql-http's own audit, media types,
request errors without data, and the older transports' corners."""

from __future__ import annotations

import httpx

from tests.gql import TODO_FIELDS, LegacyWs, create
from tests.helpers import Server
from tests.js_clients import node

GRAPHQL_RESPONSE = "application/graphql-response+json"


def test_graphql_http_server_audit_passes_without_warnings(server: Server) -> None:
    results = node("audit.mjs", server.url + "/graphql")
    assert len(results) > 30
    assert [r for r in results if r["status"] != "ok"] == []


def test_graphql_response_json_is_answered_in_kind(client: httpx.Client) -> None:
    headers = {"accept": GRAPHQL_RESPONSE}
    for request in (  # the compiled path, then Strawberry's (introspection)
        {"query": "{ todos { id } }"},
        {"query": "{ __typename todos { id } }", "extensions": {}},
    ):
        response = client.post("/graphql", json=request, headers=headers)
        assert (response.status_code, response.headers["content-type"]) == (200, GRAPHQL_RESPONSE)
        assert response.json() == {"data": {**({"__typename": "Query"} if "extensions" in request else {}), "todos": []}}


def test_a_request_error_has_no_data_and_is_400_as_graphql_response_json(client: httpx.Client) -> None:
    for request, code in (
        ({"query": "{"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query($id: ID!) { todo(id: $id) { id } }", "variables": {"id": None}}, "BAD_USER_INPUT"),
    ):
        legacy = client.post("/graphql", json=request)
        assert legacy.status_code == 200
        assert "data" not in legacy.json()
        strict = client.post("/graphql", json=request, headers={"accept": GRAPHQL_RESPONSE})
        assert (strict.status_code, strict.headers["content-type"]) == (400, GRAPHQL_RESPONSE)
        assert [e["extensions"]["code"] for e in strict.json()["errors"]] == [code]
        assert "data" not in strict.json()


def test_a_field_error_keeps_data_null_and_status_200(client: httpx.Client) -> None:
    query = 'mutation { deleteTodo(id: "00000000-0000-0000-0000-000000000000") { id } }'
    response = client.post("/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["NOT_FOUND"]


def test_legacy_graphql_ws_runs_queries_and_mutations_sent_with_start(server: Server, client: httpx.Client) -> None:
    ws = LegacyWs(server.ws_url)
    try:
        mutation = f'mutation {{ createTodo(input: {{title: "over start"}}) {{ {TODO_FIELDS} }} }}'
        ws.send({"id": "1", "type": "start", "payload": {"query": mutation}})
        created = ws.recv()
        assert created["type"] == "data"
        todo = created["payload"]["data"]["createTodo"]
        assert ws.recv() == {"type": "complete", "id": "1"}
        ws.send({"id": "2", "type": "start", "payload": {"query": "{ todos { id title } }"}})
        assert ws.recv()["payload"] == {"data": {"todos": [{"id": todo["id"], "title": "over start"}]}}
        assert ws.recv() == {"type": "complete", "id": "2"}
    finally:
        ws.close()
    create(client, "still serving")


def test_subscriptions_transport_ws_from_npm_runs_a_mutation_and_a_query(server: Server) -> None:
    results = node("legacy_ws.mjs", server.ws_url + "/graphql")
    # A mutation's reply carries the cursor of its change (the database's first).
    assert results == [
        {"data": {"createTodo": {"title": "legacy"}}, "extensions": {"cursor": "1"}},
        {"data": {"todos": [{"title": "legacy"}]}},
    ]


def test_multipart_subscriptions_have_a_valid_content_type(server: Server) -> None:
    headers = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    body = {"query": "subscription { todoChanges { op } }"}
    with httpx.stream("POST", server.url + "/graphql", json=body, headers=headers, timeout=10) as response:
        content_type = response.headers["content-type"]
    # One media type, its parameters in RFC 2046 form (no trailing list).
    assert content_type == 'multipart/mixed; boundary="graphql"; subscriptionSpec="1.0"'


def test_apollo_client_reads_multipart_subscriptions(server: Server) -> None:
    # Apollo's HttpLink finds the boundary in the Content-Type to split parts.
    [event] = node("multipart.mjs", server.url + "/graphql")
    assert event["todoChanges"]["todo"]["title"] == "over multipart"


def test_head_is_405_allow_get_post_whatever_the_accept(server: Server) -> None:
    """GraphQL runs over GET and POST only: a HEAD is refused for its method,
    first, as a mutation over GET is, not as a request that is not GraphQL
    (400) or one whose Accept takes nothing (406), and no stream opens."""
    for accept in (
        "*/*", "application/json", GRAPHQL_RESPONSE, "text/event-stream",
        "multipart/mixed;subscriptionSpec=1.0", "text/html", "image/png",
    ):
        for query in ("{ todos { id } }", "subscription { todoChanges { cursor } }", None):
            params = {"query": query} if query else {}
            response = httpx.head(server.url + "/graphql", params=params, headers={"accept": accept}, timeout=5)
            assert (response.status_code, response.headers.get("allow")) == (405, "GET, POST"), (accept, query)
            assert response.headers["content-type"].startswith(("application/json", GRAPHQL_RESPONSE)), accept
