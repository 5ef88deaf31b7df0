"""The feed's removal of a row moved out of its reader's sight
(docs/design/people.md section 9: `todo_removed` carries the id alone):
it names the row and the list it left, and nothing of the list it went
to, which the reader cannot see, on every transport of the feed (REST's
/api/feed/ as an event stream and a RESTSocket, GraphQL's `feed` over
both WebSocket protocols, GraphQL SSE and multipart), to a reader
connected before the move or resuming from before it, following every
list or one: the list it left, or the one it went to (a feed of a list
carries the entries naming it, before or after)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import TOKEN, Server, serving
from tests.leaks import Wiretap
from tests.subscribers import FEEDS, Credential, FeedEvent, Subscriber
from tests.test_item_endings import MOVE, Sharing


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN) as srv:
        yield srv


@pytest.mark.parametrize("transport", FEEDS)
def test_a_row_moved_out_of_sight_is_removed_from_the_list_it_left(accounts: Server, transport: str) -> None:
    sharing = Sharing(accounts, f"moved-{transport}")
    credential = Credential("token", sharing.token, "")
    after = int(sharing.bob.data("{ todoList { cursor } }")["todoList"]["cursor"])
    tap = Wiretap("bob")

    def follow(list_id: str | None) -> Subscriber:
        subscriber = Subscriber(accounts.url, transport, credential, after, tap, list_id=list_id)
        subscriber.wait_until_connected()
        return subscriber

    of_lists = (None, sharing.shared, sharing.hidden)
    live = [follow(list_id) for list_id in of_lists]
    sharing.ann.data(MOVE, id=sharing.row, l=sharing.hidden)
    subscribers = live + [follow(list_id) for list_id in of_lists]  # resumed from before the move
    try:
        for subscriber in subscribers:
            subscriber.wait_for(after + 1)
    finally:
        for subscriber in subscribers:
            subscriber.close()
    [cursor] = {s.position for s in subscribers}
    removal = FeedEvent(cursor, "todo_removed", sharing.row, sharing.shared, None, None, None)
    assert [(s.list_id, s.feed, s.unexpected) for s in subscribers] == [(s.list_id, [removal], []) for s in subscribers]
    assert cursor > after
    assert sharing.hidden.encode() not in tap.received()
