"""A numbered edit that moves a row (REST PATCH or PUT with `list_id` and an
`Idempotency-Key`) is applied once, move included: its retry changes nothing
and answers as the first did, byte for byte, even after someone else moved
the row meanwhile (docs/design/offline.md, section 1). Over real HTTP, in
each journal mode (tests/decoded.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.decoded import Journaled
from tests.helpers import Server, serving
from tests.test_lists import CREATE, CREATE_LIST, Caller

MOVE = "mutation($id: ID!, $l: ID!) { moveTodo(id: $id, listId: $l) { id listId } }"


@pytest.fixture(scope="module")
def accounts(module_journaled_db: Journaled) -> Iterator[Server]:
    with serving(module_journaled_db.dsn, journal=module_journaled_db.journal, auth="accounts") as srv:
        yield srv


def _lists(server: Server) -> tuple[Caller, str, str, str]:
    """A new person, two lists of theirs (W, X) and a row in their default list."""
    ann = Caller(server, f"ann-{uuid.uuid4().hex[:8]}")
    w, x = (ann.data(CREATE_LIST, name=name)["createList"]["id"] for name in ("W", "X"))
    return ann, w, x, ann.data(CREATE, t="report")["createTodo"]["id"]


def _row(ann: Caller, row: str) -> dict[str, Any]:
    found = ann.http.get(f"/api/todos/{row}/")
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


@pytest.mark.parametrize(
    "method, body",
    [("PATCH", {"completed": True}), ("PUT", {"title": "report v2", "completed": True})],
)
def test_a_retried_move_does_not_undo_a_move_made_meanwhile(
    accounts: Server, method: str, body: dict[str, Any]
) -> None:
    ann, w, x, row = _lists(accounts)
    key = {"Idempotency-Key": f'"{uuid.uuid4()}:1"'}
    first = ann.http.request(method, f"/api/todos/{row}/", json={**body, "list_id": w}, headers=key)
    assert first.status_code == 200, first.text
    assert (first.json()["list_id"], first.json()["completed"]) == (w, True)
    # Someone else moves it on; then the first reply is lost and the client retries.
    assert ann.data(MOVE, id=row, l=x)["moveTodo"]["listId"] == x
    kept = _row(ann, row)
    again = ann.http.request(method, f"/api/todos/{row}/", json={**body, "list_id": w}, headers=key)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["journal-cursor"] == first.headers["journal-cursor"]
    assert again.headers["idempotency-key"] == key["Idempotency-Key"]
    assert _row(ann, row) == kept
    # The same key with another body keeps its answer: refused, nothing moved.
    reused = ann.http.request(method, f"/api/todos/{row}/", json={**body, "list_id": w, "completed": False}, headers=key)
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert _row(ann, row) == kept


def test_a_retried_move_todo_does_not_undo_a_move_made_meanwhile(accounts: Server) -> None:
    ann, w, x, row = _lists(accounts)
    me = str(uuid.uuid4())

    def numbered(target: str) -> dict[str, Any]:
        body = {"query": MOVE, "variables": {"id": row, "l": target}, "extensions": {"mutation": {"client": me, "seq": 1}}}
        response = ann.http.post("/graphql", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    first = numbered(w)
    assert first["data"]["moveTodo"]["listId"] == w
    assert first["extensions"]["mutation"] == {"client": me, "seq": 1, "verdict": "APPLIED"}
    assert ann.data(MOVE, id=row, l=x)["moveTodo"]["listId"] == x
    assert numbered(w) == first
    assert _row(ann, row)["list_id"] == x
    assert [e["extensions"]["code"] for e in numbered(x)["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    # A move into a list one may not see is rejected, recorded, and retried the same.
    me = str(uuid.uuid4())
    hidden = str(uuid.uuid4())
    refused = [numbered(hidden) for _ in range(2)]
    assert refused[0] == refused[1]
    assert [e["extensions"]["code"] for e in refused[0]["errors"]] == ["NOT_FOUND"]
    assert refused[0]["extensions"]["mutation"]["verdict"] == "REJECTED"
    assert _row(ann, row)["list_id"] == x


def test_a_numbered_move_that_changes_nothing_answers_its_retry_the_same(accounts: Server) -> None:
    # Into the list the row is in, its state as it is: no journal entry
    # (decoded: the statement settles its verdict, or the reply would wait for one).
    ann, w, _, row = _lists(accounts)
    assert ann.data(MOVE, id=row, l=w)["moveTodo"]["listId"] == w
    key = {"Idempotency-Key": f'"{uuid.uuid4()}:1"'}
    replies = [
        ann.http.patch(f"/api/todos/{row}/", json={"list_id": w, "completed": False}, headers=key) for _ in range(2)
    ]
    assert [r.status_code for r in replies] == [200, 200], replies[0].text
    assert replies[0].content == replies[1].content
    assert replies[0].headers["journal-cursor"] == replies[1].headers["journal-cursor"]
    assert replies[0].json() == _row(ann, row)


def test_a_numbered_move_into_a_list_one_cannot_see_is_422_as_an_unnumbered_one(accounts: Server) -> None:
    # The URL's todo is there; what is not is a value in the body (tests/test_lists_contract.py).
    ann, _, _, row = _lists(accounts)
    body = {"list_id": str(uuid.uuid4()), "completed": True}
    plain = ann.http.patch(f"/api/todos/{row}/", json=body)
    key = {"Idempotency-Key": f'"{uuid.uuid4()}:1"'}
    numbered = [ann.http.patch(f"/api/todos/{row}/", json=body, headers=key) for _ in range(2)]
    assert [r.status_code for r in (plain, *numbered)] == [422, 422, 422], numbered[0].text
    assert numbered[0].content == numbered[1].content
    assert numbered[0].json()["error"]["code"] == "NOT_FOUND"
    assert numbered[0].json()["error"]["row"] == _row(ann, row)
    assert not _row(ann, row)["completed"]
