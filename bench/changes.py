"""How the bench changes todos: over psycopg (an INSERT, the title of one row
or of every row), or a createTodo mutation over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import orjson
import psycopg

from .documents import CREATE
from .fanout import Change


def sql_inserts(conn: psycopg.AsyncConnection) -> Callable[[int], Awaitable[Change]]:
    """One autocommit INSERT per change, timed from just before it is sent."""

    async def insert(i: int) -> Change:
        sent = time.time()
        cursor = await conn.execute("INSERT INTO todos (title) VALUES (%s) RETURNING id", (f"fanout {i}",))
        row = await cursor.fetchone()
        assert row is not None
        return Change(str(row[0]), sent)

    return insert


def sql_retitle_one(conn: psycopg.AsyncConnection, todo_id: str) -> Callable[[int], Awaitable[Change]]:
    """One row's title set to a fresh uuid per change, the change's token
    (what a list that selects titles carries, and nothing else like it)."""

    async def retitle(i: int) -> Change:
        token = str(uuid.uuid4())
        sent = time.time()
        await conn.execute("UPDATE todos SET title = %s WHERE id = %s", (token, todo_id))
        return Change(token, sent)

    return retitle


def sql_retitle_all(conn: psycopg.AsyncConnection) -> Callable[[int], Awaitable[Change]]:
    """One UPDATE of every row per change (its token is the round's: each
    subscriber watches a row of its own), timed from just before it is sent
    to its return: committed, its NOTIFYs on their way."""

    async def retitle(i: int) -> Change:
        sent = time.time()
        await conn.execute("UPDATE todos SET title = %s", (f"round {i}",))
        return Change("", sent, time.time())

    return retitle


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
