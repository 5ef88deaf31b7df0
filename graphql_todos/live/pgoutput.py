"""pgoutput's messages (protocol 1, with logical messages), decoded into
the journal entries the sequencer writes (live/sequencer.py): a todo row's
change, or an entry staged by sql/011's journal_stage.

Protocol 1 gives whole transactions in commit order: Begin, its changes
and messages in WAL order (statement order), Commit. A message's LSN is its
WAL record's; a multi-row record (COPY's) gives several changes one LSN,
so an entry's source is its LSN and, after the first, "+n"."""

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
        in order. Each: source, xid (32 bits, Begin's), op, and either a
        todo row's states (row, old, new) or a staged entry (entry); and the
        transaction's mutation key when it sent one. An UPDATE that changed
        nothing is no entry (the trigger's WHEN clause)."""
        entries: list[dict[str, Any]] = []
        begun, key, xid, last, repeat = 0, None, 0, -1, 0
        for lsn, data in messages:
            kind = data[:1]
            if kind in (b"I", b"U", b"D", b"M"):
                repeat = repeat + 1 if lsn == last else 0
                last = lsn
                source = f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}" + (f"+{repeat}" if repeat else "")
            if kind == b"B":
                begun, key = len(entries), None
                # final LSN (8 bytes), commit time (8), xid (4).
                (xid,) = struct.unpack_from("!I", data, 17)
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
                    entry: dict[str, Any] = {"source": source, "xid": xid, "entry": orjson.Fragment(data[end + 5 :])}
                    if key is not None:
                        entry["mutation"] = key
                    entries.append(entry)
            elif kind == b"R":
                relid, names = _relation(data)
                self.relations[relid] = names
            elif kind in _OPS and (change := self._change(kind, data)) is not None:
                change.update(source=source, xid=xid)
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
