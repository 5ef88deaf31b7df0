"""Behaviour of JOURNAL=decoded's sequencer (live/sequencer.py) no other
test held: each case kills a hand-made mutant that the rest of the suite
let live. Where the state cannot be had on the suite's shared server (a
slot the server invalidated, an xid epoch past 0), a server of the test's
own is made (tests/pgserver.py)."""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Self

import psycopg
import pytest

from graphql_todos.core.journal_mode import journal_pending, slot_name
from graphql_todos.core.migrations import migrate
from graphql_todos.internals.psycopg2_replication import Stream
from graphql_todos.live import sequencer as sequencer_module
from graphql_todos.live.sequencer import until_visible
from tests.decoded import journaled, sequenced
from tests.helpers import wait_until
from tests.pgserver import POSTGRES_BIN_PATH, RestartablePostgres, restartable_postgres


@contextmanager
def _own_server(tmp_path: Path) -> Iterator[RestartablePostgres]:
    """A server of the test's own. Two made at once by two workers can fail
    (initdb's PANIC: pg_control "Permission denied"): made one at a time."""
    with ExitStack() as stack:
        with open(Path(tempfile.gettempdir()) / "graphql_todos_own_server.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            server = stack.enter_context(restartable_postgres(tmp_path))
        yield server


def _restart(server: RestartablePostgres, *resetwal: str) -> None:
    server.stop()
    if resetwal:
        command = [str(POSTGRES_BIN_PATH / "pg_resetwal"), *resetwal, "-D", str(server.server.pgdata)]
        subprocess.run(command, check=True, capture_output=True, user=server.server.system_user, timeout=60)
    server.start()


def test_a_batch_waits_for_its_transactions_in_a_cluster_past_its_first_xid_epoch(tmp_path: Path) -> None:
    """Decoded xids are 32 bits; the visibility check widens each to the
    xid8 nearest the snapshot's xmax. In a cluster whose epoch is past 0 (as
    every cluster is after 4 billion transactions; pg_resetwal -e makes one
    at once) a running transaction is still seen as running (the xid taken
    as of epoch 0, `x::xid8`, is long past and "visible": the batch went to
    the journal before its rows could be read)."""
    with _own_server(tmp_path) as server:
        _restart(server, "-e", "1")
        dsn = server.dsn()
        with psycopg.connect(dsn) as running, psycopg.connect(dsn, autocommit=True) as conn:
            (wide, xid) = running.execute(  # type: ignore[misc]
                "SELECT pg_current_xact_id()::text::bigint, pg_current_xact_id()::text::bigint & 4294967295"
            ).fetchone()
            assert wide >> 32 == 1
            done: list[bool] = []
            waiting = threading.Thread(target=lambda: done.append(until_visible(conn, [xid])))
            waiting.start()
            waiting.join(0.5)
            assert done == []
            running.commit()
            waiting.join(10)
    assert done == [True]


def _wal_status(conn: psycopg.Connection[Any]) -> str | None:
    found = conn.execute("SELECT wal_status FROM pg_replication_slots").fetchone()
    return None if found is None else str(found[0])


def test_a_slot_the_server_invalidated_is_made_again_and_the_gap_recorded(tmp_path: Path) -> None:
    """A slot past max_slot_wal_keep_size is invalidated by the server
    (wal_status 'lost'), not dropped: it is still there, and streams no
    more. The next sequencer drops it, makes it again, and records the gap
    (cursors before the newest entry expire); taken as a live slot, every
    stream of it failed and nothing was journaled again."""
    with _own_server(tmp_path) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET wal_level = logical")
        _restart(server)
        dsn = server.create_database("lost")
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            with sequenced(dsn):
                conn.execute("INSERT INTO todos (title) VALUES ('a')")
                journaled(conn)
            conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("INSERT INTO todos (title) VALUES ('unjournaled')")

            def lost() -> bool:
                conn.execute("INSERT INTO todos (title) VALUES ('filler')")
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
                return _wal_status(conn) == "lost"

            wait_until(lost, timeout=30)
            conn.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            conn.execute("SELECT pg_reload_conf()")
            with sequenced(dsn):
                wait_until(lambda: conn.execute("SELECT through FROM todo_changes_pruned").fetchone() == (1,), timeout=20)
                conn.execute("INSERT INTO todos (title) VALUES ('c')")
                journaled(conn, timeout=20)
                entries = conn.execute("SELECT position, todo->>'title' FROM todo_changes ORDER BY position").fetchall()
                assert _wal_status(conn) in ("reserved", "extended")
    assert entries == [(1, "a"), (2, "c")]


class _Trickle:
    """The sequencer's stream, giving what the slot sent 4 messages a read
    (as a busy walsender's socket may): reads that end inside transactions."""

    def __init__(self, dsn: str, slot: str, options: dict[str, str]) -> None:
        self.stream = Stream(dsn, slot, options)
        self.held: list[tuple[int, bytes]] = []

    def read(self, limit: int, timeout: float) -> list[tuple[int, bytes]]:
        if not self.held:
            self.held = self.stream.read(limit, timeout)
        taken, self.held = self.held[:4], self.held[4:]
        return taken

    def confirm(self, lsn: int) -> None:
        self.stream.confirm(lsn)

    def close(self) -> None:
        self.stream.close()


def test_transactions_read_in_pieces_are_journaled_whole_and_together(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads that end inside a transaction: the messages after a batch's
    last Commit wait in `pending` for the rest of their transaction (dropped
    with the batch, `pending = []`, the next transaction lost its first rows),
    and while reads keep coming the batch grows: one journal INSERT for many
    transactions, not one per read (journaling each read's transactions at
    once, `read` for `not read`, made a batch of each read that held a Commit)."""
    monkeypatch.setattr(sequencer_module, "Stream", _Trickle)
    monkeypatch.setattr(sequencer_module, "BATCH", 50)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        with sequenced(db_dsn):
            journaled(conn)
        # Written while no sequencer runs: in the slot, whole, before it streams.
        for i in range(60):
            conn.execute("INSERT INTO todos (title) SELECT %s || '.' || n FROM generate_series(1, 3) n", (str(i),))
        with sequenced(db_dsn) as sequencer:
            journaled(conn)
            batches = sequencer.batches
        titles = [title for (title,) in conn.execute("SELECT todo->>'title' FROM todo_changes ORDER BY position")]
    assert titles == [f"{i}.{n}" for i in range(60) for n in (1, 2, 3)]
    # 60 transactions of 6 messages (Begin, Relation, 3 Inserts, Commit), 4
    # a read: 90 reads, 60 of them holding a Commit; BATCH = 50 a batch: 8.
    assert batches < 30, batches


def test_a_lone_write_is_journaled_without_waiting_out_the_idle_read(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet stream is read with IDLE_SECONDS' wait, one with a batch in
    hand with none: a lone commit is journaled as soon as it is read (the
    two timeouts swapped, each batch waited IDLE_SECONDS for more, and a
    quiet stream was polled without pause)."""
    monkeypatch.setattr(sequencer_module, "IDLE_SECONDS", 6.0)
    with psycopg.connect(db_dsn, autocommit=True) as conn, sequenced(db_dsn):
        journaled(conn)
        conn.execute("INSERT INTO todos (title) VALUES ('lone')")
        started = time.monotonic()
        wait_until(lambda: conn.execute("SELECT FROM todo_changes").fetchone() is not None, timeout=10)
        waited = time.monotonic() - started
    assert waited < 3, waited


class _Counted:
    """A connection whose pg_try_advisory_lock statements are counted."""

    def __init__(self, conn: psycopg.Connection[Any], tries: list[int]) -> None:
        self.conn, self.tries = conn, tries

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def execute(self, query: str, params: Any = None) -> Any:
        if "pg_try_advisory_lock" in query:
            self.tries.append(1)
        return self.conn.execute(query, params)


def test_a_sequencer_without_the_lock_tries_for_it_once_an_idle_while(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every process runs a candidate; the ones without the lock try again
    each IDLE_SECONDS (without that wait, each tried without pause: a
    statement loop per process against the database). And one whose
    connection was cut says it holds nothing until it has the lock again
    (`holding` left True after a failure)."""
    tries: list[int] = []
    connect = psycopg.connect
    monkeypatch.setattr(sequencer_module.psycopg, "connect", lambda *a, **k: _Counted(connect(*a, **k), tries))
    monkeypatch.setattr(sequencer_module, "IDLE_SECONDS", 0.2)
    with connect(db_dsn, autocommit=True) as conn, sequenced(db_dsn) as sequencer:
        wait_until(lambda: sequencer.holding, timeout=10)
        # Its connections cut, the lock taken here (once they are gone) before it tries again.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'graphql-todos sequencer%%'"
        )
        conn.execute("SELECT pg_advisory_lock(%s)", (sequencer_module.LOCK_KEY,))
        wait_until(lambda: not sequencer.holding, timeout=10)
        before = len(tries)
        time.sleep(1.0)  # the span counted: a second of tries
        counted = len(tries) - before
    assert 1 <= counted <= 10, counted


def test_a_key_sent_after_its_transactions_changes_is_in_each_of_their_entries(db_dsn: str) -> None:
    """A writer's statement may send its mutation key (a logical message)
    after the rows it changes, in WAL order: the decoder puts the key in the
    transaction's entries before it too, not only in those after (without
    that, the write's own entry had none, and its retry could not find it)."""
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("INSERT INTO todos (title) VALUES ('before')")
            conn.execute("SELECT pg_logical_emit_message(true, 'graphql_todos', 'the-key')")
            conn.execute("INSERT INTO todos (title) VALUES ('after')")
        conn.execute("INSERT INTO todos (title) VALUES ('another')")
        journaled(conn)
        entries = conn.execute("SELECT todo->>'title', mutation FROM todo_changes ORDER BY position").fetchall()
    assert entries == [("before", "the-key"), ("after", "the-key"), ("another", None)]


def test_a_batch_streamed_again_takes_no_positions(db_dsn: str) -> None:
    """A batch journaled but not confirmed (a crash between the two) is
    streamed again: its entries are dropped before they draw a position, so
    the next entry follows the last without a gap (with the index's
    conflict alone as the guard, each dropped entry burned a position)."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        with sequenced(db_dsn):
            journaled(conn)
        conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b')")
        journal_pending(conn, slot_name(conn.info.dbname), confirm=False)
        with sequenced(db_dsn):
            journaled(conn)
            conn.execute("INSERT INTO todos (title) VALUES ('c')")
            journaled(conn)
        entries = conn.execute("SELECT position, todo->>'title' FROM todo_changes ORDER BY position").fetchall()
    assert entries == [(1, "a"), (2, "b"), (3, "c")]
