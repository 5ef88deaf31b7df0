"""Which readers an entry may concern (docs/design/people.md section 6,
prototype: docs/design/prototypes/visibility.py's Router), for the hub's
subscribers and a broadcast group's members alike: a person's reader is
found by the lists its view holds and by its person, an everything-reader
(open mode, the service) takes every entry. An entry no
index finds is one the reader's view would judge as nothing and that does
not change the view (visibility.View: a view changes only by a member entry
naming its person or a list_deleted of a list it holds), so a reader fed
only what the router finds yields exactly what it would of every entry.

The index is kept at the position of the last entry routed: the router
steps the view it was given for each routed reader as it routes an entry
(in commit order, before the next entry is routed), so the member_added
that gives a reader a list reaches it by its person and the list's next
entries by the list, with no entry between missed or routed twice. The hub
gives it copies (its subscribers step their own views as they dequeue); a
broadcast group gives its members' own views, and takes what the stepping
says each entry is for each member.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Generic, TypeVar

from graphql_todos.core.models import Entry
from graphql_todos.core.visibility import MOVES_VIEWS, Kind, View

S = TypeVar("S", bound=Hashable)


class Router(Generic[S]):
    def __init__(self) -> None:
        self.by_list: dict[uuid.UUID, set[S]] = {}
        self.by_person: dict[uuid.UUID, set[S]] = {}
        self.everything: set[S] = set()
        # Each routed reader's view at the position of the last entry routed.
        self._views: dict[S, View] = {}

    def add(self, reader: S, view: View | None) -> None:
        """Route entries to reader from now on: by `view` (its view at the
        position of the last entry routed, which the router steps from now
        on), or every entry when None (an everything-reader, or one whose
        view is not yet at that position)."""
        self.discard(reader)
        if view is None or view.person is None:
            self.everything.add(reader)
            return
        person = view.person
        self._views[reader] = view
        self.by_person.setdefault(person, set()).add(reader)
        for list_id in view.lists:
            self.by_list.setdefault(list_id, set()).add(reader)

    def discard(self, reader: S) -> None:
        self.everything.discard(reader)
        view = self._views.pop(reader, None)
        if view is None:
            return
        assert view.person is not None
        _drop(self.by_person, view.person, reader)
        for list_id in view.lists:
            _drop(self.by_list, list_id, reader)

    def routed(self, reader: S) -> bool:
        """Whether reader is found by its view (not as an everything-reader)."""
        return reader in self._views

    def route(self, entry: Entry) -> list[tuple[S, Kind | None]]:
        """The routed readers the entry may concern, each once, with what it
        is for each: their views step past it now, and the index follows
        them. The everything-readers (not among them) take it too."""
        if not self._views:
            return []  # none routed (row watchers, everything-readers alone)
        found: set[S] = set()
        for list_id in (entry.list_before, entry.list_after):
            if list_id is not None and (readers := self.by_list.get(list_id)):
                found |= readers
        if entry.person is not None and (readers := self.by_person.get(entry.person)):
            found |= readers
        routed: list[tuple[S, Kind | None]] = []
        for reader in found:
            view = self._views[reader]
            had = set(view.lists) if entry.op in MOVES_VIEWS else None
            routed.append((reader, view.step(entry)))
            if had is not None and view.lists != had:
                for gone in had - view.lists:
                    _drop(self.by_list, gone, reader)
                for new in view.lists - had:
                    self.by_list.setdefault(new, set()).add(reader)
        return routed


def _drop(index: dict[uuid.UUID, set[S]], key: uuid.UUID, reader: S) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(reader)
        if not members:
            del index[key]
