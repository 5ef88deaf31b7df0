"""A person deleted by hand (psql) while a credential of theirs is still
trusted: a request that was let in as them, then acts in their name, is told
that its credential names no one (401 UNAUTHENTICATED, GraphQL's
extensions.code alike), never a 500 or a traceback in the log. Open mode's
and the service token's todos with no list are local's: local gone, they
are refused (FORBIDDEN) saying so. A session's sockets end with its person."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from graphql_todos.core import people
from tests.conftest import Journaled
from tests.helpers import BEARER, TOKEN, Server, errors_logged, serving, wait_until
from tests.test_accounts_jwt import SECRET, _hs256
from tests.test_lists import CREATE, CREATE_LIST, PASSWORD, SHARE, Caller
from tests.test_lists_deleted_concurrently import queued_on

GONE = "the person this credential names is gone (deleted since it was checked): sign in again"
LOCAL_GONE = (
    "local, who owns what open mode and the service token make with no list named,"
    " is no longer in the database (deleted by hand)"
)
NEW_TOKEN = 'mutation { createAccessToken(name: "t") { secret } }'


def _delete(server: Server, username: str) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("DELETE FROM people WHERE username = %s", (username,)).rowcount == 1


def _rest(answer: httpx.Response) -> tuple[int, str, str]:
    return answer.status_code, answer.json()["error"]["code"], answer.json()["error"]["message"]


def _graphql(server: Server, headers: dict[str, str], query: str, **variables: Any) -> tuple[str, str]:
    answer = httpx.post(server.url + "/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert answer.status_code == 200, answer.text
    (error,) = answer.json()["errors"]
    return error["extensions"]["code"], error["message"]


def _graphql_data(server: Server, headers: dict[str, str], query: str, **variables: Any) -> Any:
    answer = httpx.post(server.url + "/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert "errors" not in answer.json(), answer.text
    return answer.json()["data"]


def _every_way_to_make(server: Server, headers: dict[str, str]) -> dict[str, Callable[[], tuple[object, ...]]]:
    """What makes a row in the caller's name: each call's (status or code, message)."""

    def post(path: str, body: dict[str, str], extra: dict[str, str] | None = None) -> tuple[int, str, str]:
        return _rest(httpx.post(server.url + path, json=body, headers={**headers, **(extra or {})}))

    numbered = {"Idempotency-Key": '"6f1c2a52-1d0e-4c7b-9a57-3f1e0f0f0a01:1"'}
    return {
        "REST todo, no list": lambda: post("/api/todos/", {"title": "x"}),
        "REST todo, numbered": lambda: post("/api/todos/", {"title": "x"}, numbered),
        "REST list": lambda: post("/api/lists/", {"name": "x"}),
        "REST token": lambda: post("/api/tokens/", {"name": "x"}),
        "GraphQL todo, no list": lambda: _graphql(server, headers, CREATE, t="x", l=None),
        "GraphQL list": lambda: _graphql(server, headers, CREATE_LIST, name="x"),
        "GraphQL token": lambda: _graphql(server, headers, NEW_TOKEN),
    }


def test_a_person_deleted_while_their_jwt_is_trusted_is_told_to_sign_in_again(
    journaled_db: Journaled, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process trusts the person a JWT named for CACHE_SECONDS: held
    # longer, every request here is one let in just before the DELETE.
    monkeypatch.setattr(people, "CACHE_SECONDS", 600.0)
    with serving(journaled_db.dsn, auth="accounts", jwt_secret=SECRET, journal=journaled_db.journal) as server:
        jwt = {"Authorization": f"Bearer {_hs256({'sub': 'wendy'})}"}
        assert _graphql_data(server, jwt, CREATE, t="before", l=None)["createTodo"]["title"] == "before"
        _delete(server, "wendy")
        with errors_logged() as errors:
            for way, call in _every_way_to_make(server, jwt).items():
                expected = (401, "UNAUTHENTICATED", GONE) if way.startswith("REST") else ("UNAUTHENTICATED", GONE)
                assert call() == expected, way
        assert errors == []


def test_a_jwt_s_socket_outliving_its_person_is_told_to_sign_in_again(db_dsn: str) -> None:
    # A JWT's socket keeps its person until the JWT's exp: no revocation ends it.
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET) as server, connect(
        server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {_hs256({'sub': 'wendy'})}"}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
        _delete(server, "wendy")
        with errors_logged() as errors:
            for n, query in enumerate((CREATE, CREATE_LIST, NEW_TOKEN)):
                payload = {"query": query, "variables": {"t": "x", "l": None, "name": "x"}}
                ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
                answer = json.loads(ws.recv(timeout=5))
                assert answer["type"] == "next", answer
                (error,) = answer["payload"]["errors"]
                assert (error["extensions"]["code"], error["message"]) == ("UNAUTHENTICATED", GONE), query
                assert json.loads(ws.recv(timeout=5)) == {"id": str(n), "type": "complete"}
        assert errors == []


def test_a_session_s_socket_ends_with_its_person(db_dsn: str) -> None:
    # The DELETE takes the sessions along, each a revocation every process hears.
    with serving(db_dsn, auth="accounts") as server:
        ann = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=20)
        assert ann.post("/api/auth/sign-up", json={"username": "ann", "password": PASSWORD}).status_code == 201
        cookie = "; ".join(f"{name}={value}" for name, value in ann.cookies.items())
        with errors_logged() as errors, connect(
            server.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")],
            additional_headers={"Cookie": cookie, "Origin": server.url},
        ) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
            _delete(server, "ann")
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert errors == []


def _while_locked(server: Server, lock: str, username: str, request: Callable[[], httpx.Response]) -> httpx.Response:
    """`request`, stopped by `lock` (a statement another transaction holds)
    after it was let in and read its person's rows, while that transaction
    deletes the person and commits: the request goes on with a person gone."""
    with psycopg.connect(server.dsn) as other:
        # The hand's DELETE never looks for a deadlock: the request's
        # statement, waiting first, is its victim (a test's own, where one comes).
        other.execute("SET deadlock_timeout = '60s'")
        other.execute(lock)
        answers: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: answers.append(request()))
        thread.start()
        # The one request waiting behind `other`, read from pg_locks, fresh
        # at each call: pg_stat_activity keeps the backends of a
        # transaction's first look until it ends (`other` is in one), and the
        # request's connection, when the pool opened it after that look,
        # never showed there, waiting or not.
        wait_until(lambda: other.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ).fetchone() == (1,))
        other.execute("DELETE FROM people WHERE username = %s", (username,))
    thread.join(20)
    return answers[0]


def test_a_person_deleted_while_their_session_s_create_waits(journaled_db: Journaled) -> None:
    """Decoded, the create locks ann's list's row FOR KEY SHARE before her
    member row (core/writes.py), so it waits for the list, which the DELETE
    holds, holding nothing the DELETE then takes (her member row goes with
    her list): no deadlock, and at the DELETE's commit the create finds her
    gone."""
    with serving(journaled_db.dsn, auth="accounts", journal=journaled_db.journal) as server:
        ann = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=20)
        assert ann.post("/api/auth/sign-up", json={"username": "ann", "password": PASSWORD}).status_code == 201
        # The new row's check against its (default) list waits for the lock on that list.
        lock = "SELECT FROM lists l JOIN people p ON p.id = l.owner_id WHERE p.username = 'ann' FOR UPDATE OF l"
        with errors_logged() as errors:
            answer = _while_locked(server, lock, "ann", lambda: ann.post("/api/todos/", json={"title": "x"}))
        assert _rest(answer) == (401, "UNAUTHENTICATED", GONE)
        assert errors == []


def test_a_person_deleted_while_they_sign_in(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts") as server:
        enter = {"username": "ann", "password": PASSWORD}
        assert httpx.post(server.url + "/api/auth/sign-up", json=enter).status_code == 201
        # The new session's check against its person waits for the lock on that person.
        lock = "SELECT FROM people WHERE username = 'ann' FOR UPDATE"
        with errors_logged() as errors:
            answer = _while_locked(server, lock, "ann", lambda: httpx.post(server.url + "/api/auth/sign-in", json=enter))
        assert _rest(answer) == (401, "UNAUTHENTICATED", GONE)
        assert "set-cookie" not in answer.headers
        assert errors == []


@pytest.mark.parametrize("auth", ["open", "accounts"])
def test_local_deleted_refuses_what_would_be_theirs(db_dsn: str, auth: str) -> None:
    # Open mode acts as local; the service token's todos with no list go to local's default list.
    with serving(db_dsn, auth=auth, token=TOKEN) as server:
        _delete(server, "local")
        with errors_logged() as errors:
            assert _rest(httpx.post(server.url + "/api/todos/", json={"title": "x"}, headers=BEARER)) == (
                403, "FORBIDDEN", LOCAL_GONE
            )
            assert _graphql(server, BEARER, CREATE, t="x", l=None) == ("FORBIDDEN", LOCAL_GONE)
            if auth == "open":
                assert _graphql(server, BEARER, CREATE_LIST, name="x") == ("FORBIDDEN", LOCAL_GONE)
        assert errors == []


@pytest.mark.parametrize("gone", ["ann", "bob"])
def test_a_person_deleted_while_a_share_waits(db_dsn: str, gone: str) -> None:
    """Ann shares her list with Bob; one of them is deleted (by hand) after
    the share read them: ann gone, she is told to sign in again (her list
    went with her); bob gone, he is not found, as a name never taken is."""
    with serving(db_dsn, auth="accounts", sign_up="open") as server:
        ann = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=20)
        assert ann.post("/api/auth/sign-up", json={"username": "ann", "password": PASSWORD}).status_code == 201
        bob = {"username": "bob", "password": PASSWORD}
        assert httpx.post(server.url + "/api/auth/sign-up", json=bob).status_code == 201
        made = ann.post("/api/lists/", json={"name": "shared"})
        assert made.status_code == 201, made.text
        members = f"/api/lists/{made.json()['id']}/members/"
        # The new member row's check against its list, or its person, waits for the lock on it.
        lock = (
            "SELECT FROM lists WHERE owner_id = (SELECT id FROM people WHERE username = 'ann') AND NOT is_default FOR UPDATE"
            if gone == "ann"
            else "SELECT FROM people WHERE username = 'bob' FOR UPDATE"
        )
        with errors_logged() as errors:
            answer = _while_locked(server, lock, gone, lambda: ann.post(members, json={"username": "bob", "role": "viewer"}))
        expected = (401, "UNAUTHENTICATED", GONE) if gone == "ann" else (404, "NOT_FOUND")
        assert _rest(answer)[: len(expected)] == expected, answer.text
        assert errors == []


def test_a_member_s_write_while_they_are_deleted_by_hand(journaled_db: Journaled, monkeypatch: pytest.MonkeyPatch) -> None:
    """psql deletes bob (its transaction left open) while bob renames a row
    of ann's list, which he edits. Decoded, the DELETE holds the list's row
    FOR UPDATE, taken before it deleted his member row (sql/021), so his
    write queues on the list holding nothing, and at the DELETE's commit
    finds no row of his to change (NOT_FOUND), where it deadlocked with the
    commit's lock on the list. Trigger mode's write locks neither: it is
    applied before the DELETE commits."""
    decoded = journaled_db.journal == "decoded"
    # Bob's session trusted as read before the DELETE (its row is the DELETE's too).
    monkeypatch.setattr(people, "CACHE_SECONDS", 600.0)
    with serving(journaled_db.dsn, auth="accounts", journal=journaled_db.journal) as server, \
            psycopg.connect(server.dsn) as other, psycopg.connect(server.dsn, autocommit=True) as probe:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        shared = ann.data(CREATE_LIST, name="groceries")["createList"]["id"]
        row = ann.data(CREATE, t="milk", l=shared)["createTodo"]["id"]
        ann.data(SHARE, id=shared, u="bob", r="EDITOR")
        assert bob.http.get("/api/lists/").status_code == 200
        # No deadlock check of the DELETE's: were there a cycle, bob's write would be its victim and run again.
        other.execute("SET deadlock_timeout = '60s'")
        assert other.execute("DELETE FROM people WHERE id = %s", (bob.id,)).rowcount == 1
        answers: list[httpx.Response] = []
        writing = threading.Thread(target=lambda: answers.append(bob.http.patch(f"/api/todos/{row}/", json={"title": "renamed"})))
        with errors_logged() as errors:
            writing.start()
            if decoded:
                wait_until(lambda: queued_on(probe, other.info.backend_pid) == ["lists"], timeout=10)
            else:
                writing.join(20)
            other.commit()
            writing.join(20)
            deadlocks = probe.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        title = probe.execute("SELECT title FROM todos WHERE id = %s", (row,)).fetchone()
    [answer] = answers
    if decoded:
        assert (answer.status_code, answer.json()["error"]["code"], title) == (404, "NOT_FOUND", ("milk",)), answer.text
    else:
        assert (answer.status_code, title) == (200, ("renamed",)), answer.text
    assert deadlocks == (0,)
    assert errors == []
