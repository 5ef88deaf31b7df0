"""Pointer gestures on a row's buttons, end to end in Debian's headless Chromium against
the real server: TodoMVC's layout runs a long title under the delete button, where a
double-click meant to edit it must not delete it; a double-click on the button deletes
once; the move button, transparent until hovered as the delete button is, opens its menu
at the first tap (opening a menu loses nothing). Needs web/dist and /usr/bin/chromium, as
tests/test_web.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from tests.helpers import Server, wait_until
from tests.test_web import LIVE_MS, add_todo, browser, context, open_app, titles  # noqa: F401 - fixtures
from tests.test_web_people import new_list, pick, sign_up
from tests.test_web_polish import count

LONG = "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz"
# On a laptop's screen, a title that runs under the delete button.
LONGER = LONG + " Grundstücksverkehrsgenehmigungszuständigkeitsübertragungsverordnung"

# Whether the title's text is drawn at a point (as in tests/test_web_polish.py).
_ON_TEXT = """(e, [x, y]) => {
  const range = document.createRange();
  range.selectNodeContents(e);
  return [...range.getClientRects()].some(b => b.left <= x && x <= b.right && b.top <= y && y <= b.bottom);
}"""


def settled(server: Server, page: Page, todos: int) -> None:
    """The server holds `todos` and the page's outbox line, which moves the rows, is gone."""
    wait_until(lambda: count(server) == todos, timeout=LIVE_MS / 1000)
    expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)


# Where a title's text is drawn under its row's delete button: the middle of the part of
# a line of text the button covers.
_UNDER_BUTTON = """(e, b) => {
  const range = document.createRange();
  range.selectNodeContents(e);
  for (const r of range.getClientRects()) {
    const left = Math.max(r.left, b.x), right = Math.min(r.right, b.x + b.width);
    const top = Math.max(r.top, b.y), bottom = Math.min(r.bottom, b.y + b.height);
    if (right - left >= 4 && bottom - top >= 4) return [(left + right) / 2, (top + bottom) / 2];
  }
  return null;
}"""


def _button_on_text(page: Page, row: int) -> tuple[float, float]:
    """A point of a row's delete button where its long title's text runs under it."""
    box = page.locator(".todo-list li").nth(row).locator(".destroy").bounding_box()
    assert box is not None
    point = titles(page).nth(row).locator("bdi").evaluate(_UNDER_BUTTON, box)
    assert point is not None
    assert titles(page).nth(row).locator("bdi").evaluate(_ON_TEXT, point)
    return point[0], point[1]


def test_a_mouse_double_click_at_the_end_of_a_long_title_edits_it(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    """TodoMVC's "Double-click to edit a todo": where the title runs under the delete
    button, the mouse's double-click opens the editor and deletes nothing (it deleted the
    row with its first click)."""
    page = open_app(context, server)
    add_todo(page, LONGER)
    add_todo(page, "next")
    expect(titles(page)).to_have_text([LONGER, "next"], timeout=LIVE_MS)
    settled(server, page, 2)
    x, y = _button_on_text(page, 0)
    page.mouse.move(x, y)
    expect(page.locator(".todo-list li:hover .destroy")).to_have_css("opacity", "1")
    page.mouse.dblclick(x, y)
    edit = page.locator(".todo-list li.editing .edit")
    expect(edit).to_have_value(LONGER)
    expect(edit).to_be_focused()
    page.wait_for_timeout(1000)  # past any delete a first click could have left waiting
    expect(edit).to_have_value(LONGER)
    assert count(server) == 2
    edit.fill(LONGER + "!")
    edit.press("Enter")
    expect(titles(page)).to_have_text([LONGER + "!", "next"], timeout=LIVE_MS)
    assert count(server) == 2


def test_a_mouse_click_on_the_delete_button_over_a_long_title_still_deletes(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    """One click where the title runs under the button deletes the row once no second
    click came; a click where no text lies (a short title) deletes at once, as before."""
    page = open_app(context, server)
    add_todo(page, LONGER)
    add_todo(page, "short")
    expect(titles(page)).to_have_text([LONGER, "short"], timeout=LIVE_MS)
    settled(server, page, 2)
    page.mouse.move(*_button_on_text(page, 0))
    expect(page.locator(".todo-list li:hover .destroy")).to_have_css("opacity", "1")
    page.mouse.down()
    page.mouse.up()
    expect(titles(page)).to_have_text(["short"], timeout=LIVE_MS)
    page.get_by_role("button", name='Delete "short"').click()
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)
    wait_until(lambda: count(server) == 0, timeout=LIVE_MS / 1000)


def test_a_mouse_double_click_on_a_shown_delete_button_deletes_once(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    """Where no text lies under it, a double-click on the delete button deletes its row
    with its first click; its second, on the row not yet gone, sends no second delete
    (the server refused it: "Could not delete “one”: no todo with id …")."""
    page = open_app(context, server)
    add_todo(page, "one")
    expect(titles(page)).to_have_text(["one"], timeout=LIVE_MS)
    settled(server, page, 1)
    deletes: list[str] = []

    def record(request: Request) -> None:
        if "mutation DeleteTodo(" in (request.post_data or ""):
            deletes.append(request.post_data or "")

    page.on("request", record)
    delete = page.get_by_role("button", name='Delete "one"')
    delete.hover()
    expect(delete).to_have_css("opacity", "1")
    delete.dblclick()
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)
    wait_until(lambda: count(server) == 0, timeout=LIVE_MS / 1000)
    expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    page.wait_for_timeout(500)
    expect(page.locator(".error-banner")).to_have_count(0)
    assert len(deletes) == 1, deletes


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811 - the fixture
    touch = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True, is_mobile=True)
    yield touch
    touch.close()


def test_a_double_tap_on_a_shown_delete_button_over_a_long_title_edits_it(
    server: Server, phone: BrowserContext
) -> None:
    """On a phone the first tap on the transparent button only shows it; a double tap
    there afterwards, on the shown button over the title's end, is an edit too."""
    page = open_app(phone, server)
    add_todo(page, LONG)
    expect(titles(page)).to_have_text([LONG], timeout=LIVE_MS)
    settled(server, page, 1)
    x, y = _button_on_text(page, 0)
    page.touchscreen.tap(x, y)
    delete = page.locator(".todo-list li .destroy")
    expect(delete).to_have_css("opacity", "1")
    page.wait_for_timeout(600)  # not a double tap
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(80)
    page.touchscreen.tap(x, y)
    expect(page.locator(".todo-list li.editing .edit")).to_have_value(LONG)
    page.wait_for_timeout(1000)
    assert count(server) == 1


def test_a_tap_on_the_unseen_move_button_opens_its_menu_and_a_double_tap_moves_nothing(
    accounts: Server, phone: BrowserContext
) -> None:
    """The move button is transparent until hovered, as the delete button; unlike that
    one, a first tap on it opens its menu at once: opening a menu is seen and loses
    nothing, and no title runs under the button (the label's padding keeps it clear). A
    double tap there opens and closes the menu, and moves nothing."""
    ann = sign_up(phone, accounts, "ann")
    new_list(ann, "work")
    pick(ann, "Todos")
    add_todo(ann, LONG)
    expect(titles(ann)).to_have_text([LONG], timeout=LIVE_MS)
    settled(accounts, ann, 1)
    move = ann.get_by_role("button", name=f'Move "{LONG}"')
    expect(move).to_have_css("opacity", "0")
    box = move.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert not titles(ann).nth(0).locator("bdi").evaluate(_ON_TEXT, [x, y])

    ann.touchscreen.tap(x, y)
    expect(ann.get_by_role("menuitem", name="work")).to_be_focused()
    expect(move).to_have_attribute("aria-expanded", "true")
    expect(move).to_have_css("opacity", "1")
    ann.touchscreen.tap(x, y)  # closes it
    expect(move).to_have_attribute("aria-expanded", "false")
    ann.wait_for_timeout(600)  # not a double tap

    ann.touchscreen.tap(x, y)
    ann.wait_for_timeout(80)
    ann.touchscreen.tap(x, y)
    ann.wait_for_timeout(500)
    expect(titles(ann)).to_have_text([LONG])
    expect(ann.get_by_role("menuitem")).to_have_count(0)
