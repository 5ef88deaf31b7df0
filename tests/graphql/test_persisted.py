"""Persisted queries: Apollo Client's persisted-query link from npm, the
same over hand-made requests (GET, POST, WebSocket subscribe), the bounded
store, and trusted documents from the web client's codegen manifest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graphql_todos.graphql.persisted import PersistedQueries
from graphql_todos.live.broadcast import Groups
from tests.decoded import Journaled
from tests.gql import TransportWs
from tests.helpers import ROOT, Server, make_server, serving, wait_until
from tests.js_clients import node
from tests.sse_client import events

MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"
MANIFEST = ROOT / "web" / "src" / "gql" / "persisted-documents.json"
LIST = "{ todos { id } }"


def _sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def _hashed(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": _sha(query)}}


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def test_apollo_persisted_query_link_registers_then_sends_hashes(server: Server) -> None:
    lines = node("apollo.mjs", server.url + "/graphql", server.ws_url + "/graphql")
    fetches = [line["fetch"] for line in lines if "fetch" in line]
    hash_only = {"query": False, "hash": True}
    with_document = {"method": "POST", "query": True, "hash": True, "status": 200}
    assert fetches == [
        # The query: its hash over GET, PersistedQueryNotFound, then the document.
        {"method": "GET", **hash_only, "status": 400},
        with_document,
        # The mutation: POST, the same dance.
        {"method": "POST", **hash_only, "status": 400},
        with_document,
        # The query again: its hash is enough now.
        {"method": "GET", **hash_only, "status": 200},
    ]
    results = [line["result"] for line in lines if "result" in line]
    assert results[2]["todoChanges"]["todo"]["title"] == "from apollo"
    assert [t["title"] for t in results[3]["todoList"]["todos"]] == ["from apollo"]


def test_hashes_over_get_post_and_websocket_subscribe(server: Server, client: httpx.Client) -> None:
    extensions = json.dumps(_hashed(LIST))
    missing = client.get("/graphql", params={"extensions": extensions})
    assert (missing.status_code, missing.json()["errors"][0]["message"]) == (200, "PersistedQueryNotFound")
    assert _codes(missing.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in missing.json()
    registered = client.post("/graphql", json={"query": LIST, "extensions": _hashed(LIST)})
    assert registered.json() == {"data": {"todos": []}}
    assert client.get("/graphql", params={"extensions": extensions}).json() == {"data": {"todos": []}}
    assert client.post("/graphql", json={"extensions": _hashed(LIST)}).json() == {"data": {"todos": []}}
    wrong = client.post("/graphql", json={"query": "{ todos { title } }", "extensions": _hashed(LIST)})
    assert _codes(wrong.json()) == ["BAD_REQUEST"]

    changes = "subscription { todoChanges(after: \"0\") { op } }"
    with TransportWs(server.ws_url) as ws:
        ws.send({"id": "1", "type": "subscribe", "payload": {"extensions": _hashed(changes)}})
        refused = ws.recv()
        assert (refused["type"], _codes({"errors": refused["payload"]})) == ("error", ["PERSISTED_QUERY_NOT_FOUND"])
        ws.send({"id": "2", "type": "subscribe", "payload": {"query": changes, "extensions": _hashed(changes)}})
        client.post("/api/todos/", json={"title": "a"})
        assert ws.next_data() == {"todoChanges": {"op": "CREATED"}}
        ws.send({"id": "3", "type": "subscribe", "payload": {"extensions": _hashed(changes)}})
        assert ws.next_data() == {"todoChanges": {"op": "CREATED"}}


def test_requests_by_hash_take_the_compiled_fast_path(server: Server, client: httpx.Client) -> None:
    fast = server.fast_path()
    mutation = 'mutation { createTodo(input: {title: "fast"}) { title } }'
    created = {"data": {"createTodo": {"title": "fast"}}}
    first = client.post("/graphql", json={"query": mutation, "extensions": _hashed(mutation)}).json()
    assert first["data"] == created["data"] and first["extensions"]["cursor"].isdigit()
    before = server.call(lambda: fast.executions)
    assert client.post("/graphql", json={"extensions": _hashed(mutation)}).json()["data"] == created["data"]
    assert client.post("/graphql", json={"query": LIST, "extensions": _hashed(LIST)}).json()["data"]["todos"]
    client.post("/api/todos/", json={"title": "the journal moves: no cached answer"})
    by_get = client.get("/graphql", params={"extensions": json.dumps(_hashed(LIST))})
    assert len(by_get.json()["data"]["todos"]) == 3
    assert server.call(lambda: fast.executions) - before == 3
    # What the plan does not take gets Strawberry's answer, as before.
    unknown = client.post("/graphql", json={"extensions": _hashed("{ todos { title } }")})
    assert _codes(unknown.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    other = client.post("/graphql", json={"query": LIST, "extensions": {**_hashed(LIST), "other": 1}})
    assert len(other.json()["data"]["todos"]) == 3
    assert server.call(lambda: fast.executions) - before == 3


def test_the_store_keeps_only_the_most_recently_used() -> None:
    store = PersistedQueries(size=2)
    queries = ["{ a }", "{ b }", "{ c }"]
    for query in queries[:2]:
        store.document(query, _hashed(query))
    store.document(None, _hashed("{ a }"))  # a is used again: b is the oldest
    store.document(queries[2], _hashed(queries[2]))
    assert len(store) == 2
    assert store.document(None, _hashed("{ a }")) == "{ a }"
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        store.document(None, _hashed("{ b }"))


@pytest.fixture
def server(journaled_db: Journaled) -> Iterator[Server]:
    """In each journal mode (Settings.journal): decoded, a write's cursor comes from the hub."""
    with serving(journaled_db.dsn, journal=journaled_db.journal) as srv:
        yield srv


@pytest.fixture
def trusted(journaled_db: Journaled) -> Any:
    manifest = json.loads(MANIFEST.read_text())
    server = make_server(journaled_db.dsn, trusted_documents=manifest, journal=journaled_db.journal)
    server.start()
    yield server, manifest
    server.stop()


def test_trusted_documents_run_and_nothing_else(trusted: tuple[Server, dict[str, str]]) -> None:
    server, manifest = trusted
    digest, document = next((k, v) for k, v in manifest.items() if v.startswith("fragment") and "query TodoList" in v)
    # The web client sends its document as written; codegen's manifest has it sorted.
    as_written = "query TodoList {\n  todoList {\n    cursor\n    todos { ...TodoFields }\n  }\n}\nfragment TodoFields on Todo { id title completed listId }"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        by_hash = {"persistedQuery": {"version": 1, "sha256Hash": digest.removeprefix("sha256:")}}
        # A trusted document by hash alone runs on the compiled fast path.
        client.get("/graphql", params={"extensions": json.dumps(by_hash)})
        assert server.call(lambda: server.fast_path().executions) == 1
        for response in (
            client.get("/graphql", params={"extensions": json.dumps(by_hash)}),
            client.post("/graphql", json={"extensions": by_hash}),
            client.post("/graphql", json={"query": document}),
            client.post("/graphql", json={"query": as_written}),
        ):
            assert response.json()["data"]["todoList"]["todos"] == [], response.text
        for response in (
            client.post("/graphql", json={"query": LIST}),  # the compiled path
            client.get("/graphql", params={"query": LIST}),
            client.post("/graphql", json={"extensions": _hashed(LIST)}),
            client.post("/graphql", json={"query": LIST, "extensions": _hashed(LIST)}),
        ):
            assert "data" not in response.json()
            assert _codes(response.json()) == ["DOCUMENT_NOT_TRUSTED"]
    with events(server.url + "/graphql", json={"query": LIST}) as feed:
        assert _codes(json.loads(feed.next()["data"])) == ["DOCUMENT_NOT_TRUSTED"]
    with TransportWs(server.ws_url) as ws:
        ws.subscribe("subscription { todoChanges { op } }")
        refused = ws.recv()
        assert _codes({"errors": refused["payload"]}) == ["DOCUMENT_NOT_TRUSTED"]


def test_a_subscription_sent_by_hash_alone_joins_the_group_of_its_document(server: Server) -> None:
    changes = "subscription { todoChanges { op todo { title } } }"
    groups: Groups = server.state("broadcast_groups")
    url = server.url + "/graphql"
    # The first stream registers the document; the second sends only its hash.
    with events(url, json={"query": changes, "extensions": _hashed(changes)}) as full, events(
        url, json={"extensions": _hashed(changes)}
    ) as by_hash, TransportWs(server.ws_url) as ws, httpx.stream(
        "POST", url, json={"extensions": _hashed(changes)}, headers={"accept": MULTIPART}, timeout=10
    ) as multipart:
        ws.send({"id": "1", "type": "subscribe", "payload": {"extensions": _hashed(changes)}})
        wait_until(lambda: server.subscriber_count() == 4)
        # One group for both event streams, one for the WebSocket's frames,
        # one for multipart parts.
        assert server.call(lambda: len(groups)) == 3
        renders = server.call(lambda: groups.renders)
        httpx.post(server.url + "/api/todos/", json={"title": "by hash"})
        expected = {"data": {"todoChanges": {"op": "CREATED", "todo": {"title": "by hash"}}}}
        assert json.loads(full.next()["data"]) == json.loads(by_hash.next()["data"]) == expected
        assert ws.next_data() == expected["data"]
        received, chunks = b"", multipart.iter_raw()
        while b"by hash" not in received:
            received += next(chunks)
        assert server.call(lambda: groups.renders) - renders == 3


def test_a_trusted_subscription_sent_by_hash_joins_a_group(trusted: tuple[Server, dict[str, str]]) -> None:
    server, manifest = trusted
    digest = next(k for k, v in manifest.items() if "subscription TodoChanges" in v).removeprefix("sha256:")
    by_hash = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    with events(server.url + "/graphql", json={"extensions": by_hash, "variables": {"after": "0"}}) as feed:
        wait_until(lambda: server.call(lambda: len(server.state("broadcast_groups"))) == 1)
        httpx.post(server.url + "/api/todos/", json={"title": "trusted"})
        change = json.loads(feed.next()["data"])["data"]["todoChanges"]
        assert (change["op"], change["todo"]["title"]) == ("CREATED", "trusted")
