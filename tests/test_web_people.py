"""The web client with AUTH=accounts (docs/design/people.md section 10), end to
end: two people in two browser contexts (two cookie jars) of Debian's
headless Chromium against the real server. They sign up, share a list, edit
it live both ways; a viewer's list is read-only; an unshared list leaves the
other's page at once with a message; a session that ends sends the page to
sign-in; an owner changes a member's role and a member leaves, both seen live;
each person's queued edits go out only under their own session, and a reload
offline starts as the person it was.
Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright import sync_api
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.helpers import WEB_DIST, Server
from tests.test_web import CHROMIUM, CHROMIUM_ARGS, LIVE_MS, add_todo, go_offline, page_until, stored, titles

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "needs /usr/bin/chromium (make test installs it)"
    assert (WEB_DIST / "index.html").exists(), "needs web/dist (make test builds it)"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def two(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    first, second = (browser.new_context(viewport={"width": 1000, "height": 800}) for _ in range(2))
    yield first, second
    first.close()
    second.close()


def sign_up(context: BrowserContext, server: Server, username: str) -> Page:
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator(".sign-in-form h2")).to_have_text("Sign in")
    page.get_by_role("button", name="New here? Create an account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".account-name")).to_have_text(username, timeout=LIVE_MS)
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
    return page


def shown_list(page: Page) -> str:
    selected: str = page.locator(".list-select").evaluate("s => s.options[s.selectedIndex].text")
    return selected


def pick(page: Page, name: str) -> None:
    """Show the list whose option starts with `name` (it may take a poll to appear)."""
    option = page.locator(".list-select option", has_text=f"{name} (")
    expect(option).to_have_count(1, timeout=LIVE_MS)
    page.locator(".list-select").select_option(option.get_attribute("value"))


def new_list(page: Page, name: str) -> None:
    page.locator(".new-list").fill(name)
    page.locator(".new-list").press("Enter")
    expect(page.locator(".list-select")).to_contain_text(f"{name} (yours)", timeout=LIVE_MS)


def share(page: Page, username: str, role: str) -> None:
    if page.locator(".share-dialog").count() == 0:
        page.locator(".share-toggle").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Role", exact=True).select_option(role)
    page.locator(".share-form button[type=submit]").click()
    expect(page.locator(f".members li[data-username='{username}']")).to_be_visible(timeout=LIVE_MS)


def trip_shared(accounts: Server, two: tuple[BrowserContext, BrowserContext]) -> tuple[Page, Page]:
    """ann and bob signed up; ann's new list «trip» shared with bob as editor, on his screen."""
    ann = sign_up(two[0], accounts, "ann")
    bob = sign_up(two[1], accounts, "bob")
    new_list(ann, "trip")
    share(ann, "bob", "EDITOR")
    pick(bob, "trip")
    return ann, bob


def test_two_people_share_a_list_and_see_each_other_live(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    ann = sign_up(two[0], accounts, "ann")
    bob = sign_up(two[1], accounts, "bob")
    # Each starts in their own default list, empty: neither sees the other's.
    add_todo(ann, "ann's own")
    expect(titles(ann)).to_have_text(["ann's own"], timeout=LIVE_MS)
    expect(titles(bob)).to_have_count(0)

    new_list(ann, "groceries")
    assert shown_list(ann).startswith("groceries")
    expect(titles(ann)).to_have_count(0)
    add_todo(ann, "milk")
    expect(titles(ann)).to_have_text(["milk"], timeout=LIVE_MS)

    share(ann, "bob", "EDITOR")
    pick(bob, "groceries")
    expect(titles(bob)).to_have_text(["milk"], timeout=LIVE_MS)
    # Live both ways.
    add_todo(bob, "eggs")
    expect(titles(ann)).to_have_text(["milk", "eggs"], timeout=LIVE_MS)
    ann.locator(".todo-list li", has_text="milk").locator(".toggle").check()
    expect(bob.locator(".todo-list li", has_text="milk")).to_have_class("completed", timeout=LIVE_MS)
    # A rename reaches the other's switcher.
    ann.locator(".rename-list-button").click()
    ann.locator(".rename-list").fill("food")
    ann.locator(".rename-list").press("Enter")
    expect(bob.locator(".list-select")).to_contain_text("food (shared: you edit)", timeout=LIVE_MS)

    # A viewer's list is read-only: no inputs, disabled checkboxes, no delete.
    new_list(ann, "notes")
    add_todo(ann, "read me")
    expect(titles(ann)).to_have_text(["read me"], timeout=LIVE_MS)
    share(ann, "bob", "VIEWER")
    pick(bob, "notes")
    expect(titles(bob)).to_have_text(["read me"], timeout=LIVE_MS)
    app = bob.locator(".todoapp")
    expect(app).to_have_attribute("data-readonly", "true")
    expect(bob.locator(".new-todo")).to_have_count(0)
    expect(bob.locator(".todo-list .toggle")).to_be_disabled()
    expect(bob.locator(".toggle-all")).to_be_disabled()
    expect(bob.locator(".todo-list .destroy")).to_have_count(0)
    bob.locator(".todo-list label").dblclick()
    expect(bob.locator(".todo-list .edit")).to_have_count(0)
    expect(bob.locator(".remove-member")).to_have_count(0)  # only the owner removes
    ann.locator(".todo-list li", has_text="read me").locator(".toggle").check()
    expect(bob.locator(".todo-list li", has_text="read me")).to_have_class("completed", timeout=LIVE_MS)

    # Unshared while bob looks at it: the list leaves his page, with a message.
    ann.get_by_role("button", name="Remove bob").click()
    expect(bob.locator(".list-notice")).to_have_text("«notes» is no longer shared with you×", timeout=LIVE_MS)
    expect(bob.locator(".list-select")).not_to_contain_text("notes")
    expect(bob.locator(".todoapp")).not_to_have_attribute("data-readonly", "true")
    expect(titles(bob)).to_have_count(0)  # his default list, empty
    pick(bob, "food")
    expect(titles(bob)).to_have_text(["milk", "eggs"])


def test_an_owner_changes_a_role_live_and_a_member_leaves(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    ann, bob = trip_shared(accounts, two)
    add_todo(bob, "tickets")
    expect(titles(ann)).to_have_text(["tickets"], timeout=LIVE_MS)

    # Made a viewer while he looks at the list: it turns read-only on his page.
    ann.get_by_label("Role of bob").select_option("VIEWER")
    expect(bob.locator(".todoapp")).to_have_attribute("data-readonly", "true", timeout=LIVE_MS)
    expect(bob.locator(".list-select")).to_contain_text("trip (shared: read only)")
    expect(bob.locator(".new-todo")).to_have_count(0)
    # Only the owner sees role choices; a member sees a way out instead.
    bob.locator(".share-toggle").click()
    expect(bob.get_by_label("Role of ann")).to_have_count(0)
    expect(bob.locator(".members li[data-username='bob'] .member-role")).to_have_text("viewer")
    expect(ann.locator(".leave-list")).to_have_count(0)

    # He leaves: the list is gone from his page without an "unshared" notice, and from
    # the owner's members at once.
    bob.once("dialog", lambda dialog: dialog.accept())
    bob.locator(".leave-list").click()
    expect(bob.locator(".list-select")).not_to_contain_text("trip", timeout=LIVE_MS)
    expect(titles(bob)).to_have_count(0)
    expect(ann.locator(".members li[data-username='bob']")).to_have_count(0, timeout=LIVE_MS)
    expect(bob.locator(".list-notice")).to_have_count(0)
    expect(titles(ann)).to_have_text(["tickets"])


def test_a_list_deleted_by_its_owner_leaves_and_a_session_that_ends_signs_in_again(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    ann, bob = trip_shared(accounts, two)
    ann.once("dialog", lambda dialog: dialog.accept())
    ann.locator(".delete-list").click()
    expect(ann.locator(".list-select")).not_to_contain_text("trip", timeout=LIVE_MS)
    expect(ann.locator(".list-notice")).to_have_count(0)  # her own delete needs no telling
    expect(bob.locator(".list-notice")).to_contain_text("«trip» was deleted", timeout=LIVE_MS)

    # Signing out ends the session; the page shows the sign-in form.
    bob.locator(".sign-out").click()
    expect(bob.locator(".sign-in-form")).to_be_visible(timeout=LIVE_MS)
    # A session ended elsewhere (here: its cookie's session deleted behind the page's back).
    ann.evaluate("fetch('/api/auth/sign-out', {method: 'POST'})")
    expect(ann.locator(".sign-in-notice")).to_have_text("Your session has ended: sign in again.", timeout=LIVE_MS)
    # Wrong password is told; the right one signs in again.
    ann.get_by_label("Username").fill("ann")
    ann.get_by_label("Password").fill("not the password")
    ann.get_by_role("button", name="Sign in", exact=True).click()
    expect(ann.locator(".sign-in-error")).to_have_text("Wrong username or password.")
    ann.get_by_label("Password").fill(PASSWORD)
    ann.get_by_role("button", name="Sign in", exact=True).click()
    expect(ann.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)


def test_an_edit_queued_by_one_person_goes_out_only_under_their_session(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """Each person's outbox is their own (web/README.md): ann's edit queued offline is
    not sent by bob's page in the same browser, and goes into ann's list once she is
    back."""
    mine, elsewhere = two
    ann = sign_up(mine, accounts, "ann")
    go_offline(mine)
    add_todo(ann, "ann's, made offline")
    expect(ann.locator(".outbox-count")).to_have_text("1 change waiting")
    expect(titles(ann)).to_have_text(["ann's, made offline"])
    ann.close()
    mine.set_offline(False)

    # Bob in the same browser (ann's cookie replaced by his): his page has its own outbox.
    same_origin = {"Origin": accounts.url}  # as the page's own requests (the CSRF check)
    assert mine.request.post(accounts.url + "/api/auth/sign-out", headers=same_origin).ok
    bob = sign_up(mine, accounts, "bob")
    expect(bob.locator(".outbox-count")).to_have_count(0)
    expect(titles(bob)).to_have_count(0)
    add_todo(bob, "bob's")
    expect(titles(bob)).to_have_text(["bob's"], timeout=LIVE_MS)
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)

    # Ann signs in again: her page sends her edit, into her default list.
    bob.locator(".sign-out").click()
    bob.get_by_label("Username").fill("ann")
    bob.get_by_label("Password").fill(PASSWORD)
    bob.get_by_role("button", name="Sign in", exact=True).click()
    expect(bob.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    expect(bob.locator(".rejection")).to_have_count(0)
    expect(titles(bob)).to_have_text(["ann's, made offline"])

    # Bob's todos, read with his own session elsewhere: only his.
    assert elsewhere.request.post(
        accounts.url + "/api/auth/sign-in",
        data={"username": "bob", "password": PASSWORD},
        headers=same_origin,
    ).ok
    reply = elsewhere.request.post(
        accounts.url + "/graphql", data={"query": "{ todos { title } }"}, headers=same_origin
    )
    assert [t["title"] for t in reply.json()["data"]["todos"]] == ["bob's"]


def test_a_reload_offline_shows_the_same_person_s_lists_and_queues_into_their_outbox(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """Offline, the service worker's page cannot ask who is signed in: it starts as the
    person it last was (their lists, their outbox), never as open mode's page."""
    mine = two[0]
    ann = sign_up(mine, accounts, "ann")
    page_until(ann, "navigator.serviceWorker.controller !== null")
    add_todo(ann, "before")
    # Sent and settled before going offline. Waiting for the count alone could pass
    # before the edit was even queued (no count yet): then it was still queued when the
    # page went offline and the reload showed 2 waiting (1 in 4 runs).
    stored(accounts, 1)
    expect(ann.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    expect(titles(ann)).to_have_text(["before"])

    go_offline(mine)
    reloaded = ann.reload()
    assert reloaded is not None and reloaded.from_service_worker
    expect(ann.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)
    expect(ann.locator(".list-select")).to_contain_text("(yours)")
    expect(titles(ann)).to_have_text(["before"], timeout=LIVE_MS)
    add_todo(ann, "made offline")
    expect(ann.locator(".outbox-count")).to_have_text("1 change waiting")

    mine.set_offline(False)
    expect(ann.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)
    same_origin = {"Origin": accounts.url}
    reply = mine.request.post(accounts.url + "/graphql", data={"query": "{ todos { title } }"}, headers=same_origin)
    assert [t["title"] for t in reply.json()["data"]["todos"]] == ["before", "made offline"]


def test_a_page_left_open_across_another_sign_in_does_not_send_as_the_new_person(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]
) -> None:
    """Ann's page is offline with an edit queued while, elsewhere in the same
    browser (same cookie jar), she signs out and bob signs up: back online, her
    page sees the session is no longer hers and stops, sending nothing as bob."""
    mine = two[0]
    ann = sign_up(mine, accounts, "ann")
    go_offline(mine)
    add_todo(ann, "ann's, still queued")
    expect(ann.locator(".outbox-count")).to_have_text("1 change waiting")
    same_origin = {"Origin": accounts.url}
    assert mine.request.post(accounts.url + "/api/auth/sign-out", headers=same_origin).ok
    assert mine.request.post(
        accounts.url + "/api/auth/sign-up", data={"username": "bob", "password": PASSWORD}, headers=same_origin
    ).ok
    mine.set_offline(False)
    expect(ann.locator(".sign-in-notice")).to_have_text("Your session has ended: sign in again.", timeout=LIVE_MS)
    reply = mine.request.post(accounts.url + "/graphql", data={"query": "{ todos { title } }"}, headers=same_origin)
    assert reply.json()["data"]["todos"] == []
