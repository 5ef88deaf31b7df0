"""The web client's outbox end to end (issue 20, docs/design/offline.md section
4): Debian's Chromium set offline, 20 edits of every kind over two tabs with a
reload in the middle (the service worker serves the page), then online: the
database holds exactly those edits, once each and in order, and a second
browser saw each change once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from playwright import sync_api
from playwright.sync_api import Browser, BrowserContext, Locator, Page, WebSocket, expect

from tests.gql import create
from tests.helpers import WEB_DIST, Server, serving
from tests.test_web import CHROMIUM, CHROMIUM_ARGS, LIVE_MS, add_todo, go_offline, page_until, titles

# The edits that change one row (the others, toggle all and clear completed, change many).
TOGGLE_ALL_SEQS = {9, 18, 19}
CLEAR_SEQS = {11}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "needs /usr/bin/chromium (make test installs it)"
    assert (WEB_DIST / "sw.js").exists(), "needs web/dist with the service worker (make web)"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn) as srv:
        yield srv


def open_live(context: BrowserContext, server: Server) -> Page:
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
    return page


def row(page: Page, title: str) -> Locator:
    return page.locator(".todo-list li").filter(has=page.locator("label", has_text=re.compile(f"^{re.escape(title)}$")))


def rename(page: Page, title: str, to: str) -> None:
    row(page, title).locator("label").dblclick()
    page.locator(".todo-list li.editing .edit").fill(to)
    page.locator(".todo-list li.editing .edit").press("Enter")
    expect(page.locator(".todo-list li.editing")).to_have_count(0)


def toggle(page: Page, title: str) -> None:
    row(page, title).locator(".toggle").click()


def delete(page: Page, title: str) -> None:
    row(page, title).hover()
    row(page, title).locator(".destroy").click()


def waiting(page: Page) -> Locator:
    return page.locator(".outbox-count")


def shown(page: Page) -> list[tuple[str, bool]]:
    rows = page.locator(".todo-list li")
    return [
        (rows.nth(i).locator("label").inner_text(), "completed" in (rows.nth(i).get_attribute("class") or ""))
        for i in range(rows.count())
    ]


def watch_changes(page: Page) -> list[str]:
    """The cursors of the todoChanges events a page receives over its sockets."""
    cursors: list[str] = []

    def on_socket(ws: WebSocket) -> None:
        def on_frame(frame: Any) -> None:
            message = json.loads(frame) if isinstance(frame, str) else {}
            change = (((message.get("payload") or {}).get("data") or {}).get("todoChanges")) if message.get("type") == "next" else None
            if change:
                cursors.append(change["cursor"])

        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return cursors


def test_twenty_offline_edits_over_two_tabs_and_a_reload_are_applied_once_in_order(
    server: Server, browser: Browser
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for title in ("alpha", "beta", "gamma", "delta"):
            create(client, title)
    with psycopg.connect(server.dsn) as conn:
        (start,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone() or (0,)

    mine = browser.new_context()
    theirs = browser.new_context()
    try:
        observer = theirs.new_page()
        seen = watch_changes(observer)
        observer.goto(server.url + "/")
        expect(observer.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
        a = open_live(mine, server)
        # The service worker keeps the page for the reload offline.
        page_until(a, "navigator.serviceWorker.controller !== null")
        b = open_live(mine, server)
        expect(titles(b)).to_have_count(4, timeout=LIVE_MS)

        go_offline(mine)
        count = 0

        def edited(*pages: Page) -> None:
            nonlocal count
            count += 1
            for page in pages or (a, b):
                expect(waiting(page)).to_have_attribute("data-count", str(count), timeout=LIVE_MS)

        add_todo(a, "one"); edited()
        expect(row(b, "one")).to_have_count(1)  # the other tab shows it at once
        add_todo(b, "two"); edited()
        rename(a, "alpha", "alpha 2"); edited()
        toggle(b, "beta"); edited()
        rename(a, "one", "one 2"); edited()  # a row made offline
        toggle(b, "two"); edited()
        delete(a, "gamma"); edited()
        add_todo(b, "three"); edited()
        expected = [("alpha 2", False), ("beta", True), ("delta", False), ("one 2", False), ("two", True), ("three", False)]
        assert shown(a) == expected

        # Offline: the page from the service worker, the list and the outbox from IndexedDB.
        reloaded = a.reload()
        assert reloaded is not None and reloaded.from_service_worker
        expect(waiting(a)).to_have_text("8 changes waiting", timeout=LIVE_MS)
        expect(titles(a)).to_have_text([t for t, _ in expected], timeout=LIVE_MS)
        assert shown(a) == expected

        a.locator("label[for=toggle-all]").click(); edited()
        toggle(b, "one 2"); edited()
        a.locator(".clear-completed").click(); edited()
        expect(titles(b)).to_have_text(["one 2"])
        add_todo(b, "four"); edited()
        add_todo(a, "five"); edited()
        rename(b, "four", "four 2"); edited()
        toggle(a, "five"); edited()
        delete(b, "one 2"); edited()
        add_todo(a, "six"); edited()
        b.locator("label[for=toggle-all]").click(); edited()
        a.locator("label[for=toggle-all]").click(); edited()
        rename(b, "six", "six 2"); edited()
        assert count == 20
        final = [("four 2", False), ("five", False), ("six 2", False)]
        assert shown(a) == shown(b) == final
        # Nothing reached the server while offline.
        expect(titles(observer)).to_have_text(["alpha", "beta", "gamma", "delta"])

        mine.set_offline(False)
        for page in (a, b):
            expect(waiting(page)).to_have_count(0, timeout=4 * LIVE_MS)
        for page in (a, b, observer):
            expect(titles(page)).to_have_text([t for t, _ in final], timeout=LIVE_MS)
            expect(page.locator(".todo-list li.completed")).to_have_count(0, timeout=LIVE_MS)

        with psycopg.connect(server.dsn) as conn:
            todos = conn.execute("SELECT title, completed FROM todos ORDER BY created_time, id").fetchall()
            verdicts = conn.execute("SELECT seq, verdict FROM mutations ORDER BY seq").fetchall()
            keyed = conn.execute(
                "SELECT split_part(mutation, ':', 3)::int, position FROM todo_changes WHERE mutation IS NOT NULL ORDER BY position"
            ).fetchall()
            journal = [str(p) for (p,) in conn.execute("SELECT position FROM todo_changes WHERE position > %s ORDER BY position", (start,))]
        assert todos == final
        # Exactly those edits, each once, every one applied.
        assert verdicts == [(seq, "applied") for seq in range(1, 21)]
        # In order: the journal's entries follow the sequence numbers.
        order = [seq for seq, _ in keyed]
        assert order == sorted(order)
        per_seq = {seq: order.count(seq) for seq in set(order)}
        assert all(per_seq.get(seq) == 1 for seq in range(1, 21) if seq not in TOGGLE_ALL_SEQS | CLEAR_SEQS), per_seq
        assert per_seq[11] == 5  # clear completed deleted the five completed rows
        # The service worker kept the page and its assets, nothing else (no /graphql, no /api/).
        kept = a.evaluate(
            "caches.open('graphql-todos-shell-v1').then((c) => c.keys()).then((ks) => ks.map((r) => new URL(r.url).pathname))"
        )
        assert "/" in kept and all(path == "/" or path.startswith("/assets/") for path in kept), kept
        # The other browser saw every change once.
        expect(observer.locator(".todo-list li")).to_have_count(3)
        assert sorted(seen, key=int) == journal
        assert len(seen) == len(set(seen))
    finally:
        mine.close()
        theirs.close()


def test_a_list_wide_edit_made_offline_touches_only_the_rows_its_user_saw(server: Server, browser: Browser) -> None:
    """Clear completed and toggle all, clicked offline, name the rows on screen:
    sent after someone else added rows, they leave those rows alone."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        create(client, "seen done", completed=True)
        create(client, "seen open")
    context = browser.new_context()
    try:
        page = open_live(context, server)
        expect(titles(page)).to_have_text(["seen done", "seen open"], timeout=LIVE_MS)
        go_offline(context)
        page.locator(".clear-completed").click()
        expect(waiting(page)).to_have_attribute("data-count", "1", timeout=LIVE_MS)
        page.locator("label[for=toggle-all]").click()
        expect(waiting(page)).to_have_attribute("data-count", "2", timeout=LIVE_MS)
        assert shown(page) == [("seen open", True)]
        with psycopg.connect(server.dsn, autocommit=True) as conn:  # one commit each: in this order
            conn.execute("INSERT INTO todos (title, completed) VALUES ('theirs done', true)")
            conn.execute("INSERT INTO todos (title, completed) VALUES ('theirs open', false)")
        context.set_offline(False)
        expect(waiting(page)).to_have_count(0, timeout=4 * LIVE_MS)
        expect(titles(page)).to_have_text(["seen open", "theirs done", "theirs open"], timeout=LIVE_MS)
        with psycopg.connect(server.dsn) as conn:
            todos = conn.execute("SELECT title, completed FROM todos ORDER BY created_time, id").fetchall()
        assert todos == [("seen open", True), ("theirs done", True), ("theirs open", False)]
        assert shown(page) == todos
    finally:
        context.close()
