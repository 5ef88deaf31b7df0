"""The browser's own EventSource (Debian's chromium) against the SSE routes:
across a server restart it reconnects by itself, sending Last-Event-ID, and
gets every change exactly once."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import BrowserContext

from tests.helpers import Server, wait_until
from tests.test_web import browser, context, insert_sql  # noqa: F401 - fixtures

FOLLOW = """() => {
  window.seen = { rest: [], graphql: [], 'graphql feed': [] };
  const rest = new EventSource('/api/todos/?after=0');
  for (const op of ['created', 'updated', 'deleted']) {
    rest.addEventListener(op, (e) => window.seen.rest.push([e.lastEventId, JSON.parse(e.data).todo.title]));
  }
  for (const [name, root] of [['graphql', 'todoChanges'], ['graphql feed', 'feed']]) {
    const query = `subscription { ${root}(after: "0") { todo { title } } }`;
    const graphql = new EventSource('/graphql?query=' + encodeURIComponent(query));
    graphql.addEventListener('next', (e) => {
      window.seen[name].push([e.lastEventId, JSON.parse(e.data).data[root].todo.title]);
    });
  }
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


# Every stream that resumes by cursor, each opened from now: the REST ones,
# and GraphQL over SSE's todoChanges (the fan-out's, and Strawberry's: a
# directive anywhere keeps it from the fan-out) and feed.
FOLLOW_FROM_NOW = """() => {
  window.seen = {};
  window.opened = 0;
  const follow = (name, url, event, title) => {
    window.seen[name] = [];
    const source = new EventSource(url);
    source.addEventListener(event, (e) => window.seen[name].push(title(JSON.parse(e.data))));
    source.addEventListener('open', () => { window.opened += 1; });
  };
  const graphql = (query) => '/graphql?query=' + encodeURIComponent('subscription { ' + query + ' }');
  follow('rest', '/api/todos/', 'created', (data) => data.todo.title);
  follow('feed', '/api/feed/', 'todo_created', (data) => data.todo.title);
  follow('todoChanges', graphql('todoChanges { todo { title } }'), 'next', (data) => data.data.todoChanges.todo.title);
  follow('todoChanges @include', graphql('todoChanges { todo { title @include(if: true) } }'), 'next',
    (data) => data.data.todoChanges.todo.title);
  follow('graphql feed', graphql('feed { todo { title } }'), 'next', (data) => data.data.feed.todo.title);
}"""
STREAMS = 5


def test_eventsource_from_now_cut_before_its_first_event_resumes_where_it_started(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    """A stream opened from now and cut before any change came has no
    event's id to resume by: its opening names where it started, so the
    EventSource's reconnection gets the change made while it was away."""
    page = context.new_page()
    page.goto(server.url + "/healthz")  # the same origin, for relative URLs
    page.evaluate(FOLLOW_FROM_NOW)
    wait_until(lambda: page.evaluate("window.opened") == STREAMS, timeout=10)
    server.stop()
    insert_sql(server, "while down")
    server.start()
    # Each reconnects by itself (about 3 s) and opens once more.
    wait_until(lambda: page.evaluate("window.opened") == 2 * STREAMS, timeout=30)
    insert_sql(server, "after")
    wait_until(lambda: all("after" in titles for titles in page.evaluate("window.seen").values()), timeout=10)
    seen = page.evaluate("window.seen")
    assert seen == {name: ["while down", "after"] for name in seen} and len(seen) == STREAMS
