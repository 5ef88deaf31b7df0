"""Lists and sharing over GraphQL (docs/design/people.md sections 5 and 9):
who may write where, and what each caller is told when they may not."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.helpers import BEARER, Server

PASSWORD = "correct horse battery"


class Caller:
    """A signed-up person's browser: cookies, our Origin, GraphQL over POST."""

    def __init__(self, server: Server, username: str) -> None:
        self.http = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=10)
        response = self.http.post("/api/auth/sign-up", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        self.id: str = response.json()["person"]["id"]

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, **variables: Any) -> Any:
        body = self.gql(query, **variables)
        assert "errors" not in body, body
        return body["data"]

    def code(self, query: str, **variables: Any) -> str:
        body = self.gql(query, **variables)
        code: str = body["errors"][0]["extensions"]["code"]
        return code


CREATE_LIST = "mutation($name: String!) { createList(input: {name: $name}) { id name role isDefault } }"
SHARE = "mutation($id: ID!, $u: String!, $r: Role!) { shareList(id: $id, username: $u, role: $r) { person { username } role } }"
CREATE = "mutation($t: String!, $l: ID) { createTodo(input: {title: $t, listId: $l}) { id title } }"
UPDATE = "mutation($id: ID!) { updateTodo(id: $id, input: {title: \"changed\"}) { id title } }"
DELETE = "mutation($id: ID!) { deleteTodo(id: $id) { id } }"
LISTS = "{ lists { id name role isDefault members { person { username } role } } }"


def test_an_owner_shares_a_viewer_reads_an_editor_writes_and_strangers_see_nothing(accounts: Server) -> None:
    ann, bob, eve = Caller(accounts, "ann"), Caller(accounts, "bob"), Caller(accounts, "eve")
    shared = ann.data(CREATE_LIST, name="groceries")["createList"]
    assert (shared["name"], shared["role"], shared["isDefault"]) == ("groceries", "OWNER", False)
    row = ann.data(CREATE, t="milk", l=shared["id"])["createTodo"]
    assert ann.data(SHARE, id=shared["id"], u="bob", r="VIEWER")["shareList"] == {
        "person": {"username": "bob"}, "role": "VIEWER"
    }
    bobs = {entry["name"]: entry for entry in bob.data(LISTS)["lists"]}
    assert bobs["groceries"]["role"] == "VIEWER"
    assert bobs["groceries"]["members"] == [
        {"person": {"username": "ann"}, "role": "OWNER"}, {"person": {"username": "bob"}, "role": "VIEWER"}
    ]
    assert bob.code(UPDATE, id=row["id"]) == "FORBIDDEN"
    assert bob.code(DELETE, id=row["id"]) == "FORBIDDEN"
    assert bob.code(CREATE, t="x", l=shared["id"]) == "FORBIDDEN"
    assert eve.code(UPDATE, id=row["id"]) == "NOT_FOUND"
    assert eve.code(CREATE, t="x", l=shared["id"]) == "NOT_FOUND"
    assert [entry["name"] for entry in eve.data(LISTS)["lists"]] == ["Todos"]
    ann.data(
        "mutation($l: ID!, $p: ID!) { setMemberRole(listId: $l, personId: $p, role: EDITOR) { role } }",
        l=shared["id"], p=bob.id,
    )
    assert bob.data(UPDATE, id=row["id"])["updateTodo"]["title"] == "changed"
    # Toggling every row the caller may edit leaves others' lists alone.
    eves = eve.data(CREATE, t="eve's own")["createTodo"]
    # Naming another person's row in `ids` does not reach it either.
    named = "mutation($ids: [ID!]) { clearCompleted(ids: $ids) { id } }"
    eve.data("mutation { toggleAll(completed: true) { id } }")
    assert bob.data(named, ids=[eves["id"], row["id"]])["clearCompleted"] == []
    assert bob.data("mutation($ids: [ID!]) { toggleAll(completed: true, ids: $ids) { id } }", ids=[eves["id"]]) == {
        "toggleAll": []
    }
    eve.data("mutation { toggleAll(completed: false) { id } }")
    assert {t["title"] for t in bob.data("mutation { toggleAll(completed: true) { title } }")["toggleAll"]} == {"changed"}
    ann.data("mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { role } }", l=shared["id"], p=bob.id)
    assert bob.code(UPDATE, id=row["id"]) == "NOT_FOUND"


def test_create_todo_without_a_list_joins_the_callers_default_list(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    row = ann.data(CREATE, t="mine")["createTodo"]
    with psycopg.connect(accounts.dsn) as conn:
        owner = conn.execute(
            "SELECT l.owner_id::text, l.is_default FROM todos t JOIN lists l ON l.id = t.list_id WHERE t.id = %s",
            (row["id"],),
        ).fetchone()
    assert owner == (ann.id, True)


def test_what_only_an_owner_may_do_and_what_nobody_may(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    shared = ann.data(CREATE_LIST, name="shared")["createList"]["id"]
    default = next(entry["id"] for entry in ann.data(LISTS)["lists"] if entry["isDefault"])
    assert ann.code(SHARE, id=shared, u="nobody", r="EDITOR") == "NOT_FOUND"
    ann.data(SHARE, id=shared, u="bob", r="EDITOR")
    assert ann.code(SHARE, id=shared, u="bob", r="VIEWER") == "CONFLICT"
    assert bob.code(SHARE, id=shared, u="ann", r="VIEWER") == "FORBIDDEN"
    assert bob.code("mutation($id: ID!) { deleteList(id: $id) { id } }", id=shared) == "FORBIDDEN"
    assert ann.code("mutation($id: ID!) { deleteList(id: $id) { id } }", id=default) == "FORBIDDEN"
    assert ann.code("mutation($id: ID!) { leaveList(id: $id) { id } }", id=shared) == "FORBIDDEN"
    renamed = bob.data("mutation($id: ID!) { renameList(id: $id, name: \" new \") { name role } }", id=shared)
    assert renamed["renameList"] == {"name": "new", "role": "EDITOR"}
    assert bob.data("mutation($id: ID!) { leaveList(id: $id) { name } }", id=shared)["leaveList"]["name"] == "new"
    assert bob.data("query($id: ID!) { list(id: $id) { id } }", id=shared)["list"] is None
    ann.data(CREATE, t="goes with it", l=shared)
    assert ann.data("mutation($id: ID!) { deleteList(id: $id) { name } }", id=shared)["deleteList"]["name"] == "new"
    with psycopg.connect(accounts.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM todos").fetchone() == (0,)


def test_the_service_token_is_no_member(accounts: Server) -> None:
    with httpx.Client(base_url=accounts.url, headers=BEARER) as client:
        body = client.post("/graphql", json={"query": LISTS}).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        created = client.post("/graphql", json={"query": CREATE, "variables": {"t": "by the service"}}).json()
        assert created["data"]["createTodo"]["title"] == "by the service"


def test_open_mode_is_local_with_its_default_list(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        body = client.post("/graphql", json={"query": LISTS}).json()
    assert body["data"]["lists"] == [
        {"id": body["data"]["lists"][0]["id"], "name": "Todos", "role": "OWNER", "isDefault": True,
         "members": [{"person": {"username": "local"}, "role": "OWNER"}]}
    ]


def test_rest_lists_and_members(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    made = ann.http.post("/api/lists/", json={"name": "trip"})
    assert made.status_code == 201
    trip = made.json()
    assert (trip["name"], trip["role"], trip["is_default"]) == ("trip", "owner", False)
    shared = ann.http.post(f"/api/lists/{trip['id']}/members/", json={"username": "bob", "role": "viewer"})
    assert shared.status_code == 201
    assert shared.json() == {"person": {"id": bob.id, "username": "bob"}, "role": "viewer"}
    assert [m["role"] for m in bob.http.get(f"/api/lists/{trip['id']}/members/").json()] == ["owner", "viewer"]
    assert bob.http.patch(f"/api/lists/{trip['id']}/", json={"name": "mine"}).status_code == 403
    promoted = ann.http.patch(f"/api/lists/{trip['id']}/members/{bob.id}/", json={"role": "editor"})
    assert promoted.json()["role"] == "editor"
    assert bob.http.patch(f"/api/lists/{trip['id']}/", json={"name": "ours"}).json()["name"] == "ours"
    assert bob.http.delete(f"/api/lists/{trip['id']}/members/{bob.id}/").status_code == 204
    assert bob.http.get(f"/api/lists/{trip['id']}/").status_code == 404
    assert ann.http.get("/api/lists/nope/").status_code == 400
    assert ann.http.post("/api/lists/", json={"name": "  "}).status_code == 422
    assert ann.http.delete(f"/api/lists/{trip['id']}/").status_code == 204
    assert [entry["name"] for entry in ann.http.get("/api/lists/").json()] == ["Todos"]


def test_each_person_reads_only_the_lists_they_are_a_member_of(accounts: Server) -> None:
    ann, bob, eve = Caller(accounts, "ann"), Caller(accounts, "bob"), Caller(accounts, "eve")
    shared = ann.data(CREATE_LIST, name="shared")["createList"]["id"]
    ann.data(SHARE, id=shared, u="bob", r="VIEWER")
    in_shared = ann.data(CREATE, t="in shared", l=shared)["createTodo"]
    private = ann.data(CREATE, t="ann only")["createTodo"]
    eve.data(CREATE, t="eve only")
    query = "{ todos { title } todoList { todos { title } } }"
    for _ in range(2):  # the second answer may come from the response cache
        assert {t["title"] for t in ann.data(query)["todos"]} == {"in shared", "ann only"}
        assert [t["title"] for t in bob.data(query)["todoList"]["todos"]] == ["in shared"]
        assert [t["title"] for t in eve.data(query)["todos"]] == ["eve only"]
        assert [t["title"] for t in bob.http.get("/api/todos/").json()] == ["in shared"]
    one = "query($id: ID!) { todo(id: $id) { title } }"
    assert bob.data(one, id=in_shared["id"])["todo"] == {"title": "in shared"}
    assert bob.data(one, id=private["id"])["todo"] is None
    assert bob.http.get(f"/api/todos/{private['id']}/").status_code == 404
    assert eve.http.get(f"/api/todos/{in_shared['id']}/").status_code == 404
    with httpx.Client(base_url=accounts.url, headers=BEARER) as service:
        assert len(service.get("/api/todos/").json()) == 3


def test_a_move_needs_the_right_to_edit_both_lists(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    shared = ann.data(CREATE_LIST, name="shared")["createList"]["id"]
    ann.data(SHARE, id=shared, u="bob", r="VIEWER")
    mine = bob.data(CREATE, t="bob's")["createTodo"]
    move = "mutation($id: ID!, $l: ID!) { moveTodo(id: $id, listId: $l) { title } }"
    assert bob.code(move, id=mine["id"], l=shared) == "FORBIDDEN"
    ann.data(
        "mutation($l: ID!, $p: ID!) { setMemberRole(listId: $l, personId: $p, role: EDITOR) { role } }",
        l=shared, p=bob.id,
    )
    assert bob.data(move, id=mine["id"], l=shared)["moveTodo"] == {"title": "bob's"}
    assert [t["title"] for t in ann.data("{ todos { title } }")["todos"]] == ["bob's"]
    assert ann.code(move, id=mine["id"], l="00000000-0000-4000-8000-0000000000ff") == "NOT_FOUND"
