"""Behaviour of the REST layer (rest/feed.py, lists.py, params.py,
sockets.py, auth.py, routing.py) no other test held: each case kills a
hand-made mutant that the rest of the suite let live (the mutation run's
report names them)."""

from __future__ import annotations

import json

import httpx

from tests.gql import CREATE, gql
from tests.helpers import Server
from tests.sse_client import events


def _cursor(client: httpx.Client, title: str) -> str:
    """Create a todo; the journal cursor its reply carries."""
    body = gql(client, CREATE, {"t": title})
    cursor: str = body["extensions"]["cursor"]
    return cursor


def test_the_feed_resumes_from_last_event_id_not_from_its_urls_after(server: Server, client: httpx.Client) -> None:
    """An EventSource reconnects to the URL it was opened with (?after= the
    cursor it started from) and sends Last-Event-ID, the last event it got:
    the feed goes on after that one, not again from ?after= (each event
    once). Taking ?after= first passed every other test."""
    _cursor(client, "first")
    seen = _cursor(client, "seen")
    _cursor(client, "next")
    with events(server.url + "/api/feed/?after=0", {"last-event-id": seen}) as feed:
        event = feed.next()
    assert (event["event"], json.loads(event["data"])["todo"]["title"]) == ("todo_created", "next")


def test_a_malformed_member_id_in_the_url_is_400_for_a_role_change_too(client: httpx.Client) -> None:
    """PATCH /api/lists/{id}/members/{person_id}/ checks the person's id as
    every id in a URL is checked: 400, where the same in a body is 422
    (taken unchecked, it reached set_role, which answered 422)."""
    made = client.post("/api/lists/", json={"name": "shared"})
    assert made.status_code == 201, made.text
    for method in ("PATCH", "DELETE"):
        refused = client.request(method, f"/api/lists/{made.json()['id']}/members/nope/", json={"role": "viewer"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BAD_USER_INPUT"), (method, refused.text)
        assert "person_id" in refused.json()["error"]["message"]


def test_a_negative_page_is_told_its_range_not_that_it_is_no_integer(client: httpx.Client) -> None:
    """?limit=-1 and ?offset=-1 are integers out of range: 400 with the range,
    as GraphQL's limit and offset are told (int_param refusing a minus sign
    called -1 no integer)."""
    for name in ("limit", "offset"):
        refused = client.get(f"/api/todos/?{name}=-1")
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BAD_USER_INPUT"), refused.text
        assert "must be from 0 to" in refused.json()["error"]["message"], refused.text
