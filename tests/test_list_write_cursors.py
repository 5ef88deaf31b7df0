"""The cursor in the reply of moveTodo and of the list writes (README,
"Numbered mutations": a cursor in every mutation's reply): the journal
position at which the write's change arrives in the feed, on GraphQL
(`extensions.cursor`) and REST (`Journal-Cursor`); against a real server, in
each journal mode (tests/decoded.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.decoded import Journaled
from tests.gql import TransportWs, subscribed
from tests.helpers import Server, serving
from tests.test_item_endings import DELETE_LIST, MOVE, REMOVE
from tests.test_lists import CREATE, CREATE_LIST, SHARE

FEED = "subscription { feed { kind cursor todoId listId } }"
RENAME_LIST = "mutation($id: ID!, $n: String!) { renameList(id: $id, name: $n) { id } }"
SET_ROLE = "mutation($l: ID!, $p: ID!, $r: Role!) { setMemberRole(listId: $l, personId: $p, role: $r) { role } }"


@pytest.fixture(scope="module")
def served(module_journaled_db: Journaled) -> Iterator[tuple[Server, httpx.Client]]:
    """A server in the module's journal mode, and a client of it."""
    with (
        serving(module_journaled_db.dsn, journal=module_journaled_db.journal) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        yield srv, client


def mutate(client: httpx.Client, query: str, **variables: Any) -> tuple[Any, int]:
    """A mutation's data and its reply's cursor."""
    reply = client.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "errors" not in reply, reply
    return reply["data"], int(reply["extensions"]["cursor"])


def arrives_at(ws: TransportWs, cursor: int) -> list[dict[str, Any]]:
    """The feed's events up to the one at `cursor`, which must come: none skips past it."""
    events: list[dict[str, Any]] = []
    while not events or int(events[-1]["cursor"]) < cursor:
        events.append(ws.next_data()["feed"])
    assert int(events[-1]["cursor"]) == cursor, (cursor, events)
    return events


def person(server: Server, username: str) -> str:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("INSERT INTO people (username) VALUES (%s) RETURNING id", (username,)).fetchone()
    assert row is not None
    return str(row[0])


def test_graphql_move_and_list_writes_carry_the_cursor_their_change_arrives_at(
    served: tuple[Server, httpx.Client],
) -> None:
    server, client = served
    other = person(server, f"p{uuid.uuid4().hex[:8]}")
    with subscribed(server, FEED) as ws:
        made, cursor = mutate(client, CREATE_LIST, name="moves")
        list_id = made["createList"]["id"]
        assert [e["kind"] for e in arrives_at(ws, cursor)][-1] == "MEMBER_ADDED"
        todo_id = mutate(client, CREATE, t="to move", l=None)[0]["createTodo"]["id"]
        _, cursor = mutate(client, MOVE, id=todo_id, l=list_id)
        assert [(e["kind"], e["todoId"]) for e in arrives_at(ws, cursor)][-1] == ("TODO_UPDATED", todo_id)
        # Moved again into the list it is in: no entry; a cursor the feed has reached.
        _, same = mutate(client, MOVE, id=todo_id, l=list_id)
        assert same >= cursor
        _, cursor = mutate(client, RENAME_LIST, id=list_id, n="renamed")
        assert arrives_at(ws, cursor)[-1]["kind"] == "LIST_UPDATED"
        # Entries of another reader (the arrivals) come last: the feed reaches
        # the cursor by the next write's events, and no event of this one is after it.
        for query, variables in (
            (SHARE, {"id": list_id, "u": _username(server, other), "r": "VIEWER"}),
            (SET_ROLE, {"l": list_id, "p": other, "r": "EDITOR"}),
            (SET_ROLE, {"l": list_id, "p": other, "r": "EDITOR"}),
            (REMOVE, {"l": list_id, "p": other}),
        ):
            _, cursor = mutate(client, query, **variables)
            _, marker = mutate(client, RENAME_LIST, id=list_id, n=f"after {cursor}")
            events = arrives_at(ws, marker)
            assert all(int(e["cursor"]) <= cursor for e in events[:-1]) and marker > cursor, (cursor, events)
        _, cursor = mutate(client, DELETE_LIST, id=list_id)
        kinds = [e["kind"] for e in arrives_at(ws, cursor)]
        assert "TODO_DELETED" in kinds and kinds[-1] == "LIST_REMOVED", kinds


def _username(server: Server, person_id: str) -> str:
    with psycopg.connect(server.dsn) as conn:
        row = conn.execute("SELECT username FROM people WHERE id = %s", (person_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_rest_move_and_list_writes_send_journal_cursor(served: tuple[Server, httpx.Client]) -> None:
    server, client = served
    with subscribed(server, FEED) as ws:
        made = client.post("/api/lists/", json={"name": "rest moves"})
        assert made.status_code == 201, made.text
        list_id = made.json()["id"]
        arrives_at(ws, int(made.headers["journal-cursor"]))
        todo = client.post("/api/todos/", json={"title": "rest move"}).json()
        moved = client.patch(f"/api/todos/{todo['id']}/", json={"list_id": list_id})
        assert moved.status_code == 200, moved.text
        assert arrives_at(ws, int(moved.headers["journal-cursor"]))[-1]["todoId"] == todo["id"]
        renamed = client.patch(f"/api/lists/{list_id}/", json={"name": "rest renamed"})
        assert arrives_at(ws, int(renamed.headers["journal-cursor"]))[-1]["kind"] == "LIST_UPDATED"
        deleted = client.delete(f"/api/lists/{list_id}/")
        assert deleted.status_code == 204
        assert arrives_at(ws, int(deleted.headers["journal-cursor"]))[-1]["kind"] == "LIST_REMOVED"
