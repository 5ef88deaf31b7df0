"""Small things of the web client, end to end in Debian's headless Chromium against the
real server: "toggle all" and "clear completed" name only the rows of the list on
screen; people's right-to-left text (a title, a list name, what is typed) is laid out
right to left, aligned right, where it stands as an element of its own; and on a touch
screen a tap near the end of a title does not land on the transparent delete button.
Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Request, expect

from tests.helpers import Server, wait_until
from tests.test_web import LIVE_MS, add_todo, browser, context, open_app, stored, titles  # noqa: F401 - fixtures
from tests.test_web_people import PASSWORD, new_list, pick, sign_up, two  # noqa: F401 - fixtures


def sign_in(browsing: BrowserContext, server: Server, username: str) -> Page:
    page = browsing.new_page()
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".account-name")).to_have_text(username, timeout=LIVE_MS)
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
    return page


def row_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator(".todo-list li").evaluate_all("rows => rows.map(r => r.dataset.id)")
    return ids


def variables(request: Request) -> dict[str, Any]:
    body = request.post_data
    assert body is not None
    sent: dict[str, Any] = json.loads(body)["variables"]
    return sent


def sends(operation: str) -> Any:
    return lambda request: request.method == "POST" and f"mutation {operation}(" in (request.post_data or "")


def test_list_wide_edits_name_only_the_rows_of_the_list_on_screen(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """The page holds every todo of ann's lists; "toggle all" and "clear completed" on
    «trip» send the ids of «trip»'s rows alone, and her «Todos», on her other browser,
    stays as it was."""
    ann = sign_up(two[0], accounts, "ann")
    add_todo(ann, "home chore")
    expect(titles(ann)).to_have_text(["home chore"], timeout=LIVE_MS)
    home = sign_in(two[1], accounts, "ann")
    expect(titles(home)).to_have_text(["home chore"], timeout=LIVE_MS)
    home.locator(".todo-list li .toggle").check()
    [chore] = row_ids(home)
    # ann's first page holds it, completed (it reached her page's sync).
    expect(ann.locator(".todo-list li.completed")).to_have_count(1, timeout=LIVE_MS)

    new_list(ann, "trip")
    add_todo(ann, "passport")
    add_todo(ann, "tickets")
    expect(titles(ann)).to_have_text(["passport", "tickets"], timeout=LIVE_MS)
    stored(accounts, 3)
    trip = row_ids(ann)
    assert chore not in trip

    with ann.expect_request(sends("ToggleAll")) as toggled:
        ann.locator("label[for=toggle-all]").click()
    assert variables(toggled.value)["ids"] == trip
    expect(ann.locator(".todo-list li.completed")).to_have_count(2, timeout=LIVE_MS)

    with ann.expect_request(sends("ClearCompleted")) as cleared:
        ann.locator(".clear-completed").click()
    assert variables(cleared.value)["ids"] == trip
    expect(titles(ann)).to_have_count(0, timeout=LIVE_MS)
    stored(accounts, 1)
    # Live on the other browser: «Todos» as it was.
    expect(titles(home)).to_have_text(["home chore"])
    expect(home.locator(".todo-list li.completed")).to_have_count(1)


# Where the text of an element is drawn: from its leftmost box's left to its rightmost's right.
_TEXT_BOX = """e => {
  const range = document.createRange();
  range.selectNodeContents(e);
  const boxes = [...range.getClientRects()];
  return { left: Math.min(...boxes.map(b => b.left)), right: Math.max(...boxes.map(b => b.right)) };
}"""


def text_box(element: Locator) -> dict[str, float]:
    box: dict[str, float] = element.evaluate(_TEXT_BOX)
    return box


def content_box(element: Locator) -> dict[str, float]:
    """The element's content box: inside its padding and border."""
    box: dict[str, float] = element.evaluate(
        """e => {
          const r = e.getBoundingClientRect(), s = getComputedStyle(e);
          return { left: r.left + parseFloat(s.paddingLeft) + parseFloat(s.borderLeftWidth),
                   right: r.right - parseFloat(s.paddingRight) - parseFloat(s.borderRightWidth) };
        }"""
    )
    return box


def direction(element: Locator) -> str:
    found: str = element.evaluate("e => getComputedStyle(e).direction")
    return found


def assert_aligned(text: Locator, within: Locator, side: str) -> None:
    """`text` is drawn against the `side` of `within`'s content box."""
    drawn, content = text_box(text), content_box(within)
    assert abs(drawn[side] - content[side]) < 2, (side, drawn, content)


def test_a_right_to_left_title_is_laid_out_right_to_left_and_a_left_to_right_one_as_before(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    page = open_app(context, server)
    add_todo(page, "אבג 123")
    add_todo(page, "abc 123")
    expect(titles(page)).to_have_text(["אבג 123", "abc 123"], timeout=LIVE_MS)
    rtl, ltr = (page.locator(".todo-list li").nth(i) for i in range(2))

    title = rtl.locator("label > bdi")
    assert direction(title) == "rtl"
    assert_aligned(title, rtl.locator("label"), "right")
    # Clear of the delete button, as a left-to-right title is of the checkbox.
    rtl.hover()
    assert text_box(title)["right"] <= (rtl.locator(".destroy").bounding_box() or {"x": 0})["x"]
    assert direction(ltr.locator("label > bdi")) == "ltr"
    assert_aligned(ltr.locator("label > bdi"), ltr.locator("label"), "left")
    assert content_box(ltr.locator("label"))["left"] - (ltr.bounding_box() or {"x": 0})["x"] == 60
    # Drawn to the pixel as with the title inline, as it was.
    page.mouse.move(0, 0)
    drawn = ltr.screenshot()
    inline = ltr.locator("label > bdi").evaluate("e => { e.style.display = 'inline'; return getComputedStyle(e).display; }")
    assert inline == "inline"
    assert ltr.screenshot() == drawn

    # Its editor too; a left-to-right one's is as it was.
    titles(page).nth(0).dblclick()
    assert direction(page.locator(".todo-list li.editing .edit")) == "rtl"
    page.locator(".todo-list li.editing .edit").press("Escape")
    titles(page).nth(1).dblclick()
    assert direction(page.locator(".todo-list li.editing .edit")) == "ltr"
    page.locator(".todo-list li.editing .edit").press("Escape")

    # What is typed in the new-todo field, once it is right to left.
    field = page.locator(".new-todo")
    assert direction(field) == "ltr"
    field.fill("שלום")
    assert direction(field) == "rtl"
    field.fill("hello")
    assert direction(field) == "ltr"


def test_a_right_to_left_list_name_is_laid_out_right_to_left(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann = sign_up(two[0], accounts, "ann")
    field = ann.locator(".new-list")
    field.fill("קניות")
    assert direction(field) == "rtl"
    field.press("Enter")
    expect(ann.locator(".list-select")).to_contain_text("קניות", timeout=LIVE_MS)
    # The switcher's options are the page's sentences ("«name» (yours)"): left to right.
    assert direction(ann.locator(".list-select")) == "ltr"
    ann.locator(".rename-list-button").click()
    assert direction(ann.locator(".rename-list")) == "rtl"
    ann.locator(".rename-list").press("Escape")

    new_list(ann, "groceries")
    pick(ann, "Todos")
    add_todo(ann, "milk")
    expect(titles(ann)).to_have_text(["milk"], timeout=LIVE_MS)
    ann.get_by_role("button", name='Move "milk"').click()
    rtl = ann.get_by_role("menuitem", name="קניות")
    assert direction(rtl.locator("bdi")) == "rtl"
    assert_aligned(rtl.locator("bdi"), rtl, "right")
    ltr = ann.get_by_role("menuitem", name="groceries")
    assert direction(ltr.locator("bdi")) == "ltr"
    assert_aligned(ltr.locator("bdi"), ltr, "left")


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811 - the fixture
    touch = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True, is_mobile=True)
    yield touch
    touch.close()


def count(server: Server) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM todos").fetchone()
    assert row is not None
    return int(row[0])


def test_a_tap_on_a_title_deletes_nothing_on_a_touch_screen(
    server: Server, phone: BrowserContext
) -> None:
    """The delete button is transparent until its row is hovered or it has focus: a
    tap where it lies, at the end of a long title, must not delete the row unseen: it
    shows the button (gives it focus), and a second tap deletes."""
    page = open_app(phone, server)
    title = "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz"
    add_todo(page, title)
    expect(titles(page)).to_have_text([title], timeout=LIVE_MS)
    stored(server, 1)
    row = page.locator(".todo-list li").nth(0)
    delete = row.locator(".destroy")
    expect(delete).to_have_css("opacity", "0")
    box = delete.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # The title (one long word, wrapped anywhere) runs under it: the tap is on its text.
    on_text = titles(page).nth(0).evaluate(
        """(e, [x, y]) => {
          const range = document.createRange();
          range.selectNodeContents(e);
          return [...range.getClientRects()].some(b => b.left <= x && x <= b.right && b.top <= y && y <= b.bottom);
        }""",
        [x, y],
    )
    assert on_text

    page.touchscreen.tap(x, y)
    page.wait_for_timeout(500)
    expect(titles(page)).to_have_text([title])
    assert count(server) == 1
    expect(delete).to_have_css("opacity", "1")

    page.touchscreen.tap(x, y)
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)
    wait_until(lambda: count(server) == 0, timeout=LIVE_MS / 1000)
