"""Plain data passed between the layers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, cast

from graphql_todos.core.mutations import Verdict

# The person who owned everything before accounts (005_people.sql): open
# mode acts as it, and the service principal's new todos join its default list.
LOCAL_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
# local's default list (007_lists.sql): every todo from before lists is in it.
LOCAL_LIST_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose todos a read returns: the lists `person` is a member of, or
    every list (person None: the service principal, ALL)."""

    person: uuid.UUID | None

    @property
    def everything(self) -> bool:
        return self.person is None


ALL = Viewer(None)


@dataclass(frozen=True, slots=True)
class Todo:
    id: uuid.UUID
    title: str
    completed: bool
    created_time: datetime
    updated_time: datetime
    # Every row had local's default list as its list before lists came.
    list_id: uuid.UUID = LOCAL_LIST_ID

    # The attributes from_json takes from the snapshot as they are, each
    # under its own name: a reader of the snapshot may take them from there.
    AS_STORED: ClassVar[frozenset[str]] = frozenset({"title", "completed"})

    @classmethod
    def from_json(
        cls,
        row: dict[str, Any],
        parse_id: Callable[[str], uuid.UUID] = uuid.UUID,
        parse_time: Callable[[str], datetime] = datetime.fromisoformat,
    ) -> Todo:
        """Build from the jsonb snapshot the journal trigger stores (one
        written before lists has no list_id: local's default list's);
        `parse_id` and `parse_time` read its uuids and times (the hub's
        remember them). The same Todo as `cls(...)` would make, its slots
        set on a _Building and then made a Todo (below the class)."""
        todo: Any = _Building()
        todo.id = parse_id(row["id"])
        todo.title = row["title"]
        todo.completed = row["completed"]
        todo.created_time = parse_time(row["created_time"])
        todo.updated_time = parse_time(row["updated_time"])
        todo.list_id = parse_id(row["list_id"]) if "list_id" in row else LOCAL_LIST_ID
        todo.__class__ = cls
        return cast(Todo, todo)

    def sort_key(self) -> tuple[datetime, uuid.UUID]:
        return (self.created_time, self.id)


class _Building:
    """A Todo while Todo.from_json sets its slots. A frozen dataclass's
    __init__ sets each field by object.__setattr__ (the type's lookup and a
    call per field), half of building a Todo, which the hub does for every
    row's NOTIFY (docs/bench-ab-rows.md); this class has Todo's slots (the
    same layout) and no __setattr__ of its own, so each is one store, and
    the object then becomes a Todo (__class__ assignment), frozen to
    everyone else."""

    __slots__ = Todo.__slots__


class Op(Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, eq=False)
class Change:
    """One journal entry. The hub hands the same object to every subscriber,
    so per-event work (execution, serialization) can be shared by identity."""

    position: int
    op: Op
    todo: Todo
    # When it committed, for the commit-to-delivery lag (None from an older
    # trigger's notification).
    changed_at: datetime | None = None
    # A DELETED that is its reader's removal (the row moved out of their
    # sight, or its list unshared), not the row's deletion (people.md section 6).
    removed: bool = False

    @property
    def cursor(self) -> str:
        return str(self.position)


@dataclass(slots=True, eq=False)
class Entry:
    """One journal entry of any kind (people.md section 2): a todo row's
    (created, updated, deleted), one reader's arrival or removal, a list's, a
    member's, or revoked access. The hub hands the same object to every
    subscriber; what it is for each reader is visibility.View's to say, and
    the legacy Change each reader gets is made once per kind (`legacy`), so
    renders shared by identity stay shared."""

    position: int
    op: str
    todo_id: uuid.UUID | None = None
    # The row after (before, for deleted); None for removed and non-todo entries.
    todo: Todo | None = None
    list_before: uuid.UUID | None = None
    list_after: uuid.UUID | None = None
    # member_*: the member; arrived/removed: the reader; access_revoked: whose.
    person: uuid.UUID | None = None
    detail: dict[str, Any] | None = None
    # updated across lists: the row before; removed: the row as it stands.
    before: Todo | None = None
    changed_at: datetime | None = None
    # Made by the first legacy_change: a row sink's or a feed's entry never
    # needs one, and the hub makes an Entry per NOTIFY.
    legacy: dict[Any, Change] | None = None
    # A row's entry read from its notification: the row's jsonb snapshot
    # (Todo.from_json's), for a reader that takes its values from there
    # (a row sink: graphql/fanout.py) with no Todo made (RowEntry).
    row: dict[str, Any] | None = None

    @property
    def cursor(self) -> str:
        return str(self.position)


_new = object.__new__


class RowEntry(Entry):
    """A row's `updated` entry in its list, as its notification carries it,
    whose `todo` is made from its `row` (by `make`) when first read. The
    hub reads a row's every NOTIFY, and a row whose only readers are row
    sinks never needs its Todo (docs/bench-ab-rows.md); every other reader
    gets the Todo an Entry would hold, made once."""

    # `made`: the Todo once read (Entry's own `todo` slot stays empty). A
    # property, not __getattr__: on Python 3.11 a class with __getattr__
    # reads every attribute through its hook (some 860 instructions each).
    __slots__ = ("made", "make")

    made: Todo | None
    make: Callable[[dict[str, Any]], Todo]

    @classmethod
    def of(
        cls, position: int, todo_id: uuid.UUID, list_id: uuid.UUID, changed_at: datetime | None,
        row: dict[str, Any], make: Callable[[dict[str, Any]], Todo],
    ) -> RowEntry:
        """The entry, made without a Python __init__ (on Python 3.11 a class
        call runs it through a slot wrapper: some 500 instructions more a row
        event; docs/bench-ab-rows.md)."""
        entry = _new(cls)
        entry.position, entry.op, entry.todo_id = position, "updated", todo_id
        entry.list_before = entry.list_after = list_id
        entry.person = entry.detail = entry.before = entry.legacy = entry.made = None
        entry.changed_at, entry.row, entry.make = changed_at, row, make
        return entry

    @property  # type: ignore[override]
    def todo(self) -> Todo | None:
        todo = self.made
        if todo is None:
            todo = self.made = self.make(cast(dict[str, Any], self.row))
        return todo

    @todo.setter
    def todo(self, todo: Todo | None) -> None:
        self.made = todo


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one journal read found: its entries, the last position it read
    (`after` when none), and whether it stopped at its limit (more may follow)."""

    entries: list[Entry]
    last: int
    full: bool


@dataclass(frozen=True, slots=True)
class Page:
    """Which rows of a list to read, in list order: `size` of them from
    `offset` on (None: every row, as long as there are at most MAX_LIST_ROWS).
    Made by TodoService.page, which checks the bounds."""

    size: int | None = None
    offset: int = 0


WHOLE = Page()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Rows and the journal position they reflect, read in one transaction."""

    todos: list[Todo]
    position: int

    @property
    def cursor(self) -> str:
        return str(self.position)


@dataclass(frozen=True, slots=True)
class TodoState:
    """One row as a watcher sees it: first its state when watching began
    (op None), then after each change; todo is None when absent or deleted."""

    op: Op | None
    todo: Todo | None
    position: int
    # Deleted for the watcher because the row left their sight (Change.removed).
    removed: bool = False

    @property
    def cursor(self) -> str:
        return str(self.position)


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """A numbered mutation's verdict as a client reads it back after a
    reconnect: its cursor, a rejection's code and message, and the row it
    left (a rejection's: the row as the server had it)."""

    seq: int
    verdict: Verdict
    position: int
    code: str | None
    message: str | None
    todo: Todo | None

    @property
    def cursor(self) -> str:
        return str(self.position)

    @classmethod
    def of(cls, row: dict[str, Any]) -> VerdictRow:
        """From verdicts.SELECT_VERDICTS' row."""
        result = row["result"]
        rejected = row["verdict"] == "rejected"
        if rejected:
            todo = result.get("row")
        elif row["todo"] is not None:
            todo = row["todo"]
        else:
            todo = result[-1] if result else None
        position = row["position"] if row["position"] is not None else 0
        return cls(
            int(row["seq"]),
            Verdict(row["verdict"]),
            int(position),
            result["code"] if rejected else None,
            result["message"] if rejected else None,
            None if todo is None else Todo.from_json(todo),
        )
