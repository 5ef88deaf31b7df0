"""Cached query responses are exact: a hit reflects every change committed
before the request arrived, from any writer."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from graphql_todos.core import repository, writes
from graphql_todos.core.journal import Coalesced, Mark
from graphql_todos.edge.response_cache import ResponseCache
from tests.gql import create, data
from tests.helpers import Server, serving, wait_until
from tests.pgserver import database_backup
from tests.pgwire import recording

LIST = "{ todos { id title completed } }"


def _hits(server: Server) -> int:
    """Hits of the fast path's cache and of the front door's (graphql/fast/front.py)."""
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
    first = client.get("/api/todos/").json()
    hits = _hits(server)
    assert client.get("/api/todos/").json() == first
    assert _hits(server) == hits + 1
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
        first = asyncio.ensure_future(position())
        while not started:  # until the first read is under way
            await asyncio.sleep(0)
        # These arrive while it runs: they must share the next read, not it.
        later = [asyncio.ensure_future(position()) for _ in range(5)]
        results = [await first, *[await t for t in later]]
        return started, results

    started, results = asyncio.run(run())
    assert started == [1, 2]
    assert results == [1, 2, 2, 2, 2, 2]


def test_callers_of_the_turn_a_read_ends_in_share_the_next_read() -> None:
    # Subscribes read from many sockets in one turn of the loop: those that
    # ask in the turn the previous read ends in are not left a read apart.
    async def run() -> tuple[list[int], list[int]]:
        started: list[int] = []
        gate = asyncio.get_running_loop().create_future()

        async def read() -> int:
            started.append(len(started) + 1)
            await (gate if len(started) == 1 else asyncio.sleep(0.01))
            return started[-1]

        position = Coalesced(read)
        first = asyncio.ensure_future(position())
        while not started:
            await asyncio.sleep(0)
        second = asyncio.ensure_future(position())
        await asyncio.sleep(0)
        gate.set_result(None)  # the first read ends in the turn the third caller asks in
        third = asyncio.ensure_future(position())
        return started, [await first, await second, await third]

    started, results = asyncio.run(run())
    assert started == [1, 2]
    assert results == [1, 2, 2]


def test_an_entry_is_served_only_at_the_mark_it_was_read_at() -> None:
    # A database restored from a backup (or its sequence set back): the
    # journal goes back to 2, then as many writes bring it to 5 again, with
    # other rows; the newest entry's commit time tells the two apart.
    then, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    marks = [Mark(5, then), Mark(2, then), Mark(2, then), Mark(5, later), Mark(5, later)]

    async def run() -> list[bytes]:
        cache = ResponseCache[bytes](8)
        answers = iter([b"before", b"restored", b"rewritten"])

        async def read() -> tuple[bytes, bool]:
            return next(answers), True

        async def at(mark: Mark) -> Mark:
            return mark

        return [await cache.get_or_read("k", functools.partial(at, mark), read) for mark in marks]

    assert asyncio.run(run()) == [b"before", b"restored", b"restored", b"rewritten", b"rewritten"]


def _journal_position(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT max(position) FROM todo_changes").fetchone()
    assert row is not None
    return int(row[0])


def _titles(client: httpx.Client) -> tuple[list[str], list[str]] | None:
    """The list's titles over GraphQL and REST; None while the database is
    away (the app's connections cut by a restore)."""
    graphql, rest = client.post("/graphql", json={"query": LIST}), client.get("/api/todos/")
    if 503 in (graphql.status_code, rest.status_code):
        return None
    return [t["title"] for t in graphql.json()["data"]["todos"]], [t["title"] for t in rest.json()]


def _rewound(client: httpx.Client, server: Server, rewind: Callable[[], None]) -> tuple[list[str], list[str]]:
    """With "a" written before and "b" after the state rewind() goes back to:
    both read (and kept), the rewind, then "c" written from psql, as many
    writes as it undid; the titles as the app answers them then."""
    kept_at = _journal_position(server.dsn)
    hits = _hits(server)
    for _ in range(2):  # read, then served from the cache (GraphQL's by the front door)
        assert _titles(client) == (["a", "b"], ["a", "b"])
    assert _hits(server) == hits + 2
    rewind()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('c')")
    assert _journal_position(server.dsn) == kept_at  # where the answers were kept
    titles: tuple[list[str], list[str]] = wait_until(lambda: _titles(client), timeout=30)
    return titles


def test_a_restored_database_written_as_many_times_is_not_served_stale(admin_dsn: str, db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
    with (
        database_backup(admin_dsn, db_dsn) as restore,
        serving(db_dsn) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        create(client, "b")
        assert _rewound(client, server, restore) == (["a", "c"], ["a", "c"])


def test_a_sequence_set_back_and_written_as_many_times_is_not_served_stale(
    client: httpx.Client, server: Server
) -> None:
    create(client, "a")
    create(client, "b")

    def set_back() -> None:
        # By hand: the later row and its entry gone (no triggers), the
        # sequence set back to the entry before.
        with psycopg.connect(server.dsn) as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("DELETE FROM todos WHERE title = 'b'")
            conn.execute("DELETE FROM todo_changes WHERE position > 1")
            conn.execute("SELECT setval('todo_changes_position', 1)")

    assert _rewound(client, server, set_back) == (["a", "c"], ["a", "c"])


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
        # A lone write is a batch of one (core/write_batch.py): its statement in the batch's own.
        batch = lambda statement: ["BEGIN", "batch", "batch", "batch", statement, "entries", "COMMIT"]
        assert [_name(sql) for sql in run(lambda: data(client, mutation))] == batch("update")
        assert [_name(sql) for sql in run(lambda: create(client, "b"))] == batch("insert")
        rest_create = lambda: client.post("/api/todos/", json={"title": "c"}).raise_for_status()
        assert [_name(sql) for sql in run(rest_create)] == batch("insert")


def _name(sql: str) -> str:
    """Which of the app's statements this is (psycopg sends %(name)s as $n)."""
    if sql in (repository.SELECT_NEWEST, repository.SELECT_POSITION):
        return "position"
    # The batch's own statements (writes.write_together), by their private names.
    if sql in writes._TOGETHER or sql.replace("$1", "%(wait)s") == writes._TOGETHER_SET:
        return "batch"
    if sql == writes._ENTRIES:
        return "entries"
    for name, start in (("insert", "INSERT INTO todos"), ("update", "UPDATE todos SET title")):
        if sql.strip().startswith(start):
            return name
    return "list" if "FROM todos" in sql and "json" in sql else sql
