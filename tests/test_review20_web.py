"""review20: an adversarial review, in Debian's headless Chromium against the real
server, of the web client's webpolish change: "toggle all" and "clear completed"
naming the shown list's rows, right-to-left titles aligned right, and the delete
button a touch shows before it deletes. Needs web/dist and /usr/bin/chromium, as
tests/test_web.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.helpers import Server, wait_until
from tests.test_web import LIVE_MS, add_todo, browser, context, go_offline, open_app, stored, titles  # noqa: F401 - fixtures
from tests.test_web_polish import count
from tests.test_web_move import _ann_on_two_pages, ask, list_of, move
from tests.test_web_people import PASSWORD, accounts, two  # noqa: F401 - fixtures


def test_a_draft_kept_through_a_move_elsewhere_is_told_by_its_title_when_refused(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """review18 keeps the row being edited on screen when another page moves it to
    another list. Its rename, saved then, must carry the title the user saw: the
    server refusing it (the row deleted meanwhile, by her phone) tells her which
    todo, not “” was deleted."""
    here, phone = two
    a, b = _ann_on_two_pages(accounts, here, ["work"], ["report"])
    [row] = [entry["id"] for entry in ask(here, accounts, "{ todos { id title } }")["todos"] if entry["title"] == "report"]

    titles(a).nth(0).dblclick()
    edit = a.locator(".todo-list li.editing .edit")
    edit.fill("final report")
    move(b, "report", "work")
    wait_until(lambda: list_of(here, accounts, "report") == "work", timeout=LIVE_MS / 1000,
               sleep=lambda seconds: b.wait_for_timeout(seconds * 1000))
    a.wait_for_timeout(2000)  # the move reached this page
    expect(edit).to_have_value("final report")

    go_offline(here)
    # Her phone deletes the row meanwhile.
    assert phone.request.post(
        accounts.url + "/api/auth/sign-in",
        data={"username": "ann", "password": PASSWORD},
        headers={"Origin": accounts.url},
    ).ok
    ask(phone, accounts, f'mutation {{ deleteTodo(id: "{row}") {{ id }} }}')
    edit.press("Enter")
    expect(a.locator(".outbox-count")).to_have_text("1 change waiting", timeout=LIVE_MS)
    here.set_offline(False)
    expect(a.locator(".rejection")).to_have_text(
        "“report” was deleted, your change was not kept×", timeout=3 * LIVE_MS
    )


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811 - the fixture
    touch = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True, is_mobile=True)
    yield touch
    touch.close()


LONG = "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz"


def _long_row_on_a_phone(server: Server, phone: BrowserContext, *more: str) -> tuple[Page, float, float]:
    """A page on a phone with a long title, whose end runs under its transparent
    delete button; and the middle of that button."""
    page = open_app(phone, server)
    for title in (LONG, *more):
        add_todo(page, title)
    expect(titles(page)).to_have_text([LONG, *more], timeout=LIVE_MS)
    stored(server, 1 + len(more))
    delete = page.locator(".todo-list li").nth(0).locator(".destroy")
    expect(delete).to_have_css("opacity", "0")
    box = delete.bounding_box()
    assert box is not None
    return page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_a_double_tap_on_a_long_title_s_end_deletes_nothing(server: Server, phone: BrowserContext) -> None:
    """"Double-click to edit a todo": on a phone, a double tap. Where the title runs
    under the transparent button, its first tap shows the button and its second,
    a fraction of a second later, must not delete what was not yet seen."""
    page, x, y = _long_row_on_a_phone(server, phone)
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(80)
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(500)
    expect(titles(page)).to_have_text([LONG])
    assert count(server) == 1
