"""The feed's removal of a row moved out of its reader's sight
(docs/design/people.md section 9: `todo_removed` carries the id alone):
it names the row and the list it left, and nothing of the list it went
to, which the reader cannot see, on every transport of the feed (REST's
/api/feed/ as an event stream and a RESTSocket, GraphQL's `feed` over
both WebSocket protocols, GraphQL SSE and multipart), to a reader
connected before the move or resuming from before it, following every
list or one: the list it left gets it, the one it went to does not (a
feed of a list carries the entries naming it, before or after, but a
removal only in the list the reader saw the row in: visibility.in_list).
Once the list it went to is shared with the reader, the row arrives
there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import TOKEN, Server, serving
from tests.leaks import Wiretap
from tests.subscribers import FEEDS, Credential, FeedEvent, Subscriber
from tests.test_item_endings import MOVE, Sharing
from tests.test_lists import SHARE

CURSOR = "{ todoList { cursor } }"


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


@pytest.mark.parametrize("transport", FEEDS)
def test_a_row_moved_out_of_sight_is_removed_from_the_list_it_left(accounts: Server, transport: str) -> None:
    sharing = Sharing(accounts, f"moved-{transport}")
    credential = Credential("token", sharing.token, "")
    after = int(sharing.bob.data(CURSOR)["todoList"]["cursor"])
    tap = Wiretap("bob")

    def follow(list_id: str | None) -> Subscriber:
        subscriber = Subscriber(accounts.url, transport, credential, after, tap, list_id=list_id)
        subscriber.wait_until_connected()
        return subscriber

    of_lists = (None, sharing.shared, sharing.hidden)
    live = [follow(list_id) for list_id in of_lists]
    sharing.ann.data(MOVE, id=sharing.row, l=sharing.hidden)
    moved = int(sharing.ann.data(CURSOR)["todoList"]["cursor"])
    subscribers = live + [follow(list_id) for list_id in of_lists]  # resumed from before the move
    told = [s for s in subscribers if s.list_id != sharing.hidden]
    untold = [s for s in subscribers if s.list_id == sharing.hidden]
    try:
        for subscriber in told:
            subscriber.wait_for(moved)
        assert sharing.hidden.encode() not in tap.received()
        # The list the row went to, shared now: its feeds get the row's
        # arrival, and nothing before it.
        sharing.ann.data(SHARE, id=sharing.hidden, u=f"bob-moved-{transport}", r="VIEWER")
        # (Entries after the share's own: the rows arriving with it.)
        shared = int(sharing.ann.data(CURSOR)["todoList"]["cursor"])
        assert shared == moved + 2  # member_added, then the row's arrival
        for subscriber in untold:
            subscriber.wait_for(shared)
    finally:
        for subscriber in subscribers:
            subscriber.close()
    removal = FeedEvent(moved, "todo_removed", sharing.row, sharing.shared, None, None, None)
    for subscriber in told:
        assert subscriber.unexpected == []
        assert [e for e in subscriber.feed if e.cursor <= moved] == [removal], subscriber.list_id
    for subscriber in untold:
        assert subscriber.unexpected == []
        assert all(e.cursor > moved for e in subscriber.feed), subscriber.feed
        assert "todo_arrived" in [e.kind for e in subscriber.feed], subscriber.feed
