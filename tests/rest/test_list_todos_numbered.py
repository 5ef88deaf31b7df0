"""POST /api/lists/<id>/todos/ writes as POST /api/todos/ does (README, Lists
and sharing): an `Idempotency-Key` numbers it, so a retry is applied once
and answered as the first was, with its `Journal-Cursor`; a malformed key is
400; the same key with another body is 422."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server, serving
from tests.test_lists import CREATE_LIST, Caller


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts") as srv:
        yield srv


def _posted(server: Server) -> tuple[Caller, str, str, str, httpx.Response]:
    """ann's new list, its todos' URL, a key, and the first numbered POST to it."""
    ann = Caller(server, "ann")
    shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
    url = f"/api/lists/{shared}/todos/"
    key = f'"{uuid.uuid4()}:1"'
    return ann, shared, url, key, ann.http.post(url, json={"title": "once"}, headers={"Idempotency-Key": key})


def test_a_numbered_post_to_a_list_s_todos_is_applied_once(accounts: Server) -> None:
    ann, shared, url, key, first = _posted(accounts)
    again = ann.http.post(url, json={"title": "once"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content
    assert first.headers["journal-cursor"] == again.headers["journal-cursor"]
    assert first.headers["idempotency-key"] == key
    assert [t["title"] for t in ann.http.get(url).json()] == ["once"]
    assert first.json()["list_id"] == shared
    reused = ann.http.post(url, json={"title": "other"}, headers={"Idempotency-Key": key})
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    malformed = ann.http.post(url, json={"title": "x"}, headers={"Idempotency-Key": "junk"})
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "BAD_USER_INPUT")
    plain = ann.http.post(url, json={"title": "plain"})
    assert plain.status_code == 201 and int(plain.headers["journal-cursor"]) > int(first.headers["journal-cursor"])


def test_a_numbered_retry_after_the_list_is_gone_is_answered_as_the_first(accounts: Server) -> None:
    ann, doomed, url, key, first = _posted(accounts)
    assert first.status_code == 201, first.text
    assert ann.http.delete(f"/api/lists/{doomed}/").status_code == 204
    again = ann.http.post(url, json={"title": "once"}, headers={"Idempotency-Key": key})
    assert (again.status_code, again.content) == (201, first.content)
    assert again.headers["journal-cursor"] == first.headers["journal-cursor"]
