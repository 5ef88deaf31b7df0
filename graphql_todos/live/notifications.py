"""What a NOTIFY on the hub's channel says (live/hub.py): the position it
names, and its journal entry when the payload carries all of it."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import orjson

from graphql_todos.core.models import Entry, Todo

_TODO_OPS = frozenset({"created", "updated", "deleted"})

# Each uuid text parsed once: a notification names its row twice (the
# entry's and the row's id) and its list twice, and the same rows and
# lists come again and again. uuid.UUID is pure Python: its five parses
# were half of a row notification's cost.
_parsed = functools.lru_cache(maxsize=4096)(uuid.UUID)
# The times too: one transaction's entries share their commit time and its
# rows their updated_time (now()), and a row keeps its created_time. Half
# the cost of a parse, and the entries share the datetimes (immutable).
_timed = functools.lru_cache(maxsize=4096)(datetime.fromisoformat)


def notified(payload: str) -> tuple[int, Entry | None]:
    """The position a notification names, and its entry when it carries all
    of it (a row's entry its row, and its row before when it changed lists;
    a list, member or access entry its detail); a range of arrivals or
    removals, or anything cut short, is read from the journal."""
    try:
        return _read(orjson.loads(payload))
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not ours (someone else NOTIFYing the channel): check the journal.
        return 2**63 - 1, None


def journal_entries(text: str) -> list[Entry]:
    """Journal entries read back as a JSON array of notification bodies
    that carry each whole (repository.SELECT_NOTIFIED_CHANGES): the hub's
    catch-up reads them as it reads its notifications."""
    entries = []
    for body in orjson.loads(text):
        _, entry = _read(body)
        if entry is None:
            raise ValueError(f"a journal entry that does not read whole: {body!r:.200}")
        entries.append(entry)
    return entries


def _read(body: dict[str, Any]) -> tuple[int, Entry | None]:
    """What `notified` says of a notification's body, once loaded."""
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
    changed_at = _timed(body["changed_at"]) if "changed_at" in body else None
    todo, before = body.get("todo"), body.get("before")
    return position, Entry(
        position, op, _uuid(body.get("id")), None if todo is None else Todo.from_json(todo, _parsed, _timed),
        _uuid(before_text), _uuid(after_text), _uuid(body.get("person")), body.get("detail"),
        None if before is None else Todo.from_json(before, _parsed, _timed), changed_at,
    )


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else _parsed(value)
