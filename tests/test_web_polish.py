"""Small things of the web client, end to end in Debian's headless Chromium against the
real server: "toggle all" and "clear completed" name only the rows of the list on
screen. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, browser, stored, titles  # noqa: F401 - fixtures
from tests.test_web_people import PASSWORD, accounts, new_list, sign_up, two  # noqa: F401 - fixtures


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
