"""A member entry whose username is null (written before sql/023 for a person
deleted by hand, or any other null): the feed names the member with an empty
username, on REST's feed and GraphQL's (Person.username is a String!, REST's
a required string), never the string "None" (core/visibility.member_of).
The person is deleted by hand with sql/023's trigger off, as before it."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.helpers import serving
from tests.leaks import Wiretap
from tests.subscribers import Subscriber, sign_in
from tests.test_lists import CREATE_LIST, PASSWORD, SHARE, Caller


@pytest.mark.parametrize("transport", ["feed-sse", "graphql-feed-ws"])
def test_a_member_entry_without_a_username_names_no_one(journaled_db: Journaled, transport: str) -> None:
    with serving(journaled_db.dsn, auth="accounts", journal=journaled_db.journal) as server:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        his = bob.data(CREATE_LIST, name="his")["createList"]["id"]
        bob.data(SHARE, id=his, u="ann", r="EDITOR")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            journaled(conn)
            (after,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
            tap = Wiretap("bob")
            subscriber = Subscriber(server.url, transport, sign_in(server.url, tap, "bob", PASSWORD), after, tap)
            subscriber.wait_until_connected()
            with conn.transaction():
                conn.execute("ALTER TABLE people DISABLE TRIGGER people_keep_username")
                conn.execute("DELETE FROM people WHERE username = 'ann'")
                conn.execute("ALTER TABLE people ENABLE TRIGGER people_keep_username")
            journaled(conn)
            (last,) = conn.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
        subscriber.wait_for(last)
        removed = [(event.list_id, event.member) for event in subscriber.feed if event.kind == "member_removed"]
        assert removed == [(his, (ann.id, "", "editor"))], subscriber.feed
        assert subscriber.ending is None and not subscriber.unexpected, subscriber
        subscriber.close()
