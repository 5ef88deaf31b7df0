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
from tests.test_web_move import _ann_on_two_pages, ask, list_of, move
from tests.test_web_people import PASSWORD, new_list, pick, share, sign_up, two  # noqa: F401 - fixtures
from tests.test_web_polish import assert_aligned, count, direction, text_box


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


def settled(server: Server, page: Page, todos: int) -> None:
    """The server holds `todos` and the page's outbox is empty: its line above the
    list, which moves the rows down while it shows, is gone."""
    stored(server, todos)
    expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)


LONG = "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz"


def _long_row_on_a_phone(server: Server, phone: BrowserContext, *more: str) -> tuple[Page, float, float]:
    """A page on a phone with a long title, whose end runs under its transparent
    delete button; and the middle of that button."""
    page = open_app(phone, server)
    for title in (LONG, *more):
        add_todo(page, title)
    expect(titles(page)).to_have_text([LONG, *more], timeout=LIVE_MS)
    settled(server, page, 1 + len(more))
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


def _touch(page: Page, phone: BrowserContext, points: list[tuple[float, float]], hold_ms: int = 0) -> None:
    """One finger down at the first point, through the others, up: a long press
    when held, a drag (a scroll) when it moves."""
    cdp = phone.new_cdp_session(page)
    (x, y), *path = points
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    page.wait_for_timeout(hold_ms)
    for px, py in path:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": px, "y": py}]})
        page.wait_for_timeout(16)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_a_long_press_or_a_scroll_from_the_unseen_button_deletes_nothing(
    server: Server, phone: BrowserContext
) -> None:
    page, x, y = _long_row_on_a_phone(server, phone, *(f"row {i}" for i in range(12)))
    _touch(page, phone, [(x, y)], hold_ms=1200)
    _touch(page, phone, [(x, y), *((x, y - 10 * i) for i in range(1, 20))])
    page.wait_for_timeout(500)
    expect(titles(page).nth(0)).to_have_text(LONG)
    assert count(server) == 13


def test_a_tap_on_another_row_s_unseen_button_only_shows_it(server: Server, phone: BrowserContext) -> None:
    """One row's button shown (tapped once), a tap on another row's, still
    transparent, shows that one and deletes neither; the first row's button,
    no longer shown, takes a tap again to show."""
    page, x, y = _long_row_on_a_phone(server, phone, LONG + " 2")
    page.touchscreen.tap(x, y)
    first, second = (page.locator(".todo-list li").nth(i).locator(".destroy") for i in range(2))
    expect(first).to_have_css("opacity", "1")
    box = second.bounding_box()
    assert box is not None
    page.wait_for_timeout(600)  # not a double tap
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    expect(titles(page)).to_have_count(2)
    expect(second).to_have_css("opacity", "1")
    expect(first).to_have_css("opacity", "0")
    page.wait_for_timeout(600)
    page.touchscreen.tap(x, y)
    page.wait_for_timeout(500)
    assert count(server) == 2
    page.wait_for_timeout(600)
    page.touchscreen.tap(x, y)
    expect(titles(page)).to_have_text([LONG + " 2"], timeout=LIVE_MS)


def test_the_keyboard_and_a_screen_reader_still_delete_at_once_on_a_touch_screen(
    server: Server, phone: BrowserContext
) -> None:
    """A key's click (Enter, Space on the focused, shown button) and an assistive
    technology's (a click with no press, detail 0) delete at once, as before."""
    page, _, _ = _long_row_on_a_phone(server, phone, "two", "three")
    page.get_by_role("button", name='Delete "two"').focus()
    page.keyboard.press("Enter")
    expect(titles(page)).to_have_text([LONG, "three"], timeout=LIVE_MS)
    page.get_by_role("button", name='Delete "three"').focus()
    page.keyboard.press("Space")
    expect(titles(page)).to_have_text([LONG], timeout=LIVE_MS)
    page.get_by_role("button", name=f'Delete "{LONG}"').evaluate("b => b.click()")
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)
    wait_until(lambda: count(server) == 0, timeout=LIVE_MS / 1000)


@pytest.fixture
def laptop(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811 - the fixture
    both = browser.new_context(has_touch=True)
    yield both
    both.close()


def _pen(page: Page, browsing: BrowserContext, x: float, y: float, hover: bool) -> None:
    cdp = browsing.new_cdp_session(page)
    common = {"x": x, "y": y, "pointerType": "pen", "button": "left"}
    if hover:
        cdp.send("Input.dispatchMouseEvent", {**common, "type": "mouseMoved", "button": "none"})
        # A hovering pen's user sees the button before touching: on a loaded machine
        # Chromium's hover of the row can come later than any fixed wait.
        expect(page.locator(".todo-list li:hover .destroy")).to_have_css("opacity", "1")
    cdp.send("Input.dispatchMouseEvent", {**common, "type": "mousePressed", "clickCount": 1})
    cdp.send("Input.dispatchMouseEvent", {**common, "type": "mouseReleased", "clickCount": 1})
    cdp.detach()


def test_a_touch_laptop_s_mouse_and_pen_delete_what_they_hover(server: Server, laptop: BrowserContext) -> None:
    """On a laptop with a touch screen: a tap on an unseen button shows it; the
    mouse then, hovering a row, deletes with one click; a pen hovering before it
    touches too, and one that touches unseen only shows it."""
    page = open_app(laptop, server)
    for title in ("one", "two", "three", "four"):
        add_todo(page, title)
    expect(titles(page)).to_have_text(["one", "two", "three", "four"], timeout=LIVE_MS)
    settled(server, page, 4)

    def middle(title: str) -> tuple[float, float]:
        box = page.get_by_role("button", name=f'Delete "{title}"').bounding_box()
        assert box is not None
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    page.mouse.move(0, 0)
    page.touchscreen.tap(*middle("one"))
    page.wait_for_timeout(500)
    expect(titles(page)).to_have_count(4)
    page.mouse.move(*middle("two"))
    page.mouse.down()
    page.mouse.up()
    expect(titles(page)).to_have_text(["one", "three", "four"], timeout=LIVE_MS)
    # The delete stored first: its "changes waiting" line above the list, going,
    # moves the rows up, and a button measured before it would be pressed where it was.
    settled(server, page, 3)
    # The mouse away first: "three" slid under it, and a pen appearing at the still
    # mouse's very spot is no pen's way (its hover there came or not, by Chromium's timer).
    page.mouse.move(0, 0)
    _pen(page, laptop, *middle("three"), hover=True)
    expect(titles(page)).to_have_text(["one", "four"], timeout=LIVE_MS)
    page.mouse.move(0, 0)
    page.wait_for_timeout(100)
    _pen(page, laptop, *middle("four"), hover=False)
    page.wait_for_timeout(500)
    expect(titles(page)).to_have_text(["one", "four"])
    wait_until(lambda: count(server) == 2, timeout=LIVE_MS / 1000)


def test_a_still_mouse_deletes_row_after_row(server: Server, context: BrowserContext) -> None:  # noqa: F811 - the fixture
    """Clicks on one spot, the mouse never moving: each deletes the row that came
    up under it (hovered, shown), as before."""
    page = open_app(context, server)
    for title in ("one", "two", "three"):
        add_todo(page, title)
    expect(titles(page)).to_have_text(["one", "two", "three"], timeout=LIVE_MS)
    settled(server, page, 3)
    box = page.get_by_role("button", name='Delete "one"').bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.up()
    expect(titles(page)).to_have_text(["two", "three"], timeout=LIVE_MS)
    # Quick as a double-click: the mouse's second click deletes the next, as before
    # (a double tap's does not), once the browser hovers the row that came up under it
    # (it does so on a timer after the layout; a press before that only shows it).
    page.wait_for_timeout(300)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    expect(titles(page)).to_have_text(["three"], timeout=LIVE_MS)


# A title as typed, the direction it must be laid out in.
MIXED = [
    ("123 שלום", "rtl"),  # digits are neutral: the first strong letter is Hebrew
    ("abc שלום", "ltr"),
    ("שלום abc", "rtl"),
    ("(!) مرحبا", "rtl"),
    ("2026", "ltr"),  # no strong letter: the page's direction
    ("\u200fabc", "rtl"),  # a right-to-left mark first
]


def test_mixed_direction_titles_on_a_phone_are_aligned_by_their_first_strong_letter(
    server: Server, phone: BrowserContext
) -> None:
    page = open_app(phone, server)
    for title, _ in MIXED:
        add_todo(page, title)
    expect(titles(page)).to_have_count(len(MIXED), timeout=LIVE_MS)
    settled(server, page, len(MIXED))
    for i, (title, way) in enumerate(MIXED):
        row = page.locator(".todo-list li").nth(i)
        bdi = row.locator("label > bdi")
        assert direction(bdi) == way, title
        assert_aligned(bdi, row.locator("label"), "right" if way == "rtl" else "left")
        # Clear of the checkbox and of the delete button (in view or not).
        drawn = text_box(bdi)
        destroy, toggle = row.locator(".destroy").bounding_box(), row.locator(".toggle").bounding_box()
        assert destroy is not None and toggle is not None
        assert toggle["x"] + toggle["width"] <= drawn["left"] and drawn["right"] <= destroy["x"], title
        # Its editor takes the same direction, the caret at the title's end.
        titles(page).nth(i).dblclick()
        edit = page.locator(".todo-list li.editing .edit")
        assert direction(edit) == way, title
        assert edit.evaluate("e => [e.selectionStart, e.selectionEnd]") == [len(title)] * 2, title
        edit.press("Escape")


def test_a_right_to_left_title_stays_clear_of_the_move_and_delete_buttons_on_a_phone(
    accounts: Server, phone: BrowserContext
) -> None:
    ann = sign_up(phone, accounts, "ann")
    new_list(ann, "work")
    pick(ann, "Todos")
    long_rtl = "משימה ארוכה מאוד שעוברת את כל הרוחב של המסך הקטן של הטלפון"
    add_todo(ann, long_rtl)
    expect(titles(ann)).to_have_text([long_rtl], timeout=LIVE_MS)
    row = ann.locator(".todo-list li").nth(0)
    bdi = row.locator("label > bdi")
    assert direction(bdi) == "rtl"
    assert_aligned(bdi, row.locator("label"), "right")
    move_box = row.locator(".move").bounding_box()
    assert move_box is not None
    assert text_box(bdi)["right"] <= move_box["x"]
    # Its move menu opens on the phone's screen, the list name in view.
    row.locator(".move").click()
    item = ann.get_by_role("menuitem", name="work")
    box = item.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360


def test_list_wide_edits_made_offline_in_two_lists_touch_each_its_own(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """Offline, "toggle all" on «trip» then "clear completed" on «Todos»: back
    online, each list got its own edit and nothing of the other's."""
    ann = sign_up(two[0], accounts, "ann")
    add_todo(ann, "home chore")
    add_todo(ann, "home done")
    ann.locator(".todo-list li").nth(1).locator(".toggle").check()
    new_list(ann, "trip")
    add_todo(ann, "passport")
    add_todo(ann, "tickets")
    expect(titles(ann)).to_have_text(["passport", "tickets"], timeout=LIVE_MS)
    settled(accounts, ann, 4)

    go_offline(two[0])
    ann.locator("label[for=toggle-all]").click()
    expect(ann.locator(".todo-list li.completed")).to_have_count(2)
    pick(ann, "Todos")
    expect(titles(ann)).to_have_text(["home chore", "home done"])
    expect(ann.locator(".todo-list li.completed")).to_have_text(["home done"])
    ann.locator(".clear-completed").click()
    expect(titles(ann)).to_have_text(["home chore"])
    pick(ann, "trip")
    expect(ann.locator(".todo-list li.completed")).to_have_count(2)  # not cleared
    two[0].set_offline(False)
    expect(ann.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)

    found = ask(two[0], accounts, "{ lists { id name } todos { title completed listId } }")
    names = {entry["id"]: entry["name"] for entry in found["lists"]}
    assert sorted((names[t["listId"]], t["title"], t["completed"]) for t in found["todos"]) == [
        ("Todos", "home chore", False),
        ("trip", "passport", True),
        ("trip", "tickets", True),
    ]


def test_a_viewer_can_neither_toggle_all_nor_clear_completed(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann = sign_up(two[0], accounts, "ann")
    new_list(ann, "trip")
    add_todo(ann, "passport")
    add_todo(ann, "tickets")
    ann.locator(".todo-list li").nth(1).locator(".toggle").check()
    bob = sign_up(two[1], accounts, "bob")
    share(ann, "bob", "VIEWER")
    pick(bob, "trip")
    expect(titles(bob)).to_have_text(["passport", "tickets"], timeout=LIVE_MS)
    sent: list[str] = []
    bob.on("request", lambda request: sent.append(request.post_data or "") if request.method == "POST" else None)
    bob.locator("label[for=toggle-all]").click(force=True)
    expect(bob.locator("#toggle-all")).to_be_disabled()
    expect(bob.locator(".clear-completed")).to_be_hidden()
    bob.wait_for_timeout(500)
    assert not [body for body in sent if "ToggleAll" in body or "ClearCompleted" in body]
    expect(bob.locator(".todo-list li.completed")).to_have_text(["tickets"])
    expect(bob.locator(".outbox-count")).to_have_count(0)
