"""Queries and mutations over HTTP, and every error code."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from tests.gql import TODO_FIELDS, create, data, error_codes, gql
from tests.helpers import serving


def test_create_trims_title_and_defaults_completed(client: httpx.Client) -> None:
    todo = create(client, "  buy milk  ")
    assert todo["title"] == "buy milk"
    assert todo["completed"] is False
    assert uuid.UUID(todo["id"])
    assert todo["createdTime"] == todo["updatedTime"]


def test_create_with_explicit_null_completed_means_false(client: httpx.Client) -> None:
    body = data(client, "mutation { createTodo(input: {title: \"x\", completed: null}) { completed } }")
    assert body["createTodo"]["completed"] is False


def test_todos_are_ordered_by_created_time_then_id_and_filterable(client: httpx.Client) -> None:
    a = create(client, "a")
    b = create(client, "b", completed=True)
    c = create(client, "c")
    todos = data(client, "{ todos { id } }")["todos"]
    assert [t["id"] for t in todos] == [a["id"], b["id"], c["id"]]
    done = data(client, "{ todos(completed: true) { id } }")["todos"]
    assert [t["id"] for t in done] == [b["id"]]
    active = data(client, "{ todos(completed: false) { id } }")["todos"]
    assert [t["id"] for t in active] == [a["id"], c["id"]]


def test_todo_by_id_and_null_when_absent(client: httpx.Client) -> None:
    a = create(client, "a")
    q = f"query($id: ID!) {{ todo(id: $id) {{ {TODO_FIELDS} }} }}"
    assert data(client, q, {"id": a["id"]})["todo"] == a
    assert data(client, q, {"id": str(uuid.uuid4())})["todo"] is None


def test_update_changes_given_fields_only_and_bumps_updated_time(client: httpx.Client) -> None:
    a = create(client, "a")
    q = f"mutation($id: ID!, $in: UpdateTodoInput!) {{ updateTodo(id: $id, input: $in) {{ {TODO_FIELDS} }} }}"
    done = data(client, q, {"id": a["id"], "in": {"completed": True}})["updateTodo"]
    assert (done["title"], done["completed"]) == ("a", True)
    assert done["updatedTime"] > a["updatedTime"]
    renamed = data(client, q, {"id": a["id"], "in": {"title": " b "}})["updateTodo"]
    assert (renamed["title"], renamed["completed"]) == ("b", True)
    assert renamed["createdTime"] == a["createdTime"]


def test_delete_returns_the_deleted_row(client: httpx.Client) -> None:
    a = create(client, "a")
    deleted = data(client, f"mutation($id: ID!) {{ deleteTodo(id: $id) {{ {TODO_FIELDS} }} }}", {"id": a["id"]})
    assert deleted["deleteTodo"] == a
    assert data(client, "{ todos { id } }")["todos"] == []


def test_toggle_all_returns_only_the_rows_it_changed(client: httpx.Client) -> None:
    a = create(client, "a")
    b = create(client, "b", completed=True)
    c = create(client, "c")
    changed = data(client, "mutation { toggleAll(completed: true) { id completed } }")["toggleAll"]
    assert changed == [{"id": a["id"], "completed": True}, {"id": c["id"], "completed": True}]
    again = data(client, "mutation { toggleAll(completed: true) { id } }")["toggleAll"]
    assert again == []
    undone = data(client, "mutation { toggleAll(completed: false) { id } }")["toggleAll"]
    assert [t["id"] for t in undone] == [a["id"], b["id"], c["id"]]


def test_clear_completed_returns_the_rows_it_deleted(client: httpx.Client) -> None:
    create(client, "a")
    b = create(client, "b", completed=True)
    cleared = data(client, "mutation { clearCompleted { id title } }")["clearCompleted"]
    assert cleared == [{"id": b["id"], "title": "b"}]
    assert [t["title"] for t in data(client, "{ todos { title } }")["todos"]] == ["a"]


def test_toggle_all_and_clear_completed_with_ids_touch_only_those_rows(client: httpx.Client) -> None:
    """An edit queued offline names the rows its user saw: one added since
    (by someone else) is left alone, and one gone since is skipped."""
    a, b, c = create(client, "a"), create(client, "b"), create(client, "c")
    gone = str(uuid.uuid4())
    toggle = "mutation($ids: [ID!]) { toggleAll(completed: true, ids: $ids) { id } }"
    changed = data(client, toggle, {"ids": [a["id"], c["id"], gone]})["toggleAll"]
    assert changed == [{"id": a["id"]}, {"id": c["id"]}]
    assert [t["completed"] for t in data(client, "{ todos { completed } }")["todos"]] == [True, False, True]
    assert data(client, toggle, {"ids": []})["toggleAll"] == []
    data(client, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }", {"id": b["id"]})
    clear = "mutation($ids: [ID!]) { clearCompleted(ids: $ids) { id } }"
    cleared = data(client, clear, {"ids": [c["id"], a["id"], gone]})["clearCompleted"]
    assert cleared == [{"id": a["id"]}, {"id": c["id"]}]
    assert [t["id"] for t in data(client, "{ todos { id } }")["todos"]] == [b["id"]]
    # null is every row, as without the argument.
    assert data(client, clear, {"ids": None})["clearCompleted"] == [{"id": b["id"]}]


def test_malformed_or_too_many_ids_are_bad_user_input_and_change_nothing(db_dsn: str) -> None:
    with serving(db_dsn, max_list_rows=3) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        a = create(client, "a")
        toggle = "mutation($ids: [ID!]) { toggleAll(completed: true, ids: $ids) { id } }"
        body = gql(client, toggle, {"ids": [a["id"], "not-a-uuid"]})
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "ids" in body["errors"][0]["message"]
        four = [a["id"], *(str(uuid.uuid4()) for _ in range(3))]
        body = gql(client, toggle, {"ids": four})
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "more than a list shows (3)" in body["errors"][0]["message"]
        assert data(client, "{ todos { completed } }")["todos"] == [{"completed": False}]
        assert data(client, toggle, {"ids": four[:3]})["toggleAll"] == [{"id": a["id"]}]


def test_todo_list_cursor_is_the_journal_position(client: httpx.Client, server: object) -> None:
    empty = data(client, "{ todoList { cursor todos { id } } }")["todoList"]
    assert empty == {"cursor": "0", "todos": []}
    create(client, "a")
    create(client, "b")
    listed = data(client, "{ todoList { cursor todos { title } } }")["todoList"]
    assert listed["cursor"] == "2"
    assert [t["title"] for t in listed["todos"]] == ["a", "b"]


def test_blank_and_overlong_titles_are_bad_user_input(client: httpx.Client) -> None:
    q = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"
    for title in ["", "   ", "\t\n", "x" * 513, "a\x00b"]:
        body = gql(client, q, {"t": title})
        assert error_codes(body) == ["BAD_USER_INPUT"], title
    assert data(client, q, {"t": "x" * 512})["createTodo"]["id"]
    # Also on update, and nothing was written by the refused calls.
    a = create(client, "a")
    body = gql(client, "mutation($id: ID!) { updateTodo(id: $id, input: {title: \" \"}) { id } }", {"id": a["id"]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert len(data(client, "{ todos { id } }")["todos"]) == 2


def test_malformed_ids_are_bad_user_input(client: httpx.Client) -> None:
    for q in [
        "query($id: ID!) { todo(id: $id) { id } }",
        "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }",
        "mutation($id: ID!) { deleteTodo(id: $id) { id } }",
    ]:
        for bad in ["nope", "123", "", "' OR 1=1 --", f"{{{uuid.uuid4()}}}", f"urn:uuid:{uuid.uuid4()}", uuid.uuid4().hex]:
            assert error_codes(gql(client, q, {"id": bad})) == ["BAD_USER_INPUT"], (q, bad)


def test_unknown_ids_are_not_found(client: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    for q in [
        "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }",
        "mutation($id: ID!) { deleteTodo(id: $id) { id } }",
    ]:
        body = gql(client, q, {"id": missing})
        assert error_codes(body) == ["NOT_FOUND"]
        assert body["data"] is None


def test_graphql_level_errors_carry_codes(client: httpx.Client) -> None:
    assert error_codes(gql(client, "{ todos { id ")) == ["GRAPHQL_PARSE_FAILED"]
    assert error_codes(gql(client, "{ todos { nope } }")) == ["GRAPHQL_VALIDATION_FAILED"]
    body = gql(client, "mutation($c: Boolean!) { toggleAll(completed: $c) { id } }", {"c": "yes"})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = gql(client, "mutation($c: Boolean!) { toggleAll(completed: $c) { id } }", {})
    assert error_codes(body) == ["BAD_USER_INPUT"]


def test_garbage_requests_get_4xx_not_500(client: httpx.Client) -> None:
    responses = [
        client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}),
        client.post("/graphql", content=b"\xff\xfe", headers={"content-type": "application/json"}),
        client.post("/graphql", json=[1, 2]),
        client.post("/graphql", json={"query": 5}),
        client.post("/graphql", content=b"x", headers={"content-type": "text/plain"}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert error_codes(response.json()) == ["BAD_REQUEST"], response.text


def test_unexpected_errors_are_masked_without_traceback(client: httpx.Client, server: object) -> None:
    # A database-level failure the service cannot anticipate: drop the table.
    with psycopg.connect(server.dsn, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("ALTER TABLE todos RENAME TO todos_gone")
    body = gql(client, "{ todos { id } }")
    assert body["errors"][0]["message"] == "Unexpected error."
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert "todos" not in str(body["errors"][0].get("extensions"))


def test_healthz_is_ok_when_connected(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_subscription_over_plain_http_is_refused(client: httpx.Client) -> None:
    # To a client that takes no stream (with one, it is streamed: test_negotiation.py).
    subscription = {"query": "subscription { todoChanges { cursor } }"}
    response = client.post("/graphql", json=subscription, headers={"accept": "application/json"})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]
    assert "subscriptions are not allowed" in response.json()["errors"][0]["message"]
