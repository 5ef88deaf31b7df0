"""What a NOTIFY on the hub's channel says (live/hub.py): the position it
names, and its journal entry when the payload carries all of it."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Container
from datetime import datetime
from typing import Any, TypeVar

import orjson

from graphql_todos.core.models import Entry, RowEntry, Todo

_TODO_OPS = frozenset({"created", "updated", "deleted"})

T = TypeVar("T")


class _Remembered(dict[str, T]):
    """Each text parsed once, looked up as a dict's item (in C, with no
    call of the parse); all forgotten at `size` texts, as the rows and
    lists a process sees change (an LRU's bookkeeping cost more than a
    parse of the rare text forgotten too soon)."""

    def __init__(self, parse: Callable[[str], T], size: int = 4096) -> None:
        super().__init__()
        self.parse, self.size = parse, size

    def __missing__(self, text: str) -> T:
        if len(self) >= self.size:
            self.clear()
        value = self[text] = self.parse(text)
        return value


# Each uuid text parsed once: a notification names its row twice (the
# entry's and the row's id) and its list twice, and the same rows and
# lists come again and again. uuid.UUID is pure Python: its five parses
# were half of a row notification's cost.
_parsed = _Remembered(uuid.UUID).__getitem__
# A row's times too: one statement's rows share their updated_time (now()),
# and a row keeps its created_time. Half the cost of a parse, and the
# entries share the datetimes (immutable).
_timed = _Remembered(datetime.fromisoformat).__getitem__
# A row's Todo, made as `_read` makes it, for a RowEntry read before anything else.
_todo_of = functools.partial(Todo.from_json, parse_id=_parsed, parse_time=_timed)
_row_entry = RowEntry.of


# What a body that is not ours raises as it is read, and what it says: a
# position past any, so that the journal is read.
_NOT_OURS = (ValueError, KeyError, TypeError, AttributeError)
_ELSEWHERE: tuple[int, Entry | None] = (2**63 - 1, None)


def notified(payload: str | bytes) -> tuple[int, Entry | None]:
    """The position a notification names, and its entry when it carries all
    of it (a row's entry its row, and its row before when it changed lists;
    a list, member or access entry its detail); a range of arrivals or
    removals, or anything cut short, is read from the journal. The payload
    as text, or as UTF-8 bytes (the hub's LISTEN read: internals/psycopg's
    payloads); bytes that are not UTF-8 are not ours."""
    try:
        return _read(orjson.loads(payload))
    except _NOT_OURS:
        # Not ours (someone else NOTIFYing the channel): check the journal.
        return _ELSEWHERE


def notified_body(body: Any) -> tuple[int, Entry | None]:
    """What `notified` says of a notification's body, parsed already (the
    hub parses the sequencer's batches for their cursors too)."""
    try:
        return _read(body)
    except _NOT_OURS:
        return _ELSEWHERE


# What stands for a row's entry read no further (notified_for): no one in
# this process takes it.
UNREAD = Entry(0, "unread")


def notified_for(payload: str | bytes, watched: Container[int]) -> tuple[int, Entry | None]:
    """What `notified` says, for a process whose only takers of a row's entry
    are its row's watchers (no list or feed subscriber): a todo row's
    notification whose row is not in `watched` (uuids as ints: the hub's
    _by_todo) is its position and UNREAD, its row not read (with WORKERS,
    each worker hears every row and watches some; with no subscriber at all,
    some 300 bytecodes a created row). The payload is parsed once either
    way. A range, or any other notification, reads as `notified` reads it."""
    try:
        body = orjson.loads(payload)
        if (
            body["op"] in _TODO_OPS
            and "through" not in body
            # No one at all: not even the id parsed (a created row's is new).
            and (not watched or _parsed(body["id"]).int not in watched)
            and type(position := body["position"]) is int
        ):
            return position, UNREAD
        return _read(body)
    except _NOT_OURS:
        return _ELSEWHERE


def journal_entries(text: str) -> list[Entry]:
    """Journal entries read back as a JSON array of notification bodies
    that carry each whole (repository.SELECT_NOTIFIED_CHANGES): the hub's
    catch-up reads them as it reads its notifications."""
    entries = []
    for body in orjson.loads(text):
        _, entry = _read(body, _timed)
        if entry is None:
            raise ValueError(f"a journal entry that does not read whole: {body!r:.200}")
        entries.append(entry)
    return entries


def _read(body: Any, commit_time: Callable[[str], datetime] = datetime.fromisoformat) -> tuple[int, Entry | None]:
    """What `notified` says of a notification's body, as orjson loads it;
    `commit_time` reads its changed_at. Not remembered for a notification:
    in trigger mode each row's entry has a time of its own
    (clock_timestamp, sql/001), which a remembered parse only missed (some
    4,300 instructions against 1,550 for the parse) and then forgot at
    4,096 texts, the rows' created times with it (every third or fourth
    UPDATE of 1,000 rows; docs/bench-ab-rows.md). The read-back's entries
    of a transaction share theirs (journal_entries: remembered)."""
    # Nearly every one: a row updated in its list, as 010's journal_write
    # builds it (its 8 keys: the head and the row), read in fewer steps to
    # the same entry as below (a row event's every instruction counts).
    try:
        if (
            len(body) == 8
            and body["op"] == "updated"
            and type(position := body["position"]) is int
            and (list_text := body["list_before"]) == body["list_after"]
            and (row_json := body["todo"]) is not None
            and body["person"] is None
        ):
            committed, id_text = commit_time(body["changed_at"]), body["id"]
            if (
                len(row_json) == 6
                and row_json["id"] == id_text
                and row_json["list_id"] == list_text
                and "title" in row_json
                and "completed" in row_json
            ):
                # Its row as the general read makes it, with the same parses,
                # but the Todo made when something reads it (RowEntry: a row
                # sink does not). Its uuids and times are parsed now (and
                # remembered for that Todo): a row that does not parse sends
                # the hub to the journal, as it did.
                _timed(row_json["created_time"])
                _timed(row_json["updated_time"])
                return position, _row_entry(position, _parsed(id_text), _parsed(list_text), committed, row_json, _todo_of)
            updated = Todo.from_json(row_json, _parsed, _timed)
            todo_id = updated.id if id_text == row_json["id"] else _uuid(id_text)
            same_list = list_text is not None and list_text == row_json.get("list_id")
            list_id = updated.list_id if same_list else _uuid(list_text)
            return position, Entry(position, "updated", todo_id, updated, list_id, list_id, None, None, None, committed)
    except KeyError:
        pass  # not that shape: read as any other
    position = int(body["position"])
    op = body["op"]
    before_text, after_text = body.get("list_before"), body.get("list_after")
    if "through" in body:
        return position, None
    if op in _TODO_OPS:
        moved = op == "updated" and before_text != after_text
        if "todo" not in body or (moved and "before" not in body):
            return position, None
    elif "detail" not in body:
        return position, None
    changed_at = commit_time(body["changed_at"]) if "changed_at" in body else None
    todo, before, id_text = body.get("todo"), body.get("before"), body.get("id")
    row = None if todo is None else Todo.from_json(todo, _parsed, _timed)
    # A row's entry names the row's id again, and its list (twice when
    # changed in place): the row's uuids where the text is the same, a
    # lookup fewer each.
    if row is None:
        todo_id, list_before = _uuid(id_text), _uuid(before_text)
    else:
        todo_id = row.id if id_text == todo["id"] else _uuid(id_text)
        same_list = before_text is not None and before_text == todo.get("list_id")
        list_before = row.list_id if same_list else _uuid(before_text)
    list_after = list_before if after_text == before_text else _uuid(after_text)
    # A row's entry names no person: no call for it.
    person = None if (person_text := body.get("person")) is None else _parsed(person_text)
    return position, Entry(
        position, op, todo_id, row, list_before, list_after, person, body.get("detail"),
        None if before is None else Todo.from_json(before, _parsed, _timed), changed_at,
    )


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else _parsed(value)
