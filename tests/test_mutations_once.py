"""Numbered mutations (issue 20, section 1; docs/design/offline.md): applied
once with a verdict, a retry answered byte for byte from the record, every
reply carrying the journal cursor at which its effect (or its no-op) is
visible; over HTTP, both GraphQL WebSocket protocols and REST, against a real
PostgreSQL and uvicorn; in each journal mode (Settings.journal, tests/decoded.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from graphql_todos.core import repository, verdicts
from graphql_todos.core.errors import ErrorCode
from graphql_todos.graphql.intake import Operation
from graphql_todos.graphql.numbering import NUMBERED
from tests.decoded import Journaled
from tests.gql import CHANGES, TODO_FIELDS, LegacyWs, TransportWs, create, data, subscribed
from tests.helpers import Reachable, Serve, Server, serving, wait_until
from tests.live_readers import resumed_everywhere

CREATE = f"mutation($t: String!) {{ createTodo(input: {{title: $t}}) {{ {TODO_FIELDS} }} }}"
UPDATE = f"mutation($id: ID!, $t: String) {{ updateTodo(id: $id, input: {{title: $t}}) {{ {TODO_FIELDS} }} }}"
TOGGLE_ALL = f"mutation($c: Boolean!) {{ toggleAll(completed: $c) {{ {TODO_FIELDS} }} }}"
VERDICTS = "query($c: ID!, $after: String) { mutationVerdicts(client: $c, after: $after) { seq verdict cursor code message todo { id title } } }"


@pytest.fixture(scope="module")
def server(module_journaled_db: Journaled) -> Iterator[Server]:
    with serving(module_journaled_db.dsn, journal=module_journaled_db.journal) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def numbered(query: str, variables: dict[str, Any], client_id: str, seq: int) -> dict[str, Any]:
    return {"query": query, "variables": variables, "extensions": {"mutation": {"client": client_id, "seq": seq}}}


def post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response


def count(server: Server, sql: str, *params: Any) -> int:
    return _count(server.dsn, sql, *params)


def titled(server: Server, title: str) -> int:
    return count(server, "SELECT count(*) FROM todos WHERE title = %s", title)


def transport_ws(server: Reachable, body: dict[str, Any]) -> bytes:
    """The `next` payload of one operation over graphql-transport-ws, as sent."""
    with TransportWs(server.ws_url) as ws:
        ws.send({"id": "1", "type": "subscribe", "payload": body})
        raw = ws.ws.recv(timeout=10)
        message = json.loads(raw)
        assert message["type"] == "next", message
        return json.dumps(message["payload"]).encode()


def legacy_ws(server: Reachable, body: dict[str, Any]) -> bytes:
    """The `data` payload of one operation over the legacy graphql-ws."""
    ws = LegacyWs(server.ws_url)
    try:
        ws.send({"id": "1", "type": "start", "payload": body})
        message = ws.recv()
        assert message["type"] == "data", message
        return json.dumps(message["payload"]).encode()
    finally:
        ws.close()


def http(server: Reachable, body: dict[str, Any]) -> bytes:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        return json.dumps(post(c, body).json()).encode()


GRAPHQL_TRANSPORTS: dict[str, Callable[[Reachable, dict[str, Any]], bytes]] = {
    "http": http,
    "graphql-transport-ws": transport_ws,
    "graphql-ws": legacy_ws,
}


def test_the_numbered_mutations_are_the_schema_s_mutations(server: Server) -> None:
    # Every mutation an outbox sends takes a number; a new one must be placed.
    # Lists and sharing (issue 19) are not sent by an outbox: they answer with
    # lists and members; nor are one's own access tokens and sessions.
    # moveTodo is (docs/design/offline.md: the outbox's `move`).
    unnumbered = {
        "createList", "renameList", "deleteList", "shareList", "setMemberRole", "removeMember", "leaveList",
        "createAccessToken", "revokeAccessToken", "revokeSession",
    }
    mutation_type = server.app.state.schema._schema.mutation_type
    assert {name for name in mutation_type.fields} == NUMBERED | unnumbered


def test_a_retry_over_http_answers_the_same_bytes_and_changes_nothing(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    body = numbered(CREATE, {"t": "once over http"}, me, 1)
    first = post(client, body)
    retries = [post(client, body) for _ in range(3)]
    assert all(r.content == first.content for r in retries)
    assert titled(server, "once over http") == 1
    reply = first.json()
    assert reply["extensions"]["mutation"] == {"client": me, "seq": 1, "verdict": "APPLIED"}
    position = count(server, "SELECT position FROM todo_changes WHERE todo->>'title' = 'once over http'")
    assert reply["extensions"]["cursor"] == str(position)


@pytest.mark.parametrize("transport", GRAPHQL_TRANSPORTS)
def test_a_retry_over_any_transport_answers_the_same(server: Server, transport: str) -> None:
    me = str(uuid.uuid4())
    title = f"retried over {transport}"
    body = numbered(CREATE, {"t": title}, me, 7)
    replies = [send(server, body) for send in (GRAPHQL_TRANSPORTS[transport], *GRAPHQL_TRANSPORTS.values())]
    # Each transport's JSON, decoded and encoded again the same way: the same.
    assert len(set(replies)) == 1, replies
    assert titled(server, title) == 1
    assert json.loads(replies[0])["extensions"]["mutation"]["verdict"] == "APPLIED"


@pytest.mark.parametrize("transport", GRAPHQL_TRANSPORTS)
def test_the_same_key_with_another_request_is_refused(server: Server, transport: str) -> None:
    me = str(uuid.uuid4())
    GRAPHQL_TRANSPORTS[transport](server, numbered(CREATE, {"t": f"first {transport}"}, me, 1))
    refused = json.loads(GRAPHQL_TRANSPORTS[transport](server, numbered(CREATE, {"t": f"second {transport}"}, me, 1)))
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert titled(server, f"second {transport}") == 0


def test_a_malformed_key_or_one_on_another_operation_is_bad_user_input(client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    bad = [
        {"client": "nope", "seq": 1},
        {"client": me, "seq": 0},
        {"client": me, "seq": 10**18},
        {"client": me, "seq": "1"},
        {"client": me},
        [me, 1],
    ]
    for key in bad:
        body = {"query": CREATE, "variables": {"t": "malformed"}, "extensions": {"mutation": key}}
        answer = post(client, body).json()
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], (key, answer)
    two = 'mutation { a: createTodo(input: {title: "a"}) { id } b: createTodo(input: {title: "b"}) { id } }'
    for query in ("{ todos { id } }", two):
        answer = post(client, numbered(query, {}, me, 1)).json()
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
    assert "not a" not in json.dumps(answer) and "one mutation sent alone" in answer["errors"][0]["message"]


def test_every_mutation_reply_carries_the_cursor_its_change_arrives_at(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    with subscribed(server, CHANGES) as ws:
        plain = post(client, {"query": CREATE, "variables": {"t": "plain cursor"}}).json()
        keyed = post(client, numbered(CREATE, {"t": "keyed cursor"}, me, 1)).json()
        todo_id = keyed["data"]["createTodo"]["id"]
        arrived = [ws.next_data()["todoChanges"]["cursor"] for _ in range(2)]
        # A write that changes nothing: its cursor is one the stream has reached.
        same = post(client, numbered(UPDATE, {"id": todo_id, "t": "keyed cursor"}, me, 2)).json()
        unnumbered_same = post(client, {"query": UPDATE, "variables": {"id": todo_id, "t": "keyed cursor"}}).json()
    assert [plain["extensions"]["cursor"], keyed["extensions"]["cursor"]] == arrived
    assert "mutation" not in plain["extensions"]
    for reply in (same, unnumbered_same):
        assert int(reply["extensions"]["cursor"]) >= int(arrived[1])
        assert "errors" not in reply
    # A retry of the no-op says the same.
    assert post(client, numbered(UPDATE, {"id": todo_id, "t": "keyed cursor"}, me, 2)).json() == same


def test_a_rejection_is_recorded_and_read_back(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    todo = create(client, "kept")
    sent = [
        numbered(CREATE, {"t": "applied 1"}, me, 1),
        numbered(UPDATE, {"id": todo["id"], "t": " "}, me, 2),  # blank: refused
        numbered(UPDATE, {"id": str(uuid.UUID(int=5)), "t": "x"}, me, 3),  # no such todo
        numbered(CREATE, {"t": "applied 4"}, me, 4),
    ]
    replies = [post(client, body) for body in sent]
    assert [r.json()["extensions"]["mutation"]["verdict"] for r in replies] == ["APPLIED", "REJECTED", "REJECTED", "APPLIED"]
    assert [e["extensions"]["code"] for e in replies[1].json()["errors"]] == ["BAD_USER_INPUT"]
    assert [e["extensions"]["code"] for e in replies[2].json()["errors"]] == ["NOT_FOUND"]
    # Retried, a rejection says the same, byte for byte.
    assert post(client, sent[1]).content == replies[1].content
    verdicts = data(client, VERDICTS, {"c": me})["mutationVerdicts"]
    assert [(v["seq"], v["verdict"], v["code"]) for v in verdicts] == [
        ("1", "APPLIED", None), ("2", "REJECTED", "BAD_USER_INPUT"), ("3", "REJECTED", "NOT_FOUND"), ("4", "APPLIED", None)
    ]
    assert verdicts[1]["message"] == "title must not be blank"
    assert verdicts[1]["todo"] == {"id": todo["id"], "title": "kept"}  # the row as the server has it
    assert verdicts[2]["todo"] is None
    assert verdicts[0]["todo"]["title"] == "applied 1"
    assert [v["cursor"] for v in verdicts] == [r.json()["extensions"]["cursor"] for r in replies]
    assert [v["seq"] for v in data(client, VERDICTS, {"c": me, "after": "2"})["mutationVerdicts"]] == ["3", "4"]
    rest = client.get(f"/api/mutations/{me}/", params={"after": "1"})
    assert rest.status_code == 200
    assert [(v["seq"], v["verdict"], v["code"], v["cursor"]) for v in rest.json()] == [
        (v["seq"], v["verdict"], v["code"], v["cursor"]) for v in verdicts[1:]
    ]
    assert client.get("/api/mutations/nope/").status_code == 400
    # Another client's verdicts are its own.
    assert data(client, VERDICTS, {"c": str(uuid.uuid4())})["mutationVerdicts"] == []


def test_a_set_mutation_retried_answers_its_rows(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    for n in range(3):
        create(client, f"toggled {n}")
    body = numbered(TOGGLE_ALL, {"c": True}, me, 1)
    first = post(client, body)
    assert len(first.json()["data"]["toggleAll"]) >= 3
    assert post(client, body).content == first.content
    # Nothing left to toggle: an applied no-op, answered again the same.
    again = numbered(TOGGLE_ALL, {"c": True}, me, 2)
    noop = post(client, again)
    assert noop.json()["data"]["toggleAll"] == []
    assert post(client, again).content == noop.content


def test_concurrent_duplicates_make_one_change(server: Server) -> None:
    """The first holds its transaction open (a lock it waits on, from the
    test); the duplicate waits on the key's index entry, then answers from
    the first's record."""
    me = str(uuid.uuid4())
    body = numbered(CREATE, {"t": "raced"}, me, 1)
    with psycopg.connect(server.dsn, autocommit=True) as holder:
        # The lists' rows: the first statement's foreign key check, after its
        # mutations row, waits on them (in either journal mode).
        holder.execute("BEGIN")
        holder.execute("SELECT FROM lists FOR UPDATE")
        replies: list[bytes] = []
        threads = [threading.Thread(target=lambda: replies.append(http(server, body))) for _ in range(3)]
        for thread in threads:
            thread.start()
        # One inserted and waits to commit; the others wait on its key.
        wait_until(lambda: count(server, "SELECT count(*) FROM pg_locks WHERE NOT granted") >= 3, timeout=10)
        holder.execute("COMMIT")
        for thread in threads:
            thread.join(10)
    assert len(replies) == 3 and len(set(replies)) == 1, replies
    assert titled(server, "raced") == 1


def test_rest_numbered_mutations(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    key = {"Idempotency-Key": f'"{me}:1"'}
    first = client.post("/api/todos/", json={"title": "rest once"}, headers=key)
    assert first.status_code == 201
    retry = client.post("/api/todos/", json={"title": "rest once"}, headers=key)
    assert (retry.status_code, retry.content, retry.headers["location"]) == (201, first.content, first.headers["location"])
    assert retry.headers["journal-cursor"] == first.headers["journal-cursor"]
    assert first.headers["idempotency-key"] == key["Idempotency-Key"]
    assert titled(server, "rest once") == 1
    todo_id = first.json()["id"]
    reused = client.post("/api/todos/", json={"title": "rest other"}, headers=key)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert ErrorCode.IDEMPOTENCY_KEY_REUSED.http_status == 422
    # PATCH, PUT and DELETE, each retried.
    for seq, (method, body, status) in enumerate(
        [("PATCH", {"completed": True}, 200), ("PUT", {"title": "rest put", "completed": False}, 200), ("DELETE", None, 204)],
        start=2,
    ):
        headers = {"Idempotency-Key": f'"{me}:{seq}"'}
        answers = [client.request(method, f"/api/todos/{todo_id}/", json=body, headers=headers) for _ in range(2)]
        assert [a.status_code for a in answers] == [status, status]
        assert answers[0].content == answers[1].content
        assert answers[0].headers["journal-cursor"] == answers[1].headers["journal-cursor"]
    # Deleted: the next edit is rejected, recorded, and retried the same.
    headers = {"Idempotency-Key": f'"{me}:5"'}
    gone = [client.patch(f"/api/todos/{todo_id}/", json={"title": "late"}, headers=headers) for _ in range(2)]
    assert [g.status_code for g in gone] == [404, 404] and gone[0].content == gone[1].content
    assert "journal-cursor" in gone[0].headers and "row" not in gone[0].json()["error"]
    # A refused edit of a row that exists: the row as the server has it, in the error.
    kept = client.post("/api/todos/", json={"title": "rest kept"}).json()
    headers = {"Idempotency-Key": f'"{me}:6"'}
    blank = [client.patch(f"/api/todos/{kept['id']}/", json={"title": " "}, headers=headers) for _ in range(2)]
    assert [b.status_code for b in blank] == [422, 422] and blank[0].content == blank[1].content
    assert blank[0].json()["error"]["code"] == "BAD_USER_INPUT"
    assert blank[0].json()["error"]["row"] == kept
    assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 6
    # Unnumbered replies carry the cursor too; malformed keys are 400.
    plain = client.post("/api/todos/", json={"title": "rest plain"})
    assert int(plain.headers["journal-cursor"]) > 0 and "idempotency-key" not in plain.headers
    for malformed in (f"{me}:1", f'"{me}"', f'"{me}:0"', f'"{me}:01"', f'"{me}:{10**18}"', '"nope:1"', f'"{me}:x"'):
        answer = client.post("/api/todos/", json={"title": "x"}, headers={"Idempotency-Key": malformed})
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "BAD_USER_INPUT"), malformed


def test_retention_prunes_verdicts(server: Server, client: httpx.Client) -> None:
    me = str(uuid.uuid4())
    post(client, numbered(CREATE, {"t": "kept a while"}, me, 1))
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("UPDATE mutations SET created_time = now() - interval '2 days' WHERE client_id = %s", (me,))
        assert conn.execute(verdicts.PRUNE_MUTATIONS, {"keep_seconds": 3 * 86400, "limit": 10}).rowcount == 0
    server.run(server.state("retention").prune())
    assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 1
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("UPDATE mutations SET created_time = now() - interval '8 days' WHERE client_id = %s", (me,))
    server.run(server.state("retention").prune())
    assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 0
    # Forgotten: the same key applies anew (documented: a key is remembered for MUTATIONS_KEEP_SECONDS).
    post(client, numbered(CREATE, {"t": "kept a while"}, me, 1))
    assert titled(server, "kept a while") == 2



def test_a_retry_after_the_journal_was_pruned_past_its_entries_answers_as_the_first(
    server: Server, client: httpx.Client
) -> None:
    """The key is still recorded (verdicts are kept MUTATIONS_KEEP_SECONDS), its
    entries are not: the retry is answered as the first was, byte for byte,
    not NOT_FOUND (trigger) nor DATABASE_UNAVAILABLE after the timeout
    (decoded); also a mutation whose entries were pruned in part, and over
    REST; and the verdicts stay until they are old enough."""
    me = str(uuid.uuid4())
    create(client, "toggled once")  # a second row for toggleAll to change
    sent = [numbered(CREATE, {"t": "made once"}, me, 1), numbered(TOGGLE_ALL, {"c": True}, me, 3)]

    def rest() -> httpx.Response:
        return client.post("/api/todos/", json={"title": "posted once"}, headers={"Idempotency-Key": f'"{me}:2"'})

    firsts = [post(client, sent[0]).content]
    posted = rest()
    firsts.append(post(client, sent[1]).content)
    for i in range(2):
        create(client, f"after {i}")
    toggled = count(server, "SELECT min(position) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:3")
    assert count(server, "SELECT count(*) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:3") >= 2

    def replayed() -> None:
        again = rest()
        assert (again.status_code, again.content) == (posted.status_code, posted.content)
        assert again.headers["journal-cursor"] == posted.headers["journal-cursor"]
        assert [post(client, body).content for body in sent] == firsts

    # toggleAll's first entry goes, its others stay; then all but the newest.
    for below in (toggled + 1, 10**9):
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(repository.PRUNE_JOURNAL, {"below": below, "keep_seconds": 10**6, "keep_rows": 1, "limit": 100})
        replayed()
        replayed()
    assert count(server, "SELECT count(*) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:%") == 0
    assert (titled(server, "made once"), titled(server, "posted once")) == (1, 1)
    graphql = [json.loads(first)["extensions"]["cursor"] for first in firsts]
    cursors = [graphql[0], posted.headers["journal-cursor"], graphql[1]]
    listed = data(client, VERDICTS, {"c": me, "after": "0"})["mutationVerdicts"]
    assert [(v["seq"], v["verdict"], v["cursor"]) for v in listed] == [
        (str(seq), "APPLIED", cursor) for seq, cursor in enumerate(cursors, 1)
    ]
    # Kept for their retention, pruned entries or not.
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute(verdicts.PRUNE_MUTATIONS, {"keep_seconds": 86400, "limit": 10}).rowcount == 0
    assert count(server, "SELECT count(*) FROM mutations WHERE client_id = %s", me) == 3


# Fault injection: the server is killed while its mutation commits, so it
# never answers. A deferred trigger of the test's own sleeps at commit for
# titles that ask for it, after the journal's (triggers of one event fire in
# name order: its cursor NOTICE is sent before the server dies, as a write
# to a client gone would abort the transaction); PostgreSQL then commits
# though its client died meanwhile (client_connection_check_interval is off).
SLEEP_AT_COMMIT = """
CREATE FUNCTION test_sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(2);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER zz_test_sleep_at_commit AFTER INSERT ON todos DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.title LIKE 'sleep at commit%') EXECUTE FUNCTION test_sleep_at_commit();
"""


def _killed_while_committing(serve: Serve, dsn: str, send: Callable[[Serve], object], title: str) -> None:
    """Send a mutation, SIGKILL the server while it commits (no reply can
    have been made), and wait until the change has committed."""
    sender = threading.Thread(target=_quietly, args=(send, serve))
    sender.start()
    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()"
    wait_until(lambda: _count(dsn, sleeping) == 1, timeout=10)
    os.killpg(serve.process.pid, signal.SIGKILL)
    serve.process.wait(10)
    sender.join(10)
    wait_until(lambda: _count(dsn, "SELECT count(*) FROM todos WHERE title = %s", title) == 1, timeout=10)


def _count(dsn: str, sql: str, *params: Any) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def _quietly(send: Callable[[Serve], object], serve: Serve) -> None:
    # The server dies under the request: whatever the client sees is not an answer.
    with contextlib.suppress(Exception):
        send(serve)


def test_killed_after_commit_five_retries_make_one_change(journaled_db: Journaled) -> None:
    db_dsn = journaled_db.dsn
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(SLEEP_AT_COMMIT)
        row = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()
        assert row is not None
        before = row[0]
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "HEARTBEAT_SECONDS": "1", "JOURNAL": journaled_db.journal}
    me = str(uuid.uuid4())
    body = numbered(CREATE, {"t": "sleep at commit graphql"}, me, 1)
    rest_key = {"Idempotency-Key": f'"{me}:2"'}

    def rest(serve: Serve) -> httpx.Response:
        return httpx.post(serve.url + "/api/todos/", json={"title": "sleep at commit rest"}, headers=rest_key, timeout=10)

    _killed_while_committing(Serve(env), db_dsn, lambda s: http(s, body), "sleep at commit graphql")
    _killed_while_committing(Serve(env), db_dsn, rest, "sleep at commit rest")
    serve = Serve(env)
    try:
        sends = [http, transport_ws, legacy_ws, http, transport_ws]
        replies = [send(serve, body) for send in sends]
        assert len(set(replies)) == 1, replies
        reply = json.loads(replies[0])
        assert reply["extensions"]["mutation"]["verdict"] == "APPLIED"
        rest_replies = [rest(serve) for _ in range(5)]
        assert {(r.status_code, r.content, r.headers["journal-cursor"]) for r in rest_replies} == {
            (201, rest_replies[0].content, rest_replies[0].headers["journal-cursor"])
        }
        with psycopg.connect(db_dsn) as conn:
            assert conn.execute(
                "SELECT count(*) FROM todos WHERE title LIKE 'sleep at commit%%'"
            ).fetchone() == (2,)
        # Streams resumed from before them, on every transport, up to a change
        # made after them: each of the two once, at its reply's cursor.
        # (AUTH=open without TODOS_TOKEN: any bearer credential passes.)
        last = json.loads(http(serve, {"query": CREATE, "variables": {"t": "after the retries"}}))
        expected = [
            ("created", "sleep at commit graphql", reply["extensions"]["cursor"]),
            ("created", "sleep at commit rest", rest_replies[0].headers["journal-cursor"]),
            ("created", "after the retries", last["extensions"]["cursor"]),
        ]
        for transport, changes in resumed_everywhere(serve, "any", str(before), "after the retries").items():
            assert changes == expected, transport
    finally:
        serve.stop(signal.SIGTERM)


def test_both_paths_answer_a_numbered_mutation_the_same(server: Server, client: httpx.Client) -> None:
    """The compiled fast path takes a numbered mutation; an extension it does
    not know sends the same request to Strawberry's path (the fingerprint
    leaves extensions out), whose answer is the same bytes."""
    fast = server.fast_path()
    for seq, order in enumerate(((), ("other",)), start=1):
        me = str(uuid.uuid4())
        body = numbered(CREATE, {"t": f"both paths {seq}"}, me, 1)
        strawberry = {**body, "extensions": {**body["extensions"], "other": 1}}
        before = server.call(lambda: fast.executions)
        first, second = (post(client, b) for b in ((body, strawberry) if not order else (strawberry, body)))
        assert first.content == second.content
        assert server.call(lambda: fast.executions) - before == 1
        assert titled(server, f"both paths {seq}") == 1


def test_a_numbered_mutation_on_strawberry_s_path_takes_the_intake_s_operation(server: Server) -> None:
    """Over a WebSocket (Strawberry's path), the key is checked against the
    intake's operation (schema.TodoSchema._definition): the document the
    intake parsed once, not a parse of its own per mutation."""
    intake = server.fast_path().intake
    query = "mutation IntakeOnce($t: String!) { createTodo(input: {title: $t}) { id title } }"
    me = str(uuid.uuid4())
    for seq in (1, 2):
        reply = json.loads(transport_ws(server, numbered(query, {"t": f"intake once {seq}"}, me, seq)))
        assert reply["extensions"]["mutation"] == {"client": me, "seq": seq, "verdict": "APPLIED"}
    taken = server.call(lambda: intake.operation(query, None))
    assert isinstance(taken, Operation)
    assert server.call(lambda: intake.schema._definition(query, None)) is taken.definition


DELETE = f"mutation($id: ID!) {{ deleteTodo(id: $id) {{ {TODO_FIELDS} }} }}"
CLEAR = f"mutation($ids: [ID!]) {{ clearCompleted(ids: $ids) {{ {TODO_FIELDS} }} }}"


def test_each_kind_s_retry_after_its_entries_were_pruned_answers_as_the_first(
    server: Server, client: httpx.Client
) -> None:
    """updateTodo, deleteTodo, clearCompleted (GraphQL), PATCH and DELETE
    (REST), each numbered: once the journal's retention has pruned all their
    entries, a retry is answered as the first was, byte for byte (the
    verdict's stored answer), its cursor header too."""
    me = str(uuid.uuid4())
    ids = [create(client, f"kind {i}", completed=i == 2)["id"] for i in range(5)]
    sent = [
        numbered(UPDATE, {"id": ids[0], "t": "updated once"}, me, 1),
        numbered(DELETE, {"id": ids[1]}, me, 2),
        numbered(CLEAR, {"ids": [ids[2]]}, me, 3),
    ]

    def rest() -> list[httpx.Response]:
        return [
            client.patch(f"/api/todos/{ids[3]}/", json={"title": "patched once"}, headers={"Idempotency-Key": f'"{me}:4"'}),
            client.delete(f"/api/todos/{ids[4]}/", headers={"Idempotency-Key": f'"{me}:5"'}),
        ]

    firsts = [post(client, body).content for body in sent]
    posted = rest()
    create(client, "the newest, kept")

    def answers(graphql: list[bytes], replies: list[httpx.Response]) -> list[object]:
        return [*graphql, *((r.status_code, r.content, r.headers.get("journal-cursor")) for r in replies)]

    expected = answers(firsts, posted)
    assert answers([post(client, body).content for body in sent], rest()) == expected  # entries kept
    assert count(server, "SELECT count(DISTINCT mutation) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:%") == 5
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(repository.PRUNE_JOURNAL, {"below": 10**9, "keep_seconds": 10**6, "keep_rows": 1, "limit": 1000})
    assert count(server, "SELECT count(*) FROM todo_changes WHERE mutation LIKE %s", f"%:{me}:%") == 0
    assert answers([post(client, body).content for body in sent], rest()) == expected
