"""Behaviour of the live fan-out (live/hub.py, broadcast.py, streams.py, ...)
no other test held: each case kills a hand-made mutant that the rest of
the suite let live (the mutation run's report names them). Where a real
server cannot reach the state on demand (a group's task a step behind the
hub, a queue full as the hub closes), the hub is driven by hand, as
tests/live/test_hub.py's unit cases do: entries published, no listening."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.journal import Journal
from graphql_todos.core.models import ALL, Change, Entry, Todo
from graphql_todos.core.service import TodoService
from graphql_todos.core.settings import Settings
from graphql_todos.core.visibility import View
from graphql_todos.live.broadcast import Groups, Member
from graphql_todos.live.hub import Hub
from graphql_todos.live.streams import LiveLists, _Watcher
from tests.gql import TransportWs, create
from tests.helpers import Server
from tests.sse_client import events

_AT = datetime.now(UTC)


def _created(position: int, title: str, row: uuid.UUID | None = None, op: str = "created") -> Entry:
    row = uuid.uuid4() if row is None else row
    list_id = uuid.uuid4()
    return Entry(position, op, row, Todo(row, title, False, _AT, _AT, list_id), list_id, list_id, changed_at=_AT)


def _hub(position: int = 0) -> Hub:
    hub = Hub("", None, Settings())  # type: ignore[arg-type]  # no listening: entries published by hand
    hub.position = position
    return hub


async def _render(change: Change) -> bytes:
    assert change.todo is not None
    return change.todo.title.encode()


def test_a_member_joined_at_the_hubs_position_is_not_sent_that_entry_again_by_a_group_behind() -> None:
    """A group's task may be a step behind the hub: the entry the hub has
    just published waits in its queue. A member that subscribes at that
    moment from the hub's position (a client resuming from the change it was
    last sent) joins the group at once, ahead of it: the group's fan-out of
    that entry skips it (sent it twice, with `<` for `<=` in Group._write)."""

    async def run() -> tuple[list[bytes], list[bytes]]:
        hub = _hub(5)
        groups = Groups(hub)
        behind: list[bytes] = []
        ahead: list[bytes] = []

        def member(after: int, frames: list[bytes]) -> Member:
            def write(frame: bytes) -> bool:
                frames.append(frame)
                return True

            return Member(after, b"", b"", write, _unused_send, View(None))

        first = member(5, behind)
        group = groups.attach("doc", lambda: _render, first)
        assert group is not None
        await asyncio.sleep(0)  # the group's task subscribes at 5
        hub._publish(_created(6, "six"))
        hub.position = 6
        # Before the group's task runs: it has not fanned out 6.
        second = member(6, ahead)
        assert groups.attach("doc", lambda: _render, second) is group
        hub._publish(_created(7, "seven"))
        hub.position = 7
        async with asyncio.timeout(5):
            while len(behind) < 2:
                await asyncio.sleep(0.01)
        group.leave(first)
        group.leave(second)
        return behind, ahead

    behind, ahead = asyncio.run(run())
    assert behind == [b"six", b"seven"]
    assert ahead == [b"seven"]


async def _unused_send(frame: bytes) -> None:
    raise AssertionError("a member with a direct write is never sent to")


class _Sink:
    """A row watcher's sink that writes every row's title."""

    def __init__(self) -> None:
        self.shares = object()
        self.written: list[bytes] = []

    def render(self, entry: Entry) -> bytes:
        assert entry.todo is not None
        return entry.todo.title.encode()

    def write(self, body: bytes) -> bool:
        self.written.append(body)
        return True


def test_a_row_sink_writes_nothing_its_watchers_snapshot_already_showed() -> None:
    """A row watcher's first state is read at the row's position (its
    snapshot, skip_through); the notification of that very entry may reach
    the hub after the read: its sink writes it no second time, only what
    comes after (`<` for `<=` in Subscriber.offer wrote it twice)."""
    row = uuid.uuid4()

    async def run() -> list[bytes]:
        hub = _hub(5)
        sink = _Sink()
        async with hub.subscribe(todo_id=row, view=View(None)) as sub:
            sub.sink = sink
            sub.waiting = True  # as its task waits with nothing in hand
            sub.skip_through(6)  # the snapshot read shows the row as entry 6 left it
            hub._publish(_created(6, "shown", row))
            hub._publish(_created(7, "next", row, op="updated"))
        return sink.written

    assert asyncio.run(run()) == [b"next"]


def test_a_row_watcher_that_fell_behind_reads_back_its_row_alone(db_dsn: str) -> None:
    """A row watcher whose queue overflowed reads what it missed from the
    journal, where every row's entries are: it is given its own row's
    changes alone, in order (Subscriber._accept without its todo_id filter
    gave it the other row's too, as if they were its row's)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        watched, other = (
            conn.execute("INSERT INTO todos (title) VALUES (%s) RETURNING id", (title,)).fetchone()[0]  # type: ignore[index]
            for title in ("w", "o")
        )

    def write() -> int:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            for i in range(8):
                for row in (watched, other):
                    conn.execute("UPDATE todos SET title = %s WHERE id = %s", (f"{i}", row))
            position: int = conn.execute("SELECT max(position) FROM todo_changes").fetchone()[0]  # type: ignore[index]
            return position

    async def run() -> list[tuple[uuid.UUID, str]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings(queue_size=3))
            await hub.start()
            try:
                async with hub.subscribe(todo_id=watched) as sub:
                    # 8 changes of its row into a queue of 3, unread: it overflows.
                    last = await asyncio.to_thread(write)
                    async with asyncio.timeout(10):
                        while hub.position < last:
                            await asyncio.sleep(0.01)
                        changes = aiter(sub)
                        taken = [await anext(changes) for _ in range(8)]
                    assert hub.resyncs > 0
                    return [(change.todo.id, change.todo.title) for change in taken if change.todo is not None]
            finally:
                await hub.stop()

    assert asyncio.run(run()) == [(watched, f"{i}") for i in range(8)]


def test_a_subscriber_delivers_what_it_holds_and_ends_as_the_hub_closes() -> None:
    """The hub closing (the server stopping): a subscriber with changes in
    hand delivers them, then its stream ends (_batches returning at CLOSED
    without its batch lost them); one whose queue is full as the hub closes
    ends too, its queued changes left for its client to resume by cursor
    (the overflow putting RESYNC for CLOSED left it waiting for good)."""

    async def run(queue_size: int, published: int) -> list[str]:
        hub = _hub()
        hub.queue_size = queue_size
        async with hub.subscribe() as sub:
            for position in range(1, published + 1):
                hub._publish(_created(position, str(position)))
            hub.close_subscriptions()
            if not published:
                hub._all.discard(sub)  # as if it subscribed after
                async with hub.subscribe() as late, asyncio.timeout(5):
                    return [change.todo.title async for change in late if change.todo is not None]
            async with asyncio.timeout(5):
                return [change.todo.title async for change in sub if change.todo is not None]

    assert asyncio.run(run(queue_size=5, published=2)) == ["1", "2"]
    assert asyncio.run(run(queue_size=2, published=2)) == []
    # Subscribed once it has closed: ended at once (without the CLOSED
    # _subscribed queues then, it waited for good).
    assert asyncio.run(run(queue_size=5, published=0)) == []


LIVE = "subscription($c: Boolean) { todos(completed: $c) { title } }"


def test_a_live_list_sends_no_version_equal_to_the_last(server: Server, client: httpx.Client) -> None:
    """A change that leaves a filtered live list as it was (a row created
    open, under completed: true) sends its watchers nothing: the next
    version they get is the next that differs (_follow showing every batch's
    rows sent the same list again)."""
    with TransportWs(server.ws_url) as done, TransportWs(server.ws_url) as every:
        done.subscribe(LIVE, {"c": True})
        every.subscribe(LIVE, {"c": None})
        assert done.next_data() == every.next_data() == {"todos": []}
        create(client, "open")
        # Seen by the unfiltered list: the filtered one has had it too.
        assert every.next_data() == {"todos": [{"title": "open"}]}
        create(client, "done", completed=True)
        assert done.next_data() == {"todos": [{"title": "done"}]}


def test_a_live_list_whose_task_ended_is_made_again_for_the_next_watcher(db_dsn: str) -> None:
    """A live list's task ends with its hub (or a failure) before its
    watchers have left: one joining then gets a list of its own, which ends
    as the hub has (the newest version it is shown, coalesced: the end, or
    the rows before it); joining the ended one, as LiveLists.join without
    its task.done() check did, left it waiting for good."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('one')")

    async def run() -> list[list[str]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            lists = LiveLists(TodoService(pool), hub)
            first = _Watcher()
            lists.join(None, ALL, first)  # never leaves
            async with asyncio.timeout(10):
                while not first.changed.is_set():
                    await first.changed.wait()
                await hub.stop()
                while first.latest is not None:
                    first.changed.clear()
                    await first.changed.wait()
                return [[todo.title for todo in rows] async for rows in lists.watch(None)]

    assert asyncio.run(run()) in ([], [["one"]])



def test_a_watched_row_ends_its_stream_when_deleted(server: Server, client: httpx.Client) -> None:
    """A row's event stream (streams.todo_states): the row, its deletion,
    then the end (todo_states without its return after a deletion kept it
    open; GraphQL's todo(id) over a WebSocket is fanout.py's RowStream)."""
    row = create(client, "doomed")["id"]
    with events(server.url + f"/api/todos/{row}/") as feed:
        first = feed.next()
        assert client.delete(f"/api/todos/{row}/").status_code == 204
        second = feed.next()
        rest = [event for event in feed if "comment" not in event]
    assert [json.loads(event["data"]).get("op") for event in (first, second)][1] == "deleted", (first, second)
    assert rest == []


def test_the_listeners_catch_up_reads_the_journal_batch_after_batch_to_its_end(db_dsn: str) -> None:
    """Back from an outage (or sent to the journal by a gap), the listener
    reads everything after its position, `journal_batch` entries a read,
    until a read comes back short: its subscribers get every entry at once
    (reading one batch alone left the rest for the next notification or
    heartbeat; a whole outage's tail could wait that long)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for i in range(12):
            conn.execute("INSERT INTO todos (title) VALUES (%s)", (str(i),))
        last: int = conn.execute("SELECT max(position) FROM todo_changes").fetchone()[0]  # type: ignore[index]

    async def run() -> tuple[int, list[str]]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings(journal_batch=5))  # not listening: caught up by hand
            async with hub.subscribe(after=0) as sub:
                await hub._catch_up()
                hub.close_subscriptions()
                async with asyncio.timeout(5):
                    return hub.position, [change.todo.title async for change in sub if change.todo is not None]

    assert asyncio.run(run()) == (last, [str(i) for i in range(12)])


def test_a_live_list_over_the_cap_is_read_again_after_each_change(db_dsn: str) -> None:
    """Over MAX_LIST_ROWS a live list holds its first MAX_LIST_ROWS + 1 rows
    alone: a change cannot be applied to them (a row past them would be
    missed), so the list is read again. Deleting the first two of four
    under a cap of 2 shows the last two (applying the deletions to the
    rows held showed one, the fourth missing)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for title in "abcd":
            conn.execute("INSERT INTO todos (title) VALUES (%s)", (title,))

    async def run() -> list[str]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            try:
                watcher = _Watcher()
                leave = LiveLists(TodoService(pool, max_list_rows=2), hub).join(None, ALL, watcher)
                async with asyncio.timeout(10):
                    while watcher.latest is None:
                        watcher.changed.clear()
                        await watcher.changed.wait()
                    assert [todo.title for todo in watcher.latest] == ["a", "b", "c"]
                    async with pool.connection() as conn:
                        await conn.execute("DELETE FROM todos WHERE title IN ('a', 'b')")
                    while watcher.latest is not None and len(watcher.latest) == 3:
                        watcher.changed.clear()
                        await watcher.changed.wait()
                    assert watcher.latest is not None
                    leave()
                    return [todo.title for todo in watcher.latest]
            finally:
                await hub.stop()

    assert asyncio.run(run()) == ["c", "d"]


def test_a_row_no_one_sees_is_null_then_the_end_over_an_event_stream(server: Server) -> None:
    """todo(id) of no row, over GraphQL's event stream (streams.todo_states):
    null, then complete (without its return for a row the viewer does not
    see, it stayed open for the row's changes)."""
    body = {"query": "subscription($id: ID!) { todo(id: $id) { title } }", "variables": {"id": str(uuid.uuid4())}}
    with events(server.url + "/graphql", json=body) as feed:
        assert json.loads(feed.next()["data"]) == {"data": {"todo": None}}
        assert feed.next()["event"] == "complete"


def test_a_member_that_leaves_while_a_change_renders_is_not_written_it() -> None:
    """A group renders a change (awaited), then writes it: a member that left
    meanwhile (its operation completed) is written nothing (Group._write
    without its 'member not in self.members' wrote a frame after the end)."""

    async def run() -> tuple[list[bytes], list[bytes]]:
        hub = _hub()
        groups = Groups(hub)
        rendering, rendered = asyncio.Event(), asyncio.Event()

        async def slow(change: Change) -> bytes:
            rendering.set()
            await rendered.wait()
            return await _render(change)

        frames: tuple[list[bytes], list[bytes]] = ([], [])
        members = []
        for taken in frames:
            def write(frame: bytes, taken: list[bytes] = taken) -> bool:
                taken.append(frame)
                return True

            members.append(Member(0, b"", b"", write, _unused_send, View(None)))
        group = groups.attach("doc", lambda: slow, members[0])
        assert group is not None and groups.attach("doc", lambda: slow, members[1]) is group
        await asyncio.sleep(0)  # the group's task subscribes
        hub._publish(_created(1, "one"))
        async with asyncio.timeout(5):
            await rendering.wait()
            group.leave(members[1])
            rendered.set()
            while not frames[0]:
                await asyncio.sleep(0.01)
        group.leave(members[0])
        return frames

    assert asyncio.run(run()) == ([b"one"], [])
