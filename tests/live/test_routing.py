"""The hub's routing (live/routing.py): an entry finds the readers of its
lists, the person it names and every everything-reader, each once; a share
or an unshare moves a reader into or out of a list's index with the entry
that makes it, so the reader gets every entry of the list in between and
none outside it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from graphql_todos.core.models import Entry
from graphql_todos.core.visibility import Kind, View
from graphql_todos.live.broadcast import Groups
from graphql_todos.live.routing import Router
from tests.helpers import TOKEN, Server, serving, wait_until
from tests.live_readers import READERS
from tests.test_lists import CREATE, CREATE_LIST, SHARE
from tests.test_lists_live import EXPECTED, Story, _token


@dataclass(eq=False)
class Reader:
    """A reader with its own view, stepped through what it is routed (as a
    hub subscriber steps what it dequeues)."""

    name: str
    view: View
    got: list[tuple[int, Kind]] = field(default_factory=list)

    def take(self, entry: Entry) -> Kind | None:
        kind = self.view.step(entry)
        if kind is not None:
            self.got.append((entry.position, kind))
        return kind


class Journal:
    """Entries numbered in commit order, each routed as it is appended."""

    def __init__(self, router: Router[Reader]) -> None:
        self.router = router
        self.position = 0
        self.routed: dict[int, list[str]] = {}

    def append(self, op: str, **fields: uuid.UUID | None) -> int:
        self.position += 1
        entry = Entry(self.position, op, **fields)  # type: ignore[arg-type]
        routed = self.router.route(entry)
        self.routed[self.position] = sorted(reader.name for reader in [*dict(routed), *self.router.everything])
        # The router's copy of a routed reader's view says what the reader's own does.
        for reader, kind in routed:
            assert reader.take(entry) is kind
        for reader in self.router.everything:
            reader.take(entry)
        return self.position


def _people() -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    return uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_an_entry_of_a_list_finds_that_list_s_readers_its_person_and_the_everything_readers() -> None:
    ann, bob, groceries, work = _people()
    router: Router[Reader] = Router()
    readers = [
        Reader("ann", View(ann, {groceries})),
        Reader("bob", View(bob, {work})),
        Reader("service", View(None)),
    ]
    for reader in readers:
        router.add(reader, reader.view.copy())
    journal = Journal(router)
    created = journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)
    moved = journal.append("updated", todo_id=uuid.uuid4(), list_before=groceries, list_after=work)
    mine = journal.append("arrived", todo_id=uuid.uuid4(), list_after=work, person=ann)
    private = journal.append("created", todo_id=uuid.uuid4(), list_after=uuid.uuid4())
    assert journal.routed == {
        created: ["ann", "service"],
        # Found by both lists: each reader once.
        moved: ["ann", "bob", "service"],
        mine: ["ann", "bob", "service"],
        private: ["service"],
    }
    assert readers[0].got == [(created, Kind.UPDATE), (moved, Kind.REMOVAL), (mine, Kind.ARRIVAL)]
    assert readers[1].got == [(moved, Kind.ARRIVAL)]


def test_a_share_and_an_unshare_move_a_reader_in_and_out_of_the_list_at_their_position() -> None:
    ann, bob, groceries, _ = _people()
    router: Router[Reader] = Router()
    reader = Reader("bob", View(bob))
    router.add(reader, reader.view.copy())
    journal = Journal(router)
    before = journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)
    shared = journal.append("member_added", list_after=groceries, person=bob)
    during = journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)
    other = journal.append("member_added", list_after=groceries, person=ann)
    unshared = journal.append("member_removed", list_after=groceries, person=bob)
    after = journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)
    assert [p for p, names in journal.routed.items() if names] == [shared, during, other, unshared]
    assert reader.got == [
        (shared, Kind.MEMBER), (during, Kind.UPDATE), (other, Kind.MEMBER), (unshared, Kind.MEMBER),
    ]
    assert before < shared and after > unshared
    assert router.by_list == {} and set(router.by_person) == {bob}


def test_a_deleted_list_leaves_the_index_and_a_reader_behind_takes_everything_until_added_again() -> None:
    ann, bob, groceries, work = _people()
    router: Router[Reader] = Router()
    reader = Reader("ann", View(ann, {groceries, work}))
    router.add(reader, reader.view.copy())
    journal = Journal(router)
    deleted = journal.append("list_deleted", list_after=groceries)
    assert set(router.by_list) == {work}
    late = Reader("bob", View(bob, {work}))
    # Behind the router's position: every entry, as an everything-reader.
    router.add(late, None)
    elsewhere = journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)
    assert journal.routed[elsewhere] == ["bob"] and not router.routed(late)
    router.add(late, late.view.copy())
    assert router.routed(late) and late not in router.everything
    assert journal.routed[journal.append("created", todo_id=uuid.uuid4(), list_after=groceries)] == []
    assert journal.routed[journal.append("created", todo_id=uuid.uuid4(), list_after=work)] == ["ann", "bob"]
    assert reader.got[0] == (deleted, Kind.LIST)
    router.discard(reader)
    router.discard(late)
    assert (router.by_list, router.by_person, router.everything) == ({}, {}, set())


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


def test_a_reader_resumed_from_a_cursor_gets_its_stream_then_is_found_by_its_lists(accounts: Server) -> None:
    story = Story(accounts)
    groups: Groups = accounts.state("broadcast_groups")

    def routing() -> dict[uuid.UUID | None, bool]:
        return accounts.call(
            lambda: {member.viewer.person: group.router.routed(member) for group in groups for member in group.members}
        )

    story.play()
    # From a cursor before the share: behind its group, it reads the journal
    # with its own view, and is routed by that view once it joins the group.
    with READERS["graphql-transport-ws"](accounts, story.token, story.start) as reader:
        assert reader.take(4) == EXPECTED
        wait_until(lambda: routing() == {uuid.UUID(story.bob.id): True})
        shared = story.ann.data(CREATE_LIST, name="again")["createList"]["id"]
        story.ann.data(CREATE, t="before the share", l=shared)
        story.ann.data(SHARE, id=shared, u="bob", r="VIEWER")
        story.ann.data(CREATE, t="after the share", l=shared)
        story.ann.data(CREATE, t="never bob's", l=None)
        story.bob.data(CREATE, t="last", l=None)
        # The rows of the list arrive with the share, its next rows follow.
        assert reader.take(3) == [("created", "before the share"), ("created", "after the share"), ("created", "last")]


def test_readers_of_one_document_in_one_list_share_one_rendering_of_a_change(accounts: Server) -> None:
    story = Story(accounts)
    story.ann.data(SHARE, id=story.list, u="bob", r="VIEWER")
    ann_token, _ = _token(story.ann)
    groups: Groups = accounts.state("broadcast_groups")
    with READERS["graphql-transport-ws"](accounts, ann_token, None) as ann, READERS["graphql-transport-ws"](
        accounts, story.token, None
    ) as bob:
        wait_until(lambda: accounts.subscriber_count() == 2)
        # One group for the document, whoever's the subscriptions are.
        assert accounts.call(lambda: len(groups)) == 1
        renders = accounts.call(lambda: groups.renders)
        story.ann.data(CREATE, t="for both", l=story.list)
        assert ann.take(1) == bob.take(1) == [("created", "for both")]
        assert accounts.call(lambda: groups.renders) - renders == 1
