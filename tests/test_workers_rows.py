"""Per-row streams on `serve --workers 2`, through real UPDATEs: each
worker's hub, while it holds row watchers alone, reads only the rows its
own watchers watch and moves its position past the rest
(notifications.notified_for's UNREAD). Every `todo(id)` subscription, over
both GraphQL WebSocket protocols on both workers, and every RESTSocket on
one row, gets exactly its row's changes, once each, in order, and nothing
else; a row deleted ends its stream, a row moved to another list is an
update, a row that is not there yet is `null` and the end; and a change
feed or live list joining a worker of row watchers alone (its hub then
reads every row) misses nothing and gets nothing from before it.

`todo(id)` takes no cursor, and the per-row streams resume as they start,
from the row as it is (README, Transports): a reconnect is checked as that."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.decoded import Journaled, journaled
from tests.helpers import Serve, listening_workers, serve_env, wait_until

PROTOCOLS = ("graphql-transport-ws", "graphql-ws")
# Two documents: a row's watchers of one document share its render, of two do not.
ROW = "subscription($id: ID!) { todo(id: $id) { id title completed listId } }"
TITLE = "subscription($id: ID!) { todo(id: $id) { title } }"
CHANGES = "subscription { todoChanges { op cursor todo { id title } } }"
LIVE = "subscription { todos { id title } }"
AFTER = "subscription($after: String) { todoChanges(after: $after) { op cursor todo { id title } } }"
DEFAULT_LIST = "00000000-0000-4000-8000-000000000002"
OWNER = "00000000-0000-4000-8000-000000000001"


class _Reading:
    """A WebSocket whose messages a task of its own takes, until it closes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.port: int = ws.local_address[1]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                await self.take(json.loads(raw))
        except ConnectionClosed:
            pass

    async def take(self, message: Any) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


class Socket(_Reading):
    """One GraphQL WebSocket (either protocol) and what each of its
    operations sent: its data in order, and whether it completed."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.protocol = protocol
        self.data: dict[str, list[Any]] = {}
        self.completed: set[str] = set()
        self.other: list[Any] = []
        self._ids = itertools.count(1)
        super().__init__(ws)

    @classmethod
    async def open(cls, ws_url: str, protocol: str) -> Socket:
        ws = await connect(ws_url + "/graphql", subprotocols=[Subprotocol(protocol)], open_timeout=10, compression=None)
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        return cls(ws, protocol)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        op = str(next(self._ids))
        self.data[op] = []
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.ws.send(json.dumps({"id": op, "type": kind, "payload": {"query": query, "variables": variables or {}}}))
        return op

    async def started(self) -> None:
        """Once every subscription sent before is started: a query after
        them on the socket runs only then (README: one socket's order)."""
        op = await self.subscribe("query { __typename }")
        await until(lambda: op in self.completed)
        del self.data[op]

    async def take(self, message: Any) -> None:
        kind = message["type"]
        if kind == "ping":
            await self.ws.send(json.dumps({"type": "pong"}))
        elif kind in ("next", "data") and "errors" not in message["payload"]:
            self.data[message["id"]].append(message["payload"]["data"])
        elif kind == "complete":
            self.completed.add(message["id"])
        elif kind not in ("pong", "ka"):
            self.other.append(message)


class RestRow(_Reading):
    """A RESTSocket on one row (`/api/todos/<id>/`): its messages (op, todo, cursor)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.messages: list[dict[str, Any]] = []
        super().__init__(ws)

    async def take(self, message: Any) -> None:
        if message["op"] != "keepalive":
            self.messages.append(message)


class RestRowEvents:
    """`GET /api/todos/<id>/` as an event stream: its messages, as the RESTSocket's."""

    def __init__(self, url: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read(url))

    async def _read(self, url: str) -> None:
        async with httpx.AsyncClient(timeout=30) as client, client.stream(
            "GET", url, headers={"accept": "text/event-stream"}
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    self.messages.append(json.loads(line.removeprefix("data:")))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def until(predicate: Callable[[], object], why: Callable[[], object] = lambda: "", timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within the time allowed {why()}"
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def serve(module_journaled_db: Journaled) -> Iterator[Serve]:
    """`serve --workers 2` in the journal mode's database, once both workers
    listen; each test's rows are its own, and it closes what it opened."""
    dsn = module_journaled_db.dsn
    serve = Serve(serve_env(dsn, JOURNAL=module_journaled_db.journal), args=["--workers", "2"])
    try:
        wait_until(lambda: listening_workers(dsn) == 2, timeout=30)
        yield serve
    finally:
        serve.stop(signal.SIGTERM)


@pytest.fixture
def sql(module_journaled_db: Journaled) -> Iterator[Sql]:
    writes = Sql(module_journaled_db.dsn)
    with writes.conn:
        yield writes


def _rows(dsn: str, count: int) -> list[str]:
    """`count` new rows, titled "<n>:0", their ids in that order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [str(id_) for (id_,) in conn.execute(
            "WITH made AS (INSERT INTO todos (title) SELECT n || ':0' FROM generate_series(0, %s - 1) n"
            " RETURNING id, title) SELECT id FROM made ORDER BY split_part(title, ':', 1)::int",
            (count,),
        )]


async def _spread(serve: Serve, least: int, at_most: int = 160) -> list[Socket]:
    """Sockets of both protocols, opened until each worker holds `least` of
    each (the kernel hands a connection to whichever worker accepts first)."""
    sockets: list[Socket] = []
    while True:
        held = serve.workers_of(s.port for s in sockets)
        by_port = {s.port: s.protocol for s in sockets}
        counts = [sum(by_port[p] == protocol for p in ports) for ports in held.values() for protocol in PROTOCOLS]
        if len(held) == 2 and min(counts) >= least:
            return sockets
        assert len(sockets) < at_most, f"sockets all went to one worker: {held}"
        sockets += await asyncio.gather(*(Socket.open(serve.ws_url, p) for p in PROTOCOLS * 4))


def _histories(dsn: str) -> dict[str, list[tuple[int, str, dict[str, Any] | None]]]:
    """Each row's journal entries: position, op and the row after it (None
    once deleted); read once the watchers got the last, so journaled already."""
    histories: dict[str, list[tuple[int, str, dict[str, Any] | None]]] = {}
    with psycopg.connect(dsn) as conn:
        for row, position, op, todo in conn.execute(
            "SELECT todo_id, position, op, todo FROM todo_changes"
            " WHERE op IN ('created', 'updated', 'deleted') ORDER BY position"
        ):
            histories.setdefault(str(row), []).append((position, op, None if op == "deleted" else todo))
    return histories


def _positions(dsn: str, after: int) -> list[int]:
    """Every row change's journal position after `after`."""
    with psycopg.connect(dsn) as conn:
        journaled(conn)
        return [p for (p,) in conn.execute(
            "SELECT position FROM todo_changes WHERE position > %s AND op IN ('created', 'updated', 'deleted')"
            " ORDER BY position", (after,),
        )]


def _position(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        journaled(conn)
        (position,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
        return int(position)


def _shown(state: dict[str, Any] | None, query: str) -> dict[str, Any] | None:
    """What `query` shows of a row as the journal holds it."""
    if state is None:
        return None
    if query == TITLE:
        return {"title": state["title"]}
    return {"id": state["id"], "title": state["title"], "completed": state["completed"], "listId": state["list_id"]}


def _expected(
    history: list[tuple[int, str, dict[str, Any] | None]], query: str, first: dict[str, Any]
) -> list[dict[str, Any]]:
    """What a `todo(id)` watcher of a row with this history whose first
    state was `first` gets: that state (the row's newest entry showing it),
    then each later change, null once deleted."""
    states = [{"todo": _shown(todo, query)} for _, _, todo in history]
    start = max(i for i, shown in enumerate(states) if shown == first)
    return states[start:]


class Sql:
    """Writes straight to the database, as psql's would be, on a connection of their own."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = psycopg.connect(dsn)

    def run(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """The statements in one transaction."""
        with self.conn.transaction():
            for statement, params in statements:
                self.conn.execute(statement, params)  # type: ignore[arg-type]

    async def __call__(self, statement: str, *params: Any) -> None:
        await asyncio.to_thread(self.run, (statement, params))


# Every row's title "<n>:<k>" becomes "<n>:<k+1>".
NEXT_TITLE = "split_part(title, ':', 1) || ':' || (split_part(title, ':', 2)::int + 1)"
END = "UPDATE todos SET title = split_part(title, ':', 1) || ':end' WHERE id = ANY(%s::uuid[])"


def test_every_row_watcher_on_either_worker_gets_exactly_its_row_s_changes(serve: Serve, sql: Sql) -> None:
    asyncio.run(_every_watcher_exactly(serve, sql, _rows(sql.dsn, 150)))


async def _every_watcher_exactly(serve: Serve, sql: Sql, rows: list[str]) -> None:
    dsn = sql.dsn
    sockets = await _spread(serve, 3)
    # Rows 0-99 watched, each on one socket; rows 0-29 on a second socket
    # too, with the other document; rows 100-149 by no one.
    watches: list[tuple[Socket, str, str, str]] = []
    for n, row in enumerate(rows[:100]):
        for socket, query in [(sockets[n % len(sockets)], ROW), *([(sockets[(n + 3) % len(sockets)], TITLE)] if n < 30 else [])]:
            watches.append((socket, await socket.subscribe(query, {"id": row}), row, query))
    # Per-row REST streams of rows watched on GraphQL too, and of rows no GraphQL client watches.
    rest: list[RestRow | RestRowEvents] = [
        *[RestRow(await connect(f"{serve.ws_url}/api/todos/{row}/", open_timeout=10)) for row in rows[:8]],
        *[RestRowEvents(f"{serve.url}/api/todos/{row}/") for row in rows[8:12]],
        *[RestRow(await connect(f"{serve.ws_url}/api/todos/{row}/", open_timeout=10)) for row in rows[140:144]],
        *[RestRowEvents(f"{serve.url}/api/todos/{row}/") for row in rows[144:148]],
    ]
    await until(lambda: all(s.data[op] for s, op, _, _ in watches) and all(r.messages for r in rest))
    held = serve.workers_of(s.port for s, _, _, _ in watches)
    assert len(held) == 2 and all(len(set(ports)) >= 6 for ports in held.values()), held
    snapshot = {(id(s), op): s.data[op][0] for s, op, _, _ in watches}
    assert all(d["todo"]["title"].endswith(":0") for d in snapshot.values())

    # One statement of every row, a few times; single rows between, watched
    # and not; one transaction changing one row three times and many others.
    for _ in range(3):
        await sql(f"UPDATE todos SET title = {NEXT_TITLE}, completed = NOT completed WHERE id = ANY(%s::uuid[])", rows)
        for n in (0, 1, 40, 99, 100, 120, 149):
            await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = %s", rows[n])
    await asyncio.to_thread(
        sql.run,
        *[(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = %s", (rows[n],)) for n in (5, 5, 130, 5, *range(50, 60))],
    )
    await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = ANY(%s::uuid[])", rows[::2])
    await sql(END, rows)

    await until(lambda: all(s.data[op][-1]["todo"]["title"].endswith(":end") for s, op, _, _ in watches)
                and all(r.messages[-1]["todo"]["title"].endswith(":end") for r in rest))
    await asyncio.sleep(0.3)  # anything more would be a change twice, or another row's
    journal = await asyncio.to_thread(_histories, dsn)
    for socket, op, row, query in watches:
        assert socket.data[op] == _expected(journal[row], query, snapshot[id(socket), op]), (socket.protocol, row)
    for stream, row in zip(rest, [*rows[:12], *rows[140:148]], strict=True):
        history = journal[row]
        snapshot_at = int(stream.messages[0]["cursor"])
        assert [(m["op"], int(m["cursor"]), m["todo"]["title"]) for m in stream.messages[1:]] == [
            (op, position, (todo or {}).get("title")) for position, op, todo in history if position > snapshot_at
        ]
    assert not any(s.other or s.completed for s in sockets)
    await asyncio.gather(*(s.close() for s in sockets), *(r.close() for r in rest))


def test_rows_deleted_moved_created_and_watched_again_on_either_worker(serve: Serve, sql: Sql) -> None:
    asyncio.run(_endings(serve, sql, _rows(sql.dsn, 8)))


async def _endings(serve: Serve, sql: Sql, rows: list[str]) -> None:
    dsn = sql.dsn
    other_list = str(uuid.uuid4())
    await sql("INSERT INTO lists (id, owner_id, name) VALUES (%s, %s, 'other')", other_list, OWNER)
    sockets = await _spread(serve, 1)
    held = serve.workers_of(s.port for s in sockets)
    # One socket per worker and protocol: each change below is watched on each.
    ports = {port: s for s in sockets for port in [s.port]}
    chosen = [next(ports[p] for p in held_ports if ports[p].protocol == protocol)
              for held_ports in held.values() for protocol in PROTOCOLS]
    unborn = str(uuid.uuid4())
    ops = {(id(s), row): await s.subscribe(ROW, {"id": row}) for s in chosen for row in [*rows[:3], unborn]}
    await until(lambda: all(s.data[op] for s in chosen for op in s.data))

    await sql("DELETE FROM todos WHERE id = %s", rows[0])
    await sql("UPDATE todos SET list_id = %s WHERE id = %s", other_list, rows[1])
    await sql("INSERT INTO todos (id, title) VALUES (%s, 'born')", unborn)
    await sql("UPDATE todos SET title = 'moved on' WHERE id = ANY(%s::uuid[])", [rows[1], unborn])
    await sql("UPDATE todos SET title = 'last' WHERE id = %s", rows[2])
    await until(lambda: all(s.data[ops[id(s), rows[2]]][-1]["todo"]["title"] == "last" for s in chosen))
    journal = await asyncio.to_thread(_histories, dsn)
    for socket in chosen:
        got = {row: socket.data[ops[id(socket), row]] for row in [*rows[:3], unborn]}
        assert got[rows[0]] == _expected(journal[rows[0]], ROW, got[rows[0]][0]) and got[rows[0]][-1] == {"todo": None}
        assert got[rows[1]] == _expected(journal[rows[1]], ROW, got[rows[1]][0])
        assert [d["todo"]["listId"] for d in got[rows[1]]] == [DEFAULT_LIST, other_list, other_list]
        assert got[rows[2]] == _expected(journal[rows[2]], ROW, got[rows[2]][0])
        # Not there when subscribed: null and the end, and nothing of its birth.
        assert got[unborn] == [{"todo": None}]
        assert socket.completed == {ops[id(socket), rows[0]], ops[id(socket), unborn]}, socket.protocol

    # Watched again, as a reconnecting client does: from the row as it is now, on a new socket.
    again = await _spread(serve, 1)
    renewed = {(id(s), row): await s.subscribe(ROW, {"id": row}) for s in again for row in (rows[1], unborn)}
    await until(lambda: all(s.data[op] for s in again for op in s.data))
    await sql("UPDATE todos SET title = 'again' WHERE id = ANY(%s::uuid[])", [rows[1], unborn])
    await until(lambda: all(len(s.data[op]) == 2 for s in again for op in s.data))
    journal = await asyncio.to_thread(_histories, dsn)
    for socket in again:
        for row in (rows[1], unborn):
            states = socket.data[renewed[id(socket), row]]
            assert states[0]["todo"]["title"] == "moved on" and states == _expected(journal[row], ROW, states[0])
    assert not any(s.other for s in [*sockets, *again])
    await asyncio.gather(*(s.close() for s in [*sockets, *again]))


def test_a_change_feed_or_live_list_joining_a_worker_of_row_watchers(serve: Serve, sql: Sql) -> None:
    asyncio.run(_joining(serve, sql, _rows(sql.dsn, 60)))


async def _joining(serve: Serve, sql: Sql, rows: list[str]) -> None:
    dsn = sql.dsn
    watchers = await _spread(serve, 1)
    watches = [(s, await s.subscribe(TITLE, {"id": row}), row) for s, row in zip(itertools.cycle(watchers), rows[:30], strict=False)]
    await until(lambda: all(s.data[op] for s, op, _ in watches))

    # Joining right after a change of a row no one watches (its position
    # alone on either worker): from now means after it.
    joins: dict[int, int] = {}  # worker pid -> feeds it took
    for n in itertools.count():
        if len(joins) == 2 and min(joins.values()) >= 2:
            break
        assert n < 40, f"feeds all went to one worker: {joins}"
        feed = await Socket.open(serve.ws_url, PROTOCOLS[n % 2])
        [pid] = serve.workers_of([feed.port])
        joins[pid] = joins.get(pid, 0) + 1
        await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = %s", rows[30 + n % 30])
        await asyncio.to_thread(_position, dsn)  # decoded: once the sequencer journaled it
        op = await feed.subscribe(CHANGES)
        await feed.started()
        await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = %s", rows[n % 30])
        await until(feed.data[op].__len__)  # its first change
        await asyncio.sleep(0.1)
        assert [d["todoChanges"]["todo"]["id"] for d in feed.data[op]] == [rows[n % 30]], feed.protocol
        await feed.close()

    # Joining and leaving while rows change, one at a time and many at
    # once: a feed kept open gets every change from its first to the end, a
    # feed from a cursor behind every hub's (read from the journal) every
    # change after it, a live list ends as the table does, and no row
    # watcher misses a thing.
    start = await asyncio.to_thread(_position, dsn)
    writing = asyncio.create_task(_write_meanwhile(sql, rows))
    behind = await Socket.open(serve.ws_url, "graphql-transport-ws")
    await behind.subscribe(AFTER, {"after": str(start)})
    feeds: list[Socket] = [behind]
    lists: list[Socket] = []
    for n in itertools.count():
        if writing.done():
            break
        joined = await Socket.open(serve.ws_url, PROTOCOLS[n % 2])
        await joined.subscribe(LIVE if n % 3 == 0 else CHANGES)
        await joined.started()
        await asyncio.sleep(0.02)
        if n % 4 == 3:
            await joined.close()  # gone again: its worker may read only its watchers' rows once more
        else:
            (lists if n % 3 == 0 else feeds).append(joined)
    await writing
    # Once more, for every feed: each is started by now.
    await sql("UPDATE todos SET title = 'once more' WHERE id = %s", rows[-1])
    final = await asyncio.to_thread(_positions, dsn, start)
    table = await asyncio.to_thread(_table, dsn)
    assert len(feeds) > 3 and lists
    await until(lambda: all(f.data["1"] and int(f.data["1"][-1]["todoChanges"]["cursor"]) == final[-1] for f in feeds),
                lambda: [(f.protocol, serve.workers_of([f.port]), [d["todoChanges"]["cursor"] for d in f.data["1"]][-3:])
                         for f in feeds] + [final[-3:]])
    await until(lambda: all(s.data["1"] and s.data["1"][-1]["todos"] == table for s in lists))
    assert [int(d["todoChanges"]["cursor"]) for d in behind.data["1"]] == final
    for feed in feeds:
        got = [int(d["todoChanges"]["cursor"]) for d in feed.data["1"]]
        assert got == final[final.index(got[0]):], feed.protocol
    await until(lambda: all(s.data[op][-1]["todo"]["title"].endswith(":end") for s, op, _ in watches))
    journal = await asyncio.to_thread(_histories, dsn)
    for socket, op, row in watches:
        assert socket.data[op] == _expected(journal[row], TITLE, socket.data[op][0])
    assert not any(s.other for s in [*watchers, *feeds, *lists])
    await asyncio.gather(*(s.close() for s in [*watchers, *feeds, *lists]))


def _table(dsn: str) -> list[dict[str, str]]:
    """The list as `todos { id title }` shows it."""
    with psycopg.connect(dsn) as conn:
        return [{"id": str(i), "title": t} for i, t in conn.execute("SELECT id, title FROM todos ORDER BY created_time, id")]


async def _write_meanwhile(sql: Sql, rows: list[str]) -> None:
    for n in range(80):
        if n % 16 == 0:
            await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = ANY(%s::uuid[])", rows)
        await sql(f"UPDATE todos SET title = {NEXT_TITLE} WHERE id = %s", rows[(n * 7) % len(rows)])
        await asyncio.sleep(0.01)  # joins and leaves between
    await sql(END, rows)
