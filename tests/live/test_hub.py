"""The shared listener: ordering under concurrent writers, many subscribers on
few connections, slow subscribers, and a lost connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import websockets
from prometheus_client import REGISTRY
from psycopg_pool import AsyncConnectionPool
from websockets.typing import Subprotocol

from graphql_todos.core.cursors import Cursors
from graphql_todos.core.database import GatedPool
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import Change, Chunk, Entry, Op, Todo
from graphql_todos.core.service import TodoService
from graphql_todos.core.settings import Settings
from graphql_todos.core.visibility import View
from graphql_todos.live import hub as hub_module
from graphql_todos.live import notifications as notifications_module
from graphql_todos.live.hub import CLOSED, Hub, Subscriber
from graphql_todos.live.notifications import notified, notified_body
from tests.core.test_lists_journal import _person
from tests.gql import CHANGES, TransportWs, create, subscribed
from tests.helpers import Server, wait_until


def journal(dsn: str) -> list[tuple[int, str]]:
    with psycopg.connect(dsn) as conn:
        return [(p, t) for p, t in conn.execute("SELECT position, todo->>'title' FROM todo_changes ORDER BY position")]


def test_concurrent_writers_and_a_resuming_subscriber_see_each_change_once_in_commit_order(
    server: Server,
) -> None:
    writers, per_writer = 4, 60
    received: list[tuple[int, str]] = []
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES, {"after": "0"})

        def write(n: int) -> None:
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                for i in range(per_writer):
                    # Two rows per transaction: both or neither, adjacent.
                    with conn.transaction():
                        conn.execute("INSERT INTO todos (title) VALUES (%s), (%s)", (f"w{n}-{i}a", f"w{n}-{i}b"))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        # Leave mid-run...
        for _ in range(50):
            change = ws.next_data()["todoChanges"]
            received.append((int(change["cursor"]), change["todo"]["title"]))
    # ...and come back from the last cursor while the writers go on.
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES, {"after": str(received[-1][0])})
        total = writers * per_writer * 2
        while len(received) < total:
            change = ws.next_data()["todoChanges"]
            received.append((int(change["cursor"]), change["todo"]["title"]))
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.url) as client:
            create(client, "sentinel")
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "sentinel"
    assert received == journal(server.dsn)[:total]
    positions = [p for p, _ in received]
    assert positions == sorted(set(positions))
    # Commit order: each transaction's two rows are adjacent, and each
    # writer's transactions arrive in the order it committed them.
    for n in range(writers):
        mine = [title for _, title in received if title.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}{s}" for i in range(per_writer) for s in "ab"]
    for (_, first), (_, second) in zip(received[::2], received[1::2]):
        assert first[:-1] == second[:-1] and (first[-1], second[-1]) == ("a", "b")


def test_two_hundred_subscribers_share_one_listener_connection(server: Server) -> None:
    count = 200

    async def run() -> list[str]:
        url = server.ws_url + "/graphql"
        sockets = [await websockets.connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) for _ in range(count)]
        try:
            for ws in sockets:
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHANGES}}))
            await asyncio.to_thread(wait_until, lambda: server.subscriber_count() == count, 20)
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO todos (title) VALUES ('to everyone')")
                held = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE 'graphql-todos%%'"
                ).fetchone()
            messages = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in sockets]
            assert held is not None and held[0] <= server.settings.pool_size + 1, held
            return [m["payload"]["data"]["todoChanges"]["todo"]["title"] for m in messages]
        finally:
            for ws in sockets:
                await ws.close()

    assert asyncio.run(run()) == ["to everyone"] * count
    wait_until(lambda: server.subscriber_count() == 0, 10)


def test_listener_reconnects_and_replays_what_it_missed(
    server: Server, client: httpx.Client, admin_dsn: str
) -> None:
    with subscribed(server) as ws:
        first_pid = server.hub.backend_pid
        with psycopg.connect(server.dsn, autocommit=True) as conn, psycopg.connect(
            admin_dsn, autocommit=True
        ) as admin:
            dbname = conn.info.dbname
            # Keep the listener out while we write, so the change can only
            # arrive through the replay after the reconnect.
            admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
            try:
                admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
                wait_until(lambda: client.get("/healthz").status_code == 503)
                assert client.get("/healthz").json()["status"] == "unavailable"
                conn.execute("INSERT INTO todos (title) VALUES ('while away')")
            finally:
                admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
        assert ws.next_data(timeout=10)["todoChanges"]["todo"]["title"] == "while away"
        wait_until(lambda: client.get("/healthz").status_code == 200)
        assert server.hub.backend_pid != first_pid
        assert server.hub.reconnects == 1
        # The same subscription goes on with live changes.
        create(client, "after")
        assert ws.next_data()["todoChanges"]["todo"]["title"] == "after"


class _SwallowingJournal(Journal):
    """A journal whose next read, once armed, takes the cancellation that
    comes while it waits and goes on, as Python 3.11's asyncio.wait_for
    inside psycopg_pool does when the cancellation comes with a connection
    (`ends`: "returns" as if nothing came; "fails" with the error a call
    interrupted this way may raise instead)."""

    def __init__(self, pool: AsyncConnectionPool, ends: str) -> None:
        super().__init__(pool)
        self.ends = ends
        self.armed = asyncio.Event()
        self.swallowed = asyncio.Event()

    async def changes_between(
        self, after: int, upto: int, limit: int, parse: Callable[[str], list[Entry]]
    ) -> Chunk:
        if self.armed.is_set():
            self.armed.clear()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed.set()
                if self.ends == "fails":
                    raise DatabaseUnavailable("OperationalError") from None
        return await super().changes_between(after, upto, limit, parse)


@pytest.mark.parametrize("ends", ["returns", "fails"])
def test_the_hub_stops_when_a_call_takes_its_cancellation(db_dsn: str, ends: str) -> None:
    async def run() -> None:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            journal = _SwallowingJournal(pool, ends)
            hub = Hub(db_dsn, journal, Settings())
            await hub.start()
            journal.armed.set()
            # A position past the hub's with no entry: the hub reads the journal.
            async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
                await conn.execute("""NOTIFY todo_changes, '{"position": 99, "op": "created"}'""")
            async with asyncio.timeout(10):
                while journal.armed.is_set():
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # in the read, waiting
            stopping = asyncio.create_task(hub.stop())
            done, _ = await asyncio.wait((stopping,), timeout=10)
            assert stopping in done, "the hub did not stop"
            assert journal.swallowed.is_set()
            assert not hub.connected

    asyncio.run(run())


def test_a_slow_subscriber_reads_the_journal_instead_of_losing_changes(db_dsn: str) -> None:
    def insert(first: int, count: int) -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            for i in range(first, first + count):
                conn.execute("INSERT INTO todos (title) VALUES (%s)", (f"t{i}",))

    async def published(hub: Hub, position: int) -> None:
        async with asyncio.timeout(10):
            while hub.position < position:
                await asyncio.sleep(0.01)

    async def run() -> tuple[list[int], list[int]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings(queue_size=5))
            await hub.start()
            try:
                async with hub.subscribe() as sub:
                    # 40 changes into a queue of 5, unread: it overflows, and
                    # the subscriber will read them from the journal.
                    await asyncio.to_thread(insert, 0, 40)
                    await published(hub, 40)
                    resyncs = [hub.resyncs]
                    seen: list[int] = []
                    changes = aiter(sub)
                    # Part way through that replay, 60 more are published
                    # while it reads none: the queue overflows again.
                    seen += [(await anext(changes)).position for _ in range(10)]
                    await asyncio.to_thread(insert, 40, 60)
                    await published(hub, 100)
                    resyncs.append(hub.resyncs)
                    seen += [(await anext(changes)).position for _ in range(90)]
                    return seen, resyncs
            finally:
                await hub.stop()

    fallbacks = REGISTRY.get_sample_value("graphql_todos_journal_fallbacks_total") or 0.0
    seen, resyncs = asyncio.run(run())
    assert seen == list(range(1, 101))
    # Each overflow empties the queue but for a RESYNC marker, which takes 1
    # of its 5 places: 40 changes overflow it at 6, 11, ... 36 (7 times); 60
    # more into the queue emptied by the reader, at 46, 51, ... 96 (11 more).
    assert resyncs == [7, 18]
    assert REGISTRY.get_sample_value("graphql_todos_journal_fallbacks_total") == fallbacks + 18


def test_the_listener_reads_its_payloads_in_utf8_whatever_the_client_encoding(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libpq takes PGCLIENTENCODING for every connection (the pool's read in
    # LATIN1, decoded by psycopg): the LISTEN connection is UTF-8 all the
    # same, so a title's é is read from its notification, as UTF-8 bytes,
    # with no journal read (in LATIN1 its bytes would not parse).
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")

    def insert() -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO todos (title) VALUES ('caf\u00e9')")

    async def run() -> tuple[int, int, int]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            try:
                async with hub.subscribe() as sub:
                    reads = 0
                    catch_up = hub._catch_up

                    async def counted() -> None:
                        nonlocal reads
                        reads += 1
                        await catch_up()

                    monkeypatch.setattr(hub, "_catch_up", counted)
                    before = hub.position
                    await asyncio.to_thread(insert)
                    async with asyncio.timeout(10):
                        change = await anext(aiter(sub))
                    return reads, change.position - before, hub.position - before
            finally:
                await hub.stop()

    assert asyncio.run(run()) == (0, 1, 1)


def test_a_slow_live_list_watcher_gets_only_the_newest_version(db_dsn: str) -> None:
    from graphql_todos.live import streams

    async def run() -> list[list[str]]:
        async with GatedPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            service = TodoService(pool)
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            try:
                live_lists = streams.LiveLists(service, hub)
                versions = live_lists.watch(None)
                seen = [[t.title for t in await anext(versions)]]
                # A second, eager watcher tells when the shared list has all ten.
                eager = live_lists.watch(None)
                for i in range(10):
                    await service.create_todo(f"t{i}")
                async with asyncio.timeout(10):
                    while len(await anext(eager)) < 10:
                        pass
                seen.append([t.title for t in await anext(versions)])
                await versions.aclose()
                await eager.aclose()
                return seen
            finally:
                await hub.stop()

    first, second = asyncio.run(run())
    assert first == []
    assert second == [f"t{i}" for i in range(10)]


def test_gaps_and_foreign_notifications_are_read_from_the_journal(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # A deferred check after the journal's: a transaction that fails it
        # has taken a position and then rolled back, leaving a gap.
        conn.execute(
            """CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.title = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
                RETURN NULL;
            END $$"""
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER zz_refuse_boom AFTER INSERT ON todos DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION refuse_boom()"
        )
        with subscribed(server) as ws:
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute("INSERT INTO todos (title) VALUES ('boom')")
            conn.execute("INSERT INTO todos (title) VALUES ('after the gap')")
            change = ws.next_data()["todoChanges"]
            assert (change["cursor"], change["todo"]["title"]) == ("2", "after the gap")
            conn.execute("NOTIFY todo_changes, 'not ours'")
            conn.execute("INSERT INTO todos (title) VALUES ('after a stranger')")
            change = ws.next_data()["todoChanges"]
            assert (change["cursor"], change["todo"]["title"]) == ("3", "after a stranger")


def test_entries_of_lists_and_members_are_read_past_not_delivered(server: Server) -> None:
    """Until the feed shows them (people.md section 9), todoChanges carries
    todo entries only; the others, live or read back from the journal, only
    move the position on."""
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with subscribed(server) as ws:
            conn.execute("INSERT INTO people (username) VALUES ('ann')")  # list_created, member_added
            conn.execute("INSERT INTO todos (title) VALUES ('first')")
            conn.execute("INSERT INTO people (username) VALUES ('bob')")
            conn.execute("INSERT INTO todos (title) VALUES ('second')")
            live = [ws.next_data()["todoChanges"] for _ in range(2)]
        with subscribed(server, variables={"after": "0"}) as ws:
            replayed = [ws.next_data()["todoChanges"] for _ in range(2)]
            conn.execute("INSERT INTO todos (title) VALUES ('third')")
            replayed.append(ws.next_data()["todoChanges"])
    assert [(c["cursor"], c["todo"]["title"]) for c in live] == [("3", "first"), ("6", "second")]
    assert [(c["cursor"], c["todo"]["title"]) for c in replayed] == [("3", "first"), ("6", "second"), ("7", "third")]


class _Sink:
    """A row sink that renders a row as its title, declines (a busy socket)
    titles divisible by 3 and fails to render those divisible by 5."""

    def __init__(self, shares: object, written: list[tuple[str, int]]) -> None:
        self.shares = shares
        self.written = written
        self.renders = 0

    def render(self, entry: Entry) -> bytes:
        self.renders += 1
        todo = entry.todo
        assert todo is not None
        if int(todo.title) % 5 == 0:
            raise RuntimeError("cannot render it")
        return todo.title.encode()

    def write(self, body: bytes) -> bool:
        if int(body) % 3 == 0:
            return False
        self.written.append(("sink", int(body)))
        return True


def test_a_row_sink_takes_what_the_task_would_deliver_next_and_the_task_the_rest(db_dsn: str) -> None:
    """A row watcher's sink (RowStream's write as the hub publishes) is
    offered a change only while its task waits with nothing in hand; what
    it declines (a busy socket) or fails on, and the deletion, the task
    delivers: each change once, in commit order, between the two."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        (row,) = conn.execute("INSERT INTO todos (title) VALUES ('0') RETURNING id").fetchone() or ()
    # One, two and three updates of the row to a transaction: a
    # transaction's changes are published one after another, with no turn
    # of the task between.
    sizes = [1 + i % 3 for i in range(20)]
    total = sum(sizes)

    def update() -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            title = 0
            for i, size in enumerate(sizes):
                with conn.transaction():
                    for _ in range(size):
                        title += 1
                        conn.execute("UPDATE todos SET title = %s WHERE id = %s", (str(title), row))
                # Now and then the task is parked when the next ones come.
                time.sleep(0.01 * (i % 2))
            conn.execute("DELETE FROM todos WHERE id = %s", (row,))

    async def run() -> list[tuple[str, int]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            delivered: list[tuple[str, int]] = []

            async def read(sub: Subscriber[Change]) -> None:
                async for change in sub:
                    delivered.append(("task", -1 if change.op is Op.DELETED else int(change.todo.title)))

            try:
                async with hub.subscribe(todo_id=row) as sub:
                    sub.sink = _Sink(object(), delivered)
                    reader = asyncio.create_task(read(sub))
                    await asyncio.to_thread(update)
                    async with asyncio.timeout(10):
                        while len(delivered) < total + 1:
                            await asyncio.sleep(0.01)
                    await asyncio.sleep(0.1)  # and nothing more comes
                    reader.cancel()
                    return delivered
            finally:
                await hub.stop()

    counted = REGISTRY.get_sample_value("graphql_todos_events_delivered_total") or 0.0
    lags = REGISTRY.get_sample_value("graphql_todos_commit_to_delivery_seconds_count") or 0.0
    delivered = asyncio.run(run())
    assert [title for _, title in delivered] == [*range(1, total + 1), -1]
    # Each change counted once, whichever delivered it; a lag sample per
    # batch or turn of the loop, not per change.
    assert REGISTRY.get_sample_value("graphql_todos_events_delivered_total") == counted + total + 1
    assert lags < (REGISTRY.get_sample_value("graphql_todos_commit_to_delivery_seconds_count") or 0.0) < lags + total
    assert all(by == "task" for by, title in delivered if title % 3 == 0 or title % 5 == 0 or title == -1)
    assert any(by == "sink" for by, _ in delivered)


def test_a_rows_change_is_rendered_once_per_plan_its_watchers_share_and_only_for_those_who_see_it() -> None:
    """The watchers of a row whose sinks share a plan get one rendering of
    each change; a watcher whose reader does not see the row's list gets
    nothing, and none is rendered for it; a deletion goes to the tasks."""
    ann, ann_list, other_list = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    row = uuid.uuid4()
    at = datetime.now(UTC)

    def entry(position: int, op: str, title: str) -> Entry:
        todo = Todo(row, title, False, at, at, ann_list)
        return Entry(position, op, row, todo, ann_list, ann_list, changed_at=at)

    async def run() -> tuple[list[tuple[str, int]], list[_Sink], list[int]]:
        hub = Hub("", None, Settings())  # type: ignore[arg-type]  # no listening: entries published by hand
        written: list[tuple[str, int]] = []
        shared, own = object(), object()
        sinks = [_Sink(shared, written), _Sink(shared, written), _Sink(own, written), _Sink(shared, written)]
        views = [View(None), View(ann, {ann_list}), View(None), View(ann, {other_list})]
        async with contextlib.AsyncExitStack() as stack:
            subs = [await stack.enter_async_context(hub.subscribe(todo_id=row, view=view)) for view in views]
            for sub, sink in zip(subs, sinks, strict=True):
                sub.sink = sink
                sub.waiting = True  # as its task waits with nothing in hand
            for position, title in enumerate(["1", "2", "4"], start=1):
                hub._publish(entry(position, "updated", title))
            hub._publish(entry(4, "deleted", "4"))
            return written, sinks, [sub.queue.qsize() for sub in subs]

    written, sinks, queued = asyncio.run(run())
    assert sorted(written) == sorted([("sink", title) for title in (1, 2, 4) for _ in range(3)])
    # Three changes rendered once for the two sharing a plan, once for its own plan.
    assert sinks[0].renders + sinks[1].renders == 3
    assert sinks[2].renders == 3
    assert sinks[3].renders == 0
    assert queued == [1, 1, 1, 0]


def test_a_readers_removal_of_rows_reaches_each_rows_watchers_alone(db_dsn: str) -> None:
    """A row's watcher is found by its person too (membership entries move
    its view); a reader's removal of a row names the person and the row,
    and reaches that row's watchers alone: a person's N row watchers take
    N removals and the member entry, each its own, not N x N entries."""
    rows = 20
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _, ann_list = _person(conn, "ann")
        bob, _ = _person(conn, "bob")
        conn.execute("INSERT INTO todos (title, list_id) SELECT 't', %s FROM generate_series(1, %s)", (ann_list, rows))
        conn.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (ann_list, bob))
        ids = [row[0] for row in conn.execute("SELECT id FROM todos WHERE list_id = %s", (ann_list,))]

    def unshare() -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM list_members WHERE person_id = %s AND list_id = %s", (bob, ann_list))

    async def run() -> tuple[list[int], list[Change]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    subs = [
                        await stack.enter_async_context(hub.subscribe(todo_id=id_, view=View(bob, {ann_list})))
                        for id_ in ids
                    ]
                    end = hub.position + rows + 1
                    await asyncio.to_thread(unshare)
                    async with asyncio.timeout(10):
                        while hub.position < end:
                            await asyncio.sleep(0.01)
                    queued = [sub.queue.qsize() for sub in subs]
                    return queued, [await anext(aiter(sub)) for sub in subs]
            finally:
                await hub.stop()

    queued, changes = asyncio.run(run())
    assert queued == [2] * rows
    assert [change.todo.id for change in changes] == ids


def test_a_row_sink_writes_nothing_past_an_entry_its_task_has_not_taken() -> None:
    """An entry queued for a row watcher's task (its reader's removal from
    the row's list, found by person) is taken before the row's next change:
    the sink, which would judge that change by the view as it was before
    the removal, writes nothing while anything waits in the queue."""
    ann, ann_list, row = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC)

    async def run() -> tuple[list[tuple[str, int]], list[Change]]:
        hub = Hub("", None, Settings())  # type: ignore[arg-type]  # no listening: entries published by hand
        written: list[tuple[str, int]] = []
        async with hub.subscribe(todo_id=row, view=View(ann, {ann_list})) as sub:
            sub.sink = _Sink(object(), written)
            sub.waiting = True  # as its task waits with nothing in hand
            hub._publish(Entry(1, "member_removed", None, None, ann_list, ann_list, ann, changed_at=at))
            todo = Todo(row, "1", False, at, at, ann_list)
            hub._publish(Entry(2, "updated", row, todo, ann_list, ann_list, changed_at=at))
            # What the task takes of it all, to the end.
            sub.enqueue(CLOSED)
            async with asyncio.timeout(1):
                return written, [change async for change in sub]

    written, delivered = asyncio.run(run())
    assert written == []
    assert delivered == []  # the removal ended its sight of the row's list: the update is not for it


def test_a_sequencer_batch_is_parsed_once_for_its_cursors_and_its_reading() -> None:
    """JOURNAL=decoded: the hub tells the cursors each batch of a read and
    keeps it parsed, by its payload, for its reading, which reads as the
    payload itself does; a row's payload is no batch."""
    cursors = Cursors(5.0)
    hub = Hub("", None, Settings.from_env({}), cursors)  # type: ignore[arg-type]
    # As the LISTEN read gives them: bytes (internals/psycopg.payloads).
    batch = b'{"xids" : [["17", 8], ["18", 9]], "position" : 9, "op" : "batch", "through" : 9}'
    row = b'{"position" : 10, "op" : "created", "id" : "00000000-0000-4000-8000-00000000000a", "todo" : null}'
    heard = hub._heard([batch, row])
    assert list(heard) == [batch] and cursors.through == 9 and dict(cursors._heard) == {"17": 8, "18": 9}
    assert notified_body(heard[batch]) == notified(batch) == (9, None)


@pytest.mark.parametrize(
    "odd",
    [
        b'{"xids" : 5, "through" : 9}', b'{"xids" : [["17"]], "through" : 9}', b'{"xids" : [], "through" : "soon"}',
        b'{"xids" : []}', b'["xids"]', b'"xids"', b'{"xids" : [], "through" : 9', b'{"xids" : [], "through" : 9, "t" : "caf\xe9"}',
    ],
)
def test_a_payload_naming_xids_that_is_no_batch_is_not_ours(odd: bytes) -> None:
    """Anyone may NOTIFY the channel: a payload that names "xids" but is no
    sequencer's batch (bad JSON, not UTF-8, another shape) is not heard as
    one, and reads as not ours (the hub reads the journal), not an error that
    drops the LISTEN connection; the batches beside it are heard."""
    cursors = Cursors(5.0)
    hub = Hub("", None, Settings.from_env({}), cursors)  # type: ignore[arg-type]
    batch = b'{"xids" : [["17", 8]], "position" : 8, "op" : "batch", "through" : 8}'
    heard = hub._heard([odd, batch])
    assert list(heard) == [batch] and cursors.through == 8
    assert notified(odd) == (2**63 - 1, None)


def _handed_in(monkeypatch: pytest.MonkeyPatch, reads: list[list[bytes]]) -> list[Any]:
    """The hub's LISTEN reads handed in (each as internals/psycopg.payloads
    gives it: bytes) from `reads`, and the bodies notifications._read reads
    whole, in order."""
    bodies: list[Any] = []

    async def delivered(conn: object, timeout: float) -> AsyncIterator[list[bytes]]:
        for each in reads:
            yield each

    whole = notifications_module._read

    def counted(body: Any) -> tuple[int, Entry | None]:
        bodies.append(body)
        return whole(body)

    monkeypatch.setattr(hub_module, "payloads", delivered)
    monkeypatch.setattr(notifications_module, "_read", counted)
    return bodies


def test_a_rows_notification_with_no_one_to_take_it_moves_the_position_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no subscriber the hub takes only a row's position (its row is
    not read: notifications._read is not called); a gap still sends it to
    the journal, revoked access still reaches on_revoked, and once someone
    subscribes the row is read and handed on."""
    at, row_id, list_id = "2026-12-06T03:01:00.5+00:00", "00000000-0000-4000-8000-00000000000a", str(uuid.uuid4())
    row = {"id": row_id, "title": "t", "completed": False, "list_id": list_id, "created_time": at, "updated_time": at}

    # As the LISTEN read gives them: bytes (internals/psycopg.payloads).
    def created(position: int) -> bytes:
        return json.dumps({"position": position, "op": "created", "id": row_id, "changed_at": at,
                           "list_before": None, "list_after": list_id, "person": None, "todo": row}).encode()

    revoked = json.dumps({"position": 7, "op": "access_revoked", "id": None, "changed_at": at, "list_before": None,
                          "list_after": None, "person": "00000000-0000-4000-8000-00000000000b", "detail": {"all": True}}).encode()
    reads: list[list[bytes]] = []
    read = _handed_in(monkeypatch, reads)
    told: list[Any] = []

    async def run() -> None:
        hub = Hub("", None, Settings())  # type: ignore[arg-type]  # no listening: payloads handed in
        hub.position = 4
        hub.on_revoked = told.append
        reads[:] = [[created(5), created(6)]]
        assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
        assert (hub.position, read) == (6, [])
        reads[:] = [[created(8)]]  # a gap: the journal is read
        assert await hub._wait_for_news(None)  # type: ignore[arg-type]
        assert hub.position == 6
        reads[:] = [[revoked]]
        assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
        assert (hub.position, read, told) == (7, [json.loads(revoked)], [{"all": True}])
        async with hub.subscribe() as sub:
            reads[:] = [[created(8)]]
            assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
            entry = sub.queue.get_nowait()
            assert isinstance(entry, Entry) and (entry.position, entry.todo_id) == (8, uuid.UUID(row_id))
        assert read == [json.loads(revoked), json.loads(created(8))]

    asyncio.run(run())


def test_with_row_watchers_alone_a_row_no_one_here_watches_moves_the_position_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker (of WORKERS=2) whose only subscribers watch rows (its share
    of the per-row subscriptions: every worker hears every row) reads a row no one
    in it watches to its position alone (notifications._read not called),
    and hands a watched row's entry to its watcher, in order; a gap still
    sends it to the journal. Once a list subscriber is in, every row is
    read; one process reads every row (its watchers most often take it)."""
    at, list_id = "2026-12-06T03:01:00.5+00:00", str(uuid.uuid4())
    watched_id, other_id = uuid.uuid4(), uuid.uuid4()

    def updated(position: int, row_id: uuid.UUID) -> bytes:
        row = {"id": str(row_id), "title": f"t{position}", "completed": False, "list_id": list_id,
               "created_time": at, "updated_time": at}
        return json.dumps({"position": position, "op": "updated", "id": str(row_id), "changed_at": at,
                           "list_before": list_id, "list_after": list_id, "person": None, "todo": row}).encode()

    reads: list[list[bytes]] = []
    bodies = _handed_in(monkeypatch, reads)

    def read() -> list[int]:
        return [body["position"] for body in bodies]

    async def run() -> None:
        hub = Hub("", None, Settings(workers=2))  # type: ignore[arg-type]  # no listening: payloads handed in
        hub.position = 4
        async with hub.subscribe(todo_id=watched_id) as watcher:
            reads[:] = [[updated(5, other_id), updated(6, watched_id), updated(7, other_id)]]
            assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
            assert (hub.position, read()) == (7, [6])
            entry = watcher.queue.get_nowait()
            assert isinstance(entry, Entry) and (entry.position, entry.todo_id) == (6, watched_id)
            assert watcher.queue.empty()
            reads[:] = [[updated(9, other_id)]]  # a gap: the journal is read
            assert await hub._wait_for_news(None)  # type: ignore[arg-type]
            assert hub.position == 7
            async with hub.subscribe() as everything:
                reads[:] = [[updated(8, other_id)]]
                assert not await hub._wait_for_news(None)  # type: ignore[arg-type]
                entry = everything.queue.get_nowait()
                assert isinstance(entry, Entry) and (entry.position, entry.todo_id) == (8, other_id)
            assert (hub.position, read()) == (8, [6, 8])
        alone = Hub("", None, Settings())  # type: ignore[arg-type]
        alone.position = 4
        async with alone.subscribe(todo_id=watched_id):
            reads[:] = [[updated(5, other_id), updated(6, watched_id)]]
            assert not await alone._wait_for_news(None)  # type: ignore[arg-type]
            assert (alone.position, read()) == (6, [6, 8, 5, 6])

    asyncio.run(run())
