"""uvicorn's keep-alive ping of WebSockets, by one pinger per event loop: every `tick` it pings, in
one batch, the connections whose ping is due and fails those whose last ping got no pong in time,
instead of two timers per connection (an idle server's CPU, docs/design/people.md section 11)."""

from __future__ import annotations

import asyncio
import struct
import weakref
from collections import deque
from typing import Protocol

# The pinger wakes at most this often: a dead peer is failed at most a tick
# after its ping timeout, as uvicorn's own timer would.
TICK_SECONDS = 1.0


class Pinged(Protocol):
    """What the pinger needs of a connection (WebSocketProtocol)."""

    pending_ping_payload: bytes | None

    def keepalive_ping(self, payload: bytes, now: float) -> bool: ...

    def keepalive_timeout(self) -> None: ...


class Pinger:
    """The keep-alive of the connections of one event loop sharing one
    `interval` and `timeout` (seconds; timeout None: never fail one).

    As uvicorn's: a connection is pinged `interval` after its last ping was
    sent, once that ping was answered (at once when the answer comes later);
    one whose ping is unanswered `timeout` after it was sent is failed
    (`keepalive_timeout`). With timeout None, pinged every interval,
    answered or not. Both happen at the first tick after they are due.
    Since all share the interval (and the timeout), pings sent in time order
    fall due in that order: two FIFOs, no heap and no timer per connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None) -> None:
        self.loop = loop
        self.interval = interval
        self.timeout = timeout
        self.tick = min(TICK_SECONDS, interval / 4, TICK_SECONDS if timeout is None else timeout / 4)
        self.members: set[Pinged] = set()
        # To ping: connections, and when each is due, in two FIFOs side by side
        # (a (time, connection) tuple each was one object more per open socket
        # for the collector to walk). (deadline, connection, payload): to fail
        # unless answered (one per ping in flight, a pong's time at most).
        self._due: deque[Pinged] = deque()
        self._due_at: deque[float] = deque()
        self._deadlines: deque[tuple[float, Pinged, bytes]] = deque()
        # Answered after their ping was due: pinged at the next tick.
        self._late: set[Pinged] = set()
        self._overdue: set[Pinged] = set()
        self._sequence = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tick_at = 0.0

    def add(self, connection: Pinged) -> None:
        """Pings `connection` every interval from now on."""
        self.members.add(connection)
        self._due.append(connection)
        self._due_at.append(self.loop.time() + self.interval)
        if self._timer is None:
            self._schedule(self.loop.time() + self.tick)

    def discard(self, connection: Pinged) -> None:
        """Forgets `connection` (its entries in the FIFOs are dropped when they come up)."""
        self.members.discard(connection)
        self._late.discard(connection)
        self._overdue.discard(connection)
        if not self.members and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._due.clear()
            self._due_at.clear()
            self._deadlines.clear()

    def answered(self, connection: Pinged) -> None:
        """`connection`'s pong came: pinged at the next tick if it was due."""
        if connection in self._overdue:
            self._overdue.discard(connection)
            self._late.add(connection)

    def _run(self) -> None:
        # Ticks keep to a grid (call_at, not call_later from each run): a ping
        # sent at a tick has its deadline on a later tick (timeout a multiple of
        # tick, as set), so a dead peer is failed at most a tick after
        # interval + timeout. Half a tick of slack absorbs float error.
        tick = self._tick_at
        horizon = tick + self.tick / 2
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= horizon:
            _, connection, payload = deadlines.popleft()
            if connection in self.members and connection.pending_ping_payload == payload:
                self.discard(connection)
                connection.keepalive_timeout()
        due, due_at = self._due, self._due_at
        ready = list(self._late)
        self._late.clear()
        while due_at and due_at[0] <= horizon:
            due_at.popleft()
            connection = due.popleft()
            if connection not in self.members:
                continue
            if self.timeout is not None and connection.pending_ping_payload is not None:
                self._overdue.add(connection)
            else:
                ready.append(connection)
        now = self.loop.time()
        for connection in ready:
            self._ping(connection, tick, now)
        self._timer = None
        if self.members:
            self._schedule(tick + self.tick)

    def _schedule(self, at: float) -> None:
        self._tick_at = at
        self._timer = self.loop.call_at(at, self._run)

    def _ping(self, connection: Pinged, tick: float, now: float) -> None:
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        payload = struct.pack("!I", self._sequence)
        if not connection.keepalive_ping(payload, now):
            self.discard(connection)
            return
        self._due.append(connection)
        self._due_at.append(tick + self.interval)
        if self.timeout is not None:
            self._deadlines.append((tick + self.timeout, connection, payload))


_PINGERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[float, float | None], Pinger]] = (
    weakref.WeakKeyDictionary()
)


def pinger(loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None) -> Pinger:
    """The pinger of `loop` for connections pinged every `interval` with `timeout`."""
    # Asked at every open: a WeakKeyDictionary's setdefault makes a weak
    # reference with a callback each time, its get only a plain one (shared).
    # What the WeakKeyDictionary's `get` does, without its Python call
    # (tests/internals/test_uvicorn_keepalive.py pins it).
    pingers = _PINGERS.data.get(weakref.ref(loop))  # type: ignore[attr-defined]
    if pingers is None:
        pingers = _PINGERS[loop] = {}
    found = pingers.get((interval, timeout))
    if found is None:
        found = pingers[(interval, timeout)] = Pinger(loop, interval, timeout)
    return found
