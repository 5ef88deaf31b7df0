"""Live views of the todos, for every transport: a change feed that resumes
from a cursor, one watched row, and a live list. Each registers with the hub
before it reads its starting state, so no change can fall in between."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Protocol

from graphql_todos.core.errors import CursorExpired
from graphql_todos.core.journal import Journal, parse_cursor
from graphql_todos.core.models import ALL, Change, Op, Todo, TodoState, Viewer
from graphql_todos.core.service import TodoService
from graphql_todos.core.visibility import Delivery, View, in_list
from graphql_todos.live.hub import Hub, Subscriber

# How long a live list's new version waits for the rest of a transaction
# that reached the hub in parts, and at most for a quiet moment (_follow).
# A heuristic: the journal marks no transaction's end (the note of issue 19).
_SETTLE_SECONDS = 0.002
_HOLD_AT_MOST_SECONDS = 0.1

# Told once a live view's start is fixed (a change feed's), or as it begins
# (a row's and a live list's read their start after they register), by the
# views below, in the task that opens one: a GraphQL socket's subscription
# run by Strawberry sets it (graphql/fanout.py's `opens`), so an operation
# sent after it on the socket waits no longer (README: one socket's order).
STARTED: ContextVar[Callable[[], None] | None] = ContextVar("STARTED", default=None)


def _started() -> None:
    if (started := STARTED.get()) is not None:
        started()


def start_after(journal: Journal, after: str | None, hub: Hub | None = None) -> Awaitable[int]:
    """Where a change feed from the cursor (from now when None) starts, to
    await; raises BadUserInput for a cursor not yet written, CursorExpired
    for one pruned past. A cursor at `hub`'s position asks the database
    nothing. Not a coroutine: every subscribe awaits the journal's own
    through it, where a frame of its own was two calls more (made, resumed)."""
    if after is None:
        # "Now" is what the database has committed, which the hub may not
        # have delivered yet (a NOTIFY in flight, a row read from the
        # journal): a client must not get the change it just made, and
        # only a round trip after the request can tell: the hub's on its
        # LISTEN connection (Hub.now), or a read of the journal.
        return journal.position() if hub is None else hub.now()
    if hub is not None and hub.connected and parse_cursor(after) == hub.position:
        # Written (the hub published it), and a subscriber starting there
        # gets every later entry from the hub, none from the journal: a
        # client resuming from the last change it was sent, all caught up.
        # A hub that lost its listener asks the database, so a database
        # known to be away is said to be (DATABASE_UNAVAILABLE).
        return _known(hub.position)
    return journal.check_cursor(after)


async def _known(position: int) -> int:
    return position


async def changes_at(hub: Hub, start: int, viewer: Viewer = ALL) -> AsyncGenerator[Change, None]:
    """Every change after `start` (what start_after() gave: the cursor is
    checked there, so a bad one fails before the feed starts) the viewer
    may see, in commit order, as its view at each position judges it."""
    _started()
    return _changes(hub, start, await hub.view_at(viewer, start))


async def _changes(hub: Hub, start: int, view: View) -> AsyncGenerator[Change, None]:
    async with hub.subscribe(after=start, view=view) as sub:
        async for change in sub:
            yield change


async def feed_at(hub: Hub, start: int, viewer: Viewer, list_id: uuid.UUID | None) -> AsyncGenerator[Delivery, None]:
    """Every entry after `start` (what start_after() gave) the viewer may
    see, as what it is for the viewer (of one list, when given), in commit
    order."""
    _started()
    return _feed(hub, start, await hub.view_at(viewer, start), list_id)


async def _feed(hub: Hub, start: int, view: View, list_id: uuid.UUID | None) -> AsyncGenerator[Delivery, None]:
    async with hub.subscribe_feed(start, view) as sub:
        async for delivery in sub:
            if list_id is None or in_list(delivery, list_id):
                yield delivery


@contextlib.asynccontextmanager
async def watching_row(
    service: TodoService, hub: Hub, viewer: Viewer, key: uuid.UUID
) -> AsyncIterator[tuple[TodoState, Subscriber[Change]]]:
    """The row now, and a subscriber for the changes after it the viewer may
    see (registered first, so none falls in between), while the block runs."""
    async with hub.subscribe(todo_id=key, view=View(viewer.person)) as sub:
        start = await service.todo_snapshot(viewer, key)
        sub.skip_through(start.position)
        if not viewer.everything:
            # A person's lists at the snapshot; every list's view is the one it has.
            sub.view = await hub.view_at(viewer, start.position)
        yield start, sub


async def todo_states(
    service: TodoService, hub: Hub, viewer: Viewer, key: uuid.UUID
) -> AsyncGenerator[TodoState, None]:
    """The row now, then after each change the viewer may see; ends after
    it is deleted, or no longer visible to the viewer (a removal), or right
    away when the viewer sees no such row."""
    _started()
    async with watching_row(service, hub, viewer, key) as (start, sub):
        yield start
        if start.todo is None:
            return
        async for change in sub:
            deleted = change.op is Op.DELETED
            yield TodoState(change.op, None if deleted else change.todo, change.position, change.removed)
            if deleted:
                return


class LiveRows(tuple[Todo, ...]):
    """One version of a live list. Every subscriber to the same filter gets
    the same object, so it is executed and serialized once for all of them."""


def apply_changes(rows: LiveRows, changes: list[Change], completed: bool | None) -> LiveRows:
    """The list filtered by `completed` after the changes, in list order."""
    by_id = {todo.id: todo for todo in rows}
    for change in changes:
        todo = change.todo
        if change.op is Op.DELETED or completed not in (None, todo.completed):
            by_id.pop(todo.id, None)
        else:
            by_id[todo.id] = todo
    return LiveRows(sorted(by_id.values(), key=Todo.sort_key))


class Watcher(Protocol):
    def show(self, rows: LiveRows | None) -> None:
        """The list's newest version; None: the list ended (the hub closed).
        Called in the list's task: it must not block."""


class _Watcher:
    def __init__(self) -> None:
        self.latest: LiveRows | None = None
        self.changed = asyncio.Event()

    def show(self, rows: LiveRows | None) -> None:
        # Only the newest version matters: a slow watcher skips the others.
        self.latest = rows
        self.changed.set()


class _LiveList:
    """The list for one filter, kept current in memory by one task and one
    hub subscription, however many watch it: no query per change. A watcher
    may stand for many subscribers (graphql/live_lists.py's groups)."""

    def __init__(self, service: TodoService, hub: Hub, viewer: Viewer, completed: bool | None) -> None:
        self.service = service
        self.hub = hub
        self.viewer = viewer
        self.completed = completed
        self.current: LiveRows | None = None
        self.watchers: set[Watcher] = set()
        self.task = asyncio.create_task(self._run(), name=f"live todos({completed})")

    async def _run(self) -> None:
        try:
            async with self.hub.subscribe() as sub:
                while True:
                    try:
                        return await self._follow(sub)
                    except CursorExpired:
                        # Behind, and another process pruned what it missed:
                        # the list read again has every change since.
                        continue
        finally:
            # The hub closed (or we were cancelled): end every watcher.
            self._show(None)

    async def _follow(self, sub: Subscriber[Change]) -> None:
        """The list now, then after each batch of changes, until the hub closes."""
        rows = await self._read(sub)
        if rows != self.current:
            self._show(rows)
        loop = asyncio.get_running_loop()
        shown_at = loop.time()
        async for batch in sub.batches():
            if len(rows) > self.service.max_list_rows:
                # Only the first rows of a list over the cap are held:
                # changes cannot be applied to it, read it again.
                rows = await self._read(sub)
            else:
                rows = apply_changes(rows, batch, self.completed)
            # A transaction's notifications come as one burst at its commit,
            # but a burst bigger than a socket read reaches the hub in parts:
            # a version shown between them would hold part of a transaction
            # (15 of the 20 rows one toggleAll changed). So a version waits
            # a moment for the rest, and is shown once nothing more is queued
            # (or has waited long enough: a steady stream of writes).
            await asyncio.sleep(_SETTLE_SECONDS)
            if rows != self.current and (sub.queue.empty() or loop.time() - shown_at > _HOLD_AT_MOST_SECONDS):
                shown_at = loop.time()
                self._show(rows)

    async def _read(self, sub: Subscriber[Change]) -> LiveRows:
        snapshot = await self.hub.retrying("live list snapshot", lambda: self.service.live_snapshot(self.viewer, self.completed))
        sub.skip_through(snapshot.position)
        sub.view = await self.hub.view_at(self.viewer, snapshot.position)
        return LiveRows(snapshot.todos)

    def _show(self, rows: LiveRows | None) -> None:
        self.current = rows
        for watcher in self.watchers:
            watcher.show(rows)


class LiveLists:
    """The live lists of this process, one per filter while anyone watches it."""

    def __init__(self, service: TodoService, hub: Hub) -> None:
        self.service = service
        self.hub = hub
        # One per viewer and filter: a person's live list holds what they see.
        self._lists: dict[tuple[Viewer, bool | None], _LiveList] = {}

    def __len__(self) -> int:
        return len(self._lists)

    def join(self, completed: bool | None, viewer: Viewer, watcher: Watcher) -> Callable[[], None]:
        """Show the watcher the (filtered) list now, when it is known, and each
        version after (see `watch`); returns what makes it leave."""
        key = (viewer, completed)
        live = self._lists.get(key)
        if live is None or live.task.done():
            live = self._lists[key] = _LiveList(self.service, self.hub, viewer, completed)
        live.watchers.add(watcher)
        if live.current is not None:
            watcher.show(live.current)

        def leave() -> None:
            live.watchers.discard(watcher)
            if not live.watchers and self._lists.get(key) is live:
                del self._lists[key]
                live.task.cancel()

        return leave

    async def watch(self, completed: bool | None, viewer: Viewer = ALL) -> AsyncGenerator[LiveRows, None]:
        """The whole (filtered) list now, then again after each burst of
        changes that alters it (coalesced: a slow client gets only the newest).
        A list over MAX_LIST_ROWS comes as its first MAX_LIST_ROWS + 1 rows."""
        _started()
        watcher = _Watcher()
        leave = self.join(completed, viewer, watcher)
        try:
            while True:
                await watcher.changed.wait()
                watcher.changed.clear()
                if watcher.latest is None:
                    return
                yield watcher.latest
        finally:
            leave()
