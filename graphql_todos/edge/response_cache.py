"""Query responses kept as the bytes sent, valid exactly while the journal
stands at the mark they were read at (core/journal.py states the rule): a
hit reflects every change committed before the request arrived. And a
request's `Reading`: how the front door (graphql/fast/front.py), which
keeps whole responses, and the route that answers (the GraphQL fast path,
the REST list read) share that mark across the middleware between them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from graphql_todos.core.bounded import LRU
from graphql_todos.core.journal import Journal, Mark
from graphql_todos.core.people import Principal

V = TypeVar("V")
# The scope entry holding a request's Reading.
READING = "graphql_todos.reading"


@dataclass(slots=True)
class Reading:
    """One request's read of where the journal stands (core/journal.py says
    what a mark promises): asked once per request, by the front door when it
    holds a reply for it, else by the route that reads."""

    # The front door's mark, or what asking for it raised.
    asked: Mark | Exception | None = None
    # The mark of the cache entry the route answered with: the whole
    # response may be kept under it too.
    kept_at: Mark | None = None
    # Whose answer it is (the principal the stack let in): a kept response
    # is replayed only to a request the process knows to be theirs.
    kept_for: Principal | None = None
    # The mark marking() handed a read that has not answered yet.
    read_at: Mark | None = None

    async def mark(self, journal: Journal) -> Mark:
        """The mark the front door asked, else the journal's now."""
        asked = self.asked
        if asked is None:
            return await journal.mark()
        if isinstance(asked, Exception):
            raise asked
        return asked

    def marking(self, journal: Journal) -> Callable[[], Awaitable[Mark]]:
        """mark(), for a read whose answer, once it comes, is whole (no
        errors): kept() then keeps the response at that mark."""

        async def committed() -> Mark:
            self.read_at = await self.mark(journal)
            return self.read_at

        return committed

    def kept(self, principal: Principal | None) -> None:
        """The read marking() began has answered: its response may be kept, for principal."""
        self.kept_at, self.kept_for = self.read_at, principal


class ResponseCache(Generic[V]):
    """One per process and kind of value (GraphQL and REST bodies share one:
    their keys differ); size 0 keeps nothing and asks for no position."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._entries: LRU[Hashable, tuple[Mark, V]] = LRU(size)
        # The position of the mark last looked up.
        self._newest = 0

    def __len__(self) -> int:
        """How many values are kept."""
        return len(self._entries)

    def holds(self, key: Hashable) -> bool:
        """Whether anything is kept for key, at whatever mark."""
        return key in self._entries

    def lookup(self, key: Hashable, mark: Mark) -> V | None:
        """The value kept for key at the committed mark, if any."""
        self._newest = mark.position
        entry = self._entries.get(key)
        if entry is None or entry[0] != mark:
            return None
        self.hits += 1
        return entry[1]

    def keep(self, key: Hashable, mark: Mark, value: V) -> None:
        """Keep value, read after the journal stood at mark: at least that
        new, so it never serves anything older."""
        if mark.position < self._newest:
            return  # the journal moved on while it was read: never served
        self._entries.put(key, (mark, value))

    async def get_or_read(
        self,
        key: Hashable,
        committed: Callable[[], Awaitable[Mark]],
        read: Callable[[], Awaitable[tuple[V, bool]]],
    ) -> V:
        """The value for key as of the committed mark: cached, or read(),
        which returns the value and whether it may be kept (no errors)."""
        if not self.size:
            return (await read())[0]
        mark = await committed()
        value = self.lookup(key, mark)
        if value is not None:
            return value
        value, keep = await read()
        if keep:
            self.keep(key, mark, value)
        return value
