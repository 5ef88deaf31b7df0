"""What the app answers without its web client, and how it runs."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.types import Message

from graphql_todos.app import GC_THRESHOLDS, create_app
from graphql_todos.core import paths
from graphql_todos.core.settings import Settings
from graphql_todos.graphql.socket import GraphQLSockets
from tests.helpers import Server, make_server, serving


def test_without_the_web_client_the_pages_say_how_to_get_it(db_dsn: str) -> None:
    server = make_server(db_dsn, web_dist=None)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for page in (client.get("/"), client.get("/graphql", headers={"accept": "text/html"})):
                assert (page.status_code, page.headers["content-type"]) == (
                    503, "text/html; charset=utf-8"
                )
                assert "<code>make web</code>" in page.text
                assert "<code>make wheel</code>" in page.text
    finally:
        server.stop()


def test_the_server_collects_garbage_with_its_own_thresholds(server: Server) -> None:
    # Set once the lifespan has started (the test server runs in this process).
    assert gc.get_threshold() == GC_THRESHOLDS


def _add_rows(db: psycopg.Connection[Any], count: int) -> None:
    """`count` rows in one statement, each created a millisecond after the last."""
    db.execute(
        "INSERT INTO todos (title, created_time) SELECT 'todo ' || i, now() + i * interval '1 ms' "
        "FROM generate_series(1, %s) i",
        (count,),
    )


async def _prepared_list_plans(pool: AsyncConnectionPool) -> list[str]:
    """The plans PostgreSQL takes now for the list statements the app's connection prepared."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements WHERE statement LIKE '%string_agg%'"
        )
        plans = []
        for name, types in await cursor.fetchall():
            # A filtered list's ($1 completed), then the limit and the offset.
            args = ["false"] * (len(types) - 2) + ["50", "0"]
            explained = await conn.execute(f"EXPLAIN (COSTS OFF) EXECUTE {name}({', '.join(args)})")  # type: ignore[arg-type]
            plans.append("\n".join(line for (line,) in await explained.fetchall()))
        return plans


def test_a_list_read_is_planned_for_the_table_as_it_is_now(db_dsn: str) -> None:
    # Issue 16, item 9: a list statement prepared while the table was small,
    # and never analyzed, kept PostgreSQL's generic plan (a sequential scan
    # and a sort) as writers grew the table: each read then cost a scan of
    # every row. Autovacuum is off so no ANALYZE refreshes the plans meanwhile.
    with psycopg.connect(db_dsn, autocommit=True) as db:
        db.execute("ALTER TABLE todos SET (autovacuum_enabled = false)")
        _add_rows(db, 1_000)
        with (
            serving(db_dsn, pool_size=1, response_cache_size=0) as server,
            httpx.Client(base_url=server.url, timeout=10) as client,
        ):
            # Past psycopg's preparing and PostgreSQL's first five custom plans.
            for where in ("", ", completed: false"):
                query = f"{{ todos(first: 50{where}) {{ id title completed }} }}"
                for _ in range(20):
                    response = client.post("/graphql", json={"query": query})
                    assert len(response.json()["data"]["todos"]) == 50
            _add_rows(db, 49_000)
            plans = server.run(_prepared_list_plans(server.state("pool")))
    assert plans, "the whole list's statement is prepared"
    for plan in plans:
        assert "Scan using todos_order on todos" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_a_graphql_socket_goes_to_its_front_door_ahead_of_starlette() -> None:
    # Nothing of Starlette's (its coroutine, its middleware's) stays on an
    # open socket's stack: the app's call is the front door's coroutine.
    app = create_app(Settings(database_url="postgresql://unused", web_dist=None))

    async def never() -> Message:
        raise AssertionError("nothing is read before the coroutine runs")

    async def refuse(message: Message) -> None:
        raise AssertionError("nothing is sent before the coroutine runs")

    for path, door in ((paths.GRAPHQL, GraphQLSockets._socket), ("/api/todos/", Starlette.__call__)):
        scope = {"type": "websocket", "path": path, "headers": [(b"host", b"127.0.0.1")]}
        called = app(scope, never, refuse)
        assert inspect.iscoroutine(called)
        assert called.cr_code is door.__code__, path
        called.close()
