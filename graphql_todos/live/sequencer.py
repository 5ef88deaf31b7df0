"""The sequencer of JOURNAL=decoded (docs/design/journal-decoding.md): one
per database, it reads the database's logical slot and writes the journal
after commit, whole transactions in commit order, so no writer takes the
commit-order lock.

Every app process runs one; the one that holds the sequencer's advisory
lock (tried every second on a connection of its own) streams the slot.
When it dies, its lock and its walsender go with its connections, and the
next process to try streams on from the slot's confirmed LSN. A batch is
confirmed to the server only after the journal's commit: a crash between
the two streams the batch again, and each entry's source (its change's LSN)
meets the journal's unique index, so each change is journaled once.

The stream runs in a thread (psycopg2's protocol blocks); the journal is
written by an ordinary psycopg connection in the same thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson
import psycopg

from graphql_todos.core import metrics
from graphql_todos.core.journal_mode import DECODED, GAP, PGOUTPUT_OPTIONS, slot_name
from graphql_todos.core.pgoutput import JOURNAL, Decoder
from graphql_todos.internals.psycopg2_replication import ReplicationLost, Stream

logger = logging.getLogger(__name__)

# The sequencer's session lock, per database (7305202418 is retention's).
LOCK_KEY = 7305202419
# The most messages read into one batch; whole transactions are journaled.
BATCH = 5000
# How long a read waits for WAL before the sequencer looks up again (to
# stop, to report its slot); and how long a failure waits before a retry.
IDLE_SECONDS = 1.0
# The slot as the server has it (NULL: none), and how far behind it is.
SLOT = """
SELECT wal_status, pg_current_wal_lsn() - confirmed_flush_lsn
FROM pg_replication_slots WHERE slot_name = %s
"""
WAL_STATUSES = ("reserved", "extended", "unreserved", "lost")
# How many of these xids (32 bits, as decoded; each taken as the xid8
# nearest the snapshot's xmax) this statement's snapshot cannot see yet. A commit is decoded once its record is flushed,
# which is before its backend leaves the procarray (microseconds, longer
# when it is descheduled): journaled then, an entry could be seen by a read
# that does not see its row, and that read's cursor would pass a change it
# lacks (core/read_cursors.py). So a batch waits until this is 0: every
# snapshot taken after it sees the batch's commits.
RUNNING = """
SELECT count(*) FROM unnest(%s::bigint[]) x, (SELECT pg_current_snapshot() AS s) now, (SELECT
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) edge
WHERE NOT pg_visible_in_snapshot(
    (edge.xmax + ((x - edge.xmax + 2147483648) %% 4294967296 + 4294967296) %% 4294967296 - 2147483648)::text::xid8, now.s
)
"""
# The pause between looks, and the most a batch waits (then it is journaled, with a warning).
RUNNING_PAUSE, RUNNING_SECONDS = 0.0002, 5.0


def until_visible(conn: psycopg.Connection[Any], xids: list[int]) -> bool:
    """Once every snapshot sees these transactions (False: not yet, after RUNNING_SECONDS)."""
    deadline = time.monotonic() + RUNNING_SECONDS
    while conn.execute(RUNNING, (xids,)).fetchone() != (0,):
        if time.monotonic() > deadline:
            logger.warning("journal sequencer: transactions %s still running after their commit was decoded", xids)
            return False
        time.sleep(RUNNING_PAUSE)
    return True


class Sequencer:
    """The process's candidate sequencer: start() and stop() from the app's lifespan."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.holding = False
        self.batches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="journal sequencer", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop streaming (at most IDLE_SECONDS later); the lock goes with the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, application_name="graphql-todos sequencer") as conn:
                    while not self._stop.is_set():
                        if conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone() == (True,):
                            self.holding = True
                            self._hold(conn)
                        else:
                            self._stop.wait(IDLE_SECONDS)
            except (psycopg.Error, ReplicationLost) as exc:
                logger.warning("journal sequencer failed (retry in %.0fs): %s", IDLE_SECONDS, exc)
            except Exception:  # never die silently: log, and try again
                logger.exception("journal sequencer failed (retry in %.0fs)", IDLE_SECONDS)
            self.holding = False
            self._stop.wait(IDLE_SECONDS)

    def _hold(self, conn: psycopg.Connection[Any]) -> None:
        """Stream the slot and journal it, until stopped (or it fails)."""
        if conn.execute("SELECT mode FROM journal_mode").fetchone() != (DECODED,):
            # Switched back while this process ran (its sequencer was not streaming then):
            # the triggers journal now, and a slot made again would journal each change twice.
            logger.error("journal sequencer: the database journals by its triggers now; restart with JOURNAL=trigger")
            self._stop.set()
            return
        slot = slot_name(conn.info.dbname)
        self._ensure_slot(conn, slot)
        stream = Stream(self.dsn, slot, PGOUTPUT_OPTIONS)
        decoder = Decoder()
        logger.info("journal sequencer streaming slot %s", slot)
        pending: list[tuple[int, bytes]] = []
        done = 0  # pending's messages through its last Commit
        reported = 0.0
        try:
            while not self._stop.is_set():
                read = stream.read(BATCH, 0 if done else IDLE_SECONDS)
                for message in read:
                    pending.append(message)
                    if message[1][:1] == b"C":
                        done = len(pending)
                if done and (not read or done >= BATCH):
                    batch, pending, done = pending[:done], pending[done:], 0
                    if entries := decoder.decode(batch):
                        until_visible(conn, sorted({entry["xid"] for entry in entries}))
                        conn.execute(JOURNAL, (orjson.dumps(entries).decode(),))
                    self.batches += 1
                    # After the journal's commit (autocommit): a crash before this streams the batch again.
                    stream.confirm(batch[-1][0])
                if time.monotonic() - reported > IDLE_SECONDS:
                    self._report(conn, slot)
                    reported = time.monotonic()
        finally:
            stream.close()

    def _ensure_slot(self, conn: psycopg.Connection[Any], slot: str) -> None:
        """The slot, made again if it was dropped or lost, with the gap recorded."""
        found = conn.execute(SLOT, (slot,)).fetchone()
        if found is not None and found[0] != "lost":
            return
        if found is not None:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        # The slot first: what commits after it is decoded; the gap is what came before.
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        conn.execute(GAP)
        logger.warning(
            "journal sequencer: slot %s was %s; made again, cursors before the newest entry expire"
            " (writes made without a slot have no journal entries)", slot, "lost" if found else "missing",
        )

    def _report(self, conn: psycopg.Connection[Any], slot: str) -> None:
        """The slot's lag and WAL status, for /metrics (at most once a second)."""
        found = conn.execute(SLOT, (slot,)).fetchone()
        status, lag = found if found is not None else ("lost", None)
        metrics.SLOT_LAG.set(int(lag or 0))
        for name in WAL_STATUSES:
            metrics.SLOT_WAL_STATUS.labels(name).set(name == status)

