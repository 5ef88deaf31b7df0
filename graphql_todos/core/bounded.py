"""Bounded by construction: the one least-recently-used cache every layer keeps, and the one
time-bounded send every stream makes."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar, overload

from graphql_todos.core.errors import ClientStalled

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class LRU(Generic[K, V]):
    """At most `size` entries; using one makes it the last to go (size 0 keeps nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        """The value kept for key, now the most recently used; else default."""
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: K, value: V) -> None:
        """Keep value for key, forgetting the least recently used beyond size."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for key, or make()'s, kept (None is a value like any other)."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = make()
        self.put(key, value)
        return value

    def pop(self, key: K) -> V | None:
        """Forget key, returning what was kept for it."""
        return self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


async def bounded_send(send: Awaitable[None], seconds: float) -> None:
    """Await a send for at most `seconds`: a client that took nothing for that long stopped
    reading, and would otherwise hold its stream (and its place in the journal) forever."""
    try:
        async with asyncio.timeout(seconds):
            await send
    except TimeoutError:
        raise ClientStalled(seconds) from None
