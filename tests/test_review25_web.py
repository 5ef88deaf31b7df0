"""Review of the web client's offline refusals (explore's): journeys of two
people in two real Chromium contexts, as tests/test_explore_web_journeys.py.
Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, go_offline, titles
from tests.test_web_people import browser, new_list, pick, share, sign_up, trip_shared, two  # noqa: F401 (fixtures)


def test_edits_queued_in_a_list_deleted_while_the_page_was_closed_do_not_say_unshared(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Bob edits «trip» offline and closes the page; ann deletes «trip»; bob opens the app
    again online and his edits are refused. This page never saw «trip» go: it cannot
    tell a deletion from an unsharing (the server refuses both alike), so it must not
    say "no longer shared with you" (ann deleted it: bob would ask her to share it again)."""
    ann, bob = trip_shared(accounts, two)
    add_todo(ann, "tickets")
    expect(titles(bob)).to_have_text(["tickets"], timeout=LIVE_MS)
    go_offline(two[1])
    add_todo(bob, "passport")
    expect(bob.locator(".outbox-count")).to_have_text("1 change waiting")
    bob.close()
    ann.once("dialog", lambda dialog: dialog.accept())
    ann.locator(".delete-list").click()
    expect(ann.locator(".list-select")).not_to_contain_text("trip", timeout=LIVE_MS)

    two[1].set_offline(False)
    bob = two[1].new_page()
    bob.goto(accounts.url + "/")
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)
    expect(bob.locator(".rejection")).to_have_text(
        ["Could not add “passport”: «trip» is no longer among your lists×"], timeout=LIVE_MS
    )
    expect(bob.locator(".list-notice")).to_have_text("«trip» is no longer among your lists×")


def test_a_notice_for_a_list_of_a_long_unbroken_name_can_be_dismissed(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """A list name is up to 200 characters, a word of them too: the notice that bob lost
    it, and the refusal of his edit queued in it, wrap it, and keep their dismiss button
    in the notice (the name pushed it out of sight: the notice stayed for good)."""
    ann = sign_up(two[0], accounts, "ann")
    bob = sign_up(two[1], accounts, "bob")
    name = "w" * 200
    new_list(ann, name)
    share(ann, "bob", "EDITOR")
    pick(bob, name)
    go_offline(two[1])
    add_todo(bob, "passport")
    ann.get_by_role("button", name="Remove bob").click()
    expect(ann.locator(".members li[data-username='bob']")).to_have_count(0, timeout=LIVE_MS)
    two[1].set_offline(False)
    for notice in (bob.locator(".list-notice"), bob.locator(".rejection")):
        expect(notice).to_be_visible(timeout=3 * LIVE_MS)
        inside = notice.evaluate(
            "n => { const b = n.querySelector('button').getBoundingClientRect(), r = n.getBoundingClientRect();"
            " return b.right <= r.right && b.left >= r.left && n.scrollWidth <= n.clientWidth; }"
        )
        assert inside, notice
        notice.get_by_role("button", name="Dismiss").click()
        expect(notice).to_have_count(0)
