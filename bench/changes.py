"""How the bench changes a todo: an INSERT over psycopg, or a createTodo mutation over HTTP."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
import orjson
import psycopg

from .fanout import Change
from .servers import POSTGRAPHILE

# The same mutation in each server's naming, selecting the same fields.
CREATE = {
    "ours": "mutation($t: String!) { createTodo(input: {title: $t}) { id title completed } }",
    POSTGRAPHILE: "mutation($t: String!) { createTodo(input: {todo: {title: $t}}) { todo { id title completed } } }",
}


def sql_inserts(conn: psycopg.AsyncConnection) -> Callable[[int], Awaitable[Change]]:
    """One autocommit INSERT per change, timed from just before it is sent."""

    async def insert(i: int) -> Change:
        sent = time.time()
        cursor = await conn.execute("INSERT INTO todos (title) VALUES (%s) RETURNING id", (f"fanout {i}",))
        row = await cursor.fetchone()
        assert row is not None
        return Change(str(row[0]), sent)

    return insert


def http_mutations(client: httpx.AsyncClient, url: str, server: str) -> Callable[[int], Awaitable[Change]]:
    """One createTodo per change, timed from just before the request to its response."""

    async def mutate(i: int) -> Change:
        body = orjson.dumps({"query": CREATE[server], "variables": {"t": f"mutation {i}"}})
        sent = time.time()
        response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
        answered = time.time()
        created = orjson.loads(response.content)["data"]["createTodo"]
        return Change(str(created.get("todo", created)["id"]), sent, answered)

    return mutate
