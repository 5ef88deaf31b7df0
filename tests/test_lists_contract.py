"""The contract's smaller additions for lists and people (docs/design/people.md
section 9): a todo's list (GraphQL `Todo.listId`, REST `list_id`, moved by
PATCH with moveTodo's rights), one list's todos over REST, and one's own
account over GraphQL (`me`, `sessions`, `accessTokens` and their revokes).
What the caller may not see is NOT_FOUND, whatever the way."""

from __future__ import annotations

import uuid

import httpx

from graphql_todos.core.models import LOCAL_LIST_ID
from tests.helpers import BEARER, TOKEN, Server, serving
from tests.test_lists import CREATE, CREATE_LIST, SHARE, Caller

TODO_LIST = "{ todoList { todos { id listId } } }"


def _share(ann: Caller, list_id: str, username: str, role: str) -> None:
    ann.data(SHARE, id=list_id, u=username, r=role)


def test_a_todo_names_its_list_in_every_shape(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    groceries = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
    made = ann.data("mutation($l: ID) { createTodo(input: {title: \"milk\", listId: $l}) { id listId } }", l=groceries)
    assert made["createTodo"]["listId"] == groceries
    default = ann.data("mutation { createTodo(input: {title: \"home\"}) { id listId } }")["createTodo"]
    assert default["listId"] != groceries
    # The compiled list (todoList, todos) and the resolvers (todo) agree.
    rows = {row["id"]: row["listId"] for row in ann.data(TODO_LIST)["todoList"]["todos"]}
    assert rows == {made["createTodo"]["id"]: groceries, default["id"]: default["listId"]}
    assert ann.data("query($id: ID!) { todo(id: $id) { listId } }", id=default["id"])["todo"]["listId"] == default["listId"]
    rest = {row["id"]: row["list_id"] for row in ann.http.get("/api/todos/").json()}
    assert rest == rows


def test_open_mode_todos_are_in_locals_default_list(client: httpx.Client) -> None:
    made = client.post("/graphql", json={"query": 'mutation { createTodo(input: {title: "a"}) { listId } }'})
    assert made.json()["data"]["createTodo"]["listId"] == str(LOCAL_LIST_ID)
    me = client.post("/graphql", json={"query": "{ me { id username } sessions { id } accessTokens { id } }"})
    assert me.json()["data"] == {"me": {"id": "00000000-0000-4000-8000-000000000001", "username": "local"},
                                 "sessions": [], "accessTokens": []}


def test_one_lists_todos_over_rest(accounts: Server) -> None:
    ann, bob, eve = Caller(accounts, "ann"), Caller(accounts, "bob"), Caller(accounts, "eve")
    groceries = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
    ann.data(CREATE, t="elsewhere")
    made = ann.http.post(f"/api/lists/{groceries}/todos/", json={"title": "milk"})
    assert made.status_code == 201 and made.json()["list_id"] == groceries
    assert made.headers["location"] == f"/api/todos/{made.json()['id']}/"
    ann.http.post(f"/api/lists/{groceries}/todos/", json={"title": "eggs", "completed": True})
    url = f"/api/lists/{groceries}/todos/"
    assert [row["title"] for row in ann.http.get(url).json()] == ["milk", "eggs"]
    assert [row["title"] for row in ann.http.get(url, params={"completed": "true"}).json()] == ["eggs"]
    assert [row["title"] for row in ann.http.get(url, params={"limit": 1, "offset": 1}).json()] == ["eggs"]
    assert ann.http.get(url, params={"limit": "x"}).status_code == 400
    # A viewer reads and may not write; a stranger sees no such list.
    _share(ann, groceries, "bob", "VIEWER")
    assert [row["title"] for row in bob.http.get(url).json()] == ["milk", "eggs"]
    refused = bob.http.post(url, json={"title": "no"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
    for response in (eve.http.get(url), eve.http.post(url, json={"title": "no"})):
        assert (response.status_code, response.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert eve.http.get("/api/lists/not-an-id/todos/").status_code == 400
    # The service token is no member of any list.
    assert httpx.get(accounts.url + url, headers=BEARER).status_code == 403
    assert [row["title"] for row in ann.http.get(url).json()] == ["milk", "eggs"]


def test_patch_moves_a_todo_with_move_todos_rights(accounts: Server) -> None:
    ann, bob, eve = Caller(accounts, "ann"), Caller(accounts, "bob"), Caller(accounts, "eve")
    work = ann.data(CREATE_LIST, name="work")["createList"]["id"]
    home = ann.data(CREATE_LIST, name="home")["createList"]["id"]
    row = ann.data(CREATE, t="report", l=work)["createTodo"]["id"]
    moved = ann.http.patch(f"/api/todos/{row}/", json={"list_id": home, "title": "  report v2 "})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["list_id"], moved.json()["title"]) == (home, "report v2")
    # A title refused is refused before the move: the row stays where it was.
    blank = ann.http.patch(f"/api/todos/{row}/", json={"list_id": work, "title": "  "})
    assert blank.status_code == 422
    assert ann.http.get(f"/api/todos/{row}/").json()["list_id"] == home
    # An editor of one list and viewer of the other may not move between them.
    _share(ann, home, "bob", "EDITOR")
    _share(ann, work, "bob", "VIEWER")
    refused = bob.http.patch(f"/api/todos/{row}/", json={"list_id": work})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
    # Into a list one cannot see (or that is not there): NOT_FOUND, as a bad
    # value in the body (422: the todo is there); a row one cannot see: 404.
    eves = eve.data("{ lists { id } }")["lists"][0]["id"]
    for who, body, status in (
        (bob, {"list_id": eves}, 422), (bob, {"list_id": str(uuid.uuid4())}, 422), (eve, {"list_id": eves}, 404)
    ):
        response = who.http.patch(f"/api/todos/{row}/", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, "NOT_FOUND")
    assert ann.http.patch(f"/api/todos/{row}/", json={"list_id": "nope"}).status_code == 422
    assert ann.http.patch(f"/api/todos/{row}/", json={"list_id": 7}).status_code == 422
    assert ann.http.get(f"/api/todos/{row}/").json()["list_id"] == home


def test_me_sessions_and_tokens_over_graphql(accounts: Server) -> None:
    ann, bob = Caller(accounts, "ann"), Caller(accounts, "bob")
    assert ann.data("{ me { id username } }")["me"] == {"id": ann.id, "username": "ann"}
    service = httpx.post(accounts.url + "/graphql", json={"query": "{ me { id } }"}, headers=BEARER)
    assert service.json()["data"] == {"me": None}
    sessions = ann.data("{ sessions { id current userAgent } }")["sessions"]
    assert [s["current"] for s in sessions] == [True]
    made = ann.data('mutation { createAccessToken(name: "ci") { secret accessToken { id name } } }')
    token = made["createAccessToken"]
    assert token["accessToken"]["name"] == "ci"
    as_token = httpx.post(
        accounts.url + "/graphql", json={"query": "{ me { username } }"},
        headers={"Authorization": f"Bearer {token['secret']}"},
    )
    assert as_token.json()["data"] == {"me": {"username": "ann"}}
    assert [t["id"] for t in ann.data("{ accessTokens { id } }")["accessTokens"]] == [token["accessToken"]["id"]]
    # Another's token or session is not found (and stays).
    revoke_token = "mutation($id: ID!) { revokeAccessToken(id: $id) { id name } }"
    assert bob.code(revoke_token, id=token["accessToken"]["id"]) == "NOT_FOUND"
    assert bob.code("mutation($id: ID!) { revokeSession(id: $id) { id } }", id=sessions[0]["id"]) == "NOT_FOUND"
    assert ann.data(revoke_token, id=token["accessToken"]["id"])["revokeAccessToken"]["name"] == "ci"
    assert ann.data("{ accessTokens { id } }")["accessTokens"] == []
    # Revoking one's own session signs one out.
    revoked = ann.data("mutation($id: ID!) { revokeSession(id: $id) { id current } }", id=sessions[0]["id"])
    assert revoked["revokeSession"] == {"id": sessions[0]["id"], "current": True}
    assert ann.http.get("/api/auth/me").status_code == 401


def test_a_refusal_says_whether_one_signs_in(accounts: Server, db_dsn: str) -> None:
    # AUTH=accounts: the web client shows its sign-in page; open mode behind
    # TODOS_TOKEN: it asks for the token, as before.
    refused = httpx.get(accounts.url + "/api/auth/me")
    assert refused.status_code == 401
    assert refused.json()["error"]["mode"] == "accounts"
    with serving(db_dsn, token=TOKEN) as guarded:
        refused = httpx.get(guarded.url + "/api/auth/me")
    assert refused.status_code == 401
    assert "mode" not in refused.json()["error"]


def test_a_numbered_update_that_moves_answers_its_retry_the_same(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    work = ann.data(CREATE_LIST, name="work")["createList"]["id"]
    row = ann.data(CREATE, t="report")["createTodo"]["id"]
    key = {"Idempotency-Key": '"0b9a7f4e-8a1c-4d7e-9a55-1f0e2d3c4b5a:1"'}
    first = ann.http.patch(f"/api/todos/{row}/", json={"list_id": work, "completed": True}, headers=key)
    assert first.status_code == 200, first.text
    assert (first.json()["list_id"], first.json()["completed"]) == (work, True)
    again = ann.http.patch(f"/api/todos/{row}/", json={"list_id": work, "completed": True}, headers=key)
    assert again.content == first.content
    assert again.headers["idempotency-key"] == key["Idempotency-Key"]
