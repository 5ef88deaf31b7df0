"""The web client's open editor told of another page's change to its row, end to end:
two browser contexts of Debian's headless Chromium (two browsers of one person, open
mode) against the real server. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from graphql_todos.core.service import MAX_TITLE_LENGTH
from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, browser, go_offline, open_app, titles  # noqa: F401 - fixtures
from tests.test_web_move import _ann_on_two_pages, list_of, move
from tests.test_web_people import new_list, pick, trip_shared


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


def test_an_open_editor_blames_no_other_page_for_its_own_refused_rename(
    server: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """A rename made offline, the editor opened again on it, then refused by the server
    once online (a title over its limit, the page's maxlength taken off as an older
    page would have it): the title goes back, and the editor says the user's change
    was refused, not that another page changed the row."""
    a = open_app(two[0], server)
    add_todo(a, "milk")
    expect(a.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    too_long = "x" * (MAX_TITLE_LENGTH + 1)
    edit = a.locator(".todo-list li.editing .edit")

    go_offline(two[0])
    titles(a).nth(0).dblclick()
    edit.evaluate("input => input.removeAttribute('maxlength')")
    edit.fill(too_long)
    edit.press("Enter")
    expect(a.locator(".todo-list li.editing")).to_have_count(0)
    expect(titles(a)).to_have_text([too_long])  # at once, from the outbox
    titles(a).nth(0).dblclick()
    expect(edit).to_have_value(too_long)
    two[0].set_offline(False)

    expect(a.locator(".rejection")).to_contain_text("Could not change “milk”", timeout=LIVE_MS)
    expect(titles(a)).to_have_text(["milk"])  # rolled back
    notice = a.locator(".todo-list li.editing .changed-elsewhere")
    expect(notice).to_have_text(re.compile(r"^Your change was refused \(.+\): the title is back to “milk”$"))
    expect(notice).not_to_contain_text("elsewhere")
    expect(edit).to_have_accessible_description(notice.inner_text())
    expect(edit).to_be_focused()
    edit.press("Escape")
    expect(notice).to_have_count(0)
    expect(titles(a)).to_have_text(["milk"])


def test_an_open_editor_tells_its_row_moved_to_another_list_elsewhere(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """AUTH=accounts, ann on two pages of one browser: her other page moves the row
    being edited into «work». The editor stays with its draft and focus (App keeps
    the edited row), and says where the row went; Enter saves the rename there."""
    a, b = _ann_on_two_pages(accounts, two[0], ["work"], ["report"])
    edit = a.locator(".todo-list li.editing .edit")
    notice = a.get_by_role("alert")

    titles(a).nth(0).dblclick()
    edit.fill("final report")
    move(b, "report", "work")
    told = "Moved to «work» elsewhere while you were editing"
    expect(notice).to_have_text(told, timeout=LIVE_MS)
    expect(edit).to_have_accessible_description(told)
    expect(edit).to_have_value("final report")
    expect(edit).to_be_focused()
    edit.press("Enter")
    expect(titles(a)).to_have_count(0)  # saved, it goes where it now is
    expect(notice).to_have_count(0)
    expect(a.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    assert list_of(two[0], accounts, "final report") == "work"
    pick(a, "work")
    expect(titles(a)).to_have_text(["final report"])


def test_a_row_moved_out_of_sight_mid_edit_is_not_told_deleted(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """Bob, editor of ann's «trip», moves the row ann is editing into his own list,
    which she does not see: the row leaves her page with her draft (told, to copy),
    but it was not deleted."""
    ann, bob = trip_shared(accounts, two)
    new_list(bob, "mine")
    pick(bob, "trip")
    add_todo(bob, "tickets")
    expect(titles(ann)).to_have_text(["tickets"], timeout=LIVE_MS)
    titles(ann).nth(0).dblclick()
    ann.locator(".todo-list li.editing .edit").fill("train tickets")
    move(bob, "tickets", "mine")
    lost = ann.locator(".lost-draft")
    expect(lost).to_contain_text("“train tickets”", timeout=LIVE_MS)
    expect(lost).to_contain_text("“tickets” was moved to a list you do not see while you edited it")
