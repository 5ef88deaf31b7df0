"""Cached query responses are exact: a hit reflects every change committed
before the request arrived, from any writer."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from graphql_todos.journal import Coalesced
from graphql_todos.response_cache import ResponseCache
from tests.gql import create, data
from tests.helpers import Server

LIST = "{ todos { id title completed } }"


def test_a_repeated_query_is_served_from_the_cache(client: httpx.Client, server: Server) -> None:
    create(client, "a")
    cache = server.fast_path().cache
    first = data(client, LIST)
    hits = cache.hits
    assert data(client, LIST) == first
    assert cache.hits == hits + 1


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
        cache = ResponseCache(8)
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
