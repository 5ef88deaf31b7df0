"""The browser's own EventSource (Debian's chromium) against both SSE routes:
across a server restart it reconnects by itself, sending Last-Event-ID, and
gets every change exactly once."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext

from tests.helpers import Server, wait_until
from tests.test_web import browser, context, insert_sql  # noqa: F401 - fixtures

FOLLOW = """() => {
  window.seen = { rest: [], graphql: [] };
  const rest = new EventSource('/api/todos/?after=0');
  for (const op of ['created', 'updated', 'deleted']) {
    rest.addEventListener(op, (e) => window.seen.rest.push([e.lastEventId, JSON.parse(e.data).todo.title]));
  }
  const query = 'subscription { todoChanges(after: "0") { todo { title } } }';
  const graphql = new EventSource('/graphql?query=' + encodeURIComponent(query));
  graphql.addEventListener('next', (e) => {
    window.seen.graphql.push([e.lastEventId, JSON.parse(e.data).data.todoChanges.todo.title]);
  });
}"""


def test_eventsource_resumes_by_last_event_id_across_a_restart(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    page = context.new_page()
    page.goto(server.url + "/healthz")  # the same origin, for relative URLs
    page.evaluate(FOLLOW)
    insert_sql(server, "before")

    def seen() -> dict[str, list[Any]]:
        value: dict[str, list[Any]] = page.evaluate("window.seen")
        return value

    wait_until(lambda: all(len(titles) == 1 for titles in seen().values()), timeout=10)
    server.stop()
    insert_sql(server, "while down")
    server.start()
    insert_sql(server, "after")
    # Chromium retries on its own (about 3 s); nothing is sent twice.
    wait_until(lambda: all(len(titles) == 3 for titles in seen().values()), timeout=30)
    for titles in seen().values():
        assert [title for _, title in titles] == ["before", "while down", "after"]
        cursors = [int(cursor) for cursor, _ in titles]
        assert cursors == sorted(set(cursors))


FOLLOW_FROM_NOW = """() => {
  window.seen = { rest: [], feed: [] };
  window.opened = 0;
  const rest = new EventSource('/api/todos/');
  rest.addEventListener('created', (e) => window.seen.rest.push(JSON.parse(e.data).todo.title));
  const feed = new EventSource('/api/feed/');
  feed.addEventListener('todo_created', (e) => window.seen.feed.push(JSON.parse(e.data).todo.title));
  for (const source of [rest, feed]) source.addEventListener('open', () => { window.opened += 1; });
}"""


def test_eventsource_from_now_cut_before_its_first_event_resumes_where_it_started(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    """A REST stream opened from now and cut before any change came has no
    event's id to resume by: its opening names where it started, so the
    EventSource's reconnection gets the change made while it was away."""
    page = context.new_page()
    page.goto(server.url + "/healthz")  # the same origin, for relative URLs
    page.evaluate(FOLLOW_FROM_NOW)
    wait_until(lambda: page.evaluate("window.opened") == 2, timeout=10)
    server.stop()
    insert_sql(server, "while down")
    server.start()
    # Each reconnects by itself (about 3 s) and opens once more.
    wait_until(lambda: page.evaluate("window.opened") == 4, timeout=30)
    insert_sql(server, "after")
    wait_until(lambda: all("after" in titles for titles in page.evaluate("window.seen").values()), timeout=10)
    assert page.evaluate("window.seen") == {"rest": ["while down", "after"], "feed": ["while down", "after"]}
