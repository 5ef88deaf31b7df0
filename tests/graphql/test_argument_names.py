"""A BAD_USER_INPUT's message names the value it refuses as the client
named it: in GraphQL by its argument's name (camelCase), in REST by its
field's (snake_case), never by the Python name of the layer below."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import TOKEN, Server, serving
from tests.test_lists import Caller

MALFORMED = "not-an-id"
# Each operation, and the argument its bad value is in.
REFUSED = [
    ('mutation { createAccessToken(name: "ci", expiresInDays: 0) { secret } }', "expiresInDays"),
    ('mutation { createAccessToken(name: " ") { secret } }', "name"),
    (f'mutation {{ moveTodo(id: "{MALFORMED}", listId: "{MALFORMED}") {{ id }} }}', "id"),
    (f'mutation {{ createTodo(input: {{title: "a", listId: "{MALFORMED}"}}) {{ id }} }}', "listId"),
    (f'mutation {{ setMemberRole(listId: "{MALFORMED}", personId: "{MALFORMED}", role: VIEWER) {{ role }} }}', "listId"),
    (f'mutation {{ removeMember(listId: "{MALFORMED}", personId: "{MALFORMED}") {{ role }} }}', "listId"),
    ('{ todos(first: -1) { id } }', "first"),
    ('mutation { createList(input: {name: " "}) { id } }', "name"),
]


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


def test_graphql_names_a_refused_value_by_its_argument(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    named = []
    for query, argument in REFUSED:
        error = ann.gql(query)["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (query, error)
        named.append((query, error["message"].partition(" ")[0]))
    assert named == [(query, argument) for query, argument in REFUSED]
    expiring = ann.gql(REFUSED[0][0])["errors"][0]["message"]
    assert re.fullmatch(r"expiresInDays must be an integer from 1 to \d+, or null", expiring), expiring


def test_rest_names_a_refused_value_by_its_field(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    made = ann.http.post("/api/todos/", json={"title": "a"}).json()
    moved = ann.http.patch(f"/api/todos/{made['id']}/", json={"list_id": MALFORMED})
    assert (moved.status_code, moved.json()["error"]["message"]) == (422, f"list_id is malformed: {MALFORMED!r}")
    expiring = ann.http.post("/api/tokens/", json={"name": "ci", "expires_in_days": 0})
    assert expiring.status_code == 422
    assert expiring.json()["error"]["message"].startswith("expires_in_days must be")


def test_a_numbered_rest_move_records_its_refusal_by_the_bodys_field(accounts: Server) -> None:
    """The refusal of a numbered PATCH is its verdict too, kept and answered
    again on a retry: it names the value as the body did."""
    ann = Caller(accounts, "ann")
    made = ann.http.post("/api/todos/", json={"title": "a"}).json()
    client = uuid.uuid4()
    said = f"list_id is malformed: {MALFORMED!r}"
    for _ in range(2):  # the first answer, then the retry's, from its record
        moved = ann.http.patch(
            f"/api/todos/{made['id']}/", json={"list_id": MALFORMED}, headers={"Idempotency-Key": f'"{client}:1"'}
        )
        assert (moved.status_code, moved.json()["error"]["message"]) == (422, said)
    verdicts = ann.http.get(f"/api/mutations/{client}/").json()
    assert [(v["verdict"], v["message"]) for v in verdicts] == [("REJECTED", said)]
