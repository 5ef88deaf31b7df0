"""The feed of one list (REST's ?list_id=, GraphQL's feed(listId:)) opens
alike for a list the caller may not see and for an id that is no list's: it
carries that list's entries once it is shared with the caller
(tests/rest/test_feed_removals.py), and telling the two apart would tell
whether a list exists, which a list one is no member of never does
(docs/security.md). A malformed id is refused before the stream starts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server, serving
from tests.test_lists import CREATE_LIST, Caller

SSE = {"Accept": "text/event-stream"}
FEED = "subscription($l: ID) { feed(listId: $l) { kind cursor } }"


@pytest.fixture(scope="module")
def accounts(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, auth="accounts") as srv:
        yield srv


def _opening(client: httpx.Client, method: str, url: str, **kwargs: object) -> tuple[int, str, bytes]:
    """A stream's status, type and first chunk (its resume point)."""
    with client.stream(method, url, headers=SSE, **kwargs) as response:  # type: ignore[arg-type]
        return response.status_code, response.headers["content-type"], next(response.iter_bytes())


def test_a_feed_of_a_list_one_may_not_see_opens_as_one_of_no_list(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    hidden = ann.data(CREATE_LIST, name="ann's")["createList"]["id"]
    nobody = str(uuid.uuid4())
    rest = [_opening(bob.http, "GET", "/api/feed/", params={"list_id": key}) for key in (hidden, nobody)]
    assert rest[0] == rest[1] and rest[0][:2] == (200, "text/event-stream"), rest
    graphql = [_opening(bob.http, "POST", "/graphql", json={"query": FEED, "variables": {"l": key}}) for key in (hidden, nobody)]
    assert graphql[0] == graphql[1] and graphql[0][:2] == (200, "text/event-stream"), graphql
    malformed = bob.http.get("/api/feed/", params={"list_id": "x"}, headers=SSE)
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "BAD_USER_INPUT")
