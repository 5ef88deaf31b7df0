"""graphql/persisted.py with trusted documents: a document sent in full is
put in its canonical form once a request, whichever transport carries it
and whether it is trusted or refused. The intake and Strawberry's path both
ask whether it may run: each put it in order, 1,000 tokens of it ~25 ms of
the one event loop each."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from graphql_todos.graphql import persisted
from graphql_todos.graphql.persisted import PersistedQueries
from tests.gql import TransportWs
from tests.helpers import Server, serving
from tests.sse_client import events

MANIFEST = {"sha256:0": "query Todos { todos { id title } }"}
AS_WRITTEN = "query Todos {\n  todos { title id }\n}"  # trusted once put in order
UNTRUSTED = "{ todos { id " + "title " * 400 + "} }"


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, trusted_documents=MANIFEST) as srv:
        yield srv


@pytest.fixture
def normalized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The documents put in canonical form, from now on."""
    made: list[str] = []
    original = persisted._normalized

    def counting(document: str, max_tokens: int | None = None) -> str | None:
        made.append(document)
        return original(document, max_tokens)

    monkeypatch.setattr(persisted, "_normalized", counting)
    return made


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def _post(server: Server, query: str) -> dict[str, Any]:
    return httpx.post(server.url + "/graphql", json={"query": query}, timeout=10).json()


def _get(server: Server, query: str) -> dict[str, Any]:
    return httpx.get(server.url + "/graphql", params={"query": query}, timeout=10).json()


def _sse(server: Server, query: str) -> dict[str, Any]:
    with events(server.url + "/graphql", json={"query": query}) as feed:
        return json.loads(feed.next()["data"])  # type: ignore[no-any-return]


def _ws(server: Server, query: str) -> dict[str, Any]:
    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe(query)
        message = ws.recv()
    assert message["id"] == op_id
    return {"errors": message["payload"]} if message["type"] == "error" else message["payload"]


@pytest.mark.parametrize("send", [_post, _get, _sse, _ws])
def test_a_refused_document_is_put_in_order_once(
    server: Server, normalized: list[str], send: Callable[[Server, str], dict[str, Any]]
) -> None:
    query = UNTRUSTED if send is not _ws else "subscription { todoChanges { op } }"
    query += f"\n# {send.__name__}"  # a text this test alone sends
    assert _codes(send(server, query)) == ["DOCUMENT_NOT_TRUSTED"]
    assert normalized == [query]


@pytest.mark.parametrize("send", [_post, _get])
def test_a_trusted_document_as_written_is_put_in_order_once(
    server: Server, normalized: list[str], send: Callable[[Server, str], dict[str, Any]]
) -> None:
    query = AS_WRITTEN + f"\n# {send.__name__}"  # a text this test alone sends
    assert send(server, query) == {"data": {"todos": []}}
    assert normalized == [query]


def test_a_verdict_is_kept_for_the_text_and_for_a_document_that_parsed(normalized: list[str]) -> None:
    store = PersistedQueries(8, MANIFEST, max_tokens=1000)
    normalized.clear()  # the manifest's own
    untrusted, again = UNTRUSTED + " ", (UNTRUSTED + "  ")[:-1]
    assert untrusted == again and untrusted is not again
    verdicts = [store.allows(AS_WRITTEN), store.allows(AS_WRITTEN), store.allows(untrusted), store.allows(again)]
    assert verdicts == [True, True, False, False]
    assert normalized == [AS_WRITTEN, untrusted]
    # Over MAX_TOKENS: the same text is known, an equal one judged anew.
    over = "{" + "a " * 2000 + "}"
    over_again = (over + " ")[:-1]
    assert [store.allows(over), store.allows(over), store.allows(over_again)] == [False, False, False]
    assert normalized[2:] == [over, over_again]
