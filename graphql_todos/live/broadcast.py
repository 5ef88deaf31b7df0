"""Broadcast fan-out: subscribers that are sent the same bytes for a change
form one group, with one hub subscription and one rendering per change,
then one write per member (websockets' broadcast(), with the journal behind
it). A member's frame is its own prefix, the shared payload and its suffix;
only the operation id differs between members.

A group is keyed by its document, not by whose it is (docs/design/people.md
section 6): each member holds its reader's view, and the group's router
(routing.py) finds the members an entry may concern by their lists and
person, steps their views, and gives each what the entry is for it (an
update, an arrival, a removal). Each of those is rendered once for the
group and written to the members that get it: one change to one list visits
that list's readers only, however many people the group serves.

A member that cannot take a frame at once (its connection's write buffer is
full, or its queue for a plain ASGI send holds QUEUE_SIZE changes, the hub's
bound for any subscriber: a burst such as one statement changing many rows
drops no one) is dropped by the group and reads what it missed from the
journal, from the last position it was sent, then rejoins: each member gets
each change once, in commit order, and never holds up the others. Every
member is one of the hub's readers from the moment it has a position until
it leaves, whatever it is doing: the process's retention keeps the journal
after its position for it (a group's own hub subscription moves on without
the members it dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator

from graphql_todos.core import metrics
from graphql_todos.core.errors import CursorExpired
from graphql_todos.core.models import ALL, Change, Entry, Viewer
from graphql_todos.core.visibility import Kind, View, legacy_change
from graphql_todos.live.hub import Hub
from graphql_todos.live.routing import Router

logger = logging.getLogger(__name__)

# What an entry is for a reader of every list (open mode's, the service's):
# such a view never changes, so one judges for all of them.
_EVERY_LIST = View(None)

# The bytes every member of a group gets for a change (one encode for all).
Render = Callable[[Change], Awaitable[bytes]]
# Writes a whole frame now; False when the connection cannot take it yet.
Write = Callable[[bytes], bool]
# Sends a frame, waiting while the connection is busy (the plain ASGI send).
Send = Callable[[bytes], Awaitable[None]]


class Member:
    """One subscription in a group. `last` is the newest position it was sent
    (core/journal.py's rule); `view`, its reader's view at `last` (None:
    read from the database when it is needed)."""

    __slots__ = ("_pending", "_wake", "last", "on_signal", "prefix", "send", "suffix", "view", "viewer", "write")

    def __init__(
        self, after: int, prefix: bytes, suffix: bytes, write: Write | None, send: Send, view: View | None = None
    ) -> None:
        self.last = after
        self.prefix = prefix
        self.suffix = suffix
        self.write = write
        self.send = send
        self.view = view
        # Whose changes it gets (Groups.run and attach say).
        self.viewer: Viewer = ALL
        # Changes queued for `send` (members without a direct write): the
        # shared payloads, framed as they are sent.
        self._pending: deque[tuple[Change, bytes]] | None = None
        self._wake: asyncio.Future[None] | None = None
        # A member that joined without a task (Groups.attach): what starts
        # one when the group drops it or closes.
        self.on_signal: Callable[[], None] | None = None

    def take(self, change: Change, payload: bytes, limit: int) -> bool:
        """Take the change now (queue it, `limit` at most), or say False (the
        group then drops us)."""
        if self.write is not None:
            if not self.write(self.prefix + payload + self.suffix):
                return False
            self.last = change.position
            return True
        if self._pending is None:
            self._pending = deque()
        elif len(self._pending) >= limit:
            return False
        self._pending.append((change, payload))
        self.signal()
        return True

    def signal(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        elif self.on_signal is not None:
            wake, self.on_signal = self.on_signal, None
            wake()

    async def _drain(self) -> None:
        """Send the queued frames (members without a direct write)."""
        while self._pending:
            change, payload = self._pending.popleft()
            await self.send(self.prefix + payload + self.suffix)
            metrics.observe_lag(change.changed_at)
            self.last = change.position

    async def _wait(self) -> None:
        self._wake = asyncio.get_running_loop().create_future()
        try:
            await self._wake
        finally:
            self._wake = None


class Group:
    """Members of one key, fed by one hub subscription to every entry: its
    router finds the members each entry concerns and what it is for each."""

    def __init__(self, groups: Groups, key: Hashable, render: Render) -> None:
        self.groups = groups
        self.key = key
        self.render = render
        # The newest position fanned out, or being fanned out (or skipped as
        # before this group): core/journal.py's rule. A member behind it
        # catches up from the journal before it joins.
        self.position = groups.hub.position
        self.members: set[Member] = set()
        # The members by their views, stepped at the group's position.
        self.router: Router[Member] = Router()
        # Members reading the journal to get back to the group: still its
        # subscriptions (counted as such), fed by no fan-out meanwhile.
        self.catching_up: set[Member] = set()
        self.closed = False
        # Why it closed, when the journal was pruned past its position.
        self.expired: CursorExpired | None = None
        self.task = asyncio.create_task(self._run(), name=f"broadcast {key!r:.60}")

    async def _run(self) -> None:
        try:
            async with self.groups.hub.subscribe_entries(self.position) as sub:
                sub.serves = self
                async for batch in sub.batches():
                    for entry in batch:
                        # Before any await: a member joining meanwhile is
                        # behind this entry, and reads it from the journal.
                        self.position = entry.position
                        if self.members:
                            await self._fan_out(entry)
        except CursorExpired as exc:
            # The listener was away so long that another process pruned past
            # this group's position: past its members' too.
            self.expired = exc
        except Exception:
            logger.exception("broadcast group %r failed", self.key)
        finally:
            # The hub closed (or the group failed, or was cancelled): members
            # end their streams.
            self.closed = True
            self.groups.forget(self)
            for member in list(self.members):
                member.signal()

    def __len__(self) -> int:
        """The subscriptions this group serves (see hub.subscriber_count)."""
        return len(self.members) + len(self.catching_up)

    def join(self, member: Member, view: View) -> None:
        """Feed the member from the group's position on (its `view` is at that position)."""
        self.members.add(member)
        self.router.add(member, view)

    def _drop(self, member: Member) -> None:
        self.members.discard(member)
        self.router.discard(member)

    async def _fan_out(self, entry: Entry) -> None:
        """The entry to each member it concerns, as what it is for each: one
        rendering per kind, then the writes."""
        takers: dict[Kind, list[Member]] = {}
        for member, kind in self.router.route(entry):
            if kind is not None:
                takers.setdefault(kind, []).append(member)
        if self.router.everything and (kind := _EVERY_LIST.step(entry)) is not None:
            takers.setdefault(kind, []).extend(self.router.everything)
        for kind, members in takers.items():
            change = legacy_change(entry, kind)
            if change is not None:
                self._write(change, await self.groups.payload(self, change), members)

    def _write(self, change: Change, payload: bytes, members: list[Member]) -> None:
        limit = self.groups.hub.queue_size
        dropped: list[Member] = []
        written = False
        for member in members:
            # Not one that left during the rendering, nor one a snapshot is ahead of.
            if change.position <= member.last or member not in self.members:
                continue
            if not member.take(change, payload, limit):
                dropped.append(member)
            elif member.write is not None:
                written = True
        metrics.DELIVERED.inc(len(members) - len(dropped))
        # The direct writes are done (written to the sockets, not awaited):
        # one sample for the group; queued members sample as they send.
        if written:
            metrics.observe_lag(change.changed_at)
        for member in dropped:
            self._drop(member)
            # Its view stepped past the change it did not take: read afresh
            # at its position when it catches up.
            member.view = None
            member.signal()
        self.groups.drops += len(dropped)

    def leave(self, member: Member) -> None:
        self.groups.hub.readers.discard(member)
        self._drop(member)
        if not self.members and not self.closed:
            self.closed = True
            self.groups.forget(self)
            self.task.cancel()


class Groups:
    """The broadcast groups of this process, one per key while it has members."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._groups: dict[Hashable, Group] = {}
        # Members dropped to the journal for being slow, since start.
        self.drops = 0
        # Payloads rendered for a group's fan-out (one per change and kind
        # per document), since start: members catching up from the journal
        # render their own.
        self.renders = 0

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[Group]:
        return iter(self._groups.values())

    async def payload(self, group: Group, change: Change) -> bytes:
        """The group's payload for the change (legacy_change makes one per
        entry and kind; renders of other documents share results per change,
        schema.SHARED_ROOTS)."""
        self.renders += 1
        return await group.render(change)

    def forget(self, group: Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    def attach(
        self, key: Hashable, make_render: Callable[[], Render], member: Member, viewer: Viewer = ALL
    ) -> Group | None:
        """Join the member to its group now, with no task of its own: the
        group, or None when the member is behind it or has no view yet
        (`run` it instead, which catches up first). Only a member with a
        direct write can: it is fed without awaiting. Until its `on_signal`
        (then `run(..., group)`), `group.leave(member)` is how it leaves. It
        gets what `viewer` may see."""
        assert member.write is not None
        member.viewer = viewer
        group = self._group(key, make_render)
        if member.last < group.position or member.view is None:
            return None
        group.join(member, member.view)
        self.hub.readers.add(member)
        return group

    def _group(self, key: Hashable, make_render: Callable[[], Render]) -> Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(self, key, make_render())
        return group

    async def run(
        self,
        key: Hashable,
        make_render: Callable[[], Render],
        member: Member,
        group: Group | None = None,
        viewer: Viewer = ALL,
    ) -> None:
        """Deliver every change after member.last to the member until the hub
        closes; cancel to leave. `make_render` serves a group this call
        creates; `group` is the one the member was attached to, if any.
        Raises CursorExpired when the journal was pruned past the member.
        It gets what `viewer` may see."""
        member.viewer = viewer
        self.hub.readers.add(member)
        try:
            while True:
                if group is None or not (member in group.members or group.closed):
                    group = self._group(key, make_render)
                    if member.last < group.position or member.view is None:
                        # Behind the group (an older cursor, or dropped), or
                        # with no view yet: read the gap from the journal
                        # first, then try again.
                        group.catching_up.add(member)
                        try:
                            await self._catch_up(member, group)
                        finally:
                            group.catching_up.discard(member)
                        group = None
                        continue
                    group.join(member, member.view)
                while member in group.members and not group.closed:
                    await member._drain()
                    if member in group.members and not group.closed:
                        await member._wait()
                await member._drain()
                if group.expired is not None:
                    raise CursorExpired(member.last, group.expired.oldest)
                if group.closed and member.last >= group.position:
                    return
                group = None
        finally:
            self.hub.readers.discard(member)
            if group is not None:
                group.leave(member)

    async def _catch_up(self, member: Member, group: Group) -> None:
        """The journal from the member's position to the group's, as its
        reader saw it at each position (its view at its own position first)."""
        upto = group.position
        view = member.view
        if view is None:
            view = member.view = await self.hub.view_at(member.viewer, member.last)
        while member.last < upto:
            chunk = await self.hub.read_journal(member.last, upto)
            if chunk.last <= member.last:
                member.last = upto  # positions that no transaction kept
                return
            for entry in chunk.entries:
                change = legacy_change(entry, view.step(entry))
                if change is not None:
                    await member.send(member.prefix + await group.render(change) + member.suffix)
                member.last = entry.position
