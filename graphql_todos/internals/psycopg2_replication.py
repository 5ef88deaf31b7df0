"""psycopg2's logical replication protocol, the one thing the app takes
from psycopg2 (psycopg 3 has no replication protocol): the sequencer's
stream of its slot (live/sequencer.py). Nothing else of psycopg2 is used.

Assumes (tests/internals/test_psycopg2_replication.py pins each):
- a LogicalReplicationConnection's cursor, after `start_replication` with
  decode=False, gives each message by `read_message()` as an object with
  `data_start` (the message's LSN, an int) and `payload` (bytes), or None
  at once when none is buffered (it never blocks);
- the cursor's `fileno()` can be waited on by poll() for more (poll, not
  select: a process holding thousands of sockets gives a stream made
  later a descriptor past select's 1024);
- `send_feedback(flush_lsn=L, force=True)` confirms everything through L
  to the server at once (without force, psycopg2 only notes it, to send
  at its next status interval, 10 s later): the slot's confirmed_flush_lsn
  moves to L, and a stream started
  again on the slot does not give a transaction whose commit ended at or
  before L; what was not confirmed is given again;
- `send_feedback(force=True)` with no LSN sends a status update at once
  with the LSNs already given (it confirms nothing new), and a walsender
  that slept through a flush (NUDGE_SECONDS) sends the flushed commit then;
- a lost connection raises a psycopg2.Error subclass from read_message or
  send_feedback (ReplicationLost here);
- the walsender answers `replication=database` connections, which pg_hba
  matches as connections to that database (not the `replication` line).
"""

from __future__ import annotations

import math
import select
import time
from typing import Any

import psycopg2
import psycopg2.extras

# While the stream is quiet, a status update every NUDGE_SECONDS. PostgreSQL
# 16 to 18's walsender can sleep through a commit's flush: WalSndWaitForWal
# reads the flushed position, then WalSndWait joins the condition variable
# that a flush broadcasts on; a flush between the two wakes no one, and the
# commit waits, flushed but unsent, for the next WAL or the next message
# from us (10 s: psycopg2's status interval). A message wakes the walsender
# to look again (docs/design/journal-decoding.md, "The walsender's missed
# wakeup"). PostgreSQL 15 sets each walsender's latch, which is not lost.
NUDGE_SECONDS = 0.05


class ReplicationLost(RuntimeError):
    """The replication connection failed (the server went, the slot was dropped or lost)."""


class Stream:
    """A logical slot streamed over a walsender, from its confirmed LSN on."""

    def __init__(self, dsn: str, slot: str, options: dict[str, str], nudge_seconds: float = NUDGE_SECONDS) -> None:
        self.nudge_seconds = nudge_seconds
        # When the quiet stream next sends a status update.
        self._nudge_at = time.monotonic() + nudge_seconds
        try:
            self._conn = psycopg2.connect(
                dsn,
                connection_factory=psycopg2.extras.LogicalReplicationConnection,
                application_name="graphql-todos sequencer stream",
                # A server gone without a FIN is noticed (as the hub's listener does).
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )
            self._cur: Any = self._conn.cursor()
            self._cur.start_replication(slot_name=slot, decode=False, options=options)
            self._readable = select.poll()
            self._readable.register(self._cur.fileno(), select.POLLIN)
        except psycopg2.Error as exc:
            self.close()
            raise ReplicationLost(str(exc).strip()) from exc

    def read(self, limit: int, timeout: float) -> list[tuple[int, bytes]]:
        """What is buffered now, up to `limit` messages, as (LSN, payload);
        when nothing is, waits up to `timeout` seconds for something."""
        messages: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        try:
            while len(messages) < limit:
                message = self._cur.read_message()
                if message is not None:
                    messages.append((message.data_start, message.payload))
                    continue
                # Readable may be a keepalive only (read_message takes it and gives None): wait on.
                now = time.monotonic()
                if messages or now >= deadline:
                    break
                if now >= self._nudge_at:
                    self._cur.send_feedback(force=True)
                    self._nudge_at = now + self.nudge_seconds
                if self._readable.poll(max(0, math.ceil((min(deadline, self._nudge_at) - now) * 1000))):
                    self._nudge_at = time.monotonic() + self.nudge_seconds
        except psycopg2.Error as exc:
            raise ReplicationLost(str(exc).strip()) from exc
        return messages

    def confirm(self, lsn: int) -> None:
        """Everything through `lsn` is journaled: the server may let its WAL go."""
        try:
            self._cur.send_feedback(flush_lsn=lsn, force=True)
            self._nudge_at = time.monotonic() + self.nudge_seconds
        except psycopg2.Error as exc:
            raise ReplicationLost(str(exc).strip()) from exc

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
