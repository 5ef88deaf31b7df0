"""pgoutput's messages (protocol 1, with logical messages), decoded into
journal entries, and the statement that journals them: the sequencer's
(live/sequencer.py), and the drain of a switch back to the trigger
(core/journal_mode.py). An entry is a todo row's change, or one staged by
sql/011's journal_stage.

Protocol 1 gives whole transactions in commit order: Begin, its changes
and messages in WAL order (statement order), Commit. An entry's source is
the LSN the server gives it, unique among the slot's entries: a row
change's is where its WAL record starts, and a multi-row record (COPY's)
gives several changes one LSN, so after the first "+n". A logical
message's is where its record ends (decode.c queues messages at the
record's end, changes at its start), which is where the next record
starts, often another transaction's row change: so a staged entry's
source is its LSN after "end ". Read as one, the second to be journaled
met the first's source and was dropped as a batch streamed again (a
write's entry lost, its writer answered JournalLate:
tests/live/test_sequencer_sources.py)."""

from __future__ import annotations

import struct
from typing import Any

import orjson

# The writer's mutation key (a transactional message of writes.py's
# statements) and a staged entry (sql/011's journal_stage).
KEY_PREFIX = b"graphql_todos"
ENTRY_PREFIX = b"graphql_todos_entry"
_OPS = {b"I": "created", b"U": "updated", b"D": "deleted"}
# An unchanged TOASTed value in a new row: the old row's (REPLICA IDENTITY FULL carries it).
_UNCHANGED = object()


def _tuple(data: bytes, at: int, names: list[str]) -> tuple[dict[str, Any], int]:
    (count,) = struct.unpack_from("!h", data, at)
    at += 2
    row: dict[str, Any] = {}
    for name in names[:count]:
        kind = data[at : at + 1]
        at += 1
        if kind == b"t":
            (length,) = struct.unpack_from("!i", data, at)
            row[name] = data[at + 4 : at + 4 + length].decode()
            at += 4 + length
        else:
            row[name] = _UNCHANGED if kind == b"u" else None
    return row, at


def _relation(data: bytes) -> tuple[int, list[str]]:
    """A Relation message: its id and its columns' names."""
    (relid,) = struct.unpack_from("!I", data, 1)
    at = data.index(b"\0", 5) + 1
    at = data.index(b"\0", at) + 1 + 1  # namespace, name, replica identity
    (count,) = struct.unpack_from("!h", data, at)
    at += 2
    names = []
    for _ in range(count):
        end = data.index(b"\0", at + 1)  # flags (1 byte), name
        names.append(data[at + 1 : end].decode())
        at = end + 1 + 8  # type oid, type modifier
    return relid, names


class Decoder:
    """Decodes a stream's messages; keeps the relations it was told of (a
    Relation message comes once per stream before a table's first change)."""

    def __init__(self) -> None:
        self.relations: dict[int, list[str]] = {}

    def decode(self, messages: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
        """The entries of `messages` ((LSN, payload) of whole transactions),
        in order. Each: source, xid (32 bits, Begin's), its commit time
        (at: microseconds since 2000-01-01 UTC), op, and either a
        todo row's states (row, old, new) or a staged entry (entry); and the
        transaction's mutation key when it sent one. An UPDATE that changed
        nothing is no entry (the trigger's WHEN clause)."""
        entries: list[dict[str, Any]] = []
        begun, key, xid, at, last, repeat = 0, None, 0, 0, -1, 0
        for lsn, data in messages:
            kind = data[:1]
            if kind in _OPS:
                repeat = repeat + 1 if lsn == last else 0
                last = lsn
                source = f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}" + (f"+{repeat}" if repeat else "")
            if kind == b"B":
                begun, key = len(entries), None
                # final LSN (8 bytes), commit time (8: microseconds since 2000), xid (4).
                at, xid = struct.unpack_from("!qI", data, 9)
            elif kind == b"M":
                # flags (1 byte), the message's LSN (8), prefix, content length (4), content.
                end = data.index(b"\0", 10)
                prefix = data[10:end]
                if prefix == KEY_PREFIX:
                    key = data[end + 5 :].decode()
                    for earlier in entries[begun:]:
                        earlier.setdefault("mutation", key)
                elif prefix == ENTRY_PREFIX:
                    # Its JSON as written (journal_entry's fields), put into the batch's as is.
                    entry: dict[str, Any] = {
                        "source": f"end {lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}", "xid": xid, "at": at,
                        "entry": orjson.Fragment(data[end + 5 :]),
                    }
                    if key is not None:
                        entry["mutation"] = key
                    entries.append(entry)
            elif kind == b"R":
                relid, names = _relation(data)
                self.relations[relid] = names
            elif kind in _OPS and (change := self._change(kind, data)) is not None:
                change.update(source=source, xid=xid, at=at)
                if key is not None:
                    change["mutation"] = key
                entries.append(change)
        return entries

    def _change(self, kind: bytes, data: bytes) -> dict[str, Any] | None:
        (relid,) = struct.unpack_from("!I", data, 1)
        names, at = self.relations[relid], 5
        old = new = None
        if data[at : at + 1] in (b"K", b"O"):
            old, at = _tuple(data, at + 1, names)
        if data[at : at + 1] == b"N":
            new, _ = _tuple(data, at + 1, names)
        if new is not None and old is not None:
            new = {name: old[name] if value is _UNCHANGED else value for name, value in new.items()}
            if new == old:
                return None
        change: dict[str, Any] = {"op": _OPS[kind], "row": new if new is not None else old}
        if old is not None:
            change["old"] = old
        if new is not None:
            change["new"] = new
        return change


# The batch's entries in order, as the trigger writes them (sql/010's
# journal_write: a row's lists, a moved row's old state, a staged entry's
# fields), each with its source, its transaction's commit time (changed_at:
# the trigger's is its transaction's now()), and its xid8 (Begin's 32 bits
# in the epoch of the newest xid, or the one before for an xid above it; the
# newest is this statement's own: a snapshot's xmax may not be above a commit
# decoded before its backend has left the procarray);
# then one NOTIFY per 200 transactions: each one's xid and last position
# (a writer's cursor), and "through", so that the hub reads the range back
# (live/notifications.py). A change already journaled is dropped (the
# index's conflict is the guard; the NOT EXISTS spares its position).
JOURNAL = """
WITH next AS (
    SELECT pg_current_xact_id()::text::bigint AS xid
), batch AS (
    INSERT INTO todo_changes (position, source, changed_at, xid, op, todo_id, todo, list_before, list_after, person_id,
                              detail, before, mutation)
    SELECT nextval('todo_changes_position'), e->>'source',
           timestamptz '2000-01-01 00:00:00+00' + (e->>'at')::bigint * interval '1 microsecond',
           (((next.xid >> 32) - ((e->>'xid')::bigint > (next.xid & 4294967295))::int) << 32
            | (e->>'xid')::bigint)::text::xid8,
           coalesce(s.op, (e->>'op')::journal_op),
           CASE WHEN e ? 'entry' THEN s.todo_id ELSE (e->'row'->>'id')::uuid END,
           CASE WHEN e ? 'entry' THEN s.todo ELSE to_jsonb(jsonb_populate_record(NULL::todos, e->'row')) END,
           CASE WHEN e ? 'entry' THEN s.list_before ELSE (e->'old'->>'list_id')::uuid END,
           CASE WHEN e ? 'entry' THEN s.list_after ELSE (e->'new'->>'list_id')::uuid END,
           s.person_id, s.detail,
           CASE WHEN e ? 'entry' THEN s.before
                WHEN e->'old'->>'list_id' <> e->'new'->>'list_id'
                THEN to_jsonb(jsonb_populate_record(NULL::todos, e->'old')) END,
           coalesce(s.mutation, e->>'mutation')
    FROM next, jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, n)
    LEFT JOIN LATERAL jsonb_populate_record(NULL::journal_entry, e->'entry') s ON e ? 'entry'
    -- A batch streamed again takes no position (positions stay without a gap).
    WHERE NOT EXISTS (SELECT FROM todo_changes c WHERE c.source = e->>'source')
    ORDER BY n
    ON CONFLICT (source) WHERE source IS NOT NULL DO NOTHING
    RETURNING position, xid, op, person_id, list_after
), members AS (
    -- A member's entry's row of todo_changes_members (sql/015), as journal_write writes it.
    INSERT INTO todo_changes_members (person_id, position, list_id, op)
    SELECT person_id, position, list_after, op FROM batch WHERE op IN ('member_added', 'member_removed')
), written AS (
    SELECT json_build_object(
        'xids', json_agg(json_build_array(xid::text, position)), 'position', max(position), 'op', 'batch',
        'through', max(position))::text AS payload
    FROM (SELECT xid, max(position) AS position, (row_number() OVER (ORDER BY max(position)) - 1) / 200 AS chunk
          FROM batch GROUP BY xid) x
    GROUP BY chunk
)
SELECT pg_notify('todo_changes', payload) FROM written
"""
