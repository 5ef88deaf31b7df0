"""JOURNAL=decoded's sequencer (live/sequencer.py) against a real server's
slot: commit order, each change once (a redelivered batch, a failover), a
lost slot reported as CURSOR_EXPIRED, and the mode's start errors
(core/journal_mode.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.errors import CursorExpired
from graphql_todos.core.journal import Journal
from graphql_todos.core.journal_mode import (
    DECODED,
    TRIGGER,
    JournalModeError,
    drop_slots,
    journal_pending,
    settle,
    slot_name,
)
from graphql_todos.core.migrations import migrate
from graphql_todos.live import sequencer as sequencer_module
from graphql_todos.live.sequencer import Sequencer, until_visible
from tests.decoded import journaled, sequenced
from tests.helpers import serving, wait_until
from tests.pgserver import restartable_postgres


def _entries(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    journaled(conn)
    return conn.execute(
        "SELECT position, op, todo->>'title', xid::text, mutation FROM todo_changes ORDER BY position"
    ).fetchall()


def _xid(conn: psycopg.Connection[Any]) -> str:
    (xid,) = conn.execute("SELECT pg_current_xact_id()::text").fetchone()  # type: ignore[misc]
    return str(xid)


def test_the_later_xid_committing_first_is_journaled_first(db_dsn: str) -> None:
    """Two writers of one row: positions follow commit order, not xid
    order, and each entry names its transaction's xid (the writer's cursor)."""
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as setup:
        (row,) = setup.execute("INSERT INTO todos (title) VALUES ('a') RETURNING id").fetchone()  # type: ignore[misc]
        with psycopg.connect(db_dsn) as early, psycopg.connect(db_dsn) as late:
            early_xid = _xid(early)
            late.execute("UPDATE todos SET title = 'late' WHERE id = %s", (row,))
            late_xid = _xid(late)
            # The early transaction's UPDATE waits for the late one's row lock.
            update = threading.Thread(target=lambda: early.execute("UPDATE todos SET title = 'early' WHERE id = %s", (row,)))
            update.start()
            late.commit()
            update.join(10)
            early.commit()
        entries = _entries(setup)
    assert int(late_xid) > int(early_xid)
    assert [(e[1], e[2], e[3]) for e in entries[1:]] == [("updated", "late", late_xid), ("updated", "early", early_xid)]


def test_the_slot_is_in_the_metrics(db_dsn: str) -> None:
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
        journaled(conn)
        wait_until(lambda: REGISTRY.get_sample_value(
            "graphql_todos_journal_slot_wal_status", {"status": "reserved"}
        ) == 1, timeout=10)
    assert REGISTRY.get_sample_value("graphql_todos_journal_slot_lag_bytes") is not None


def test_one_entry_per_change_with_its_key_and_one_notification_per_batch(db_dsn: str) -> None:
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("LISTEN todo_changes")
        (started,) = conn.execute("SELECT now()").fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO todos (title) SELECT 'row ' || i FROM generate_series(1, 300) i")
        with conn.cursor().copy("COPY todos (title) FROM STDIN") as copy:
            for i in range(50):
                copy.write_row((f"copied {i}",))
        with conn.transaction():
            conn.execute("SELECT pg_logical_emit_message(true, 'graphql_todos', 'a-key')")
            conn.execute("UPDATE todos SET completed = true WHERE title = 'row 1'")
            conn.execute("UPDATE todos SET completed = true WHERE title = 'row 1'")  # no change: no entry
        entries = _entries(conn)
        notes = [orjson.loads(n.payload) for n in conn.notifies(timeout=1, stop_after=10)]
        # Each entry at its transaction's commit time: after the first write began, not in the future.
        assert conn.execute(
            "SELECT bool_and(changed_at BETWEEN %s AND now()) FROM todo_changes", (started,)
        ).fetchone() == (True,)
    assert [e[0] for e in entries] == list(range(1, 352))
    assert sorted(e[2] for e in entries[:350]) == sorted([f"row {i}" for i in range(1, 301)] + [f"copied {i}" for i in range(50)])
    assert entries[-1][1:3] == ("updated", "row 1") and entries[-1][4] == "a-key"
    # Each transaction's xid with its last position; "through" the batch's last.
    assert all(n["op"] == "batch" and n["through"] == n["position"] == n["xids"][-1][1] for n in notes)
    assert [x for n in notes for x in n["xids"]] == [[entries[299][3], 300], [entries[349][3], 350], [entries[350][3], 351]]


def test_a_batch_journaled_but_not_confirmed_is_journaled_once(db_dsn: str) -> None:
    """A crash between the journal's commit and the confirmation: the slot
    streams the batch again, and the sources already journaled drop it."""
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        journaled(conn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b')")
        conn.execute("DELETE FROM todos WHERE title = 'a'")
        # The sequencer's batch, as it would journal it, without confirming it.
        journal_pending(conn, slot_name(conn.info.dbname), confirm=False)
        with sequenced(db_dsn):
            entries = _entries(conn)
    assert [(e[1], e[2]) for e in entries] == [("created", "a"), ("created", "b"), ("deleted", "a")]


def test_failover_between_two_sequencers_journals_each_change_once(db_dsn: str) -> None:
    with sequenced(db_dsn) as first, psycopg.connect(db_dsn, autocommit=True) as conn:
        second = Sequencer(db_dsn)
        second.start()
        try:
            wait_until(lambda: first.holding != second.holding, timeout=10)
            for i in range(5):
                conn.execute("INSERT INTO todos (title) VALUES (%s)", (f"before {i}",))
            # Journaled before the kill: a kill in the middle of the holder's
            # journal INSERT burns the position it drew (a sequence), and the
            # positions below would have a gap this test is not about.
            journaled(conn)
            # The holder dies: its connections (the lock's, the stream's) are cut.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name LIKE 'graphql-todos sequencer%%'"
            )
            for i in range(5):
                conn.execute("INSERT INTO todos (title) VALUES (%s)", (f"after {i}",))
            wait_until(lambda: first.holding or second.holding, timeout=10)
            entries = _entries(conn)
        finally:
            second.stop()
    assert [e[0] for e in entries] == list(range(1, 11))
    assert [e[2] for e in entries] == [f"before {i}" for i in range(5)] + [f"after {i}" for i in range(5)]


def test_a_lost_slot_is_made_again_and_cursors_before_it_expire(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        with sequenced(db_dsn):
            conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b')")
            journaled(conn)
        # Dropped (as an operator would, or as the server invalidates one past max_slot_wal_keep_size).
        drop_slots(conn, conn.info.dbname)
        conn.execute("INSERT INTO todos (title) VALUES ('unjournaled')")
        with sequenced(db_dsn):
            wait_until(lambda: conn.execute("SELECT through FROM todo_changes_pruned").fetchone() == (2,), timeout=10)
            conn.execute("INSERT INTO todos (title) VALUES ('c')")
            entries = _entries(conn)
    assert [(e[0], e[2]) for e in entries] == [(1, "a"), (2, "b"), (3, "c")]

    async def check(cursor: str) -> int:
        async with AsyncConnectionPool(db_dsn, min_size=1, open=False) as pool:
            return await Journal(pool).check_cursor(cursor)

    with pytest.raises(CursorExpired):
        asyncio.run(check("1"))
    assert asyncio.run(check("2")) == 2


def _streaming(conn: psycopg.Connection[Any], active: bool) -> None:
    """Until a sequencer streams the slot (or none does)."""
    wait_until(lambda: conn.execute(
        "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot_name(conn.info.dbname),)
    ).fetchone() == (active,), timeout=10)


def test_a_trigger_instance_is_refused_while_a_decoded_one_streams(db_dsn: str) -> None:
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        _streaming(conn, True)
        with pytest.raises(JournalModeError, match="stop every JOURNAL=decoded instance"):
            settle(db_dsn, TRIGGER)
        env = {**os.environ, "DATABASE_URL": db_dsn, "JOURNAL": "trigger", "WEB_DIST": ""}
        serve = subprocess.run(
            [sys.executable, "-m", "graphql_todos.cli", "serve"],
            check=False, capture_output=True, text=True, timeout=60, env=env,
        )
    assert serve.returncode == 1
    assert "its sequencer is streaming slot" in serve.stderr and "Traceback" not in serve.stderr + serve.stdout


# Trigger mode's journal, as the database defines it: the journaled tables' triggers and the functions they call.
DEFINITIONS = """
SELECT array_agg(pg_get_triggerdef(t.oid) || pg_get_functiondef(t.tgfoid) ORDER BY t.tgname)
       || ARRAY[pg_get_functiondef('journal_write'::regproc), pg_get_functiondef('journal_expand'::regproc)]
FROM pg_trigger t
WHERE t.tgrelid IN ('todos'::regclass, 'lists'::regclass, 'list_members'::regclass, 'sessions'::regclass,
                    'access_tokens'::regclass) AND NOT t.tgisinternal
"""


def test_switching_back_journals_what_the_slot_held_then_the_trigger_journals(db_dsn: str) -> None:
    bob = "00000000-0000-4000-8000-00000000000b"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        before = conn.execute(DEFINITIONS).fetchone()
        with sequenced(db_dsn):
            conn.execute("INSERT INTO todos (title) VALUES ('a')")
            journaled(conn)
        # Written while no sequencer runs: in the slot only.
        conn.execute("INSERT INTO todos (title) VALUES ('b')")
        conn.execute("INSERT INTO people (id, username) VALUES (%s, 'bob')", (bob,))
        _streaming(conn, False)
        settle(db_dsn, TRIGGER)
        conn.execute("INSERT INTO todos (title) VALUES ('c')")
        conn.execute("UPDATE todos SET title = 'c' WHERE title = 'c'")  # no change: no entry, as ever
        entries = conn.execute(
            "SELECT position, op, todo->>'title', source IS NULL FROM todo_changes ORDER BY position"
        ).fetchall()
        assert conn.execute("SELECT mode, restore FROM journal_mode").fetchone() == ("trigger", None)
        assert conn.execute(DEFINITIONS).fetchone() == before
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
        # Trigger mode's functions are back: a list's entry is journaled and notified at commit.
        conn.execute("LISTEN todo_changes")
        conn.execute("UPDATE lists SET name = 'renamed' WHERE owner_id = %s", (bob,))
        [note] = conn.notifies(timeout=5, stop_after=1)
    assert [e[:3] for e in entries] == [
        (1, "created", "a"), (2, "created", "b"), (3, "list_created", None), (4, "member_added", None), (5, "created", "c"),
    ]
    assert [e[3] for e in entries] == [False, False, False, False, True]
    assert orjson.loads(note.payload)["op"] == "list_updated" and orjson.loads(note.payload)["position"] == 6


def test_a_sequencer_left_running_after_a_switch_back_does_not_stream(db_dsn: str) -> None:
    settle(db_dsn, DECODED)
    settle(db_dsn, TRIGGER)
    sequencer = Sequencer(db_dsn)
    sequencer.start()
    try:
        wait_until(lambda: not sequencer.running, timeout=10)
    finally:
        sequencer.stop()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # No slot made again (it would journal each change a second time).
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)


def test_databases_named_as_no_slot_may_be_each_journal_through_a_slot_of_their_own(
    admin_dsn: str, template_db: str
) -> None:
    """A slot's name takes lower-case letters, digits and the underscore, 63
    bytes of them; a database's name anything: a capital and a hyphen, and two
    long names alike in their first 55 characters, each journal their own
    changes from slots of their own."""
    alike = "gt_" + uuid.uuid4().hex[:12] + "_" + "x" * 40
    names = [f"Gt-{uuid.uuid4().hex[:8]}", alike + "_first", alike + "_second"]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for name in names:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template_db)
                )
            )
        try:
            for name in names:
                dsn = make_conninfo(admin_dsn, dbname=name)
                with sequenced(dsn), psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("INSERT INTO todos (title) VALUES (%s)", (name,))
                    assert [(e[1], e[2]) for e in _entries(conn)] == [("created", name)]
            slots = admin.execute(
                "SELECT database, slot_name FROM pg_replication_slots WHERE database = ANY(%s)", (names,)
            ).fetchall()
            assert sorted(slots) == sorted((name, slot_name(name)) for name in names)
            assert len({slot for _, slot in slots}) == 3
        finally:
            for name in names:
                drop_slots(admin, name)
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_decoded_needs_a_replication_role(admin_dsn: str, db_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS gt_plain")
        admin.execute("CREATE ROLE gt_plain LOGIN")
        admin.execute(f"ALTER DATABASE {psycopg.conninfo.conninfo_to_dict(db_dsn)['dbname']} OWNER TO gt_plain")
    try:
        with pytest.raises(JournalModeError, match=r"the REPLICATION attribute for role gt_plain \(ALTER ROLE"):
            settle(make_conninfo(db_dsn, user="gt_plain"), DECODED)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {psycopg.conninfo.conninfo_to_dict(db_dsn)['dbname']} OWNER TO CURRENT_USER")
            admin.execute("DROP ROLE gt_plain")


def test_decoded_needs_wal_level_logical() -> None:
    """A server of its own at the default wal_level (replica)."""
    with restartable_postgres() as server:
        dsn = server.create_database("plain")
        migrate(dsn)
        with pytest.raises(JournalModeError, match=r"wal_level = logical \(the server's is replica"):
            settle(dsn, DECODED)
        settle(dsn, TRIGGER)


def test_the_app_in_decoded_mode_journals_its_writes_and_its_hub_publishes_them(db_dsn: str) -> None:
    with serving(db_dsn, journal=DECODED) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert isinstance(server.state("sequencer"), Sequencer)
        created = client.post("/api/todos/", json={"title": "decoded"})
        assert created.status_code == 201, created.text
        wait_until(lambda: server.hub.position >= 1, timeout=10)
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            assert [(e[1], e[2]) for e in _entries(conn)] == [("created", "decoded")]


# The journal's INSERT refused while `refused` holds a row: a batch that fails
# as a serialization failure would (40001, a deadlock's victim alike). It
# takes a moment first: the sequencer closes its connections between tries,
# so only a try under way has one to cut.
REFUSING = """
CREATE TABLE refused (at timestamptz DEFAULT now());
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM refused) THEN
        PERFORM pg_sleep(0.2);
        RAISE EXCEPTION 'refused on purpose' USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER refuse BEFORE INSERT ON todo_changes FOR EACH ROW EXECUTE FUNCTION refuse();
"""


def test_a_failed_batch_is_not_confirmed_and_is_journaled_once_when_it_passes(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The journal's INSERT fails (refused, then the sequencer's connection
    cut): the sequencer logs and retries, the slot is not confirmed past the
    batch, and once the failure passes every change, the failed batch's and
    the later ones, is journaled once, in commit order, and notified."""
    caplog.set_level("WARNING", logger="graphql_todos.live.sequencer")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(REFUSING)
        with sequenced(db_dsn) as sequencer:
            conn.execute("INSERT INTO todos (title) VALUES ('a')")
            journaled(conn)
            conn.execute("LISTEN todo_changes")
            conn.execute("INSERT INTO refused DEFAULT VALUES")
            conn.execute("INSERT INTO todos (title) VALUES ('b')")
            (written,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()  # type: ignore[misc]
            wait_until(lambda: caplog.text.count("refused on purpose") >= 2, timeout=10)
            # The connection lost as well, in the middle of a failing try (its INSERT under way).
            wait_until(
                lambda: conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'graphql-todos sequencer' AND wait_event = 'PgSleep'"
                ).fetchall(),
                timeout=10,
            )
            wait_until(lambda: "terminating connection" in caplog.text, timeout=10)
            conn.execute("INSERT INTO todos (title) VALUES ('c')")
            wait_until(lambda: sequencer.holding, timeout=10)
            assert conn.execute(
                "SELECT confirmed_flush_lsn < %s FROM pg_replication_slots WHERE slot_name = %s",
                (written, slot_name(conn.info.dbname)),
            ).fetchone() == (True,)
            assert conn.execute("SELECT count(*) FROM todo_changes").fetchone() == (1,)
            conn.execute("DELETE FROM refused")
            conn.execute("INSERT INTO todos (title) VALUES ('d')")
            entries = _entries(conn)
            notes = [orjson.loads(n.payload) for n in conn.notifies(timeout=1, stop_after=10)]
    assert [e[2] for e in entries] == ["a", "b", "c", "d"]
    assert sorted(p for n in notes for _, p in n["xids"]) == [e[0] for e in entries[1:]]


def test_a_batch_waits_until_no_snapshot_counts_its_transactions_as_running(db_dsn: str) -> None:
    """A commit decoded before its backend left the procarray is not
    journaled until it has: an open transaction stands in for that backend."""
    with psycopg.connect(db_dsn) as running, psycopg.connect(db_dsn, autocommit=True) as conn:
        (xid,) = running.execute("SELECT pg_current_xact_id()::text::bigint & 4294967295").fetchone()  # type: ignore[misc]
        done: list[bool] = []
        waiting = threading.Thread(target=lambda: done.append(until_visible(conn, [xid])))
        waiting.start()
        waiting.join(0.5)
        assert done == []
        running.commit()
        waiting.join(10)
    assert done == [True]


def test_the_sequencer_waits_for_a_batchs_transactions_to_be_visible_before_journaling_it(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequencer asks `until_visible` for each batch's xids (32 bits, as
    decoded) before its journal INSERT: the test above pins the wait, this
    that the sequencer makes it (a late backend cannot be made on purpose)."""
    asked: list[tuple[list[int], int]] = []

    def watched(conn: psycopg.Connection[Any], xids: list[int]) -> bool:
        (already,) = conn.execute(  # type: ignore[misc]
            "SELECT count(*) FROM todo_changes WHERE xid::text::bigint & 4294967295 = ANY(%s)", (xids,)
        ).fetchone()
        asked.append((xids, already))
        return until_visible(conn, xids)

    monkeypatch.setattr(sequencer_module, "until_visible", watched)
    with sequenced(db_dsn), psycopg.connect(db_dsn, autocommit=True) as conn:
        with conn.transaction():
            xid = _xid(conn)
            conn.execute("INSERT INTO todos (title) VALUES ('a'), ('b')")
        entries = _entries(conn)
    assert [(e[2], e[3]) for e in entries] == [("a", xid), ("b", xid)]
    assert asked == [([int(xid) & 0xFFFFFFFF], 0)]
