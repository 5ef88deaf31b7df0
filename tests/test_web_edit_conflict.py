"""The web client's open editor told of another page's change to its row, end to end:
two browser contexts of Debian's headless Chromium (two browsers of one person, open
mode) against the real server. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, browser, go_offline, open_app, titles  # noqa: F401 - fixtures


@pytest.fixture
def two(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:  # noqa: F811
    contexts = browser.new_context(), browser.new_context()
    yield contexts
    for context in contexts:
        context.close()


def rename(page: Page, row: int, to: str) -> None:
    titles(page).nth(row).dblclick()
    page.locator(".todo-list li.editing .edit").fill(to)
    page.locator(".todo-list li.editing .edit").press("Enter")
    expect(page.locator(".todo-list li.editing")).to_have_count(0)


def test_an_open_editor_tells_another_pages_change_and_not_its_own(
    server: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    mine, theirs = two
    a, b = open_app(mine, server), open_app(theirs, server)
    add_todo(a, "milk")
    expect(titles(b)).to_have_text(["milk"], timeout=LIVE_MS)
    edit = a.locator(".todo-list li.editing .edit")
    notice = a.get_by_role("alert")

    # Renamed elsewhere mid-edit: the draft and focus stay, their title is told beside it.
    titles(a).nth(0).dblclick()
    edit.fill("soy milk")
    rename(b, 0, "oat milk")
    told = "Changed to “oat milk” elsewhere while you were editing: saving keeps your title, Escape takes theirs"
    expect(notice).to_have_text(told, timeout=LIVE_MS)
    expect(a.locator(".todo-list li.editing .changed-elsewhere")).to_have_count(1)
    expect(edit).to_have_value("soy milk")
    expect(edit).to_be_focused()
    expect(edit).to_have_accessible_description(told)
    # Escape takes theirs.
    edit.press("Escape")
    expect(notice).to_have_count(0)
    expect(titles(a)).to_have_text(["oat milk"])

    # Saving a draft over their title is deliberate: it wins, and the notice goes.
    titles(a).nth(0).dblclick()
    edit.fill("soy milk")
    rename(b, 0, "rice milk")
    expect(notice).to_contain_text("Changed to “rice milk”", timeout=LIVE_MS)
    edit.press("Enter")
    expect(notice).to_have_count(0)
    expect(titles(b)).to_have_text(["soy milk"], timeout=LIVE_MS)
    expect(titles(a)).to_have_text(["soy milk"])

    # One's own save comes back while the editor is open again: an edit made offline,
    # replayed by the outbox once online, its event arriving mid-edit. Nothing is told.
    go_offline(mine)
    rename(a, 0, "almond milk")
    titles(a).nth(0).dblclick()
    edit.fill("a draft")
    mine.set_offline(False)
    expect(titles(b)).to_have_text(["almond milk"], timeout=LIVE_MS)
    # The stream is in order: a page showing b's later todo has had its own rename's event.
    add_todo(b, "bread")
    expect(titles(a)).to_have_text(["almond milk", "bread"], timeout=LIVE_MS)
    expect(a.locator(".outbox-count")).to_have_count(0)
    expect(notice).to_have_count(0)
    expect(edit).to_have_value("a draft")
    edit.press("Escape")
    expect(titles(a)).to_have_text(["almond milk", "bread"])

    # A draft left as it was keeps their title when saved; a completion is told too.
    titles(a).nth(0).dblclick()
    b.get_by_role("checkbox", name='Toggle "almond milk"').click()
    rename(b, 0, "goat milk")
    expect(notice).to_have_text(
        "Changed to “goat milk” and marked completed elsewhere while you were editing", timeout=LIVE_MS
    )
    edit.press("Enter")
    expect(notice).to_have_count(0)
    expect(titles(a)).to_have_text(["goat milk", "bread"])
    expect(a.locator(".todo-list li").nth(0)).to_have_class("completed")
