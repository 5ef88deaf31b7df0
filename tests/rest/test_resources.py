"""REST routes and RESTSockets (/api/todos/), against the real app."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import orjson
import psycopg
import pytest
from openapi_spec_validator import validate
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.connection import Connection

from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.models import LOCAL_LIST_ID, Todo
from graphql_todos.core.service import USUAL_ID, parse_id, todo_key
from graphql_todos.edge.guard import BODY_READ
from graphql_todos.rest.openapi import DOCUMENT
from graphql_todos.rest.resources import _body, todo_json
from tests.gql import TODO_FIELDS, create, data, subscribed
from tests.helpers import Server, make_server, wait_until
from tests.internals.test_uvicorn_http import lean_cycle

TODOS = "/api/todos/"
MISSING = str(uuid.UUID(int=1))
JSON = {"content-type": "application/json"}


def post(client: httpx.Client, title: str, completed: bool = False) -> Any:
    response = client.post(TODOS, json={"title": title, "completed": completed})
    assert response.status_code == 201, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> str:
    """Assert a JSON error response; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def listen(server: Server, path: str) -> ClientConnection:
    """A RESTSocket on path, once the server has subscribed it to the hub."""
    before = server.subscriber_count()
    ws = connect(server.ws_url + path, open_timeout=5)
    wait_until(lambda: server.subscriber_count() > before)
    return ws


def receive(ws: Connection) -> Any:
    while True:
        message = json.loads(ws.recv(timeout=5))
        if message["op"] != "keepalive":
            return message


def close_frame(ws: Connection) -> tuple[int, str]:
    """Wait for the server to close the socket; its code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        receive(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


# --- HTTP -----------------------------------------------------------------


def test_list_is_ordered_like_the_graphql_query(client: httpx.Client) -> None:
    for title in "bca":
        post(client, title, completed=title == "c")
    graphql_ids = [t["id"] for t in data(client, "{ todos { id } }")["todos"]]
    response = client.get(TODOS)
    assert response.status_code == 200
    assert [t["id"] for t in response.json()] == graphql_ids
    assert [t["title"] for t in response.json()] == ["b", "c", "a"]


def test_list_filters_on_completed(client: httpx.Client) -> None:
    post(client, "done", completed=True)
    post(client, "open")
    assert [t["title"] for t in client.get(TODOS, params={"completed": "true"}).json()] == ["done"]
    assert [t["title"] for t in client.get(TODOS, params={"completed": "false"}).json()] == ["open"]


@pytest.mark.parametrize("zone", ["Etc/UTC", "Asia/Kolkata"])
def test_list_is_each_row_as_todo_json_byte_for_byte(db_dsn: str, zone: str) -> None:
    # PostgreSQL writes the list: its bytes are those orjson writes for
    # todo_json's dicts, whatever the titles, times and session time zone.
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    titles = ['q"uote\\', "\u2028 é \U0001f600", "\x01\x1f\t\n", "</script>", "plain"]
    rows = [(t, n % 2 == 0, base + timedelta(seconds=n, microseconds=n * 123457), base) for n, t in enumerate(titles)]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET TimeZone TO '{zone}'")  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO todos (title, completed, created_time, updated_time) VALUES (%s, %s, %s, %s)", rows
            )
    server = make_server(db_dsn)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client, psycopg.connect(db_dsn) as conn:
            for query, completed in (("", None), ("?completed=true", True), ("?limit=2&offset=1", None)):
                read = conn.execute(
                    "SELECT id, title, completed, created_time, updated_time, list_id FROM todos"
                    " WHERE %(c)s::boolean IS NULL OR completed = %(c)s ORDER BY created_time, id",
                    {"c": completed},
                ).fetchall()
                if "limit" in query:
                    read = read[1:3]
                expected = orjson.dumps([todo_json(Todo(*row)) for row in read])
                assert client.get(TODOS + query).content == expected, query
    finally:
        server.stop()


def test_list_refuses_a_completed_filter_that_is_not_a_boolean(client: httpx.Client) -> None:
    assert "maybe" in error(client.get(TODOS, params={"completed": "maybe"}), 400, "BAD_USER_INPUT")


def test_create_returns_the_row_and_its_location(client: httpx.Client) -> None:
    response = client.post(TODOS, json={"title": "  milk  "})
    assert response.status_code == 201
    todo = response.json()
    assert set(todo) == {"id", "title", "completed", "created_time", "updated_time", "list_id"}
    assert (todo["title"], todo["completed"]) == ("milk", False)
    assert todo["list_id"] == str(LOCAL_LIST_ID)  # open mode: local's default list
    assert todo["created_time"] == todo["updated_time"]
    assert response.headers["location"] == f"/api/todos/{todo['id']}/"
    assert client.get(response.headers["location"]).json() == todo
    assert post(client, "done", completed=True)["completed"] is True


def test_get_returns_the_row_as_graphql_sees_it(client: httpx.Client) -> None:
    todo = post(client, "a")
    graphql = data(client, f'{{ todo(id: "{todo["id"]}") {{ {TODO_FIELDS} }} }}')["todo"]
    response = client.get(f"{TODOS}{todo['id']}/")
    assert response.status_code == 200
    assert response.json() == todo
    assert (graphql["id"], graphql["title"]) == (todo["id"], todo["title"])


def test_put_sets_both_fields(client: httpx.Client) -> None:
    todo = post(client, "a")
    response = client.put(f"{TODOS}{todo['id']}/", json={"title": "b", "completed": True})
    assert response.status_code == 200
    assert (response.json()["title"], response.json()["completed"]) == ("b", True)
    assert response.json()["updated_time"] > todo["updated_time"]


@pytest.mark.parametrize("body", [{"title": "b"}, {"completed": True}, {}])
def test_put_requires_both_fields(client: httpx.Client, body: dict[str, Any]) -> None:
    todo = post(client, "a")
    response = client.put(f"{TODOS}{todo['id']}/", json=body)
    assert "is missing" in error(response, 422, "BAD_USER_INPUT")


def test_patch_sets_only_the_fields_given(client: httpx.Client) -> None:
    todo = post(client, "a")
    url = f"{TODOS}{todo['id']}/"
    done = client.patch(url, json={"completed": True}).json()
    assert (done["title"], done["completed"]) == ("a", True)
    renamed = client.patch(url, json={"title": "b"}).json()
    assert (renamed["title"], renamed["completed"]) == ("b", True)
    assert client.patch(url, json={}).json() == renamed


def test_delete_returns_204_then_the_row_is_gone(client: httpx.Client) -> None:
    todo = post(client, "a")
    response = client.delete(f"{TODOS}{todo['id']}/")
    assert (response.status_code, response.content) == (204, b"")
    error(client.get(f"{TODOS}{todo['id']}/"), 404, "NOT_FOUND")
    assert client.get(TODOS).json() == []


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PUT", {"title": "b", "completed": True}), ("PATCH", {}), ("DELETE", None)],
)
def test_unknown_id_is_404_and_malformed_id_is_400(
    client: httpx.Client, method: str, body: dict[str, Any] | None
) -> None:
    assert MISSING in error(client.request(method, f"{TODOS}{MISSING}/", json=body), 404, "NOT_FOUND")
    message = error(client.request(method, f"{TODOS}nope/", json=body), 400, "BAD_USER_INPUT")
    assert message == "id is malformed: 'nope'"


@pytest.mark.parametrize("seed", range(20))
def test_an_id_is_seen_in_its_usual_spelling_exactly_as_parse_id_takes_it(seed: int) -> None:
    # _path_id's regex stands for parse_id where it matches (parse_id runs
    # where it does not): each spelling is one both take, or neither does;
    # and the service's todo_key gives parse_id's UUID, or its refusal.
    usual = str(uuid.UUID(int=seed * 0x1F3D5B79 << 64 | seed))
    spellings = [
        usual, usual.upper(), usual.replace("-", ""), "{" + usual + "}", "urn:uuid:" + usual, usual + "\n",
        usual[:-1], usual + "0", usual.replace("0", "\uff10"), usual.replace("1", "\u0661"),
        usual.replace("a", "g"), usual.replace("a", "\u212a"), " " + usual, usual.replace("-", "_", 1),
        # One character of each group not a hex digit (but to int(), an Arabic-Indic one).
        *(usual[:i] + c + usual[i + 1:] for i in (0, 9, 14, 19, 35) for c in "g\u0661\u212a"),
    ]
    for spelling in spellings:
        try:
            parsed: uuid.UUID | str = parse_id(spelling)
        except BadUserInput as exc:
            parsed = str(exc)
        try:
            keyed: uuid.UUID | str = todo_key(spelling)
        except BadUserInput as exc:
            keyed = str(exc)
        assert (USUAL_ID.fullmatch(spelling) is not None) is isinstance(parsed, uuid.UUID), spelling
        assert keyed == parsed and type(keyed) is type(parsed), spelling
        if isinstance(keyed, uuid.UUID) and isinstance(parsed, uuid.UUID):
            assert (keyed.int, keyed.is_safe, str(keyed)) == (parsed.int, parsed.is_safe, usual), spelling


def test_an_id_in_capitals_is_the_same_todo(client: httpx.Client) -> None:
    todo = post(client, "a")
    response = client.patch(f"{TODOS}{todo['id'].upper()}/", json={"completed": True})
    assert (response.status_code, response.json()["id"], response.json()["completed"]) == (200, todo["id"], True)


def test_a_body_that_has_come_whole_is_read_in_one_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's receive() with the whole body (the guard or the write door
    # marked it so: BODY_READ): its one message taken, not Starlette's
    # stream; a client gone: ClientDisconnect, as Request.body raises; any
    # other receive: Request.body, as before.
    async def run() -> tuple[bytes, bytes, type[Exception] | None]:
        event = asyncio.Event()
        cycle = lean_cycle(event)
        cycle.body, cycle.more_body = bytearray(b'{"title": "a"}'), False
        event.set()
        scope = {"type": "http", "method": "POST", "headers": []}
        marked = {**scope, BODY_READ: True}
        with monkeypatch.context() as patched:
            patched.setattr(Request, "stream", _no_stream)
            whole = await _body(Request(marked, cast(Receive, cycle.receive)))
        messages: list[Message] = [
            {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.request", "body": b"}"}
        ]

        async def receive() -> Message:
            return messages.pop(0)

        parts = await _body(Request(scope, receive))
        gone = lean_cycle(asyncio.Event())
        gone.disconnected = True
        try:
            await _body(Request(marked, cast(Receive, gone.receive)))
        except ClientDisconnect as exc:
            return whole, parts, type(exc)
        return whole, parts, None

    assert asyncio.run(run()) == (b'{"title": "a"}', b"{}", ClientDisconnect)


async def _no_stream(self: Request) -> AsyncGenerator[bytes, None]:
    raise AssertionError("read through Starlette's stream")
    yield b""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": 1}, "title must be a string"),
        ({"title": None}, "title must be a string"),
        ({"title": "a", "completed": "yes"}, "completed must be a boolean"),
        ({"title": "a", "completed": 1}, "completed must be a boolean"),
        ({"title": "a", "id": MISSING}, "'id' is not a known field"),
        ({"completed": True}, "title is missing"),
        (["a"], "body must be a JSON object"),
        ("a", "body must be a JSON object"),
        (None, "body must be a JSON object"),
        ({"title": " \t "}, "title must not be blank"),
        ({"title": "x" * 513}, "title must be at most 512 characters"),
        ({"title": "a\x00b"}, "title must not contain NUL characters"),
    ],
)
def test_invalid_bodies_are_422(client: httpx.Client, body: Any, message: str) -> None:
    response = client.post(TODOS, content=json.dumps(body), headers=JSON)
    assert error(response, 422, "BAD_USER_INPUT") == message
    assert client.get(TODOS).json() == []


def test_invalid_bodies_are_422_on_update_too(client: httpx.Client) -> None:
    url = f"{TODOS}{post(client, 'a')['id']}/"
    response = client.patch(url, json={"completed": None})
    assert error(response, 422, "BAD_USER_INPUT") == "completed must be a boolean"
    assert error(client.put(url, json={"title": "", "completed": True}), 422, "BAD_USER_INPUT")
    assert client.get(url).json()["title"] == "a"


# A lone surrogate escaped (\ud800) is well-formed JSON: 422 (test_bad_input.py).
@pytest.mark.parametrize("content", [b"{", b"", b"NaN", b"\xff", b"[" * 2000])
def test_malformed_json_is_400(client: httpx.Client, content: bytes) -> None:
    response = client.post(TODOS, content=content, headers=JSON)
    assert error(response, 400, "MALFORMED_JSON").startswith("malformed JSON")


@pytest.mark.parametrize(
    "headers", [{}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}]
)
def test_a_body_that_is_not_json_is_415(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.post(TODOS, content=b'{"title": "a"}', headers=headers)
    error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    url = f"{TODOS}{post(client, 'a')['id']}/"
    error(client.patch(url, content=b"{}", headers=headers), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_with_a_charset_is_json(client: httpx.Client) -> None:
    for content_type in ["application/json; charset=utf-8", "application/json;charset=UTF-8"]:
        headers = {"content-type": content_type}
        assert client.post(TODOS, content=b'{"title": "a"}', headers=headers).status_code == 201


def test_json_in_another_charset_is_415(client: httpx.Client) -> None:
    headers = {"content-type": "application/json; charset=latin-1"}
    response = client.post(TODOS, content='{"title": "caf\u00e9"}'.encode("latin-1"), headers=headers)
    error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", TODOS, "GET, HEAD, POST"),
        ("POST", f"{TODOS}{MISSING}/", "GET, HEAD, PUT, PATCH, DELETE"),
    ],
)
def test_other_methods_are_405_with_allow(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allow


def test_unknown_api_paths_are_json_404(client: httpx.Client) -> None:
    error(client.get("/api/nothing"), 404, "NOT_FOUND")


def test_openapi_document_is_valid_and_served(client: httpx.Client) -> None:
    served = client.get("/api/openapi.json").json()
    assert served == DOCUMENT
    validate(served)


def test_a_published_response_name_stays_when_its_response_is_renamed() -> None:
    """The front door's 400 was published as SeveralHosts, then named BadRequest
    when it came to cover requests HTTP cannot read: the old name still resolves."""
    responses = DOCUMENT["components"]["responses"]
    assert responses["SeveralHosts"] == {"$ref": "#/components/responses/BadRequest"}
    assert responses["BadRequest"]["content"]["application/json"]


def test_the_collection_comes_in_pages_of_at_most_max_list_rows(db_dsn: str) -> None:
    server = make_server(db_dsn, max_list_rows=3)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            titles = [post(client, f"t{n}", completed=n % 2 == 0)["title"] for n in range(1, 6)]

            def page(query: str) -> list[str]:
                response = client.get(TODOS + query)
                assert response.status_code == 200, response.text
                return [todo["title"] for todo in response.json()]

            assert page("?limit=2&offset=1") == titles[1:3]
            assert page("?offset=3") == titles[3:]
            assert page("?limit=3&offset=3") == page("?offset=3")
            assert page("?completed=true&limit=1&offset=1") == ["t4"]
            assert page("?completed=false") == ["t1", "t3", "t5"]
            assert "?limit=" in error(client.get(TODOS), 400, "LIST_TOO_LARGE")
            for query, name in (("limit=4", "limit"), ("limit=-1", "limit"), ("limit=x", "limit"),
                                ("offset=-1", "offset"), ("offset=1.5", "offset"), ("offset=2147483648", "offset"),
                                ("offset=--1", "offset"), ("offset=" + "9" * 5000, "offset")):
                assert error(client.get(f"{TODOS}?{query}"), 400, "BAD_USER_INPUT").startswith(name), query
            # The description served says this server's cap.
            described = client.get("/api/openapi.json").json()["paths"][TODOS]["get"]["parameters"]
            limit = next(p for p in described if p["name"] == "limit")
            assert limit["schema"]["maximum"] == 3
    finally:
        server.stop()


# --- RESTSockets ----------------------------------------------------------


def test_changes_socket_sends_each_change_in_commit_order(server: Server, client: httpx.Client) -> None:
    with listen(server, TODOS) as ws:
        todo = post(client, "a")
        url = f"{TODOS}{todo['id']}/"
        patched = client.patch(url, json={"completed": True}).json()
        client.delete(url)
        messages = [receive(ws) for _ in range(3)]
    assert [(m["op"], m["todo"]) for m in messages] == [
        ("created", todo),
        ("updated", patched),
        ("deleted", patched),
    ]
    cursors = [int(m["cursor"]) for m in messages]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3


def test_changes_socket_resumes_after_a_cursor(server: Server, client: httpx.Client) -> None:
    with listen(server, TODOS) as ws:
        a = post(client, "a")
        cursor = receive(ws)["cursor"]
    wait_until(lambda: server.subscriber_count() == 0)
    # Made while nobody listens: the journal keeps them for the next socket.
    b = post(client, "b")
    client.patch(f"{TODOS}{a['id']}/", json={"title": "a2"})
    with listen(server, f"{TODOS}?after={cursor}") as ws:
        missed = [receive(ws) for _ in range(2)]
        c = post(client, "c")
        live = receive(ws)
    assert [(m["op"], m["todo"]["title"]) for m in missed] == [("created", "b"), ("updated", "a2")]
    assert missed[0]["todo"] == b
    assert (live["op"], live["todo"]) == ("created", c)
    with listen(server, f"{TODOS}?after=0") as ws:
        assert [receive(ws)["todo"]["title"] for _ in range(4)] == ["a", "b", "a2", "c"]


@pytest.mark.parametrize("after", ["nope", "", "-1", "99999"])
def test_changes_socket_refuses_a_bad_cursor(server: Server, after: str) -> None:
    with connect(f"{server.ws_url}{TODOS}?after={after}", open_timeout=5) as ws:
        code, reason = close_frame(ws)
    assert code == 4400
    assert reason.startswith("after is not a known cursor")
    wait_until(lambda: server.subscriber_count() == 0)


def test_graphql_changes_reach_the_rest_socket(server: Server, client: httpx.Client) -> None:
    with listen(server, TODOS) as ws:
        todo = create(client, "from graphql")
        message = receive(ws)
    assert message["op"] == "created"
    assert (message["todo"]["id"], message["todo"]["title"]) == (todo["id"], "from graphql")


def test_rest_changes_reach_graphql_subscriptions(server: Server, client: httpx.Client) -> None:
    with subscribed(server) as ws:
        todo = post(client, "from rest")
        change = ws.next_data()["todoChanges"]
    assert change["op"] == "CREATED"
    assert (change["todo"]["id"], change["todo"]["title"]) == (todo["id"], "from rest")


def test_todo_socket_sends_snapshot_changes_then_closes_after_delete(
    server: Server, client: httpx.Client
) -> None:
    todo = post(client, "a")
    other = post(client, "other")
    with listen(server, f"{TODOS}{todo['id']}/") as ws:
        snapshot = receive(ws)
        patched = client.patch(f"{TODOS}{todo['id']}/", json={"completed": True}).json()
        client.patch(f"{TODOS}{other['id']}/", json={"completed": True})
        updated = receive(ws)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("UPDATE todos SET title = 'by sql' WHERE id = %s", (todo["id"],))
        by_sql = receive(ws)
        data(client, "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": todo["id"]})
        deleted = receive(ws)
        assert close_frame(ws) == (1000, "")
    assert (snapshot["op"], snapshot["todo"]) == ("snapshot", todo)
    assert (updated["op"], updated["todo"]) == ("updated", patched)
    assert by_sql["op"] == "updated"
    assert (by_sql["todo"]["title"], by_sql["todo"]["completed"]) == ("by sql", True)
    assert (deleted["op"], deleted["todo"]) == ("deleted", by_sql["todo"])
    cursors = [int(m["cursor"]) for m in (snapshot, updated, by_sql, deleted)]
    assert cursors == sorted(cursors)
    wait_until(lambda: server.subscriber_count() == 0)


@pytest.mark.parametrize(("todo_id", "code"), [(MISSING, 4404), ("nope", 4400)])
def test_todo_socket_refuses_an_unknown_or_malformed_id(
    server: Server, todo_id: str, code: int
) -> None:
    with connect(f"{server.ws_url}{TODOS}{todo_id}/", open_timeout=5) as ws:
        assert close_frame(ws)[0] == code
    wait_until(lambda: server.subscriber_count() == 0)


def test_sockets_send_keepalives(db_dsn: str) -> None:
    server = make_server(db_dsn, keepalive_seconds=0.05)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            todo = post(client, "a")
        for path in (TODOS, f"{TODOS}{todo['id']}/"):
            with listen(server, path) as ws:
                ops = [json.loads(ws.recv(timeout=5))["op"] for _ in range(3)]
            assert ops.count("keepalive") >= 2
    finally:
        server.stop()


def test_sockets_unsubscribe_when_the_client_leaves(server: Server, client: httpx.Client) -> None:
    todo = post(client, "a")
    for path in (TODOS, f"{TODOS}?after=0", f"{TODOS}{todo['id']}/"):
        ws = listen(server, path)
        assert server.subscriber_count() == 1
        ws.close()
        wait_until(lambda: server.subscriber_count() == 0)


def test_unexpected_failures_are_json_500s_without_details(server: Server, client: httpx.Client) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE todos RENAME TO todos_gone")
    response = client.get("/api/todos/")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "unexpected error"}}


def test_routes_outside_api_answer_json_errors_too(client: httpx.Client) -> None:
    response = client.put("/graphql", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in response.headers["allow"]


def test_sockets_close_with_1012_when_the_server_stops(server: Server) -> None:
    ws = listen(server, TODOS)
    server.stop()
    code, _ = close_frame(ws)
    # "Service restart": not the end of the resource; resume with ?after=.
    assert code == 1012
    server.start()


def test_a_head_of_an_event_stream_is_answered_and_over(server: Server, client: httpx.Client) -> None:
    """HEAD of each REST event stream (the collection's, a todo's, the
    feed): its headers, and the response over, so the next request on the
    same keep-alive connection is answered (not a stream held open that
    nothing will ever read)."""
    todo = post(client, "headed")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
    try:
        for path in (TODOS, f"{TODOS}{todo['id']}/", "/api/feed/"):
            for _ in range(2):
                connection.request("HEAD", path, headers={"accept": "text/event-stream"})
                response = connection.getresponse()
                assert (response.status, response.read()) == (200, b""), path
                # The stream's headers, as a GET's.
                assert (response.getheader("content-type"), response.getheader("cache-control")) == (
                    "text/event-stream", "no-store, no-transform"
                ), path
    finally:
        connection.close()
