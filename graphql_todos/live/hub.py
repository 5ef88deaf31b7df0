"""One LISTEN connection per process, fanned out to any number of subscribers.

Each NOTIFY carries its change whole (position, op and row) when it fits, and
the listener offers the same Change object to every interested subscriber's
bounded queue; a notification without its row, or a gap in the positions,
sends it to the journal for everything after the last position it delivered
(in one query, however many NOTIFYs arrived). A subscriber
that falls behind, or that asks to start from an older cursor, reads the gap
from the journal instead: nothing is dropped and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sized
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import orjson
import psycopg
from psycopg_pool import PoolTimeout

from graphql_todos.core import metrics, tasks
from graphql_todos.core.cursors import Cursors
from graphql_todos.core.database import connect_timeout
from graphql_todos.core.errors import CursorExpired, DatabaseUnavailable
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import Change, Chunk, Entry, Viewer
from graphql_todos.core.read_cursors import ReadCursors
from graphql_todos.core.settings import Settings
from graphql_todos.core.visibility import Delivery, Kind, View, legacy_change
from graphql_todos.internals.psycopg import payloads
from graphql_todos.live.notifications import UNREAD, journal_entries, notified, notified_body, notified_for
from graphql_todos.live.now import Asks
from graphql_todos.live.routing import Router

logger = logging.getLogger(__name__)
T = TypeVar("T")


class _Timed(Protocol):
    @property
    def changed_at(self) -> datetime | None: ...


# What a subscriber yields of each entry its reader gets (a legacy Change, a feed Delivery).
D = TypeVar("D", bound=_Timed)

CHANNEL = "todo_changes"

# Read once: on Python 3.11 an enum's members are read through its
# metaclass's __getattr__ hook (some 860 instructions each), and a row
# event's offer reads two.
_ARRIVAL, _UPDATE = Kind.ARRIVAL, Kind.UPDATE


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# Queue markers: read the journal up to the hub's position; the hub is closing.
RESYNC = _Marker("RESYNC")
CLOSED = _Marker("CLOSED")


class _Accepted(Generic[D]):
    """A queued change its subscriber accepted already (its view stepped
    past it), which its row sink did not take."""

    __slots__ = ("change",)

    def __init__(self, change: D) -> None:
        self.change = change


class RowSink(Protocol):
    """Writes a watched row's frames as the hub publishes its changes, with
    no wake-up of the subscriber's task (graphql/fanout.py's RowStream)."""

    @property
    def shares(self) -> object:
        """Sinks of one row whose `shares` is the same object render the
        same body for a change: it is rendered once for them all."""

    def render(self, entry: Entry) -> bytes:
        """The body of the row as the entry leaves it (its `todo`, or the
        values of its `row`: no Todo made); may raise (the task then
        delivers the change)."""

    def write(self, body: bytes) -> bool:
        """Frame the body and write it now; False: the connection cannot take it now."""


class Reader(Protocol):
    """A journal reader of this process that is no hub subscriber (a
    broadcast member): the journal after its `last` is kept while it reads."""

    last: int


class Subscriber(Generic[D]):
    """A bounded queue of journal entries after `last`, fed by the hub, and
    the changes they are for its reader: its view steps through every entry
    in commit order that may concern it (visibility.py; the hub's router
    finds them, routing.py), so it gets the rows its reader may see,
    an arrival when one becomes visible, a removal when one stops being
    visible, and nothing of the rest."""

    def __init__(
        self, hub: Hub, after: int, todo_id: uuid.UUID | None, view: View, pick: Callable[[Entry, Kind | None], D | None]
    ) -> None:
        self.hub = hub
        self.todo_id = todo_id
        self.view = view
        self.pick = pick
        self.last = after
        # True while it waits for the queue with nothing in hand.
        self.waiting = False
        # The subscriptions this one serves (a broadcast group's members);
        # None: itself alone.
        self.serves: Sized | None = None
        # A row watcher's: writes its row's changes as the hub publishes
        # them (offer), while the task waits with nothing in hand; what it
        # does not take, the task delivers. None: the task delivers everything.
        self.sink: RowSink | None = None
        self.queue: asyncio.Queue[Entry | _Accepted[D] | _Marker] = asyncio.Queue(hub.queue_size)
        if after < hub.position:
            self.queue.put_nowait(RESYNC)

    def needed_after(self, position: int) -> int:
        """The position after which it may still read the journal. Waiting on
        an empty queue, it holds every change up to the hub's `position`
        that concerns it: it moves there, so that the watcher of a quiet row
        does not keep the journal from being pruned."""
        if self.waiting and self.queue.empty():
            self.last = max(self.last, position)
        return self.last

    def skip_through(self, position: int) -> None:
        """Deliver only changes after `position` (a snapshot already shows the rest)."""
        self.last = max(self.last, position)

    def offer(self, entry: Entry, bodies: dict[int, bytes] | None) -> bool:
        """An entry of the watched row: its change written by the sink now
        when the task would deliver it next (it waits with nothing in hand),
        else queued (enqueue). True: the sink wrote it. `bodies`: what this
        entry rendered, by the sinks' `shares`, for the row's other
        watchers (None: it has no other)."""
        sink = self.sink
        # `waiting` is cleared as anything is queued: it waits with nothing in hand.
        if sink is None or not self.waiting:
            self.enqueue(entry)
            return False
        if entry.position <= self.last:
            return False
        self.last = entry.position
        kind = self.view.step(entry)
        if kind is None:
            return False
        # A row it sees, as it is now (not a deletion or a removal, after
        # which the task ends the stream); an entry's `row` says there is
        # one with no Todo made (RowEntry's).
        if (kind is _ARRIVAL or (kind is _UPDATE and entry.op != "deleted")) and (
            entry.row is not None or entry.todo is not None
        ):
            # Rendered once per `shares`; inline, not a call (a row event's every instruction counts).
            try:
                body = None if bodies is None else bodies.get(id(sink.shares))
                if body is None:
                    body = sink.render(entry)
                    if bodies is not None:
                        bodies[id(sink.shares)] = body
                if sink.write(body):
                    return True
            except Exception:  # noqa: BLE001, S110 - the task delivers it, and fails as it would have without the sink
                pass
        # Accepted (its view is past it): the task delivers it, as queued
        # into an empty queue, in order, which cannot overflow.
        if (change := self.pick(entry, kind)) is not None:
            self.waiting = False
            self.queue.put_nowait(_Accepted(change))
        return False

    def enqueue(self, item: Entry | _Marker) -> None:
        """Queue item; a subscriber too slow to keep up reads the journal instead."""
        self.waiting = False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too slow to keep up: forget the queued changes and read them
            # back from the journal when this subscriber is ready.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CLOSED if item is CLOSED else RESYNC)
            self.hub.resyncs += 1
            metrics.FALLBACKS.inc()

    async def batches(self) -> AsyncIterator[list[D]]:
        """Changes in commit order, in lists of whatever arrived together."""
        async for batch in self._batches():
            # A broadcast group (serves) counts and samples its own writes.
            if self.serves is not None:
                yield batch
                continue
            metrics.DELIVERED.inc(len(batch))
            yield batch
            # The consumer asks for more once its loop has sent the batch:
            # the oldest change waited longest, one sample per batch.
            metrics.observe_lag(batch[0].changed_at)

    async def _batches(self) -> AsyncIterator[list[D]]:
        while True:
            self.waiting = True
            try:
                items = [await self.queue.get()]
            finally:
                self.waiting = False
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            batch: list[D] = []
            for item in items:
                if item is CLOSED:
                    if batch:
                        yield batch
                    return
                if item is RESYNC:
                    if batch:
                        yield batch
                        batch = []
                    async for chunk in self._replay():
                        yield chunk
                elif isinstance(item, _Accepted):
                    batch.append(item.change)
                elif isinstance(item, Entry) and (change := self._accept(item)) is not None:
                    batch.append(change)
            if self.queue.empty():
                # Its view is at the hub's position now (nothing in between).
                self.hub.caught_up(self)
            if batch:
                yield batch

    async def __aiter__(self) -> AsyncIterator[D]:
        async for batch in self.batches():
            for change in batch:
                yield change

    def _accept(self, entry: Entry) -> D | None:
        """What the entry is for this reader, if anything; every entry steps its view."""
        if entry.position <= self.last:
            return None
        self.last = entry.position
        kind = self.view.step(entry)
        if self.todo_id is not None and entry.todo_id != self.todo_id:
            return None
        return self.pick(entry, kind)

    async def _replay(self) -> AsyncIterator[list[D]]:
        """The journal from `last` up to the hub's position, a chunk at a
        time (a cursor of "0" must not load the whole journal at once)."""
        upto = self.hub.position
        while self.last < upto:
            chunk = await self.hub.read_journal(self.last, upto)
            if chunk.last <= self.last:
                self.last = upto
                return
            accepted = [change for entry in chunk.entries if (change := self._accept(entry)) is not None]
            self.last = max(self.last, chunk.last)
            if accepted:
                yield accepted


class Hub:
    def __init__(
        self,
        dsn: str,
        journal: Journal,
        settings: Settings,
        cursors: Cursors | None = None,
        read_cursors: ReadCursors | None = None,
    ) -> None:
        """`cursors`: told the sequencer's batches (JOURNAL=decoded:
        TodoService.cursors); `read_cursors`: the wait for the sequencer
        (decoded: TodoService.read_cursors, one mark for the reads and the
        views that ask at once; made here when not given)."""
        self._read_cursors = read_cursors
        self.dsn = dsn
        self.journal = journal
        self.cursors = cursors
        self.queue_size = settings.queue_size
        self.heartbeat_seconds = settings.heartbeat_seconds
        self.max_backoff_seconds = settings.reconnect_max_seconds
        self.batch = settings.journal_batch
        self.database_timeout_seconds = settings.database_timeout_seconds
        # One of several workers: each hears every row and watches its share
        # of them, so a row its watchers do not take is read no further
        # (_wait_for_news). One process reads each row whole, as its
        # watchers most often take it (the check cost a watched row some
        # 1,800 instructions; docs/bench-ab-rows.md, 2026-12-07).
        self._a_share = settings.workers > 1
        # The newest journal position delivered to subscribers (core/journal.py's rule).
        self.position = 0
        self.connected = False
        self.reconnects = 0
        self.resyncs = 0
        self.backend_pid: int | None = None
        # Every subscriber but the item streams, and who of them an entry may concern.
        self._all: set[Subscriber[Any]] = set()
        self._router: Router[Subscriber[Any]] = Router()
        # Keyed by the row's uuid as an int: a UUID hashes and compares in
        # Python, an int in C, and every row NOTIFY looks its watchers up.
        self._by_todo: dict[int, set[Subscriber[Any]]] = {}
        # A row's watchers by person too: the membership entries that change
        # what they may see name the person, not the row. A reader's arrival
        # or removal of a row names both, and moves no view: only that row's
        # watchers take it (not every watcher of the person, for each row).
        self._by_person: dict[uuid.UUID, set[Subscriber[Any]]] = {}
        # Journal readers besides the subscribers (see Reader), counted in
        # needed_after for as long as they are in it.
        self.readers: set[Reader] = set()
        self.closed = False
        # Told each access_revoked entry's detail (edge/revocation.py), in commit order.
        self.on_revoked: Callable[[dict[str, Any] | None], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Changes row sinks took in this turn of the loop, and the first's
        # commit time: counted, and the lag sampled, once per turn.
        self._taken = 0
        self._taken_at: datetime | None = None
        # "Now" for a subscribe (now()): a round trip on the LISTEN connection.
        self._asks = Asks(self)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions served, a broadcast group's members each counted."""
        return sum(1 if s.serves is None else len(s.serves) for s in self._subscribers())

    def _subscribers(self) -> list[Subscriber[Any]]:
        return [*self._all, *(s for subs in self._by_todo.values() for s in subs)]

    def needed_after(self) -> int:
        """The oldest position this process still has to read past: journal
        entries after it must not be pruned while its subscribers and
        readers need them."""
        return min([
            self.position,
            *(sub.needed_after(self.position) for sub in self._subscribers()),
            *(reader.last for reader in self.readers),
        ])

    async def start(self, timeout: float = 30.0) -> None:
        """Start listening; returns once the first LISTEN is in place."""
        self.position = await self.journal.position()
        self._task = asyncio.create_task(self._run(), name="todo-hub")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"cannot LISTEN on {CHANNEL} (see the warnings above)") from None

    async def stop(self) -> None:
        if self._task is not None:
            await tasks.ended(self._task)
        self.connected = False
        self._asks.fall_back()
        self.close_subscriptions()

    def now(self) -> Awaitable[int]:
        """Where the journal stands for a subscribe from now (every commit
        made before the call is at or below it), to await: the hub's
        position once a round trip on its LISTEN connection is answered, one
        round trip for every subscribe asking meanwhile; the journal's read
        when the listener is down (DatabaseUnavailable as the read gives it)
        or positions come from the sequencer."""
        return self._asks.now() if self.connected else self.journal.position()

    def close_subscriptions(self) -> None:
        """End every subscription, and any made from now on: the server is
        stopping (internals.uvicorn_close.end_streams, first thing on shutdown)."""
        if self.closed:
            return
        self.closed = True
        for sub in self._subscribers():
            sub.enqueue(CLOSED)

    def subscribe(
        self, after: int | None = None, todo_id: uuid.UUID | None = None, view: View | None = None
    ) -> contextlib.AbstractAsyncContextManager[Subscriber[Change]]:
        """A subscriber for changes after `after` (default: from now), all of
        them or those of one todo, as `view` (its reader's at `after`;
        default: every list) may see them, in todoChanges' shape. Leaving the
        block unsubscribes."""
        view = View(None) if view is None else view
        return self._subscribed(Subscriber(self, self.position if after is None else after, todo_id, view, legacy_change))

    def subscribe_feed(self, after: int, view: View) -> contextlib.AbstractAsyncContextManager[Subscriber[Delivery]]:
        """A subscriber for every entry after `after` the view's reader may
        see, as what it is for that reader (the `feed`)."""
        return self._subscribed(Subscriber(self, after, None, view, _delivery))

    def subscribe_entries(self, after: int) -> contextlib.AbstractAsyncContextManager[Subscriber[Entry]]:
        """A subscriber for every entry after `after`, as it is: for a
        reader that judges each for readers of its own (a broadcast group)."""
        return self._subscribed(Subscriber(self, after, None, View(None), _entry))

    @contextlib.asynccontextmanager
    async def _subscribed(self, sub: Subscriber[D]) -> AsyncIterator[Subscriber[D]]:
        todo_id = sub.todo_id
        if self.closed:
            sub.enqueue(CLOSED)
        indexes: list[tuple[dict[Any, set[Subscriber[Any]]], object]] = []
        if todo_id is None:
            self._all.add(sub)
            # Found by its view once that is at the hub's position; one behind
            # takes every entry until it has caught up (caught_up).
            self._router.add(sub, sub.view.copy() if sub.last >= self.position else None)
        else:
            indexes.append((self._by_todo, todo_id.int))
            if sub.view.person is not None:
                indexes.append((self._by_person, sub.view.person))
        for index, key in indexes:
            index.setdefault(key, set()).add(sub)
        metrics.SUBSCRIBERS.inc()
        try:
            yield sub
        finally:
            metrics.SUBSCRIBERS.dec()
            self._all.discard(sub)
            self._router.discard(sub)
            for index, key in indexes:
                members = index.get(key)
                if members is not None:
                    members.discard(sub)
                    if not members:
                        del index[key]

    def _count_taken(self) -> None:
        metrics.DELIVERED.inc(self._taken)
        # Apart too: a sink that fails hands its entries to the task, which
        # delivers the same frames, so only this count tells the paths apart.
        metrics.ROW_SINK_EVENTS.inc(self._taken)
        metrics.observe_lag(self._taken_at)
        self._taken = 0

    def caught_up(self, sub: Subscriber[Any]) -> None:
        """Route to sub by its view from now on: it has stepped every entry
        up to the hub's position (its queue is empty, and it took every entry
        while it was behind)."""
        if sub in self._all and not self._router.routed(sub) and sub.view.person is not None:
            self._router.add(sub, sub.view.copy())

    @functools.cached_property
    def barrier(self) -> ReadCursors | None:
        """Decoded: the wait for the sequencer that a view at a cursor needs (view_at)."""
        if not self.journal.decoded:
            return None
        return self._read_cursors or ReadCursors(self.journal.pool, self.database_timeout_seconds)

    async def view_at(self, viewer: Viewer, position: int) -> View:
        """The viewer's view at `position` (no query for every list).
        Decoded, a membership change is in list_members at its commit and in
        the journal once the sequencer has journaled it: the members are read
        first, then the entries once every commit that read saw is
        journaled (docs/design/people.md section 2). A sequencer that does
        not catch up in time is DATABASE_UNAVAILABLE (ReadLate), not retried:
        whoever opens the view is told, no stream waits unheard."""
        if viewer.everything:
            return View(None)
        if self.barrier is None:
            return await self.retrying("view at a cursor", lambda: self.journal.view_at(viewer, position))
        assert viewer.person is not None
        person = viewer.person
        members = await self.retrying("members of a view", lambda: self.journal.members_now(person))
        await self.barrier.journaled()
        return await self.retrying("view at a cursor", lambda: self.journal.view_at(viewer, position, members))

    async def read_journal(self, after: int, upto: int) -> Chunk:
        """Journal entries after < position <= upto, oldest first, `batch` at
        most; read as the catch-up reads them (one text a batch)."""
        return await self.retrying(
            "journal read", lambda: self.journal.changes_between(after, upto, self.batch, journal_entries)
        )

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """call(), again and again until it works: a subscriber that needs the
        database outlives a busy pool or a database restart."""
        delay = 0.1
        while True:
            try:
                return await call()
            except (psycopg.Error, PoolTimeout, DatabaseUnavailable) as exc:
                logger.warning("%s failed (retry in %.1fs): %s", what, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    async def _run(self) -> None:
        task = asyncio.current_task()
        assert task is not None  # the hub's own task (start)
        delay = 0.1
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: reconnect
                self._asks.reading = None
                self._asks.fall_back()
                if task.cancelling():
                    # Being stopped: a call that turned the cancellation into
                    # its own error (a lost connection's, a DatabaseUnavailable)
                    # must not make a listener that reconnects forever.
                    raise asyncio.CancelledError from exc
                if self.connected:
                    delay = 0.1  # it worked for a while: back off afresh
                logger.warning("listener failed (reconnecting in %.1fs): %r", delay, exc)
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            application_name="graphql-todos listener",
            # Over TCP, notice a peer that vanished without a FIN.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            connect_timeout=connect_timeout(self.database_timeout_seconds),
            # The payloads are read as the bytes they come as (_wait_for_news): UTF-8's.
            client_encoding="UTF8",
            # now()'s NOTIFY commits with an xid: not a WAL flush waited for each.
            options="-c synchronous_commit=off",
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = conn.info.backend_pid
            self._asks.on_listener = conn.info.server_version >= 150000 and not self.journal.decoded
            # Everything committed while we were away is in the journal.
            await self._catch_up()
            if self._ready.is_set():
                self.reconnects += 1
                metrics.RECONNECTS.inc()
                logger.info("listener reconnected at position %s", self.position)
                # Pooled connections from before the outage are dead: drop
                # them now rather than fail the next requests with them.
                await self.journal.pool.check()
            self.connected = True
            self._ready.set()
            while True:
                if await self._wait_for_news(conn):
                    await self._catch_up()
                    self._asks.caught_up()
                elif self._asks.asked is None:
                    # A quiet spell: prove the connection is alive (a half-open
                    # one would hang here, hence the timeout), and read the
                    # journal in case a notification went missing.
                    async with asyncio.timeout(self.heartbeat_seconds):
                        await conn.execute("SELECT 1")
                    await self._catch_up()
                elif asyncio.get_running_loop().time() - self._asks.asked_at > self.heartbeat_seconds:
                    # now()'s round trip, unanswered as long as SELECT 1 may be.
                    raise psycopg.OperationalError("the listener's round trip went unanswered")
                # Else now()'s round trip, sent as the wait ended, is in
                # flight: its reply, after the notifications before it, is
                # for Asks.answered() to take (not a SELECT 1 sent behind it),
                # and it proves the connection as SELECT 1 would.

    async def _wait_for_news(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Publish the changes that notifications carry whole and in order;
        True when the journal must be read for what they did not carry."""
        # A round trip's reply taken in before (with a gap), or subscribes asking meanwhile.
        if self._asks.answered(conn):
            return True
        # payloads() holds the connection lock while it runs: close it
        # before the connection is used for anything else. It gives what the
        # socket holds at once (a big UPDATE's hundreds of rows, not one
        # 16 kB read's 28: a turn of the loop each),
        # where notifies() made a Notify of each and a generator step; as
        # bytes, which orjson reads as UTF-8 (not UTF-8: not ours, and the
        # journal is read, which psycopg decodes).
        async with contextlib.aclosing(payloads(conn, self.heartbeat_seconds)) as reads:
            self._asks.read_on(conn)
            try:
                async for read in reads:
                    if self.take(read) or (self._asks.asked is not None and self._asks.answered(conn)):
                        return True
            finally:
                self._asks.reading = None
        return False

    def take(self, read: list[bytes]) -> bool:
        """Publish a read's changes; True when the journal must be read."""
        # The sequencer's batches, parsed once for their cursors and their reading.
        heard = None if self.cursors is None else self._heard(read)
        for payload in read:
            if heard and (batch := heard.get(payload)) is not None:
                position, entry = notified_body(batch)
            elif self._all or (self._by_todo and not self._a_share):
                position, entry = notified(payload)
            else:
                # A row's entry goes to its row's watchers alone: a
                # row no one here watches (every write's with no
                # subscriber; a worker's, the other workers' rows) is
                # its position alone, not its row read. One who
                # subscribes later reads it from the journal if it wants it.
                position, entry = notified_for(payload, self._by_todo)
            if position <= self.position:
                continue
            if entry is None or position != self.position + 1:
                # A row too big for NOTIFY, a gap (a transaction that
                # failed after taking a position), or not ours.
                return True
            self.position = position
            if entry is not UNREAD:
                self._publish(entry)
        return False

    def _heard(self, read: list[bytes]) -> dict[bytes, Any]:
        """The sequencer's batches of a read: their writers' cursors, before
        any return to read the journal; and each batch parsed, by its
        payload, for its reading. Its payload alone names "xids" as a
        key: in a row's JSON a title's quotes are escaped."""
        assert self.cursors is not None
        batches = {}
        for payload in read:
            if b'"xids"' in payload:
                try:
                    batch = orjson.loads(payload)
                    self.cursors.heard(((str(x), int(p)) for x, p in batch["xids"]), int(batch["through"]))
                except (ValueError, KeyError, TypeError):
                    # No batch (anyone may NOTIFY the channel): `notified` finds
                    # it not ours and the journal is read, the connection kept.
                    continue
                batches[payload] = batch
        return batches

    async def _catch_up(self) -> None:
        while True:
            try:
                chunk = await self.journal.changes_between(self.position, 2**63 - 1, self.batch, journal_entries)
            except CursorExpired as exc:
                # Away so long that another process pruned past us: go on from
                # the oldest kept entry; subscribers behind it learn, as they
                # read the journal, that their cursor expired.
                logger.warning("listener was behind the pruned journal: %s", exc)
                self.position = exc.oldest
                for sub in self._subscribers():
                    sub.enqueue(RESYNC)
                continue
            for entry in chunk.entries:
                self.position = entry.position
                self._publish(entry)
            self.position = max(self.position, chunk.last)
            if not chunk.full:
                return

    def _publish(self, entry: Entry) -> None:
        if entry.op == "access_revoked" and self.on_revoked is not None:
            self.on_revoked(entry.detail)
        if self._all:
            for sub, _ in self._router.route(entry):
                sub.enqueue(entry)
            for sub in self._router.everything:
                sub.enqueue(entry)
        if entry.todo_id is not None:
            if watchers := self._by_todo.get(entry.todo_id.int):
                # Rendered once per body its watchers share.
                bodies: dict[int, bytes] | None = {} if len(watchers) > 1 else None
                taken = 0
                for sub in watchers:
                    taken += sub.offer(entry, bodies)
                if taken:
                    # Counted as a task counts a batch: one count and one lag
                    # sample (the oldest change's) for all the sinks took in
                    # one turn of the loop (one UPDATE's rows, say).
                    if not self._taken:
                        self._taken_at = entry.changed_at
                        asyncio.get_running_loop().call_soon(self._count_taken)
                    self._taken += taken
        elif entry.person is not None:
            for sub in self._by_person.get(entry.person, ()):
                sub.enqueue(entry)


def _delivery(entry: Entry, kind: Kind | None) -> Delivery | None:
    return None if kind is None else Delivery(entry, kind)


def _entry(entry: Entry, _: Kind | None) -> Entry:
    return entry
