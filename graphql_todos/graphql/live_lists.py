"""The `todos` live query's subscriptions, taken by the fan-out
(graphql/fanout.py): one render per list version and document, then one
write per watcher.

Watchers of one live list (streams.LiveLists: one per viewer and filter, so
people who may see different rows never share one) by one document form a
group: the group is the list's only watcher for all of them, renders each
version once and writes the bytes to each member's socket, in its own
frame, with no task of its own. A member that cannot take a version at once
(its write buffer is full, or it has no direct write: the legacy protocol's
task) gets the newest version from its own task when it can: versions
coalesce as they always have, and no member holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from graphql import GraphQLError

from graphql_todos.core.errors import DomainError
from graphql_todos.internals.strawberry_sockets import StreamFailed
from graphql_todos.live.broadcast import Send, Write
from graphql_todos.live.streams import LiveRows, Watcher

logger = logging.getLogger(__name__)

# A version's payload (the result's JSON, for every member of a group).
Render = Callable[[LiveRows], Awaitable[bytes]]
# Joins a watcher to its live list; returns what makes it leave (LiveLists.join).
Join = Callable[[Watcher], Callable[[], None]]


class ListMember:
    """One subscription in a group: its frame around the shared payload."""

    __slots__ = ("group", "on_signal", "pending", "prefix", "send", "sending", "suffix", "write")

    def __init__(self, group: ListGroup, prefix: bytes, suffix: bytes, write: Write | None, send: Send) -> None:
        self.group = group
        self.prefix = prefix
        self.suffix = suffix
        self.write = write
        self.send = send
        # The newest payload not yet written (only the newest matters).
        self.pending: bytes | None = None
        self.sending = False
        # What wakes it: its task's wait in `follow`, or for a member attached
        # with no task, what starts one (the transport's).
        self.on_signal: Callable[[], None] | None = None

    def offer(self, payload: bytes) -> None:
        # Written now unless an earlier one is still on its way (order).
        write = self.write
        if write is not None and self.pending is None and not self.sending and write(self.prefix + payload + self.suffix):
            return
        self.pending = payload
        self.signal()

    def signal(self) -> None:
        wake, self.on_signal = self.on_signal, None
        if wake is not None:
            wake()

    async def follow(self) -> None:
        """Send what the group could not write, until the group ends; raises
        StreamFailed for a list that ends in an error."""
        while True:
            while (payload := self.pending) is not None:
                self.pending = None
                self.sending = True
                try:
                    await self.send(self.prefix + payload + self.suffix)
                finally:
                    self.sending = False
            group = self.group
            if group.ended:
                if group.errors is not None:
                    raise StreamFailed(group.errors)
                return
            woken = asyncio.Event()
            self.on_signal = woken.set
            try:
                await woken.wait()
            finally:
                self.on_signal = None

    def leave(self) -> None:
        self.group.leave(self)


class ListGroup:
    """The members watching one live list by one document: the list's one
    watcher for them all (streams.Watcher)."""

    def __init__(
        self,
        groups: ListGroups,
        key: Hashable,
        render: Render,
        check: Callable[[LiveRows], None],
        failure: Callable[[DomainError], list[GraphQLError]],
        join: Join,
    ) -> None:
        self.groups = groups
        self.key = key
        self.render = render
        self.check = check
        self.failure = failure
        self.members: set[ListMember] = set()
        # The newest version rendered, for a member joining later.
        self.payload: bytes | None = None
        self.ended = False
        # The errors the members' streams fail with (a list grown too large).
        self.errors: list[GraphQLError] | None = None
        self._latest: LiveRows | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"live list {key!r:.60}")
        self._leave_list = join(self)

    def show(self, rows: LiveRows | None) -> None:
        self._latest = rows
        self._changed.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                rows = self._latest
                if rows is None:
                    return  # the list ended (the hub closed)
                try:
                    self.check(rows)
                except DomainError as exc:
                    self.errors = self.failure(exc)
                    return
                self.payload = payload = await self.render(rows)
                self.groups.renders += 1
                for member in list(self.members):
                    member.offer(payload)
        except Exception:
            logger.exception("live list group %r failed", self.key)
        finally:
            self._end()

    def join(self, member: ListMember) -> None:
        self.members.add(member)
        if self.payload is not None:
            member.offer(self.payload)

    def leave(self, member: ListMember) -> None:
        self.members.discard(member)
        if not self.members and not self.ended:
            self.task.cancel()
            self._end()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.groups.forget(self)
        self._leave_list()
        for member in list(self.members):
            member.signal()


class ListGroups:
    """The live lists' groups of one app, one per key while it has members."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, ListGroup] = {}
        # Versions rendered (tests count them: one per version and group).
        self.renders = 0

    def __len__(self) -> int:
        return len(self._groups)

    def forget(self, group: ListGroup) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    def group(self, key: Hashable, make: Callable[[], ListGroup]) -> ListGroup:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = make()
        return group


@dataclass(frozen=True, slots=True)
class ListStream:
    """A WebSocket's (or HTTP stream's) `todos` subscription the fan-out took
    (strawberry_sockets.TakenMember)."""

    groups: ListGroups
    key: Hashable
    make: Callable[[], ListGroup]
    write: Write | None
    send: Send

    def _member(self, prefix: bytes, suffix: bytes) -> ListMember:
        group = self.groups.group(self.key, self.make)
        member = ListMember(group, prefix, suffix, self.write, self.send)
        group.join(member)
        return member

    async def run(self, prefix: bytes, suffix: bytes) -> None:
        """Send the list now and after each change until it ends; cancel to
        leave. Raises StreamFailed."""
        member = self._member(prefix, suffix)
        try:
            await member.follow()
        finally:
            member.leave()

    def attach(self, prefix: bytes, suffix: bytes) -> Attached | None:
        """The member joined now, with no task; None: `run` it."""
        if self.write is None:
            return None
        member = self._member(prefix, suffix)
        if member.pending is not None:
            # Its socket could not take the list now, and nothing would
            # wake it yet (the transport sets on_signal after): run it.
            member.leave()
            return None
        return Attached(member)


@dataclass(frozen=True, slots=True)
class Attached:
    """A member in its group with no task (strawberry_sockets.Following)."""

    member: ListMember

    def leave(self) -> None:
        self.member.leave()

    async def follow(self) -> None:
        await self.member.follow()
