"""graphql/persisted.py with trusted documents, for a document over
MAX_TOKENS sent in full: refused with DOCUMENT_NOT_TRUSTED after one look,
whichever transport carries it. A document that does not parse within the
limit has no verdict kept by hash (what its parse stopped at is no hash), and
a POST's body is read anew by the fast path, by the view choosing the media
type and by Strawberry's path (another string each time): its refusal was
judged 2 or 3 times a POST, ~15 ms of the event loop each. The view has the
request's verdict kept for the request (persisted.judging)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from graphql_todos.graphql.persisted import PersistedQueries, judging
from tests.graphql.test_persisted_once import MANIFEST, _codes, _get, _post, _sse, _ws, normalized  # noqa: F401 - the fixture
from tests.helpers import Server, serving

# Over MAX_TOKENS (1,000 here): no parse of it ends.
OVER = "{ todos { id " + "title " * 1200 + "} }"


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, trusted_documents=MANIFEST, max_tokens=1000) as srv:
        yield srv


def _post_taking(accept: str) -> Callable[[Server, str], dict[str, Any]]:
    def post(server: Server, query: str) -> dict[str, Any]:
        response = httpx.post(server.url + "/graphql", json={"query": query}, headers={"Accept": accept}, timeout=10)
        return response.json()  # type: ignore[no-any-return]

    post.__name__ = "post_" + accept.split("/")[1].split(";")[0].replace("+", "_").replace("-", "_")
    return post


SENDS = [
    _post,  # Accept: */*, which takes a stream for a subscription
    _post_taking("application/json"),
    _post_taking("application/graphql-response+json"),
    _post_taking("multipart/mixed;subscriptionSpec=1.0,application/json"),  # a refusal: JSON
    _get,
    _sse,
    _ws,
]


@pytest.mark.parametrize("send", SENDS, ids=[send.__name__ for send in SENDS])
def test_a_document_over_max_tokens_is_judged_once_a_request(
    server: Server, normalized: list[str], send: Callable[[Server, str], dict[str, Any]]  # noqa: F811 - the fixture
) -> None:
    query = OVER if send is not _ws else "subscription { todoChanges { op " + "op " * 1200 + "} }"
    query += f"\n# {send.__name__}"  # a text this test alone sends
    assert _codes(send(server, query)) == ["DOCUMENT_NOT_TRUSTED"]
    assert normalized == [query]


def test_a_request_s_verdict_is_its_own(normalized: list[str]) -> None:  # noqa: F811 - the fixture
    store, other = PersistedQueries(8, MANIFEST, max_tokens=1000), PersistedQueries(8, {}, max_tokens=1000)
    normalized.clear()  # the manifests' own
    over = OVER + " "

    def request(*stores: PersistedQueries) -> list[bool]:
        # As the view serves one: in a task of its own, judging() first.
        judging()
        return [store.allows((over + " ")[:-1]) for store in stores]  # each time another string

    assert contextvars.copy_context().run(request, store, store, store, other) == [False] * 4
    assert contextvars.copy_context().run(request, store) == [False]
    # Outside a request: each copy judged anew (the growth bound of
    # tests/graphql/test_slowparse_persisted.py measures that).
    assert not store.allows((over + " ")[:-1])
    assert normalized == [over] * 4
