"""What an outbox's edits meet when they arrive late (issue 20, docs/design/
offline.md sections 3 and 4): concurrent edits merge per field, a delete wins
over an edit, and a queue sent in order settles every edit, a rejection
included, with nothing waiting behind it. Two clients against a real
PostgreSQL and uvicorn: the "offline" one numbers its edits and sends them
after the other's change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gql import TODO_FIELDS, create, data
from tests.helpers import Server, serving

TODO = f"query($id: ID!) {{ todo(id: $id) {{ {TODO_FIELDS} }} }}"
RENAME = f"mutation($id: ID!, $t: String) {{ updateTodo(id: $id, input: {{title: $t}}) {{ {TODO_FIELDS} }} }}"
COMPLETE = f"mutation($id: ID!, $c: Boolean) {{ updateTodo(id: $id, input: {{completed: $c}}) {{ {TODO_FIELDS} }} }}"
DELETE = f"mutation($id: ID!) {{ deleteTodo(id: $id) {{ {TODO_FIELDS} }} }}"
CREATE = f"mutation($t: String!) {{ createTodo(input: {{title: $t}}) {{ {TODO_FIELDS} }} }}"
VERDICTS = "query($c: ID!) { mutationVerdicts(client: $c) { seq verdict cursor code message } }"


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn) as srv:
        yield srv


@pytest.fixture
def online(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def offline(server: Server) -> Iterator[httpx.Client]:
    """The client whose edits were queued while it was offline."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


class Outbox:
    """Sends queued edits as an outbox does: numbered, one at a time, in order."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.id = str(uuid.uuid4())
        self.seq = 0

    def send(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        body = {"query": query, "variables": variables, "extensions": {"mutation": {"client": self.id, "seq": self.seq}}}
        response = self.client.post("/graphql", json=body)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply


def row(client: httpx.Client, todo_id: str) -> Any:
    return data(client, TODO, {"id": todo_id})["todo"]


def test_an_offline_rename_keeps_a_completion_made_meanwhile(online: httpx.Client, offline: httpx.Client) -> None:
    todo = create(online, "milk")
    data(online, COMPLETE, {"id": todo["id"], "c": True})
    reply = Outbox(offline).send(RENAME, {"id": todo["id"], "t": "oat milk"})
    assert reply["extensions"]["mutation"]["verdict"] == "APPLIED"
    assert {k: row(online, todo["id"])[k] for k in ("title", "completed")} == {"title": "oat milk", "completed": True}


def test_an_offline_completion_keeps_a_rename_made_meanwhile(online: httpx.Client, offline: httpx.Client) -> None:
    todo = create(online, "bread")
    data(online, RENAME, {"id": todo["id"], "t": "rye bread"})
    reply = Outbox(offline).send(COMPLETE, {"id": todo["id"], "c": True})
    assert reply["extensions"]["mutation"]["verdict"] == "APPLIED"
    assert {k: row(online, todo["id"])[k] for k in ("title", "completed")} == {"title": "rye bread", "completed": True}


def test_an_offline_edit_of_a_row_deleted_meanwhile_is_rejected_not_found(online: httpx.Client, offline: httpx.Client) -> None:
    todo = create(online, "eggs")
    data(online, DELETE, {"id": todo["id"]})
    reply = Outbox(offline).send(RENAME, {"id": todo["id"], "t": "six eggs"})
    assert reply["extensions"]["mutation"]["verdict"] == "REJECTED"
    assert [e["extensions"]["code"] for e in reply["errors"]] == ["NOT_FOUND"]
    # Gone, so no row to show: the editor is told it was deleted.
    assert "row" not in reply["errors"][0]["extensions"]
    assert row(online, todo["id"]) is None


def test_an_offline_delete_wins_over_an_edit_made_meanwhile(online: httpx.Client, offline: httpx.Client) -> None:
    todo = create(online, "tea")
    data(online, RENAME, {"id": todo["id"], "t": "green tea"})
    reply = Outbox(offline).send(DELETE, {"id": todo["id"]})
    assert reply["extensions"]["mutation"]["verdict"] == "APPLIED"
    assert reply["data"]["deleteTodo"]["title"] == "green tea"
    assert row(online, todo["id"]) is None


def test_a_rejection_carries_the_row_as_the_server_has_it(online: httpx.Client, offline: httpx.Client) -> None:
    todo = create(online, "jam")
    data(online, COMPLETE, {"id": todo["id"], "c": True})
    outbox = Outbox(offline)
    reply = outbox.send(RENAME, {"id": todo["id"], "t": "   "})
    assert reply["extensions"]["mutation"]["verdict"] == "REJECTED"
    [error] = reply["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["row"] == row(online, todo["id"])
    # A retry says the same, row and all.
    body = {"query": RENAME, "variables": {"id": todo["id"], "t": "   "}, "extensions": {"mutation": {"client": outbox.id, "seq": 1}}}
    assert offline.post("/graphql", json=body).json() == reply


def test_100_queued_with_one_invalid_99_applied_1_rejected(server: Server, offline: httpx.Client) -> None:
    outbox = Outbox(offline)
    titles = [f"queued {i}" if i != 50 else " " for i in range(1, 101)]
    replies = [outbox.send(CREATE, {"t": title}) for title in titles]
    verdicts = [r["extensions"]["mutation"]["verdict"] for r in replies]
    assert verdicts.count("APPLIED") == 99
    assert [i + 1 for i, v in enumerate(verdicts) if v == "REJECTED"] == [50]
    assert replies[49]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert replies[49]["errors"][0]["message"] == "title must not be blank"
    recorded = data(offline, VERDICTS, {"c": outbox.id})["mutationVerdicts"]
    assert [(v["seq"], v["verdict"], v["code"]) for v in recorded] == [
        (str(i), "REJECTED" if i == 50 else "APPLIED", "BAD_USER_INPUT" if i == 50 else None) for i in range(1, 101)
    ]
    assert [r["data"]["createTodo"]["title"] for r in replies if r["data"]] == [t for t in titles if t != " "]


CREATE_NAMED = f"mutation($id: ID, $t: String!) {{ createTodo(input: {{id: $id, title: $t}}) {{ {TODO_FIELDS} }} }}"


def test_a_create_may_name_its_row_so_later_queued_edits_can(online: httpx.Client, offline: httpx.Client) -> None:
    named = str(uuid.uuid4())
    outbox = Outbox(offline)
    made = outbox.send(CREATE_NAMED, {"id": named, "t": "named offline"})
    assert made["data"]["createTodo"]["id"] == named
    renamed = outbox.send(RENAME, {"id": named, "t": "renamed offline"})
    assert renamed["extensions"]["mutation"]["verdict"] == "APPLIED"
    assert row(online, named)["title"] == "renamed offline"
    # A retry of the create (its id now taken) answers from its record.
    body = {"query": CREATE_NAMED, "variables": {"id": named, "t": "named offline"}, "extensions": {"mutation": {"client": outbox.id, "seq": 1}}}
    assert offline.post("/graphql", json=body).json() == made


def test_a_create_naming_a_taken_id_is_a_conflict(online: httpx.Client, offline: httpx.Client) -> None:
    taken = create(online, "first")["id"]
    reply = Outbox(offline).send(CREATE_NAMED, {"id": taken, "t": "second"})
    assert reply["extensions"]["mutation"]["verdict"] == "REJECTED"
    assert [e["extensions"]["code"] for e in reply["errors"]] == ["CONFLICT"]
    plain = online.post("/graphql", json={"query": CREATE_NAMED, "variables": {"id": taken, "t": "third"}})
    assert plain.status_code == 200
    assert [e["extensions"]["code"] for e in plain.json()["errors"]] == ["CONFLICT"]
    malformed = online.post("/graphql", json={"query": CREATE_NAMED, "variables": {"id": "nope", "t": "x"}}).json()
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["BAD_USER_INPUT"]
    assert row(online, taken)["title"] == "first"
