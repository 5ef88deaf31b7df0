"""A pooled connection the server ended while it sat idle (its backend
terminated, PostgreSQL's idle_session_timeout) fails no request: the next
reads and writes, GraphQL and REST, one by one and all at once, are
answered, each write applied once (docs/reliability.md, section 2)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.decoded import Journaled
from tests.helpers import Server, make_server, wait_until

POOL_SIZE = 4
CREATE = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"
RENAME = "mutation($id: ID!, $t: String!) { updateTodo(id: $id, input: {title: $t}) { id } }"
LIST = "{ todos { title } }"
# The pool's backends, not the hub's listener ("graphql-todos listener").
POOLED = "application_name = 'graphql-todos' AND datname = current_database()"


# The hub's quiet-spell check reads the journal through the pool (and a
# listener that fails checks the whole pool): not while the test runs.
QUIET = 60.0


@pytest.fixture
def server(journaled_db: Journaled) -> Iterator[Server]:
    srv = make_server(journaled_db.dsn, journal=journaled_db.journal, pool_size=POOL_SIZE, heartbeat_seconds=QUIET)
    srv.start()
    yield srv
    srv.stop()


def _filled(server: Server, client: httpx.Client) -> None:
    """The pool grown to its size, every connection idle: requests that
    wait on a row lock hold one each."""
    todo_id = client.post("/api/todos/", json={"title": "locked"}).json()["id"]
    with psycopg.connect(server.dsn) as locker, ThreadPoolExecutor(POOL_SIZE) as threads:
        locker.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", (todo_id,))
        held = [
            threads.submit(client.patch, f"/api/todos/{todo_id}/", json={"completed": n % 2 == 0})
            for n in range(POOL_SIZE)
        ]
        wait_until(lambda: server.pool_stats()["pool_size"] == POOL_SIZE and server.pool_stats()["pool_available"] == 0)
        locker.rollback()
        assert [f.result().status_code for f in held] == [200] * POOL_SIZE
    wait_until(lambda: server.pool_stats()["pool_available"] == POOL_SIZE)


def _end_idle(server: Server) -> int:
    """Every idle pooled backend terminated; how many, once each has gone."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        ended = conn.execute(f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {POOLED} AND state = 'idle'").fetchone()
        wait_until(lambda: conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {POOLED}").fetchone() == (0,))
    assert ended is not None
    return int(ended[0])


def _requests(client: httpx.Client, todo_id: str, tag: str) -> list[Callable[[], httpx.Response]]:
    """Reads and writes, GraphQL and REST, numbered and not; each write's title starts with `tag`."""
    me = str(uuid.uuid4())
    return [
        lambda: client.post("/graphql", json={"query": CREATE, "variables": {"t": f"{tag} graphql"}}),
        lambda: client.post("/graphql", json={
            "query": CREATE, "variables": {"t": f"{tag} numbered"}, "extensions": {"mutation": {"client": me, "seq": 1}},
        }),
        lambda: client.post("/graphql", json={"query": RENAME, "variables": {"id": todo_id, "t": f"renamed {tag}"}}),
        lambda: client.post("/graphql", json={"query": LIST, "variables": {}}),
        lambda: client.post("/api/todos/", json={"title": f"{tag} rest"}),
        lambda: client.post("/api/todos/", json={"title": f"{tag} rest numbered"}, headers={"Idempotency-Key": f'"{me}:2"'}),
        lambda: client.patch(f"/api/todos/{todo_id}/", json={"title": f"renamed {tag} by rest"}),
        lambda: client.get("/api/todos/"),
        lambda: client.get(f"/api/todos/{todo_id}/"),
    ]


def _failed(response: httpx.Response) -> bool:
    return response.status_code >= 300 or (response.request.url.path == "/graphql" and "errors" in response.json())


def _failures(server: Server, client: httpx.Client, todo_id: str, tag: str, together: bool) -> list[str]:
    """The answers that failed among one round of _requests, sent one by one or all at once."""
    sends = _requests(client, todo_id, tag)
    if together:
        with ThreadPoolExecutor(len(sends)) as threads:
            answers = list(threads.map(lambda send: send(), sends))
    else:
        answers = [send() for send in sends]
    failed = [f"{a.request.method} {a.request.url.path}: {a.status_code} {a.text[:100]}" for a in answers if _failed(a)]
    return [f"{len(failed)} of {len(answers)} failed", *failed] if failed else []


def _titles(server: Server, tag: str) -> list[str]:
    with psycopg.connect(server.dsn) as conn:
        return sorted(row[0] for row in conn.execute("SELECT title FROM todos WHERE title LIKE %s", (f"{tag} %",)))


APPLIED = ["graphql", "numbered", "rest", "rest numbered"]


@pytest.mark.parametrize("together", [False, True], ids=["one by one", "all at once"])
def test_requests_after_the_idle_pooled_backends_were_terminated_all_succeed(server: Server, together: bool) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        todo_id = client.post("/api/todos/", json={"title": "kept"}).json()["id"]
        for round_ in range(2):
            _filled(server, client)
            assert _end_idle(server) == POOL_SIZE
            tag = f"r{round_}"
            failures = _failures(server, client, todo_id, tag, together)
            assert failures == [], "\n".join(failures)
            # Each write applied once.
            assert _titles(server, tag) == [f"{tag} {name}" for name in APPLIED]


def test_requests_after_idle_session_timeout_ended_the_pool_s_connections_all_succeed(db_dsn: str) -> None:
    server = make_server(db_dsn, pool_size=POOL_SIZE, heartbeat_seconds=QUIET)
    server.start()
    try:
        # For the sessions opened from now on: the pool's, not the hub's listener.
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {conn.info.dbname} SET idle_session_timeout = '1s'")
        server.run(server.state("pool").drain())
        with httpx.Client(base_url=server.url, timeout=10) as client:
            todo_id = client.post("/api/todos/", json={"title": "kept"}).json()["id"]
            for round_, together in enumerate([False, True]):
                _filled(server, client)
                time.sleep(1.5)
                tag = f"r{round_}"
                failures = _failures(server, client, todo_id, tag, together)
                assert failures == [], "\n".join(failures)
                assert _titles(server, tag) == [f"{tag} {name}" for name in APPLIED]
    finally:
        server.stop()


def test_a_write_whose_backend_is_terminated_while_it_runs_is_unavailable_and_never_run_again(server: Server) -> None:
    """Not a connection ended while idle: the write was sent, so it answers
    DATABASE_UNAVAILABLE and is not run again behind the client's back; the
    client's retry of the same numbered mutation applies it, once."""
    me = str(uuid.uuid4())
    body = {"query": RENAME, "extensions": {"mutation": {"client": me, "seq": 1}}}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        todo_id = client.post("/api/todos/", json={"title": "before"}).json()["id"]
        body["variables"] = {"id": todo_id, "t": "renamed once"}
        with psycopg.connect(server.dsn) as locker, ThreadPoolExecutor(1) as threads:
            locker.execute("SELECT 1 FROM todos WHERE id = %s FOR UPDATE", (todo_id,))
            renaming = threads.submit(client.post, "/graphql", json=body)
            waiting = f"SELECT pid FROM pg_stat_activity WHERE {POOLED} AND wait_event_type = 'Lock'"
            with psycopg.connect(server.dsn, autocommit=True) as other:
                wait_until(lambda: other.execute(waiting).fetchone() is not None)
                other.execute(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) w")
            answer = renaming.result()
            locker.rollback()
        assert [e["extensions"]["code"] for e in answer.json()["errors"]] == ["DATABASE_UNAVAILABLE"]
        assert client.get(f"/api/todos/{todo_id}/").json()["title"] == "before"
        retried = client.post("/graphql", json=body).json()
        assert "errors" not in retried, retried
        again = client.post("/graphql", json=body).json()
        assert again == retried
    with psycopg.connect(server.dsn) as conn:
        journaled = conn.execute(
            "SELECT count(*) FROM todo_changes WHERE todo_id = %s AND todo->>'title' = 'renamed once'", (todo_id,)
        ).fetchone()
    assert journaled == (1,)
