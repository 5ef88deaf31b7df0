"""Cached query responses are exact: a hit reflects every change committed
before the request arrived, from any writer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from graphql_todos import repository
from graphql_todos.journal import Coalesced
from graphql_todos.response_cache import ResponseCache
from tests.gql import create, data
from tests.helpers import Server, serving, wait_until
from tests.pgwire import recording

LIST = "{ todos { id title completed } }"


def _hits(server: Server) -> int:
    """Hits of the fast path's cache and of the front door's (response_front.py)."""
    return int(server.fast_path().cache.hits + server.state("response_replies").hits)


def test_a_repeated_query_is_served_from_the_cache(client: httpx.Client, server: Server) -> None:
    create(client, "a")
    first = data(client, LIST)
    hits = _hits(server)
    assert data(client, LIST) == first
    assert _hits(server) == hits + 1


def test_every_committed_change_invalidates_it(client: httpx.Client, server: Server) -> None:
    create(client, "a")
    assert [t["title"] for t in data(client, LIST)["todos"]] == ["a"]
    # A write through the API, then one from psql: each shows at once.
    create(client, "b")
    assert [t["title"] for t in data(client, LIST)["todos"]] == ["a", "b"]
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("UPDATE todos SET title = 'c' WHERE title = 'b'")
    assert [t["title"] for t in data(client, LIST)["todos"]] == ["a", "c"]


def test_rest_reads_share_the_guarantee(client: httpx.Client, server: Server) -> None:
    create(client, "a")
    cache = server.fast_path().cache
    first = client.get("/api/todos/").json()
    hits = cache.hits
    assert client.get("/api/todos/").json() == first
    assert cache.hits == hits + 1
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("UPDATE todos SET completed = true")
    assert [t["completed"] for t in client.get("/api/todos/").json()] == [True]
    assert client.get("/api/todos/?completed=false").json() == []


def test_different_variables_are_different_entries(client: httpx.Client) -> None:
    create(client, "open")
    create(client, "done", completed=True)
    query = "query($c: Boolean) { todos(completed: $c) { title } }"
    assert data(client, query, {"c": True}) == {"todos": [{"title": "done"}]}
    assert data(client, query, {"c": False}) == {"todos": [{"title": "open"}]}
    assert data(client, query, {"c": True}) == {"todos": [{"title": "done"}]}


def test_coalesced_reads_serve_waiting_callers_and_never_an_earlier_read() -> None:
    async def run() -> tuple[list[int], list[int]]:
        started: list[int] = []
        value = 0

        async def read() -> int:
            nonlocal value
            value += 1
            started.append(value)
            await asyncio.sleep(0.01)
            return value

        position = Coalesced(read)
        first = asyncio.create_task(position())
        await asyncio.sleep(0)  # the first read is now under way
        # These arrive while it runs: they must share the next read, not it.
        later = [asyncio.create_task(position()) for _ in range(5)]
        results = [await first, *[await t for t in later]]
        return started, results

    started, results = asyncio.run(run())
    assert started == [1, 2]
    assert results == [1, 2, 2, 2, 2, 2]


def test_a_journal_that_went_back_empties_the_cache() -> None:
    # A database restored from a backup: positions repeat with other rows.
    async def run() -> list[bytes]:
        cache = ResponseCache[bytes](8)
        answers = iter([b"before", b"restored", b"again"])

        async def read() -> tuple[bytes, bool]:
            return next(answers), True

        async def at(position: int) -> int:
            return position

        got = [await cache.get_or_read("k", lambda: at(5), read)]
        got.append(await cache.get_or_read("k", lambda: at(2), read))
        got.append(await cache.get_or_read("k", lambda: at(2), read))
        return got

    assert asyncio.run(run()) == [b"before", b"restored", b"restored"]


def test_one_position_query_per_request_and_none_added_to_a_mutation(db_dsn: str) -> None:
    """Counted off the wire: every statement the app's pool runs."""
    with recording(db_dsn) as (dsn, statements), serving(
        dsn, heartbeat_seconds=3600, journal_prune_seconds=3600
    ) as server, httpx.Client(base_url=server.url, timeout=10) as client:

        def run(request: Any) -> list[str]:
            """What the pool ran for the request (the hub done with what it wrought)."""
            mark = len(statements.run)
            request()
            wait_until(lambda: server.hub.position == _journal_position(db_dsn))
            return statements.since(mark, "graphql-todos")

        todo = create(client, "a")
        graphql_list = lambda: data(client, LIST)
        rest_list = lambda: client.get("/api/todos/").raise_for_status()
        for read in (graphql_list, rest_list):
            # A miss reads the list after the position; a hit, only the position.
            assert [_name(sql) for sql in run(read)] == ["position", "list"]
            assert [_name(sql) for sql in run(read)] == ["position"]
        mutation = f'mutation {{ updateTodo(id: "{todo["id"]}", input: {{completed: true}}) {{ id }} }}'
        assert [_name(sql) for sql in run(lambda: data(client, mutation))] == ["update"]
        assert [_name(sql) for sql in run(lambda: create(client, "b"))] == ["insert"]
        rest_create = lambda: client.post("/api/todos/", json={"title": "c"}).raise_for_status()
        assert [_name(sql) for sql in run(rest_create)] == ["insert"]


def _name(sql: str) -> str:
    """Which of the app's statements this is (psycopg sends %(name)s as $n)."""
    if sql == repository.SELECT_POSITION:
        return "position"
    for name, start in (("insert", "INSERT INTO todos"), ("update", "UPDATE todos SET title")):
        if sql.strip().startswith(start):
            return name
    return "list" if "FROM todos" in sql and "json" in sql else sql


def _journal_position(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(repository.SELECT_POSITION).fetchone()
    assert row is not None
    return int(row[0])
