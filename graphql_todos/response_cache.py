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


class ResponseCache:
    """One per process, for GraphQL queries and REST reads alike (their keys
    differ); size 0 keeps nothing and asks for no position."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._entries: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        # The newest committed position seen. Positions only grow, unless
        # the database was restored from a backup: then nothing kept holds.
        self._newest = 0

    async def get_or_read(
        self,
        key: Hashable,
        committed: Callable[[], Awaitable[int]],
        read: Callable[[], Awaitable[tuple[bytes, bool]]],
    ) -> bytes:
        """The response for key as of the committed position: cached, or
        read(), which returns the body and whether it may be kept (no errors)."""
        if not self.size:
            return (await read())[0]
        position = await committed()
        if position < self._newest:
            self._entries.clear()
        self._newest = position
        entry = self._entries.get(key)
        if entry is not None and entry[0] == position:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        # Read after the position was: the body is at least that new, so
        # keeping it under that position never serves anything older.
        body, keep = await read()
        if keep:
            self._entries[key] = (position, body)
            self._entries.move_to_end(key)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return body
