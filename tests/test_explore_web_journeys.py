"""Whole journeys across people, browser contexts and connectivity, end to end on
one real server (web/dist in Debian's headless Chromium, AUTH=accounts): what
each person sees after the others acted while they were offline. Needs web/dist
and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Dialog, expect

from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, go_offline, stored, titles
from tests.test_web_people import browser, trip_shared, two  # noqa: F401 (fixtures)


def test_edits_queued_by_a_member_removed_meanwhile_are_each_refused_for_that_reason(
    accounts: Server,
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


def test_an_open_editor_whose_todo_another_person_deletes_keeps_the_draft_on_screen(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Ann is rewording «tickets» when bob deletes it: her editor goes with the row, and
    what she typed is shown with the reason rather than vanishing unseen."""
    ann, bob = trip_shared(accounts, two)
    add_todo(ann, "tickets")
    add_todo(ann, "visa")
    expect(titles(bob)).to_have_text(["tickets", "visa"], timeout=LIVE_MS)
    ann.locator(".todo-list label", has_text="tickets").dblclick()
    ann.locator(".todo-list .edit").fill("tickets for two, window seats")

    bob.get_by_role("button", name='Delete "tickets"').click()
    expect(ann.locator(".todo-list .edit")).to_have_count(0, timeout=LIVE_MS)
    expect(titles(ann)).to_have_text(["visa"])
    expect(ann.locator(".lost-draft")).to_have_text(
        "“tickets” was deleted while you edited it, your change was not kept: “tickets for two, window seats”×"
    )
    ann.locator(".lost-draft .error-dismiss").click()
    expect(ann.locator(".lost-draft")).to_have_count(0)

    # Unchanged, an editor closed with its row loses nothing: no notice; nor does an
    # edit saved (Enter), nor one cancelled (Escape), when the row goes later.
    ann.locator(".todo-list label", has_text="visa").dblclick()
    bob.get_by_role("button", name='Delete "visa"').click()
    expect(titles(ann)).to_have_count(0, timeout=LIVE_MS)
    add_todo(ann, "hotel")
    ann.locator(".todo-list label", has_text="hotel").dblclick()
    ann.locator(".todo-list .edit").fill("hotel by the sea")
    ann.locator(".todo-list .edit").press("Escape")
    expect(titles(bob)).to_have_text(["hotel"], timeout=LIVE_MS)
    bob.get_by_role("button", name='Delete "hotel"').click()
    expect(titles(ann)).to_have_count(0, timeout=LIVE_MS)
    expect(ann.locator(".lost-draft")).to_have_count(0)


def test_signing_out_with_edits_not_sent_asks_first(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Signing out keeps the unsent edits for the person's next sign-in on this browser:
    the page says so and lets them stay to send them; nothing waiting, nothing asked."""
    ann, bob = trip_shared(accounts, two)
    go_offline(two[1])
    add_todo(bob, "passport")
    expect(bob.locator(".outbox-count")).to_have_text("1 change waiting")
    asked: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    bob.once("dialog", lambda dialog: answer(dialog, accept=False))
    bob.locator(".sign-out").click()
    expect(bob.locator(".account-name")).to_have_text("bob")
    assert asked == ["1 change not sent yet: kept on this browser until you sign in here again. Sign out anyway?"]

    # He stays, back online: it is sent; then signing out asks nothing.
    two[1].set_offline(False)
    expect(titles(ann)).to_have_text(["passport"], timeout=LIVE_MS)
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    bob.on("dialog", lambda dialog: answer(dialog, accept=True))
    bob.locator(".sign-out").click()
    expect(bob.locator(".sign-in-form")).to_be_visible(timeout=LIVE_MS)
    assert len(asked) == 1


def test_an_open_editor_in_a_list_unshared_meanwhile_keeps_the_draft_and_says_why(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Bob is rewording «tickets» when ann removes him from «trip»: the row leaves his
    page with the list; his draft is shown, as unshared, not as a row "deleted" (ann
    still has it)."""
    ann, bob = trip_shared(accounts, two)
    add_todo(ann, "tickets")
    expect(titles(bob)).to_have_text(["tickets"], timeout=LIVE_MS)
    bob.locator(".todo-list label", has_text="tickets").dblclick()
    bob.locator(".todo-list .edit").fill("tickets for two")

    ann.get_by_role("button", name="Remove bob").click()
    expect(bob.locator(".list-notice")).to_have_text("«trip» is no longer shared with you×", timeout=LIVE_MS)
    expect(bob.locator(".lost-draft")).to_have_text(
        "“tickets” is no longer shared with you, your change was not kept: “tickets for two”×", timeout=LIVE_MS
    )
    expect(titles(ann)).to_have_text(["tickets"])


def test_a_shared_session_survives_a_server_restart_with_edits_made_while_it_was_down(
    accounts: Server,
    two: tuple[BrowserContext, BrowserContext],  # noqa: F811
) -> None:
    """Both pages stay open across a restart of the server: bob's edits made while it is
    down are queued, each applied once after, both are still signed in, and the pages
    are live both ways again."""
    ann, bob = trip_shared(accounts, two)
    add_todo(ann, "tickets")
    expect(titles(bob)).to_have_text(["tickets"], timeout=LIVE_MS)
    stored(accounts, 1)

    accounts.stop()
    add_todo(bob, "passport")
    bob.locator(".todo-list li", has_text="tickets").locator(".toggle").check()
    expect(bob.locator(".outbox-count")).to_contain_text("waiting", timeout=LIVE_MS)
    accounts.start()

    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)
    expect(titles(ann)).to_have_text(["tickets", "passport"], timeout=3 * LIVE_MS)
    expect(ann.locator(".todo-list li", has_text="tickets")).to_have_class("completed", timeout=LIVE_MS)
    add_todo(ann, "visa")
    expect(titles(bob)).to_have_text(["tickets", "passport", "visa"], timeout=3 * LIVE_MS)
    for page in (ann, bob):
        expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
        expect(page.locator(".rejection, .sign-in-form")).to_have_count(0)
    stored(accounts, 3)
