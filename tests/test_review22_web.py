"""review22: the delete button's waiting delete (web/src/TodoItem.tsx), end to end in
Debian's headless Chromium against the real server. A double-click meant to edit a long
title whose first click lands on the delete button over the title's text and whose second
lands on the title just beside the button (a hand moves a few pixels between clicks) opens
the editor through the label's double-click: the delete the first click left waiting must
not fire under the editor. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, browser, context, open_app, titles  # noqa: F401 - fixtures
from tests.test_web_gestures import _ON_TEXT, LONGER, _button_on_text, settled
from tests.test_web_polish import count


def test_a_double_click_straddling_the_delete_buttons_edge_edits_and_deletes_nothing(
    server: Server, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    page = open_app(context, server)
    for title in ("first", LONGER):
        add_todo(page, title)
    expect(titles(page)).to_have_text(["first", LONGER], timeout=LIVE_MS)
    settled(server, page, 2)
    box = page.locator(".todo-list li").nth(1).locator(".destroy").bounding_box()
    assert box is not None
    x, y = _button_on_text(page, 1)
    beside = box["x"] - 3  # on the title's text, just left of the button
    assert titles(page).nth(1).locator("bdi").evaluate(_ON_TEXT, [beside, y])
    page.mouse.move(x, y)
    expect(page.locator(".todo-list li:hover .destroy")).to_have_css("opacity", "1")
    page.mouse.down()
    page.mouse.up()
    page.mouse.move(beside, y)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    edit = page.locator(".todo-list li.editing .edit")
    expect(edit).to_have_value(LONGER)
    page.wait_for_timeout(1000)  # past the delete the first click left waiting
    expect(edit).to_have_value(LONGER)
    expect(titles(page)).to_have_count(2)
    assert count(server) == 2
    edit.fill(LONGER + "!")
    edit.press("Enter")
    expect(titles(page)).to_have_text(["first", LONGER + "!"], timeout=LIVE_MS)
    assert count(server) == 2
