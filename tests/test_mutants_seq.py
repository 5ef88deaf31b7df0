"""Behaviour of JOURNAL=decoded's sequencer (live/sequencer.py, its stream
internals/psycopg2_replication.py, its decoder core/pgoutput.py) no other
test held: each case kills a hand-made mutant that the rest of the suite
let live. Where the state cannot be had on the suite's shared server (a
slot the server invalidated, an xid epoch past 0), a server of the test's
own is made (tests/pgserver.py).

The run (2026-12-08, on 86f1b56's app code; each mutant applied alone,
then tests/live/test_sequencer.py, tests/internals/test_psycopg2_replication.py,
tests/live/test_sequencer_wakeup.py or tests/test_accounts.py and friends
run, -x). K: killed by the suite; G: a gap, killed by the test named here
or in tests/test_mutants_auth.py; E: equivalent (why). 63 mutants: 34 K,
21 G, 8 E (Q24 not made).

live/sequencer.py
Q01 :138 Commit marked at b"B"                    K test_the_later_xid_committing_first...
Q02 :139 done = len(pending) - 1                  K test_the_later_xid_committing_first...
Q03 :140 done >= BATCH as >                       E BATCH is a soft cap (pending carries over): one read more
Q04 :140 `not read` as `read` (a batch a read)    G test_transactions_read_in_pieces...
Q05 :141 pending after the batch dropped          G test_transactions_read_in_pieces...
Q06 :143 until_visible not called                 K test_the_sequencer_waits_for_a_batchs...
Q07 :147 confirm(batch[0]) for batch[-1]          K test_the_later_xid_committing_first...
Q08 :147 confirm before the journal INSERT        K test_databases_named_as_no_slot...
Q09 :135 read timeouts swapped                    G test_a_lone_write_is_journaled_without...
Q10 :109 no wait between tries for the lock       G test_a_sequencer_without_the_lock...
Q11 :114 holding not reset after a failure        G test_a_sequencer_without_the_lock...
Q12 :123 trigger mode: _stop not set              K test_a_sequencer_left_running_after...
Q13 :157 a 'lost' slot taken as live              G test_a_slot_the_server_invalidated...
Q14 :162 GAP before the slot's creation           K test_a_lost_slot_is_made_again... (a race it wins)
Q15 :163 GAP not recorded                         K test_a_lost_slot_is_made_again...
Q16 :69  deadline test inverted                   K test_a_batch_waits_until_no_snapshot...
Q17 :175 WAL status gauge inverted                K test_the_slot_is_in_the_metrics
Q18 :58  xid widened as epoch 0 (x::xid8)         G test_a_batch_waits_for_its_transactions_in_a_cluster...
Q19 :160 a lost slot not dropped first            G test_a_slot_the_server_invalidated...
Q20 :149 _report not called                       K test_the_slot_is_in_the_metrics
Q21 :131 done starts at 1                         K test_one_entry_per_change... (IndexError, retried for good)
Q22 :68  until_visible's while as if              K test_a_batch_waits_until_no_snapshot...
Q23 :147 confirm only a batch with entries        K test_a_batch_journaled_but_not_confirmed... (journaled() waits)
Q25 :152 stream.close() dropped                   K test_a_failed_batch_is_not_confirmed...
Q26 :110 ReplicationLost left to `except Exception` E logged as ERROR with a traceback, retried alike

internals/psycopg2_replication.py
W1 :89  `messages or` dropped (waits out timeout)  G test_a_lone_write_is_journaled_without...
W2 :91  no nudge                                  K test_a_quiet_stream_sends_status_updates..., test_sequencer_wakeup
W3 :103 confirm without force=True                K test_a_confirmed_transaction_is_not_streamed_again...
W4 :94  poll to the deadline, not the nudge        K test_a_quiet_stream_sends_status_updates...
W5 :82  `<= limit` (limit + 1 messages)           E BATCH is a soft cap (Q03)

core/pgoutput.py
D1 :78  repeat always 0 (COPY's "+n" sources)     E no journaled table takes a multi-insert: each has a
                                                    volatile default (gen_random_uuid), so COPY is row by row
D2 :92  key not put in the entries before it      G test_a_key_sent_after_its_transactions_changes...
D3 :121 an UPDATE that changed nothing journaled  K test_one_entry_per_change_with_its_key...
D4 :165 NOT EXISTS dropped (conflict alone)       G test_a_batch_streamed_again_takes_no_positions

rest/auth.py (tests/test_mutants_auth.py)
A01 :70  accounts check inverted                  K test_sign_up_in_and_out
A02 :41  session "current" inverted               K test_sessions_are_listed_and_revoked...
A03 :54  used_time: created_time                  G test_a_token_never_used_says_so
A04 :82  no Retry-After                           K test_failures_are_limited_per_account
A05 :95  sign-in's TooManyAttempts uncaught       K test_failures_are_limited_per_account
A06 :121 change_password's TooManyAttempts uncaught G test_guessing_the_current_password...
A07 :101 sign-up 200                              K test_sign_up_in_and_out
A08 :111 sign-out does not clear the cookie       K test_sign_up_in_and_out
A09 :128 me's mode inverted                       K test_sign_up_in_and_out
A10 :144 session id in the URL: 422               K test_sessions_are_listed_and_revoked...
A11 :169 token id in the URL: 422                 G test_a_malformed_token_id_in_the_url...
A12 :159 expires_field not passed                 E its default is the same name
A13 :78  client address ""                        K test_failures_and_sign_ups_are_limited_per_address
A14 :78  user agent None                          K test_sessions_are_listed_and_revoked...
A15 :35  username lower-cased                     E usernames are lower-case by rule
A16 :45  user agent cut at 64                     G test_every_token_and_a_session_s_whole_user_agent...
A17 :152 tokens[:1] listed                        G test_every_token_and_a_session_s_whole_user_agent...
A18 :157 a token's name not required (500)        G test_a_body_without_a_required_field_is_422...
A19 :118 the new password not required (500)      G test_a_body_without_a_required_field_is_422...

rest/params.py (tests/test_mutants_auth.py)
P01 :15  in_url's 400 as 422                      K test_list_refuses_a_completed_filter...
P02 :33  completed=1 taken (as false)             G test_completed_takes_true_and_false_alone
P03 :35  `!= "false"` for `== "true"`             E the value is one of the two by then
P04 :43  isascii dropped                          G test_a_page_takes_ascii_digits_alone
P05 :43  lstrip("-") for removeprefix             K test_the_collection_comes_in_pages... (--1)
P06 :43  length cap dropped (int() over 4,300 digits) K test_the_collection_comes_in_pages...
P07 :40  `not value` for `value is None`          G test_a_page_takes_ascii_digits_alone (?limit=)
P08 :23  field names swapped                      K test_the_collection_comes_in_pages... (message names)
P09 :49  offset not refused on a stream           K test_the_event_stream_refuses_a_list_read_s_parameters[offset=0]
P10 :21  completed_filter inside the try          E completed_filter raises in_url's RequestError, not BadUserInput
"""

from __future__ import annotations

import subprocess
import time
from typing import Any, Self

import psycopg
import pytest

from graphql_todos.core.journal_mode import journal_pending, slot_name
from graphql_todos.core.migrations import migrate
from graphql_todos.internals.psycopg2_replication import Stream
from graphql_todos.live import sequencer as sequencer_module
from tests.decoded import journaled, sequenced
from tests.helpers import wait_until
from tests.live import test_sequencer
from tests.pgserver import POSTGRES_BIN_PATH, RestartablePostgres, restartable_postgres


def _restart(server: RestartablePostgres, *resetwal: str) -> None:
    server.stop()
    if resetwal:
        command = [str(POSTGRES_BIN_PATH / "pg_resetwal"), *resetwal, "-D", str(server.server.pgdata)]
        subprocess.run(command, check=True, capture_output=True, user=server.server.system_user, timeout=60)
    server.start()


def test_a_batch_waits_for_its_transactions_in_a_cluster_past_its_first_xid_epoch() -> None:
    """Decoded xids are 32 bits; the visibility check widens each to the
    xid8 nearest the snapshot's xmax. In a cluster whose epoch is past 0 (as
    every cluster is after 4 billion transactions; pg_resetwal -e makes one
    at once) a running transaction is still seen as running (the xid taken
    as of epoch 0, `x::xid8`, is long past and "visible": the batch went to
    the journal before its rows could be read)."""
    with restartable_postgres() as server:
        _restart(server, "-e", "1")
        dsn = server.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT pg_current_xact_id()::text::bigint >> 32").fetchone() == (1,)
        # The suite's case of the wait (a transaction held open), in this cluster.
        test_sequencer.test_a_batch_waits_until_no_snapshot_counts_its_transactions_as_running(dsn)


def _wal_status(conn: psycopg.Connection[Any]) -> str | None:
    found = conn.execute("SELECT wal_status FROM pg_replication_slots").fetchone()
    return None if found is None else str(found[0])


def test_a_slot_the_server_invalidated_is_made_again_and_the_gap_recorded() -> None:
    """A slot past max_slot_wal_keep_size is invalidated by the server
    (wal_status 'lost'), not dropped: it is still there, and streams no
    more. The next sequencer drops it, makes it again, and records the gap
    (cursors before the newest entry expire); taken as a live slot, every
    stream of it failed and nothing was journaled again."""
    with restartable_postgres() as server:
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
