"""A person deleted by hand (psql), as the others who shared lists with
them see it, on a real server in both journal modes: bob, an editor of
ann's list, and the owner of a list ann edits, follows the feed (event
stream) and the change feed (RESTSocket and graphql-transport-ws) from
before ann's deletion. Her list leaves his feed with its rows, her
membership of his list ends there, his todos and lists are read without
hers, and the rows she wrote in his list stay his. Her member entries
name her: before sql/023 they read her username from people at commit,
where her row was gone, and the feed said the member "None"."""

from __future__ import annotations

import psycopg

from tests.conftest import Journaled
from tests.decoded import journaled
from tests.helpers import serving, wait_until
from tests.leaks import Wiretap
from tests.subscribers import Subscriber, sign_in
from tests.test_lists import CREATE, CREATE_LIST, PASSWORD, SHARE, Caller


def test_a_deleted_owner_s_list_leaves_a_member_s_feeds(journaled_db: Journaled) -> None:
    with serving(journaled_db.dsn, auth="accounts", journal=journaled_db.journal) as server:
        ann, bob = Caller(server, "ann"), Caller(server, "bob")
        hers = ann.data(CREATE_LIST, name="hers")["createList"]["id"]
        his = bob.data(CREATE_LIST, name="his")["createList"]["id"]
        ann.data(SHARE, id=hers, u="bob", r="EDITOR")
        bob.data(SHARE, id=his, u="ann", r="EDITOR")
        secret = ann.data(CREATE, t="in hers", l=hers)["createTodo"]["id"]
        kept = ann.data(CREATE, t="ann's in his", l=his)["createTodo"]["id"]
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            journaled(conn)
            (after,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()  # type: ignore[misc]
            tap = Wiretap("bob")
            credential = sign_in(server.url, tap, "bob", PASSWORD)
            subscribers = [Subscriber(server.url, transport, credential, after, tap)
                           for transport in ("feed-sse", "restsocket", "graphql-transport-ws")]
            for subscriber in subscribers:
                subscriber.wait_until_connected()
            conn.execute("DELETE FROM people WHERE username = 'ann'")
            journaled(conn)
            (last,) = conn.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
        feed, *changes = subscribers
        feed.wait_for(last)
        removed = {(event.list_id, event.member, event.reason) for event in feed.feed if event.kind == "member_removed"}
        assert removed == {
            (hers, (ann.id, "ann", "owner"), "LIST_DELETED"), (hers, (bob.id, "bob", "editor"), "LIST_DELETED"),
            (his, (ann.id, "ann", "editor"), None),
        }, feed.feed
        assert [(e.kind, e.todo_id) for e in feed.feed if e.kind != "member_removed"] == [("todo_deleted", secret)]
        for subscriber in changes:
            wait_until(lambda s=subscriber: any(e.id == secret for e in s.events), timeout=10)
            gone = [event.op for event in subscriber.events if event.id == secret]
            assert gone == ["deleted"], (subscriber.transport, subscriber.events)
            assert not any(event.id == kept for event in subscriber.events), subscriber.events
        for subscriber in subscribers:
            assert subscriber.ending is None and not subscriber.unexpected, subscriber
            subscriber.close()
        todos = bob.http.get("/api/todos/").json()
        assert {todo["id"] for todo in todos} == {kept}, todos
        lists = bob.data("{ lists { id members { person { username } } } }")["lists"]
        assert hers not in {item["id"] for item in lists}
        assert [m["person"]["username"] for item in lists if item["id"] == his for m in item["members"]] == ["bob"]
