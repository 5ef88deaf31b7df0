"""The web client moves a todo into another of the person's lists (AUTH=accounts),
end to end in Debian's headless Chromium against the real server: the row leaves
the list on screen at once and arrives live on a page showing the other list; a
move made offline is sent once when the page is back (its lost reply sent again
under its number), a refused one is rolled back with a notice; a viewer's rows,
a person with no other list they may write in, and open mode have no move
control. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

from typing import Any

import psycopg
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from tests.helpers import Server, serving, wait_until
from tests.test_web import LIVE_MS, add_todo, browser, context, go_offline, open_app, stored, titles  # noqa: F401 - fixtures
from tests.test_web_people import PASSWORD, new_list, pick, share, sign_up, trip_shared, two  # noqa: F401 - fixtures


def move_button(page: Page, title: str) -> Locator:
    return page.get_by_role("button", name=f'Move "{title}"')


def move(page: Page, title: str, to: str) -> None:
    move_button(page, title).click()
    page.get_by_role("menuitem", name=to, exact=True).click()


def ask(browsing: BrowserContext, server: Server, query: str) -> Any:
    """A GraphQL read with a browser context's session (its cookie), as its pages' requests."""
    reply = browsing.request.post(server.url + "/graphql", data={"query": query}, headers={"Origin": server.url})
    assert reply.ok, reply.text()
    return reply.json()["data"]


def list_of(browsing: BrowserContext, server: Server, title: str) -> str:
    """The name of the list the server has the todo `title` in."""
    found = ask(browsing, server, "{ lists { id name } todos { title listId } }")
    names = {entry["id"]: entry["name"] for entry in found["lists"]}
    [where] = [names[t["listId"]] for t in found["todos"] if t["title"] == title]
    return str(where)


def test_a_move_leaves_one_page_at_once_and_arrives_live_on_another(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """One person on two browsers (two outboxes): what reaches B is the server's change."""
    here, there = two
    a = sign_up(here, accounts, "ann")
    new_list(a, "work")
    pick(a, "Todos")
    add_todo(a, "report")
    add_todo(a, "slides")
    expect(titles(a)).to_have_text(["report", "slides"])
    assert there.request.post(
        accounts.url + "/api/auth/sign-in",
        data={"username": "ann", "password": PASSWORD},
        headers={"Origin": accounts.url},
    ).ok
    b = there.new_page()
    b.goto(accounts.url + "/")
    expect(b.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)
    pick(b, "work")
    expect(titles(b)).to_have_count(0)

    # A viewer of nothing, an owner of both: the menu offers her other list.
    move(a, "report", "work")
    expect(titles(a)).to_have_text(["slides"])  # at once, from the outbox
    expect(titles(b)).to_have_text(["report"], timeout=LIVE_MS)
    expect(a.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    expect(a.get_by_role("alert")).to_have_count(0)
    assert list_of(here, accounts, "report") == "work"
    pick(a, "work")
    expect(titles(a)).to_have_text(["report"])
    # And back, from B: its menu offers the list A's page left.
    move(b, "report", "Todos")
    expect(titles(b)).to_have_count(0)
    pick(a, "Todos")
    expect(titles(a)).to_have_text(["report", "slides"], timeout=LIVE_MS)


def test_a_move_made_offline_is_applied_once_though_its_reply_is_lost(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """Offline, from the keyboard: the row leaves at once and waits in the outbox; back
    online its first reply is lost, it is sent again under its number, and the server
    moved it once (one journal entry)."""
    mine = two[0]
    ann = sign_up(mine, accounts, "ann")
    new_list(ann, "work")
    new_list(ann, "home")
    pick(ann, "Todos")
    add_todo(ann, "report")
    stored(accounts, 1)
    expect(ann.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        (start,) = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone() or (0,)

    moves: list[str] = []

    def lose_the_first_reply(route: Route) -> None:
        if "moveTodo" not in (route.request.post_data or ""):
            route.continue_()
            return
        answer = route.fetch()
        moves.append(answer.text())
        if len(moves) == 1:
            route.abort()  # applied on the server, the reply lost on the way
        else:
            route.fulfill(response=answer)

    ann.route("**/graphql", lose_the_first_reply)
    go_offline(mine)
    button = move_button(ann, "report")
    button.focus()
    ann.keyboard.press("Enter")
    expect(ann.get_by_role("menuitem", name="work")).to_be_focused()
    ann.keyboard.press("ArrowDown")
    expect(ann.get_by_role("menuitem", name="home")).to_be_focused()
    ann.keyboard.press("ArrowDown")  # round to the first again
    ann.keyboard.press("Enter")
    expect(titles(ann)).to_have_count(0)
    expect(ann.locator(".new-todo")).to_be_focused()  # not lost with the row
    expect(ann.locator(".outbox-count")).to_have_text("1 change waiting")
    pick(ann, "work")
    expect(titles(ann)).to_have_text(["report"])

    mine.set_offline(False)
    expect(ann.locator(".outbox-count")).to_have_count(0, timeout=3 * LIVE_MS)
    expect(ann.get_by_role("alert")).to_have_count(0)
    assert len(moves) == 2 and moves[0] == moves[1]  # sent again, answered as the first
    expect(titles(ann)).to_have_text(["report"])
    pick(ann, "Todos")
    expect(titles(ann)).to_have_count(0)
    assert list_of(mine, accounts, "report") == "work"
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        changes = conn.execute(
            "SELECT op, todo->>'title' FROM todo_changes WHERE position > %s AND op IN ('created', 'updated', 'deleted')",
            (start,),
        ).fetchall()
    assert changes == [("updated", "report")]


def test_no_move_control_where_there_is_nowhere_to_move_or_no_right_to(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann = sign_up(two[0], accounts, "ann")
    bob = sign_up(two[1], accounts, "bob")
    # Bob's one list: nowhere to move to.
    add_todo(bob, "bob's")
    expect(titles(bob)).to_have_text(["bob's"])
    expect(move_button(bob, "bob's")).to_have_count(0)

    new_list(ann, "notes")
    add_todo(ann, "read me")
    share(ann, "bob", "VIEWER")
    pick(bob, "notes")
    expect(titles(bob)).to_have_text(["read me"], timeout=LIVE_MS)
    expect(bob.locator(".todo-list .move")).to_have_count(0)
    # A list of his own: his rows may go there, and not into the one he only reads.
    new_list(bob, "mine")
    pick(bob, "notes")
    expect(titles(bob)).to_have_text(["read me"])
    expect(bob.locator(".todo-list .move")).to_have_count(0)
    pick(bob, "Todos")
    move_button(bob, "bob's").click()
    expect(bob.get_by_role("menu", name='Move "bob\'s" to').get_by_role("menuitem")).to_have_text(["mine"])
    bob.keyboard.press("Escape")
    expect(bob.get_by_role("menu")).to_have_count(0)
    expect(move_button(bob, "bob's")).to_be_focused()
    # The owner's rows of the list she shares: hers to move.
    expect(move_button(ann, "read me")).to_have_count(1)


def test_open_mode_has_no_move_control(db_dsn: str, context: BrowserContext) -> None:  # noqa: F811 - the fixture
    with serving(db_dsn) as server:
        page = open_app(context, server)
        add_todo(page, "one list")
        expect(titles(page)).to_have_text(["one list"])
        expect(page.locator(".todo-list .move")).to_have_count(0)


def _queue_a_move_into_trip(server: Server, pair: tuple[BrowserContext, BrowserContext]) -> tuple[Page, Page]:
    """Bob, editor of ann's «trip», moves his «tickets» into it while offline."""
    ann, bob = trip_shared(server, pair)
    pick(bob, "Todos")
    add_todo(bob, "tickets")
    stored(server, 1)
    expect(bob.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    go_offline(pair[1])
    move(bob, "tickets", "trip")
    expect(titles(bob)).to_have_count(0)
    expect(bob.locator(".outbox-count")).to_have_text("1 change waiting")
    return ann, bob


def test_a_move_refused_for_a_role_lowered_meanwhile_is_rolled_back_with_a_notice(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann, bob = _queue_a_move_into_trip(accounts, two)
    ann.get_by_label("Role of bob").select_option("VIEWER")
    roles = "{ lists { name members { role person { username } } } }"

    def bob_reads_only() -> bool:
        [trip] = [entry for entry in ask(two[0], accounts, roles)["lists"] if entry["name"] == "trip"]
        return {"role": "VIEWER", "person": {"username": "bob"}} in trip["members"]

    wait_until(bob_reads_only, timeout=LIVE_MS / 1000, sleep=lambda seconds: ann.wait_for_timeout(seconds * 1000))
    two[1].set_offline(False)
    expect(bob.locator(".rejection")).to_have_text(
        "Could not move “tickets” to «trip»: a viewer may not change this list×", timeout=3 * LIVE_MS
    )
    expect(titles(bob)).to_have_text(["tickets"])  # back where it was
    expect(bob.locator(".outbox-count")).to_have_count(0)
    assert list_of(two[1], accounts, "tickets") == "Todos"
    expect(titles(ann)).to_have_count(0)
    # Trip is his to read only now: no longer offered.
    expect(bob.locator(".todo-list .move")).to_have_count(0, timeout=LIVE_MS)


def test_a_move_into_a_list_deleted_meanwhile_is_rolled_back_with_a_notice(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann, bob = _queue_a_move_into_trip(accounts, two)
    ann.once("dialog", lambda dialog: dialog.accept())
    ann.locator(".delete-list").click()
    expect(ann.locator(".list-select")).not_to_contain_text("trip", timeout=LIVE_MS)
    two[1].set_offline(False)
    expect(bob.locator(".rejection")).to_have_text(
        "“tickets” or «trip» is gone, your move was not kept×", timeout=3 * LIVE_MS
    )
    expect(titles(bob)).to_have_text(["tickets"])
    expect(bob.locator(".list-notice")).to_contain_text("«trip» was deleted", timeout=LIVE_MS)
    assert list_of(two[1], accounts, "tickets") == "Todos"


def _ann_on_two_pages(server: Server, browsing: BrowserContext, lists: list[str], rows: list[str]) -> tuple[Page, Page]:
    """ann, with her new `lists`, her `rows` in «Todos», and two pages of one
    browser (one outbox) on «Todos»."""
    a = sign_up(browsing, server, "ann")
    for name in lists:
        new_list(a, name)
    pick(a, "Todos")
    for title in rows:
        add_todo(a, title)
    expect(titles(a)).to_have_text(rows)
    b = browsing.new_page()
    b.goto(server.url + "/")
    expect(b.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)
    pick(b, "Todos")
    expect(titles(b)).to_have_text(rows, timeout=LIVE_MS)
    return a, b


def test_a_row_moved_away_by_another_page_mid_edit_keeps_its_draft(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """As a row completed elsewhere under the Active filter (test_web's
    test_edited_row_stays_while_another_page_moves_it): a row still there, only
    moved to another of her lists by her other page, keeps its editor, draft and
    focus; Enter saves the rename where the row now is."""
    here = two[0]
    a, b = _ann_on_two_pages(accounts, here, ["work"], ["report"])

    titles(a).nth(0).dblclick()
    edit = a.locator(".todo-list li.editing .edit")
    edit.fill("final report")
    move(b, "report", "work")
    expect(titles(b)).to_have_count(0)
    wait_until(lambda: list_of(here, accounts, "report") == "work", timeout=LIVE_MS / 1000,
               sleep=lambda seconds: b.wait_for_timeout(seconds * 1000))
    # The move reached this page (the shared outbox, then the stream): its editor says so.
    expect(a.locator(".todo-list li.editing .changed-elsewhere")).to_have_text(
        "Moved to «work» elsewhere while you were editing", timeout=LIVE_MS
    )
    expect(edit).to_have_value("final report")
    expect(edit).to_be_focused()
    edit.press("Enter")
    expect(titles(a)).to_have_count(0)  # edited, it goes where it now is
    pick(a, "work")
    expect(titles(a)).to_have_text(["final report"])
    expect(a.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    assert list_of(here, accounts, "final report") == "work"


def test_an_open_menu_whose_list_goes_away_keeps_the_keyboard(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """The menu open on its last list, that list deleted by her other page: the
    menu offers what is left, focus stays in it, and Escape closes it on its button."""
    a, b = _ann_on_two_pages(accounts, two[0], ["work", "home"], ["report"])

    move_button(a, "report").focus()
    a.keyboard.press("ArrowUp")  # opens it on its last list
    expect(a.get_by_role("menuitem", name="home")).to_be_focused()
    pick(b, "home")
    b.once("dialog", lambda dialog: dialog.accept())
    b.locator(".delete-list").click()
    expect(a.get_by_role("menuitem")).to_have_text(["work"], timeout=LIVE_MS)
    expect(a.get_by_role("menuitem", name="work")).to_be_focused()
    a.keyboard.press("Escape")
    expect(a.get_by_role("menu")).to_have_count(0)
    expect(move_button(a, "report")).to_be_focused()


def test_an_open_menu_whose_row_goes_away_leaves_focus_on_the_new_todo_field(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """As for a row deleted elsewhere mid-edit (test_web): the keyboard user whose
    open menu's row another page deleted is not left on <body>."""
    a, b = _ann_on_two_pages(accounts, two[0], ["work"], ["report", "other"])

    move_button(a, "report").focus()
    a.keyboard.press("Enter")
    expect(a.get_by_role("menuitem", name="work")).to_be_focused()
    b.get_by_role("button", name='Delete "report"').focus()
    b.keyboard.press("Enter")
    expect(titles(a)).to_have_text(["other"], timeout=LIVE_MS)
    expect(a.locator(".new-todo")).to_be_focused()


def test_a_move_into_a_list_unshared_meanwhile_does_not_say_it_was_deleted(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """Ann removes bob from «trip» (she deletes nothing) while his move into it waits:
    his notice must not tell him «trip» was deleted, beside the list notice that
    says, rightly, it is no longer shared with him."""
    ann, bob = _queue_a_move_into_trip(accounts, two)
    ann.get_by_role("button", name="Remove bob").click()
    expect(ann.locator(".members li[data-username='bob']")).to_have_count(0, timeout=LIVE_MS)
    two[1].set_offline(False)
    expect(bob.locator(".list-notice")).to_contain_text("«trip» is no longer shared with you", timeout=3 * LIVE_MS)
    expect(bob.locator(".rejection")).to_contain_text("«trip»", timeout=3 * LIVE_MS)
    expect(titles(bob)).to_have_text(["tickets"])
    assert list_of(two[1], accounts, "tickets") == "Todos"
    expect(bob.locator(".rejection")).not_to_contain_text("was deleted")


def test_a_double_click_on_a_menu_item_moves_the_row_and_edits_nothing(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """A double-click, as many people click anything: its second click must not land
    on the row below the menu and open that row's editor."""
    a = sign_up(two[0], accounts, "ann")
    new_list(a, "work")
    pick(a, "Todos")
    for title in ("one", "two", "three"):
        add_todo(a, title)
    expect(titles(a)).to_have_text(["one", "two", "three"])
    move_button(a, "one").click()
    a.get_by_role("menuitem", name="work").dblclick()
    expect(titles(a)).to_have_text(["two", "three"])
    a.wait_for_timeout(500)
    expect(a.locator(".todo-list li.editing")).to_have_count(0)
    expect(a.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    assert list_of(two[0], accounts, "one") == "work"


def test_the_menu_stays_on_a_phone_s_screen(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    """360 px wide, a list named with one long word (German makes them; a URL too):
    the menu's every edge is on screen (the page cannot scroll left to what is cut
    off), its name inside it, and the title not under the buttons."""
    a = sign_up(two[0], accounts, "ann")
    new_list(a, "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz")
    pick(a, "Todos")
    add_todo(a, "a title long enough to reach the buttons at the right of its row")
    a.set_viewport_size({"width": 360, "height": 640})
    row = titles(a).nth(0)
    button = move_button(a, "a title long enough to reach the buttons at the right of its row")
    button.click()
    menu = a.get_by_role("menu").bounding_box()
    assert menu is not None
    assert menu["x"] >= 0 and menu["x"] + menu["width"] <= 360, menu
    item = a.get_by_role("menuitem").nth(0)
    assert item.evaluate("e => e.scrollWidth <= e.clientWidth"), "the name runs out of the menu"
    text_right = row.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e); return Math.max(...[...r.getClientRects()].map(c => c.right)); }")
    box = button.bounding_box()
    assert box is not None and text_right <= box["x"], (text_right, box)
