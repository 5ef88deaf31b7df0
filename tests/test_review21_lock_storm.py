"""Probe: the app's list and todo writes from several people at once, with
people deleted by hand (psql) meanwhile, on a real server in both journal
modes: no statement rolled back as a deadlock's victim, no error answered,
and the journal tells each row's last state."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import httpx
import psycopg

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.helpers import Server, serving
from tests.test_lists import PASSWORD, Caller

TOGGLE = "mutation($c: Boolean!) { toggleAll(completed: $c) { id } }"
CLEAR = "mutation { clearCompleted { id } }"
MOVE = "mutation($id: ID!, $l: ID!) { moveTodo(id: $id, listId: $l) { id } }"
CREATE = "mutation($t: String!, $l: ID) { createTodo(input: {title: $t, listId: $l}) { id } }"
SHARE = "mutation($id: ID!, $u: String!) { shareList(id: $id, username: $u, role: EDITOR) { role } }"
REMOVE = "mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { role } }"
ROLE = "mutation($l: ID!, $p: ID!, $r: Role!) { setMemberRole(listId: $l, personId: $p, role: $r) { role } }"
NEW_LIST = 'mutation { createList(input: {name: "x"}) { id } }'
DROP_LIST = "mutation($id: ID!) { deleteList(id: $id) { id } }"
LISTS = "{ lists { id isDefault role members { person { id username } role } } }"
TODOS = "{ todos { id listId } }"


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _client(server: Server, username: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=30)
    answer = http.post("/api/auth/sign-in", json={"username": username, "password": PASSWORD})
    assert answer.status_code in (200, 204), answer.text
    return http


def _gql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = http.post("/graphql", json={"query": query, "variables": variables}).json()
    return body


def _read(http: httpx.Client, query: str, problems: list[str]) -> list[dict[str, Any]]:
    """A read's rows; an error answered is a problem (a person deleted
    meanwhile reads as UNAUTHENTICATED, and nothing)."""
    body = _gql(http, query)
    for error in body.get("errors") or []:
        code = error.get("extensions", {}).get("code")
        if code != "UNAUTHENTICATED":
            problems.append(f"read {query}: {code} {error.get('message')}")
    rows: list[dict[str, Any]] = [row for found in (body.get("data") or {}).values() for row in found or []]
    return rows


def _step(http: httpx.Client, names: list[str], rng: random.Random, problems: list[str]) -> None:
    lists = _read(http, LISTS, problems)
    todos = _read(http, TODOS, problems)
    if not lists:
        return
    owned = [item for item in lists if item["role"] == "OWNER"]
    choice = rng.choice(["toggle", "clear", "move", "create", "share", "remove", "role", "list", "toggle", "clear"])
    if choice == "toggle":
        body = _gql(http, TOGGLE, c=rng.random() < 0.5)
    elif choice == "clear":
        body = _gql(http, CLEAR)
    elif choice == "move" and todos:
        body = _gql(http, MOVE, id=rng.choice(todos)["id"], l=rng.choice(lists)["id"])
    elif choice == "share" and owned:
        body = _gql(http, SHARE, id=rng.choice(owned)["id"], u=rng.choice(names))
    elif choice in ("remove", "role") and owned:
        target = rng.choice(owned)
        others = [m for m in target["members"] if m["role"] != "OWNER"]
        if not others:
            return
        member = rng.choice(others)["person"]["id"]
        body = _gql(http, REMOVE, l=target["id"], p=member) if choice == "remove" else _gql(
            http, ROLE, l=target["id"], p=member, r=rng.choice(["EDITOR", "VIEWER"]))
    elif choice == "list":
        extra = [item for item in owned if not item["isDefault"]]
        body = _gql(http, DROP_LIST, id=rng.choice(extra)["id"]) if extra and rng.random() < 0.5 else _gql(http, NEW_LIST)
    else:
        body = _gql(http, CREATE, t="t", l=rng.choice(lists)["id"])
    for error in body.get("errors") or []:
        code = error.get("extensions", {}).get("code")
        if code not in ("NOT_FOUND", "FORBIDDEN", "CONFLICT", "BAD_USER_INPUT", "UNAUTHENTICATED"):
            problems.append(f"{choice}: {code} {error.get('message')}")


def _steps(http: httpx.Client, names: list[str], rng: random.Random, problems: list[str], count: int) -> None:
    for _ in range(count):
        _step(http, names, rng, problems)


def _storm(journaled_db: Journaled, seconds: float, seed: int) -> tuple[list[str], list[str]]:
    retries = _Retries()
    logging.getLogger("graphql_todos.core.database").addHandler(retries)
    problems: list[str] = []
    with serving(journaled_db.dsn, auth="accounts", journal=journaled_db.journal) as server:
        names = [f"p{i}" for i in range(6)]
        for name in names:
            Caller(server, name)
        stop = time.monotonic() + seconds

        def worker(index: int) -> None:
            rng = random.Random(seed * 100 + index)
            me = names[index % len(names)]
            http = _client(server, me)
            while time.monotonic() < stop:
                try:
                    _step(http, names, rng, problems)
                except (httpx.HTTPError, ValueError) as exc:
                    problems.append(f"{me}: {exc!r}")
                if rng.random() < 0.02 and me.startswith("v"):
                    return

        def deleter() -> None:
            rng = random.Random(seed)
            round_ = 0
            while time.monotonic() < stop:
                round_ += 1
                victim = f"v{round_}"
                Caller(server, victim)
                http = _client(server, victim)
                for name in rng.sample(names, 3):
                    owner = _client(server, name)
                    owned = [x for x in _read(owner, LISTS, problems) if x["role"] == "OWNER"]
                    if owned:
                        _gql(owner, SHARE, id=rng.choice(owned)["id"], u=victim)
                for _ in range(3):
                    _gql(http, NEW_LIST)
                for _ in range(6):
                    _step(http, names, rng, problems)
                threads = [threading.Thread(target=_steps, args=(http, names, rng, problems, 5))]
                for thread in threads:
                    thread.start()
                try:
                    with psycopg.connect(server.dsn, autocommit=True) as conn:
                        conn.execute("DELETE FROM people WHERE username = %s", (victim,))
                except psycopg.Error as exc:
                    problems.append(f"psql deletion of {victim}: {exc.sqlstate} {exc}")
                for thread in threads:
                    thread.join()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)] + [threading.Thread(target=deleter)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            journaled(conn)
            stale = conn.execute("""
                SELECT t.id, c.op, c.todo->>'completed', t.completed FROM todos t
                LEFT JOIN LATERAL (SELECT op::text, todo FROM todo_changes WHERE todo_id = t.id AND op IN ('created', 'updated', 'deleted') ORDER BY position DESC LIMIT 1) c ON true
                WHERE c.op IS NULL OR c.op = 'deleted' OR (c.todo->>'completed')::boolean IS DISTINCT FROM t.completed
                   OR (c.todo->>'list_id')::uuid IS DISTINCT FROM t.list_id
            """).fetchall()
            problems += [f"journal's last entry disagrees: {row}" for row in stale]
            gone = conn.execute("""
                SELECT c.todo_id FROM todo_changes c WHERE c.op IN ('created', 'updated', 'deleted') AND NOT EXISTS (SELECT FROM todos WHERE id = c.todo_id)
                GROUP BY c.todo_id HAVING bool_or(op = 'deleted') IS NOT TRUE OR count(*) FILTER (WHERE op = 'deleted') > 1
            """).fetchall()
            problems += [f"row gone without one deletion entry: {row}" for row in gone]
    logging.getLogger("graphql_todos.core.database").removeHandler(retries)
    return problems, retries.messages


def test_storm(journaled_db: Journaled) -> None:
    problems, retried = _storm(journaled_db, 15, 1)
    assert not problems, problems[:20]
    assert not retried, retried[:5]
