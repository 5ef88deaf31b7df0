"""Hub.now: "now" for a subscribe as a round trip on the LISTEN connection
(every commit made before the ask is at or below it, nothing after it is
claimed), the journal's read in decoded mode and without a listener."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import psycopg
import pytest
from websockets.sync.client import connect

from graphql_todos.core.database import GatedPool
from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.journal import Journal, Mark
from graphql_todos.core.settings import Settings
from graphql_todos.live import hub as hub_module
from graphql_todos.live import now as now_module
from graphql_todos.live.hub import Hub
from graphql_todos.live.streams import start_after
from tests.helpers import Server, serving, wait_until

NEWEST = "SELECT coalesce(max(position), 0) FROM todo_changes"


class _Hub:
    """A started hub on its own pool, the journal's reads counted."""

    def __init__(self, db_dsn: str, decoded: bool = False) -> None:
        self.dsn, self.decoded = db_dsn, decoded

    async def __aenter__(self) -> tuple[Hub, Callable[[], int]]:  # the hub, the pool's requests so far
        self.pool = GatedPool(self.dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
        await self.pool.open()
        self.hub = Hub(self.dsn, Journal(self.pool, decoded=self.decoded), Settings())
        await self.hub.start()
        return self.hub, lambda: int(self.pool.get_stats()["requests_num"])

    async def __aexit__(self, *_: object) -> None:
        await self.hub.stop()
        await self.pool.close()


def _writing(dsn: str, stop: threading.Event) -> threading.Thread:
    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO todos (title) VALUES ('w')")

    thread = threading.Thread(target=write)
    thread.start()
    return thread


async def _newest(conn: psycopg.AsyncConnection) -> int:
    row = await (await conn.execute(NEWEST)).fetchone()
    assert row is not None
    return int(row[0])


async def _entries(hub: Hub, after: int, count: int) -> list[int]:
    async with hub.subscribe_entries(after) as sub:
        got: list[int] = []
        batches: AsyncIterator[list] = sub.batches()
        async with asyncio.timeout(10):
            while len(got) < count:
                got += [entry.position for entry in await anext(batches)]
        return got[:count]


def test_now_covers_every_commit_before_the_ask_and_none_after_under_concurrent_writers(db_dsn: str) -> None:
    async def run() -> list[tuple[int, int, int]]:
        stop = threading.Event()
        writers = [_writing(db_dsn, stop) for _ in range(2)]
        wrong = []
        try:
            async with _Hub(db_dsn) as (hub, reads), await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
                asked = reads()
                for i in range(600):
                    before = await _newest(conn)  # committed before the ask
                    now = await start_after(hub.journal, None, hub)
                    after = await _newest(conn)
                    if not before <= now <= after:
                        wrong.append((before, now, after))
                    if i % 60 == 0:
                        # Subscribed there: the next entries, every one, none before.
                        assert await _entries(hub, now, 3) == [now + 1, now + 2, now + 3]
                # The journal's reads are the hub's catch-ups at most, not one a subscribe.
                assert reads() - asked < 60
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        return wrong

    assert asyncio.run(run()) == []


def test_subscribes_asking_at_once_share_one_round_trip(db_dsn: str) -> None:
    async def run() -> tuple[set[int], int]:
        async with _Hub(db_dsn) as (hub, reads):
            sent = []
            ask = hub._asks._ask

            def counted(conn: psycopg.AsyncConnection) -> None:
                sent.append(conn)
                ask(conn)

            hub._asks._ask = counted  # type: ignore[method-assign]
            asked = reads()
            nows = await asyncio.gather(*(hub.now() for _ in range(50)))
            assert reads() == asked
            return set(nows), len(sent)

    nows, round_trips = asyncio.run(run())
    assert len(nows) == 1 and round_trips == 1


def test_decoded_mode_reads_the_journal(db_dsn: str) -> None:
    async def run() -> None:
        async with _Hub(db_dsn, decoded=True) as (hub, reads):
            asked = reads()
            async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
                assert await hub.now() == await _newest(conn)
            assert reads() - asked == 1

    asyncio.run(run())


def test_a_round_trip_cut_by_a_lost_listener_is_answered_by_the_journal(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        async with _Hub(db_dsn) as (hub, _), await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            await conn.execute("INSERT INTO todos (title) VALUES ('x')")
            # The round trip is not answered before the listener's backend
            # ends, and the listener cannot connect again for now.
            monkeypatch.setattr(now_module, "_ASK", b"SELECT pg_sleep(30)")
            waiter = hub.now()
            async with asyncio.timeout(10):  # sent once the hub's loop comes round to it (a pause may not last)
                while hub._asks.asked is None:
                    await asyncio.sleep(0.01)
            assert hub._asks.asked == [waiter]
            hub.dsn = "postgresql://127.0.0.1:1/nowhere"
            await conn.execute("SELECT pg_terminate_backend(%s)", (hub.backend_pid,))
            async with asyncio.timeout(10):
                assert await waiter == await _newest(conn)

    asyncio.run(run())


def test_without_a_listener_now_is_the_journals_read_and_its_failure() -> None:
    class Away(Journal):
        async def _read_mark(self) -> Mark:
            raise DatabaseUnavailable("OperationalError")

    async def run() -> None:
        hub = Hub("", Away(None), Settings())  # type: ignore[arg-type]
        with pytest.raises(DatabaseUnavailable):
            await hub.now()  # not connected
        # Subscribes waiting on a listener that is lost: the read's failure.
        hub.connected, hub._asks.on_listener = True, True
        waiter = hub.now()
        hub._asks.fall_back()
        with pytest.raises(DatabaseUnavailable):
            await waiter

    asyncio.run(run())


def test_a_round_trip_in_flight_as_a_quiet_spell_ends_keeps_the_listener(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spell's SELECT 1 may not go while the round trip's reply is
    awaited: the reply is the round trip's to take (after the notifications
    before it), and the spell's journal read is not needed (the old code
    sent it, and read the journal: 4 reads where 3 are)."""
    heartbeat = 2.0

    async def run() -> None:
        async with _Hub(db_dsn) as (hub, reads), await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as conn:
            hub.heartbeat_seconds = heartbeat  # the waits from the next on
            listener = hub.backend_pid
            # A notification not ours sends the hub to read the journal, and
            # its next wait (a quiet spell) starts now.
            await conn.execute(f"NOTIFY {hub_module.CHANNEL}, 'not ours'")
            # The ask goes 0.3 s before that wait ends; its reply 0.6 s after.
            await asyncio.sleep(heartbeat - 0.3)
            monkeypatch.setattr(
                now_module, "_ASK", b"DO $$ BEGIN PERFORM pg_sleep(0.6); END $$; NOTIFY graphql_todos_now"
            )
            asked = reads()
            async with asyncio.timeout(heartbeat):
                assert await hub.now() == await _newest(conn)
            assert (hub.backend_pid, reads()) == (listener, asked)  # the hub's answer, on its one connection

    asyncio.run(run())



def _sse_changes(url: str, newest: Callable[[], int], count: int) -> tuple[int, int, list[int]]:
    """A REST event stream's opening cursor (its `id:` with no data), the
    newest position as it came, and the cursors of its first `count` changes."""
    opening: tuple[int, int] | None = None
    cursors: list[int] = []
    with httpx.stream("GET", url, headers={"accept": "text/event-stream"}, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("id: "):
                continue
            if opening is None:
                opening = int(line.removeprefix("id: ")), newest()
            elif len(cursors) < count:
                cursors.append(int(line.removeprefix("id: ")))
            if len(cursors) == count:
                break
    assert opening is not None
    return *opening, cursors


def _socket_changes(server: Server, newest: Callable[[], int], count: int) -> tuple[int, list[int]]:
    """The newest position once a RESTSocket from now has joined the change
    feed (its start is at or below it), and the cursors of its first `count` changes."""
    wait_until(lambda: server.subscriber_count() == 0, timeout=10)  # the last stream has left
    with connect(server.ws_url + "/api/todos/", open_timeout=5) as ws:
        wait_until(lambda: server.subscriber_count() == 1, timeout=10)
        joined = newest()
        return joined, [int(orjson.loads(ws.recv(timeout=10))["cursor"]) for _ in range(count)]


def test_rest_streams_from_now_ask_the_hub_and_miss_nor_repeat_a_change_around_the_open(db_dsn: str) -> None:
    """The REST change stream from now, as SSE and as a RESTSocket: "now" is
    the hub's round trip, no pooled read of the journal; and under a writer
    each gets every change committed after its open and none before."""
    # No quiet spell's catch-up (a pooled read) while the pool's checkouts are counted.
    with serving(db_dsn, heartbeat_seconds=60.0) as server, psycopg.connect(db_dsn, autocommit=True) as conn:

        def newest() -> int:
            row = conn.execute(NEWEST).fetchone()
            assert row is not None
            return int(row[0])

        def checkouts() -> int:
            return int(server.pool_stats()["requests_num"])

        asked = checkouts()
        for _ in range(5):
            _sse_changes(server.url + "/api/todos/", newest, 0)
            _socket_changes(server, newest, 0)
        assert checkouts() - asked == 0
        stop = threading.Event()
        writer = _writing(db_dsn, stop)
        wrong: list[tuple[object, ...]] = []
        try:
            for _ in range(20):
                before = newest()  # committed before the open: not sent
                start, opened, cursors = _sse_changes(server.url + "/api/todos/", newest, 3)
                if not (before <= start <= opened and cursors == [start + 1, start + 2, start + 3]):
                    wrong.append(("sse", before, start, opened, cursors))
                before = newest()
                joined, cursors = _socket_changes(server, newest, 3)
                if not (before < cursors[0] <= joined + 1 and cursors == list(range(cursors[0], cursors[0] + 3))):
                    wrong.append(("socket", before, joined, cursors))
        finally:
            stop.set()
            writer.join()
        assert wrong == []
