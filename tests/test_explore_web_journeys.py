"""Whole journeys across people, browser contexts and connectivity, end to end on
one real server (web/dist in Debian's headless Chromium, AUTH=accounts): what
each person sees after the others acted while they were offline. Needs web/dist
and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, go_offline, titles
from tests.test_web_people import accounts, browser, trip_shared, two  # noqa: F401 (fixtures)


def test_edits_queued_by_a_member_removed_meanwhile_are_each_refused_for_that_reason(
    accounts: Server,  # noqa: F811
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Bob edits «trip» offline (an add, a toggle, a delete) while ann removes him from it:
    back online, each edit is refused on his screen as made in a list no longer his, not
    as a row "deleted" (ann still has it), a raw "no list with id …", or, for the
    delete, nothing at all (he would believe the row gone)."""
    ann, bob = trip_shared(accounts, two)
    add_todo(ann, "tickets")
    add_todo(ann, "visa")
    expect(titles(bob)).to_have_text(["tickets", "visa"], timeout=LIVE_MS)

    go_offline(two[1])
    add_todo(bob, "passport")
    bob.locator(".todo-list li", has_text="tickets").locator(".toggle").check()
    bob.get_by_role("button", name='Delete "visa"').click()
    expect(bob.locator(".outbox-count")).to_have_text("3 changes waiting")
    ann.get_by_role("button", name="Remove bob").click()
    expect(ann.locator(".members li[data-username='bob']")).to_have_count(0, timeout=LIVE_MS)

    two[1].set_offline(False)
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)
    expect(bob.locator(".list-notice")).to_have_text("«trip» is no longer shared with you×", timeout=LIVE_MS)
    expect(bob.locator(".rejection")).to_have_text(
        [
            "Could not add “passport”: «trip» is no longer shared with you×",
            "Could not change “tickets”: «trip» is no longer shared with you×",
            "Could not delete “visa”: «trip» is no longer shared with you×",
        ],
        timeout=LIVE_MS,
    )
    expect(titles(ann)).to_have_text(["tickets", "visa"])
    expect(ann.locator(".todo-list li", has_text="tickets")).not_to_have_class("completed")
