"""Query responses kept as the bytes sent, valid exactly while the journal
stands where it stood when they were read.

Every change to todos advances the journal, so a response read when the
journal stood at position p is still right while the committed position is
p. A request asks where the journal stands now (one tiny query, shared by
every request that arrived before it started: journal.Coalesced) and is
served from the cache only when that is the position its entry was read
at. So a hit reflects every change committed before the request arrived,
the client's own writes and those made from psql included.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

# HTTP scope keys by which the front door (response_front.py) and the fast
# path share one request's position: the front door's, when it asked (the
# fast path asks no other), and the one the fast path's answer is the
# cache's entry for (the answer as a whole may be kept under it).
COMMITTED = "graphql_todos.committed"
KEPT_AT = "graphql_todos.kept_at"


class ResponseCache(Generic[V]):
    """One per process and kind of value (GraphQL and REST bodies share one:
    their keys differ); size 0 keeps nothing and asks for no position."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._entries: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()
        # The newest committed position seen. Positions only grow, unless
        # the database was restored from a backup: then nothing kept holds.
        self._newest = 0

    def holds(self, key: Hashable) -> bool:
        """Whether anything is kept for key, at whatever position."""
        return key in self._entries

    def lookup(self, key: Hashable, position: int) -> V | None:
        """The value kept for key at the committed position, if any."""
        if position < self._newest:
            self._entries.clear()
        self._newest = position
        entry = self._entries.get(key)
        if entry is None or entry[0] != position:
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def keep(self, key: Hashable, position: int, value: V) -> None:
        """Keep value, read after the journal stood at position: at least
        that new, so it never serves anything older."""
        if position < self._newest:
            # The journal moved on (or went back) while it was read: it
            # would never be served, or be served after a restore that
            # happened to reach the same position with other rows.
            return
        self._entries[key] = (position, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    async def get_or_read(
        self,
        key: Hashable,
        committed: Callable[[], Awaitable[int]],
        read: Callable[[], Awaitable[tuple[V, bool]]],
    ) -> V:
        """The value for key as of the committed position: cached, or
        read(), which returns the value and whether it may be kept (no errors)."""
        if not self.size:
            return (await read())[0]
        position = await committed()
        value = self.lookup(key, position)
        if value is not None:
            return value
        value, keep = await read()
        if keep:
            self.keep(key, position, value)
        return value
