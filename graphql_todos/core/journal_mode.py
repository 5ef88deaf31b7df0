"""Which writer feeds the journal (JOURNAL): the deferred triggers at commit
(trigger, sql/002-010), or the sequencer decoding the WAL after commit
(decoded, live/sequencer.py; docs/design/journal-decoding.md). The database
records its mode (sql/011's journal_mode); each instance compares it at
start, under the migrations lock, and the first decoded one switches a
trigger database over."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import struct
import time

import orjson
import psycopg

from graphql_todos.core.migrations import LOCK_KEY
from graphql_todos.core.pgoutput import JOURNAL, Decoder

logger = logging.getLogger(__name__)

TRIGGER, DECODED = "trigger", "decoded"
PUBLICATION = "graphql_todos"
# pgoutput's options, for the sequencer's stream and the switch's peek alike:
# protocol 1 (whole transactions, in commit order) and the logical messages
# (a write's mutation key, the staged entries).
PGOUTPUT_OPTIONS = {"proto_version": "1", "publication_names": PUBLICATION, "messages": "true"}
_OPTIONS = [item for pair in PGOUTPUT_OPTIONS.items() for item in pair]
# The slot's messages from its confirmed LSN, as the stream gives them (the
# LSN of a Commit the end of its record), at most about upto_nchanges.
PEEK = (
    "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s, "
    + ", ".join(["%s"] * len(_OPTIONS)) + ")"
)
# The switch's own message: the one transaction the switch must find again.
SWITCH_PREFIX = "graphql_todos_switch"

# What the switch does in one transaction, todos locked against writes:
# the todos' journal triggers go (the sequencer journals the rows), the
# list marks stay as a plain row trigger, and the entries of lists, members
# and access (007's triggers, unchanged) are staged for the sequencer
# (sql/011) instead of written and notified at commit. The sequencer's
# index of sources is built (sql/013: trigger mode's entries do without its
# upkeep; a database switched before 013 has it already); the sources of
# an earlier decoded time are unique too (LSNs only grow).
SOURCE_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS todo_changes_source ON todo_changes (source) WHERE source IS NOT NULL"
TO_DECODED = f"""
LOCK TABLE todos IN EXCLUSIVE MODE;
{SOURCE_INDEX};
UPDATE journal_mode SET mode = 'decoded', restore = (
    SELECT string_agg(pg_get_triggerdef(oid), E';\n' ORDER BY tgname) FROM pg_trigger
    WHERE tgrelid = 'todos'::regclass AND tgname IN ('todos_journal_insert_delete', 'todos_journal_update')
) || E';\n' || pg_get_functiondef('journal_write'::regproc) || E';\n' || pg_get_functiondef('journal_expand'::regproc);
DROP TRIGGER todos_journal_insert_delete ON todos;
DROP TRIGGER todos_journal_update ON todos;
CREATE TRIGGER todos_mark AFTER INSERT OR UPDATE OR DELETE ON todos FOR EACH ROW EXECUTE FUNCTION todos_mark();
CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE sql
AS 'SELECT journal_stage(change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail, p_before_row)';
CREATE OR REPLACE FUNCTION journal_expand(change_op text, p_list uuid, p_person uuid) RETURNS void LANGUAGE sql
AS 'SELECT journal_stage_expand(change_op, p_list, p_person)';
"""
# The switch back, its writes stopped and the slot drained: the marks go,
# so does the index of sources (sql/013), and the todos' journal triggers
# and the functions come back as they were (journal_mode.restore, saved by
# the switch to decoded).
TO_TRIGGER = """
DROP TRIGGER todos_mark ON todos;
DROP INDEX todo_changes_source;
UPDATE journal_mode SET mode = 'trigger', restore = NULL;
"""
# The tables whose changes are journaled: a switch back stops their writes while it drains the slot.
JOURNALED_TABLES = "todos, lists, list_members, sessions, access_tokens"
# A slot lost (past max_slot_wal_keep_size) or dropped: what was written
# meanwhile has no entries. Cursors before the last entry expire
# (CURSOR_EXPIRED, as retention's pruning: clients reload).
GAP = """
UPDATE todo_changes_pruned SET through = greatest(through, (SELECT coalesce(max(position), 0) FROM todo_changes))
"""
# The slot's whole transactions from its confirmed LSN, at most about this many changes a read.
DRAIN_CHANGES = 5000
# The switch's xid (32 bits, as pgoutput and the peek name it), after its
# message: the sequencer skips every transaction up to this one's commit.
MARK_SWITCH = f"""
SELECT pg_logical_emit_message(true, '{SWITCH_PREFIX}', ''),
       (pg_current_xact_id()::text::bigint & 4294967295)::text
"""
# What a decoded instance needs of the server, each check naming what is missing.
SERVER_CHECKS = """
SELECT current_setting('wal_level') = 'logical',
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
       EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %(slot)s)
           OR (SELECT count(*) FROM pg_replication_slots) < current_setting('max_replication_slots')::int,
       (SELECT count(*) FROM pg_stat_replication) < current_setting('max_wal_senders')::int
           OR EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %(slot)s AND active)
"""
_MISSING = (
    "wal_level = logical (the server's is {wal_level}: set it, and restart the server)",
    "the REPLICATION attribute for role {role} (ALTER ROLE {role} REPLICATION), or a superuser",
    "a free replication slot (max_replication_slots = {slots}, all taken)",
    "a free WAL sender (max_wal_senders = {senders}, all busy)",
)


class JournalModeError(RuntimeError):
    """The instance's JOURNAL cannot run on this database or server: a start error, said in one message."""


_SLOT_PREFIX = "graphql_todos_"
# What PostgreSQL takes in a slot's name (ReplicationSlotValidateName), and
# how much of it: NAMEDATALEN - 1 bytes.
_SLOT_CHARACTERS = re.compile(r"[a-z0-9_]+")
_SLOT_BYTES = 63
_DIGEST_CHARACTERS = 12
_SLOT_KEPT = _SLOT_BYTES - len(_SLOT_PREFIX) - 1 - _DIGEST_CHARACTERS


def slot_name(database: str) -> str:
    """The database's slot. Slots are cluster-wide and their names take only
    lower-case letters, digits and the underscore, 63 bytes of them, where a
    database's name takes anything: a name that fits is the database's own
    after the prefix (as it always was); any other (a capital, a hyphen, or
    longer, where a cut would give two databases one slot) keeps what fits of
    it, mended, and ends in a digest of the whole name."""
    name = _SLOT_PREFIX + database
    if len(name) <= _SLOT_BYTES and _SLOT_CHARACTERS.fullmatch(database):
        return name
    digest = hashlib.sha256(database.encode()).hexdigest()[:_DIGEST_CHARACTERS]
    kept = re.sub(r"[^a-z0-9_]", "_", database.lower())[:_SLOT_KEPT]
    return f"{_SLOT_PREFIX}{kept}_{digest}"


def lsn_text(lsn: int) -> str:
    """An LSN as pg_lsn spells it."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_number(text: str) -> int:
    """A pg_lsn's text as the number it is."""
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def settle(dsn: str, wanted: str) -> None:
    """Check that the database can run in `wanted` mode, switching it over
    if it is in the other; JournalModeError if it cannot."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            slot = slot_name(conn.info.dbname)
            if wanted == DECODED:
                check_server(conn, slot)
            (mode,) = conn.execute("SELECT mode FROM journal_mode").fetchone()  # type: ignore[misc]
            if mode == wanted:
                return
            if mode == DECODED:
                _to_trigger(dsn, conn, slot)
            else:
                _to_decoded(conn, slot)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def check_server(conn: psycopg.Connection, slot: str) -> None:
    """JournalModeError naming each thing the server lacks for JOURNAL=decoded."""
    found = conn.execute(SERVER_CHECKS, {"slot": slot}).fetchone()
    assert found is not None
    if all(found):
        return
    facts = {
        "wal_level": conn.execute("SHOW wal_level").fetchone()[0],  # type: ignore[index]
        "role": conn.info.user,
        "slots": conn.execute("SHOW max_replication_slots").fetchone()[0],  # type: ignore[index]
        "senders": conn.execute("SHOW max_wal_senders").fetchone()[0],  # type: ignore[index]
    }
    missing = [text.format(**facts) for ok, text in zip(found, _MISSING, strict=True) if not ok]
    raise JournalModeError("JOURNAL=decoded needs " + "; ".join(missing))


def _to_decoded(conn: psycopg.Connection, slot: str) -> None:
    """The switch: the slot first (it cannot be made in a transaction that
    wrote), then the triggers in one transaction, then the slot moved past
    that transaction's commit, so nothing the old triggers journaled is
    decoded again and everything after it is."""
    if conn.execute("SELECT FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone() is None:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    with conn.transaction():
        conn.execute(TO_DECODED)
        (xid,) = conn.execute(MARK_SWITCH).fetchone()[1:]  # type: ignore[index]
    # The switch's Commit message (pgoutput: 'C', flags, the commit's LSN,
    # its end LSN): decoding from its end starts with the first transaction
    # that committed after it.
    for (_, data) in conn.execute(
        PEEK + " WHERE xid = %s::xid AND substr(data, 1, 1) = 'C'",  # type: ignore[operator]
        (slot, None, *_OPTIONS, xid),
    ):
        (end,) = struct.unpack_from("!Q", data, 10)
        conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, lsn_text(end)))
        logger.info("journal: switched to decoding (slot %s from %s)", slot, lsn_text(end))
        return
    raise JournalModeError(f"the switch to JOURNAL=decoded committed, but slot {slot} did not decode it")


def drop_slots(conn: psycopg.Connection, database: str) -> None:
    """The database's slots dropped (a slot blocks DROP DATABASE), a
    walsender still streaming one ended first; `conn` is to another database."""
    for _ in range(600):
        slots = conn.execute(
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = %s", (database,)
        ).fetchall()
        if not slots:
            return
        for slot, pid in slots:
            if pid is not None:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                continue
            with contextlib.suppress(psycopg.errors.ObjectInUse, psycopg.errors.UndefinedObject):
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        time.sleep(0.05)
    raise JournalModeError(f"the slots of database {database} stay in use")


def _to_trigger(dsn: str, conn: psycopg.Connection, slot: str) -> None:
    """The switch back: the journaled tables' writes stopped (a transaction
    holding them EXCLUSIVE, which waits for the open ones), what the slot
    holds journaled (no sequencer may stream it: every decoded instance is
    stopped), the triggers and functions of trigger mode put back in that
    transaction, then the slot dropped. A slot gone meanwhile is a gap."""
    found = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    if found == (True,):
        raise JournalModeError(
            f"database {conn.info.dbname} journals by logical decoding (JOURNAL=decoded) and its sequencer is"
            f" streaming slot {slot}: stop every JOURNAL=decoded instance, then start with JOURNAL=trigger"
        )
    with psycopg.connect(dsn) as switch:
        switch.execute(f"LOCK TABLE {JOURNALED_TABLES} IN EXCLUSIVE MODE")  # type: ignore[arg-type]
        if found is None:
            conn.execute(GAP)
        else:
            journal_pending(conn, slot)
        (restore,) = switch.execute("SELECT restore FROM journal_mode").fetchone()  # type: ignore[misc]
        switch.execute(TO_TRIGGER)
        switch.execute(restore)
        switch.commit()
    if found is not None:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    logger.info("journal: switched back to the trigger (slot %s drained and dropped)", slot)


def journal_pending(conn: psycopg.Connection, slot: str, confirm: bool = True) -> None:
    """Journal what the slot holds, as the sequencer does, through SQL's
    logical decoding (no walsender), moving the slot past each batch once
    journaled; `confirm` False: one batch, not confirmed (as a sequencer
    that died before its confirmation leaves it)."""
    decoder = Decoder()
    while rows := conn.execute(PEEK, (slot, DRAIN_CHANGES, *_OPTIONS)).fetchall():  # type: ignore[arg-type]
        messages = [(lsn_number(text), bytes(data)) for text, data in rows]
        if entries := decoder.decode(messages):
            conn.execute(JOURNAL, (orjson.dumps(entries).decode(),))  # type: ignore[arg-type]
        if not confirm:
            return
        conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, rows[-1][0]))


