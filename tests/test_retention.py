"""Journal retention against the real app: by row count and by age, oldest
first and never the newest, never what a subscriber of this process has
still to read, one process at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from websockets.sync.client import connect

from graphql_todos.hub import Hub
from graphql_todos.retention import Retention
from tests.helpers import Server, make_server, wait_until

RETENTION_KEY = 7305202418


@pytest.fixture
def serve(db_dsn: str) -> Iterator[Callable[..., Server]]:
    """Starts the app with these Settings overrides; stops it after the test.
    Unless told, it prunes only when the test says so."""
    started: list[Server] = []

    def start(**overrides: Any) -> Server:
        server = make_server(db_dsn, **{"journal_prune_seconds": 3600, **overrides})
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def keep_two(serve: Callable[..., Server]) -> Server:
    return serve(journal_keep_rows=2)


def sql(server: Server, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def insert(server: Server, count: int) -> None:
    """`count` todos in one statement; returns once the hub has delivered them
    (until then, the hub itself still needs them)."""
    sql(server, "INSERT INTO todos (title) SELECT 't' || n FROM generate_series(1, %s) n", (count,))
    newest = max(positions(server))
    wait_until(lambda: server.call(lambda: server.hub.position) == newest)


def positions(server: Server) -> list[int]:
    return [p for (p,) in sql(server, "SELECT position FROM todo_changes ORDER BY position")]


def prune(server: Server) -> int:
    retention: Retention = server.state("retention")
    return server.run(retention.prune())


def test_keeps_the_newest_rows(keep_two: Server) -> None:
    insert(keep_two, 5)
    assert prune(keep_two) == 3
    assert positions(keep_two) == [4, 5]
    assert sql(keep_two, "SELECT through FROM todo_changes_pruned") == [(3,)]
    assert prune(keep_two) == 0


def test_prunes_by_age_oldest_first_and_never_the_newest(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_seconds=3600)
    insert(server, 4)
    sql(server, "UPDATE todo_changes SET changed_at = now() - interval '2 hours' WHERE position <> 3")
    # 3 is young: the journal keeps it and everything after it, no holes.
    assert prune(server) == 2
    assert positions(server) == [3, 4]
    sql(server, "UPDATE todo_changes SET changed_at = now() - interval '2 hours'")
    assert prune(server) == 1
    assert positions(server) == [4]


def test_prunes_in_batches(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_rows=1, journal_batch=3)
    insert(server, 10)
    assert prune(server) == 9
    assert positions(server) == [10]


def test_keeps_what_a_subscriber_of_this_process_has_still_to_read(keep_two: Server) -> None:
    insert(keep_two, 5)
    hub: Hub = keep_two.hub
    behind = hub.subscribe(after=1)
    keep_two.run(behind.__aenter__())
    try:
        assert prune(keep_two) == 1
        assert positions(keep_two) == [2, 3, 4, 5]
    finally:
        keep_two.run(behind.__aexit__(None, None, None))
    assert prune(keep_two) == 2
    assert positions(keep_two) == [4, 5]


def test_one_process_prunes_at_a_time(keep_two: Server) -> None:
    insert(keep_two, 5)
    with psycopg.connect(keep_two.dsn, autocommit=True) as other:
        # Another process is pruning: this one skips its turn.
        other.execute("SELECT pg_advisory_lock(%s)", (RETENTION_KEY,))
        assert prune(keep_two) == 0
        assert positions(keep_two) == [1, 2, 3, 4, 5]
        other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_KEY,))
    assert prune(keep_two) == 3


def test_prunes_on_its_own(serve: Callable[..., Server]) -> None:
    server = serve(journal_keep_rows=1, journal_prune_seconds=0.1)
    insert(server, 3)
    wait_until(lambda: positions(server) == [3])


def test_the_watcher_of_a_quiet_row_does_not_pin_the_journal(keep_two: Server) -> None:
    insert(keep_two, 1)
    [(todo_id,)] = sql(keep_two, "SELECT id FROM todos")
    with connect(f"{keep_two.ws_url}/api/todos/{todo_id}/") as watcher:
        assert json.loads(watcher.recv(timeout=5))["op"] == "snapshot"
        insert(keep_two, 5)
        assert prune(keep_two) == 4
        assert positions(keep_two) == [5, 6]
        sql(keep_two, "UPDATE todos SET completed = true WHERE id = %s", (todo_id,))
        message = json.loads(watcher.recv(timeout=5))
        assert (message["op"], message["cursor"]) == ("updated", "7")
