"""Where the journal stands for a subscribe from now, asked of the hub's
LISTEN connection: one round trip for every subscribe asking meanwhile,
answered once every notification of a commit visible before it was sent is
heard; the journal's read when that cannot be proved."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

import psycopg

from graphql_todos.core.journal import Journal, Mark

_CONNECTION_OK = psycopg.pq.ConnStatus.OK
_COMMAND_OK = psycopg.pq.ExecStatus.COMMAND_OK
_ASK = b"NOTIFY graphql_todos_now"
_ASK_EVERY = 0.002


class Listener(Protocol):
    """The hub, as a round trip's answer reads it."""

    journal: Journal
    # The newest journal position delivered to subscribers.
    position: int

    def take(self, read: list[bytes]) -> bool:
        """Publish a read's changes; True when the journal must be read."""


class Asks:
    """The subscribes asking for now: those waiting for the next round trip,
    for the one in flight, and for the journal read after a gap its reply
    came with.

    The round trip's reply comes after every notification of a commit
    visible before it was sent (PostgreSQL 15 on: its NOTIFY marks the
    backend to read its queue, which it does before ReadyForQuery; an empty
    query is not enough, since a commit is visible to others a moment
    before it signals its listeners: tests/live/test_hub_now.py saw 7 of
    300 asks answered one position short)."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        # Trigger mode on PostgreSQL 15 on (set as the listener connects): a
        # decoded position is the sequencer's, given after the commit.
        self.on_listener = False
        # The listener's connection while the hub reads it (its lock held
        # by payloads(), so a query sent on it is the hub's alone).
        self.reading: psycopg.AsyncConnection[Any] | None = None
        # The round trip in flight's subscribes, and when it was sent.
        self.asked: list[asyncio.Future[int]] | None = None
        self.asked_at = 0.0
        self._asking: list[asyncio.Future[int]] = []
        self._after_catch_up: list[asyncio.Future[int]] = []
        self._replied_ok = True
        self._ask_pending = False

    def now(self) -> Awaitable[int]:
        """The hub's position once the next round trip is answered; the
        journal's read when positions come from the sequencer."""
        if not self.on_listener:
            return self.listener.journal.position()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        if not self._asking and self.reading is not None and self.asked is None:
            self._ask_soon(loop)
        self._asking.append(waiter)
        return waiter

    def read_on(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The hub reads `conn` now: a round trip for those who asked while it was away from it."""
        self.reading = conn
        if self._asking and self.asked is None:
            self._ask_soon(asyncio.get_running_loop())

    def _ask_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """The next round trip, once this turn of the loop is over (the
        subscribes it brings in, read from many sockets at once, share it),
        and no sooner than _ASK_EVERY after the last: under a storm of
        subscribes (one every 0.3 ms) a round trip each cost about what the
        pooled read did; paced, one serves several."""
        if self._ask_pending:
            return
        self._ask_pending = True
        at = self.asked_at + _ASK_EVERY
        if at > loop.time():
            loop.call_at(at, self._ask_now)
        else:
            loop.call_soon(self._ask_now)

    def _ask_now(self) -> None:
        self._ask_pending = False
        if self._asking and self.reading is not None and self.asked is None:
            self._ask(self.reading)

    def _ask(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The round trip for the subscribes asking: a NOTIFY on a channel
        no one listens to. Its commit marks the listener's backend (its own)
        to read the notification queue before it answers, so every commit
        visible before the ask is heard, signalled to it yet or not (a
        commit is visible before it signals its listeners)."""
        pgconn = conn.pgconn
        try:
            pgconn.send_query(_ASK)
            pgconn.flush()
        except psycopg.Error:
            # The connection is lost: the listener's read finds it so.
            self.fall_back()
            return
        self.asked, self._asking = self._asking, []
        self._replied_ok = True
        self.asked_at = asyncio.get_running_loop().time()

    def answered(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """Answer the subscribes whose round trip's reply is all in (after
        the notifications that came before its ReadyForQuery), and send the
        next; True when those notifications left a gap (their answer waits
        for the journal's read: caught_up)."""
        if self.asked is not None:
            pgconn = conn.pgconn
            while not pgconn.is_busy():
                if (result := pgconn.get_result()) is None:
                    break
                self._replied_ok &= result.status == _COMMAND_OK
            else:
                return False  # not all in yet: a later read brings the rest
            if not self._replied_ok or pgconn.status != _CONNECTION_OK:
                # Not its reply (the backend ending, say): no proof; the journal's read answers.
                self.fall_back()
                return False
            # libpq parses what follows a result only once it is taken:
            # notifications sent between the result and ReadyForQuery.
            late = []
            while (notify := pgconn.notifies()) is not None:
                late.append(notify.extra)
            asked, self.asked = self.asked, None
            if late and self.listener.take(late):
                self._after_catch_up.extend(asked)
                return True
            _answer(asked, self.listener.position)
        if self._asking and self.asked is None:
            self._ask_soon(asyncio.get_running_loop())
        return False

    def caught_up(self) -> None:
        """The journal's read after a reply's gap is done: answer those who waited for it."""
        if self._after_catch_up:
            caught_up, self._after_catch_up = self._after_catch_up, []
            _answer(caught_up, self.listener.position)

    def fall_back(self) -> None:
        """The subscribes waiting on the listener, answered by the journal's read instead."""
        waiting = [*self._asking, *(self.asked or ()), *self._after_catch_up]
        self._asking, self.asked, self._after_catch_up = [], None, []
        if not waiting:
            return

        def answer(read: asyncio.Future[Mark]) -> None:
            if read.cancelled():
                _answer(waiting, None)
            elif (exc := read.exception()) is not None:
                _answer(waiting, None, exc)
            else:
                _answer(waiting, read.result().position)

        self.listener.journal.mark().add_done_callback(answer)


def _answer(waiters: list[asyncio.Future[int]], position: int | None, error: BaseException | None = None) -> None:
    """Each waiter still waiting (its subscribe may have given up): the
    position; else the error; else (neither: the read was cancelled) cancelled."""
    for waiter in waiters:
        if waiter.done():
            continue
        if position is not None:
            waiter.set_result(position)
        elif error is not None:
            waiter.set_exception(error)
        else:
            waiter.cancel()
