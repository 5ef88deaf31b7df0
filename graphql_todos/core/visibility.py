"""Who sees what of the journal (docs/design/people.md section 2): a reader's
view is the set of lists it is a member of at the current position; stepped
entry by entry in commit order, it says what each entry is for that reader.
The prototype is docs/design/prototypes/visibility.py; the property test's
oracle is built on the same rules.

A view is a function of the person and the position alone (membership
changes are journal entries), so any two readers of one person at one
position agree, and a reader resumed from a cursor starts from the view the
database gives for that position (repository.SELECT_VIEW_AT; with
JOURNAL=decoded, once the journal holds every membership change it read:
Hub.view_at)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from graphql_todos.core.models import Change, Entry, Op


class Kind(Enum):
    """What an entry is for one reader."""

    UPDATE = "update"  # a row it sees: created, updated or deleted
    ARRIVAL = "arrival"  # a row it now sees: the full row
    REMOVAL = "removal"  # a row it no longer sees: the id (legacy: the row before)
    LIST = "list"  # a list it sees changed
    MEMBER = "member"  # a member of a list it sees, or itself, changed


# Read once, for a view of every list (View.step): on Python 3.11 an enum's members are read
# through its metaclass's __getattr__ hook (some 860 instructions each),
# and it judges every row event of a view of every list.
_UPDATE, _ARRIVAL, _REMOVAL = Kind.UPDATE, Kind.ARRIVAL, Kind.REMOVAL

_LIST_OPS = frozenset({"list_created", "list_updated", "list_deleted"})
_MEMBER_OPS = frozenset({"member_added", "member_updated", "member_removed"})
# The only entries that may change a view (View._apply): routing.py rebuilds
# a reader's index after these alone.
MOVES_VIEWS = frozenset({"member_added", "member_removed", "list_deleted"})


class View:
    """One reader's lists at its position; `person` None: every list (the
    service principal, and open mode's local)."""

    __slots__ = ("lists", "person")

    def __init__(self, person: uuid.UUID | None, lists: set[uuid.UUID] | None = None) -> None:
        self.person = person
        self.lists: set[uuid.UUID] = set() if lists is None else lists

    def copy(self) -> View:
        return View(self.person, set(self.lists))

    def sees(self, list_id: uuid.UUID | None) -> bool:
        return list_id is not None and (self.person is None or list_id in self.lists)

    def step(self, entry: Entry) -> Kind | None:
        """What the entry is for this reader, judged at its position; then the
        view moves past it. A member_added is applied first (the new member
        sees the entry announcing it); a removal of oneself is judged first
        (one sees one's own removal)."""
        if self.person is None:
            # Every list: no entry moves it (_apply), and a list is seen
            # when there is one; the service token's and single-user
            # mode's every row event comes here, _judge in fewer steps,
            # inline (a call fewer a row event).
            op = entry.op
            if op == "updated":
                was, now = entry.list_before is not None, entry.list_after is not None
                if was:
                    return _UPDATE if now else _REMOVAL
                return _ARRIVAL if now else None
            kind = _EVERYTHING.get(op)
            if kind is None:
                return None
            return kind if (entry.list_before if op == "deleted" else entry.list_after) is not None else None
        if entry.op == "member_added":
            self._apply(entry)
            return self._judge(entry)
        kind = self._judge(entry)
        self._apply(entry)
        return kind

    def _judge(self, entry: Entry) -> Kind | None:
        op, before, after = entry.op, entry.list_before, entry.list_after
        if op in ("arrived", "removed"):
            # One reader's expansion of a membership change: theirs alone.
            if self.person is None or entry.person != self.person:
                return None
            return Kind.ARRIVAL if op == "arrived" else Kind.REMOVAL
        if op == "created":
            return Kind.UPDATE if self.sees(after) else None
        if op == "deleted":
            return Kind.UPDATE if self.sees(before) else None
        if op == "updated":
            was, now = self.sees(before), self.sees(after)
            if was and now:
                return Kind.UPDATE
            if now:
                return Kind.ARRIVAL  # moved into a list it sees
            return Kind.REMOVAL if was else None  # moved out
        if op in _LIST_OPS:
            return Kind.LIST if self.sees(after) else None
        if op in _MEMBER_OPS:
            return Kind.MEMBER if self.sees(after) or (self.person is not None and entry.person == self.person) else None
        return None  # access_revoked: for servers only

    def _apply(self, entry: Entry) -> None:
        if self.person is None or entry.list_after is None or entry.op not in MOVES_VIEWS:
            return
        if entry.op == "member_added" and entry.person == self.person:
            self.lists.add(entry.list_after)
        elif (entry.op == "member_removed" and entry.person == self.person) or entry.op == "list_deleted":
            self.lists.discard(entry.list_after)


# What an entry is for a view of every list, when it names its list (the
# list before, for deleted): arrivals and removals are one reader's, and
# access_revoked is for servers only.
_EVERYTHING = {
    "created": Kind.UPDATE, "deleted": Kind.UPDATE,
    **dict.fromkeys(_LIST_OPS, Kind.LIST), **dict.fromkeys(_MEMBER_OPS, Kind.MEMBER),
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """An entry as one reader gets it (the `feed`)."""

    entry: Entry
    kind: Kind

    @property
    def changed_at(self) -> datetime | None:
        return self.entry.changed_at


_FEED_KINDS = {
    (Kind.UPDATE, "created"): "todo_created",
    (Kind.UPDATE, "updated"): "todo_updated",
    (Kind.UPDATE, "deleted"): "todo_deleted",
    (Kind.LIST, "list_created"): "list_added",
    (Kind.LIST, "list_updated"): "list_updated",
    (Kind.LIST, "list_deleted"): "list_removed",
    (Kind.MEMBER, "member_added"): "member_added",
    (Kind.MEMBER, "member_updated"): "member_updated",
    (Kind.MEMBER, "member_removed"): "member_removed",
}


def feed_kind(delivery: Delivery) -> str:
    """What a delivery is called in the feed (GraphQL's FeedKind, REST's
    /api/feed/ event names): todo_created ... member_removed."""
    if delivery.kind is Kind.ARRIVAL:
        return "todo_arrived"
    if delivery.kind is Kind.REMOVAL:
        return "todo_removed"
    return _FEED_KINDS[delivery.kind, delivery.entry.op]


def feed_list(delivery: Delivery) -> uuid.UUID | None:
    """The list a feed event names: a removal's is the list its reader saw
    the row in (where a row moved out of their sight went is no business of
    theirs); any other's the list the row is in after it, or was in."""
    entry = delivery.entry
    if delivery.kind is Kind.REMOVAL:
        return entry.list_before
    return entry.list_after or entry.list_before


def in_list(delivery: Delivery, list_id: uuid.UUID) -> bool:
    """Whether a feed of one list carries the delivery: an entry naming the
    list before or after, but a removal only in the list its reader saw the
    row in, and an arrival only in the one the row came into (in the other,
    which the reader does not see, it would tell where the row went, or
    came from)."""
    if delivery.kind in (Kind.REMOVAL, Kind.ARRIVAL):
        return feed_list(delivery) == list_id
    return list_id in (delivery.entry.list_before, delivery.entry.list_after)


def ended_with_its_list(entry: Entry) -> bool:
    """Whether the entry went with its list's deletion (the feed's reason LIST_DELETED)."""
    return entry.op == "list_deleted" or (entry.detail or {}).get("reason") == "list_deleted"


def member_of(entry: Entry) -> tuple[str, str, str]:
    """A member entry's person id, username and role (after the change; the
    role they had, for a removal). A username the entry lacks (one written
    before sql/023 for a person deleted by hand) is empty: both feeds'
    usernames are non-null strings, and str(None) named them "None"."""
    detail = entry.detail or {}
    return str(entry.person), detail.get("username") or "", str(detail.get("role_after") or detail.get("role_before"))


def legacy_change(entry: Entry, kind: Kind | None) -> Change | None:
    """The todoChanges shape of a todo entry for a reader that gets it as
    `kind` (people.md section 9): an arrival is CREATED with the row, a
    removal DELETED (`removed`) with the row the reader last could see; list and member
    entries, and one the reader does not get (None), have none. Made once
    per entry and kind."""
    legacy = entry.legacy
    if legacy is None:
        legacy = entry.legacy = {}
    change = legacy.get(kind)
    if change is not None or kind not in _LEGACY:
        return change
    if kind is Kind.UPDATE:
        op, row = Op(entry.op), entry.todo
    elif kind is Kind.ARRIVAL:
        op, row = Op.CREATED, entry.todo
    else:
        op, row = Op.DELETED, entry.before
    if row is None:
        return None
    change = legacy[kind] = Change(entry.position, op, row, entry.changed_at, kind is Kind.REMOVAL)
    return change


_LEGACY = frozenset({Kind.UPDATE, Kind.ARRIVAL, Kind.REMOVAL})
