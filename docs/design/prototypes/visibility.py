"""PROTOTYPE of the visibility rules of docs/design/people.md: a reader's view
of the journal, judged entry by entry in commit order. The same class is
the hub's per-reader state and the property test's oracle core; the real one
lives in the package (streams.py / a new visibility.py) once built.

An entry is a dict with the journal's columns (op, todo_id, list_before,
list_after, person_id, todo, before). A View holds the lists one person may
see *at the current position*; judge() says what the entry is for that
person, then apply() moves the view past it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UPDATE, ARRIVAL, REMOVAL, LIST, MEMBER, NOTHING = "update", "arrival", "removal", "list", "member", None


@dataclass
class View:
    person: str | None  # None: the service token, which sees every list
    lists: set[str] = field(default_factory=set)

    def sees(self, list_id: str | None) -> bool:
        return list_id is not None and (self.person is None or list_id in self.lists)

    def judge(self, e: dict[str, Any]) -> str | None:
        op, before, after = e["op"], e.get("list_before"), e.get("list_after")
        if op in ("arrived", "removed"):
            # One reader's expansion of a membership change: theirs alone.
            if self.person is None or e["person_id"] != self.person:
                return NOTHING
            return ARRIVAL if op == "arrived" else REMOVAL
        if op == "created":
            return UPDATE if self.sees(after) else NOTHING
        if op == "deleted":
            return UPDATE if self.sees(before) else NOTHING
        if op == "updated":
            was, now = self.sees(before), self.sees(after)
            if was and now:
                return UPDATE
            if now:
                return ARRIVAL  # moved into a list this reader sees: the full row
            if was:
                return REMOVAL  # moved out: the id (and, legacy shape, the row before)
            return NOTHING
        if op in ("list_created", "list_updated", "list_deleted"):
            return LIST if self.sees(after) else NOTHING
        if op in ("member_added", "member_updated", "member_removed"):
            # The member themselves and the list's other members (its roster);
            # for a member_added, the new member already sees it (apply first).
            return MEMBER if (self.sees(after) or e["person_id"] == self.person) else NOTHING
        return NOTHING  # access_revoked: for servers only

    def apply(self, e: dict[str, Any]) -> None:
        if self.person is None:
            return
        op = e["op"]
        if op == "member_added" and e["person_id"] == self.person:
            self.lists.add(e["list_after"])
        elif op == "member_removed" and e["person_id"] == self.person:
            self.lists.discard(e["list_after"])
        elif op == "list_deleted":
            self.lists.discard(e["list_after"])

    def step(self, e: dict[str, Any]) -> str | None:
        """What the entry is for this reader, judged at its position; then
        the view moves past it. A member_added is applied first (the new
        member sees the entry announcing it); a removal of oneself is judged
        first (one sees one's own removal)."""
        if e["op"] == "member_added":
            self.apply(e)
            return self.judge(e)
        kind = self.judge(e)
        self.apply(e)
        return kind


class Router:
    """A broadcast group's index of its members by what they see (people.md
    §6): the candidates for an entry are found by its lists and its person,
    never by walking every member. Members are any hashable with a `view`."""

    def __init__(self) -> None:
        self.by_list: dict[str, set[Any]] = {}
        self.by_person: dict[str, set[Any]] = {}
        self.everything: set[Any] = set()

    def add(self, member: Any) -> None:
        view: View = member.view
        if view.person is None:
            self.everything.add(member)
            return
        self.by_person.setdefault(view.person, set()).add(member)
        for list_id in view.lists:
            self.by_list.setdefault(list_id, set()).add(member)

    def route(self, e: dict[str, Any]) -> dict[str | None, list[Any]]:
        """The members that get the entry, by kind (one render per kind);
        their views step past it, and the index follows them."""
        candidates = set(self.everything)
        for key in (e.get("list_before"), e.get("list_after")):
            if key is not None:
                candidates |= self.by_list.get(key, set())
        if e.get("person_id") is not None:
            candidates |= self.by_person.get(e["person_id"], set())
        kinds: dict[str | None, list[Any]] = {}
        for member in candidates:
            had = set(member.view.lists)
            kind = member.view.step(e)
            if member.view.lists != had:
                for gone in had - member.view.lists:
                    self.by_list[gone].discard(member)
                for new in member.view.lists - had:
                    self.by_list.setdefault(new, set()).add(member)
            if kind is not None:
                kinds.setdefault(kind, []).append(member)
        return kinds
