"""End to end: the built web client (web/dist) in Debian's headless Chromium against
the real server. Needs `npm run build` in web/ and /usr/bin/chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from playwright import sync_api
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    Route,
    expect,
)

from graphql_todos.core import repository
from graphql_todos.core.service import MAX_TITLE_LENGTH
from tests.gql import data, gql
from tests.helpers import TOKEN, WEB_DIST, Server, free_port, serving, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# How long a page may take to show a change: generous, for a loaded 2-core CI machine.
LIVE_MS = 10_000
DOCS = Path(__file__).resolve().parent.parent / "docs"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # `make test` installs chromium and builds web/dist first; without them
    # these tests fail rather than skip.
    assert CHROMIUM.exists(), "needs /usr/bin/chromium (make test installs it)"
    assert (WEB_DIST / "index.html").exists(), "needs web/dist (make test builds it)"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Every page records what its Content-Security-Policy refused, for csp_violations().
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1000, "height": 640})
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    yield context
    context.close()


def csp_violations(page: Page) -> list[str]:
    violations: list[str] = page.evaluate("window.__cspViolations")
    return violations


def open_app(context: BrowserContext, server: Server) -> Page:
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live")
    return page


def add_todo(page: Page, title: str) -> None:
    page.locator(".new-todo").fill(title)
    page.locator(".new-todo").press("Enter")


def titles(page: Page) -> Locator:
    return page.locator(".todo-list li label")


def page_until(page: Page, expression: str) -> None:
    """Until `expression` (a promise's too) is true in `page`. Polled from
    here with evaluate, not page.wait_for_function: that one evaluates its
    predicate again in the page with eval, which the app's Content Security
    Policy refuses (`script-src 'self'`), so it failed whenever the first
    check was false (under load)."""
    wait_until(lambda: page.evaluate(expression), timeout=LIVE_MS / 1000,
               sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))


# A page whose network is cut: a request to the server fails (a POST, which
# the service worker leaves to the network; /healthz answers it 405).
_CUT = "!navigator.onLine && fetch('/healthz', {method: 'POST', cache: 'no-store'}).then(() => false, () => true)"


def go_offline(context: BrowserContext) -> None:
    """Playwright's offline emulation, once every page of the context has it:
    set_offline can return before a page's network is cut, and an edit made
    at once then reached the server (clean-clone runs saw it; under load,
    even after navigator.onLine had turned false), so each page is waited
    for until a request of its own fails."""
    context.set_offline(True)
    for page in context.pages:
        page_until(page, _CUT)


def stored(server: Server, count: int) -> None:
    """Wait until the server holds `count` todos. The page shows an edit at once,
    from its outbox; a test that stops the server must first let the edits land,
    or they are sent after the restart and land after whatever came meanwhile."""

    def holds() -> bool:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM todos").fetchone()
        return row is not None and row[0] == count

    wait_until(holds, timeout=LIVE_MS / 1000)


def insert_sql(server: Server, title: str) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES (%s)", (title,))


def screenshot(page: Page, name: str) -> None:
    """Refresh docs/ only on request, so a test run leaves the work tree clean."""
    if os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / name))


def test_two_pages_stay_in_step(server: Server, context: BrowserContext) -> None:
    a, b = open_app(context, server), open_app(context, server)

    add_todo(a, "  buy milk  ")
    expect(titles(b)).to_have_text(["buy milk"], timeout=LIVE_MS)
    add_todo(a, "walk the dog")
    add_todo(a, "write tests")
    expect(titles(b)).to_have_text(["buy milk", "walk the dog", "write tests"], timeout=LIVE_MS)
    expect(b.locator(".todo-count")).to_have_text("3 items left", timeout=LIVE_MS)
    # Page a, too, shows only what the server sent back: wait for it before each step.
    expect(titles(a)).to_have_count(3, timeout=LIVE_MS)

    # Edit: Enter saves (trimmed), Escape cancels.
    titles(a).nth(0).dblclick()
    a.locator(".todo-list li.editing .edit").fill(" buy oat milk ")
    a.locator(".todo-list li.editing .edit").press("Enter")
    expect(titles(b).nth(0)).to_have_text("buy oat milk", timeout=LIVE_MS)
    titles(a).nth(1).dblclick()
    a.locator(".todo-list li.editing .edit").fill("never saved")
    a.locator(".todo-list li.editing .edit").press("Escape")
    expect(a.locator(".todo-list li.editing")).to_have_count(0)
    expect(titles(a).nth(1)).to_have_text("walk the dog")

    # Toggle one: the checkbox follows the server's event, so click, not check().
    a.locator(".todo-list li").nth(1).locator(".toggle").click()
    expect(b.locator(".todo-list li").nth(1)).to_have_class("completed", timeout=LIVE_MS)
    expect(b.locator(".todo-count")).to_have_text("2 items left", timeout=LIVE_MS)
    b.goto(server.url + "/#/active")
    expect(titles(b)).to_have_text(["buy oat milk", "write tests"], timeout=LIVE_MS)
    expect(b.locator(".filters a.selected")).to_have_text("Active")
    b.goto(server.url + "/#/")
    a.locator(".new-todo").focus()
    screenshot(a, "screenshot-todomvc.png")

    # Toggle all, both ways.
    a.locator("label[for=toggle-all]").click()
    expect(b.locator(".todo-list li.completed")).to_have_count(3, timeout=LIVE_MS)
    expect(b.locator(".todo-count")).to_have_text("0 items left", timeout=LIVE_MS)
    expect(a.locator(".toggle-all")).to_be_checked(timeout=LIVE_MS)
    a.locator("label[for=toggle-all]").click()
    expect(b.locator(".todo-list li.completed")).to_have_count(0, timeout=LIVE_MS)
    expect(b.locator(".todo-count")).to_have_text("3 items left", timeout=LIVE_MS)
    expect(a.locator(".toggle-all")).not_to_be_checked(timeout=LIVE_MS)

    # Delete with the button, and by emptying a title.
    row = a.locator(".todo-list li").nth(2)
    row.hover()
    row.locator(".destroy").click()
    expect(titles(b)).to_have_text(["buy oat milk", "walk the dog"], timeout=LIVE_MS)
    expect(titles(a)).to_have_count(2, timeout=LIVE_MS)
    titles(a).nth(0).dblclick()
    a.locator(".todo-list li.editing .edit").fill("   ")
    a.locator(".todo-list li.editing .edit").press("Enter")
    expect(titles(b)).to_have_text(["walk the dog"], timeout=LIVE_MS)

    # Clear completed empties the list; main and footer disappear.
    add_todo(a, "stays")
    expect(titles(a)).to_have_count(2, timeout=LIVE_MS)
    a.locator(".todo-list li").nth(0).locator(".toggle").click()
    expect(b.locator(".todo-count")).to_have_text("1 item left", timeout=LIVE_MS)
    a.locator(".clear-completed").click()
    expect(titles(b)).to_have_text(["stays"], timeout=LIVE_MS)
    expect(b.locator(".clear-completed")).to_be_hidden(timeout=LIVE_MS)
    expect(titles(a)).to_have_text(["stays"], timeout=LIVE_MS)
    a.locator(".todo-list li .toggle").click()
    a.locator(".clear-completed").click()
    expect(b.locator(".todo-list li")).to_have_count(0, timeout=LIVE_MS)
    expect(b.locator(".main")).to_be_hidden()
    expect(b.locator(".footer")).to_be_hidden()


def test_empty_parts_are_hidden_as_the_template_does(
    server: Server, context: BrowserContext
) -> None:
    """TodoMVC's template marks .main, .footer and .clear-completed `hidden`, not absent."""
    page = open_app(context, server)
    main, footer = page.locator(".main"), page.locator(".footer")
    clear = page.locator(".clear-completed")
    for part in (main, footer, clear):
        expect(part).to_have_attribute("hidden", "")
        expect(part).to_be_hidden()

    add_todo(page, "one")
    expect(titles(page)).to_have_count(1, timeout=LIVE_MS)
    for part in (main, footer):
        expect(part).not_to_have_attribute("hidden", "")
        expect(part).to_be_visible()
    expect(clear).to_have_attribute("hidden", "")

    page.locator(".todo-list li .toggle").click()
    expect(clear).to_be_visible(timeout=LIVE_MS)
    clear.click()
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)
    for part in (main, footer, clear):
        expect(part).to_have_attribute("hidden", "")
    # Spec: the toggle-all checkbox is cleared once "Clear completed" emptied the list.
    expect(page.locator(".toggle-all")).not_to_be_checked()


def test_toggle_all_shows_each_click_at_once_and_sends_every_one(
    server: Server, context: BrowserContext, browser: Browser
) -> None:
    # b is another browser: a tab of a's would show a's queued clicks too.
    a, b = open_app(context, server), open_app(browser.new_context(), server)
    for title in ("one", "two"):
        add_todo(a, title)
        expect(a.locator(".new-todo")).to_have_value("", timeout=LIVE_MS)
    expect(titles(b)).to_have_count(2, timeout=LIVE_MS)

    # Hold every toggleAll POST until the test lets it through, so both clicks land
    # before the server has answered the first.
    held: list[Route] = []
    sent: list[object] = []

    def hold_toggle_all(route: Route) -> None:
        body = route.request.post_data_json if route.request.method == "POST" else None
        if body and "ToggleAll" in body["query"]:
            sent.append(body["variables"]["completed"])
            held.append(route)
        else:
            route.continue_()

    a.route("**/graphql", hold_toggle_all)
    toggle_all = a.locator(".toggle-all")
    a.locator("label[for=toggle-all]").click()
    expect(toggle_all).to_be_checked()
    a.locator("label[for=toggle-all]").click()
    expect(toggle_all).not_to_be_checked()

    # The second click waits for the first (so the server applies them in order).
    def pump(seconds: float) -> None:
        a.wait_for_timeout(seconds * 1000)

    wait_until(lambda: held, timeout=LIVE_MS / 1000, sleep=pump)
    assert sent == [True]
    held.pop().continue_()
    expect(b.locator(".todo-list li.completed")).to_have_count(2, timeout=LIVE_MS)
    expect(toggle_all).not_to_be_checked()
    wait_until(lambda: held, timeout=LIVE_MS / 1000, sleep=pump)
    assert sent == [True, False]
    held.pop().continue_()

    expect(b.locator(".todo-list li.completed")).to_have_count(0, timeout=LIVE_MS)
    expect(b.locator(".toggle-all")).not_to_be_checked()
    expect(toggle_all).not_to_be_checked()
    expect(a.locator(".todo-list li.completed")).to_have_count(0, timeout=LIVE_MS)
    b.context.close()


def test_row_inserted_with_sql_appears(server: Server, context: BrowserContext) -> None:
    page = open_app(context, server)
    insert_sql(server, "from plain SQL")
    expect(titles(page)).to_have_text(["from plain SQL"], timeout=LIVE_MS)


def test_page_survives_a_server_restart(server: Server, context: BrowserContext) -> None:
    page = open_app(context, server)
    add_todo(page, "before")
    expect(titles(page)).to_have_text(["before"], timeout=LIVE_MS)
    stored(server, 1)

    server.stop()
    expect(page.locator(".connection-status")).to_have_attribute(
        "data-state", "offline", timeout=5000
    )
    insert_sql(server, "while down")
    server.start()

    # The client's backoff is capped at 5 s; the replay from its cursor brings the
    # missed row, exactly once.
    expect(page.locator(".connection-status")).to_have_attribute(
        "data-state", "live", timeout=15000
    )
    expect(titles(page)).to_have_text(["before", "while down"], timeout=5000)
    add_todo(page, "after")
    expect(titles(page)).to_have_text(["before", "while down", "after"], timeout=LIVE_MS)


def test_unknown_cursor_reloads_the_list(server: Server, context: BrowserContext) -> None:
    """A reset journal (cursor now unknown) makes the page reload the list."""
    page = open_app(context, server)
    for title in ("one", "two", "three"):
        add_todo(page, title)
    expect(titles(page)).to_have_count(3, timeout=LIVE_MS)
    stored(server, 3)
    shown = titles(page).all_inner_texts()

    server.stop()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE todos DISABLE TRIGGER USER")
        conn.execute("DELETE FROM todos")
        conn.execute("ALTER TABLE todos ENABLE TRIGGER USER")
        conn.execute("DELETE FROM todo_changes")
        conn.execute("SELECT setval('todo_changes_position', 1, false)")
        conn.execute("INSERT INTO todos (title) VALUES ('after the reset')")
    # Hold the reload, to see the page while it resyncs.
    held: list[Route] = []

    def hold_list(route: Route) -> None:
        if "TodoList" in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/graphql", hold_list)
    server.start()

    wait_until(lambda: held, timeout=15, sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))
    status = page.locator(".connection-status")
    expect(status).to_have_attribute("data-state", "resyncing")
    expect(status).to_have_text("Syncing…")
    expect(titles(page)).to_have_text(shown)  # the old list, until the new one comes
    held.pop().continue_()
    page.unroute("**/graphql")
    expect(titles(page)).to_have_text(["after the reset"], timeout=15000)
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live")
    insert_sql(server, "live again")
    expect(titles(page)).to_have_text(["after the reset", "live again"], timeout=LIVE_MS)


def test_expired_cursor_reloads_the_list_and_goes_on_live(
    server: Server, context: BrowserContext
) -> None:
    """The journal pruned past the page's cursor while it was away: the server
    refuses the cursor with CURSOR_EXPIRED, and the page reloads the list."""
    page = context.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
    page.goto(server.url + "/")
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live")
    for title in ("one", "two"):
        add_todo(page, title)
    expect(titles(page)).to_have_count(2, timeout=LIVE_MS)
    stored(server, 2)

    server.stop()
    for title in ("three", "four"):
        insert_sql(server, title)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # The app's own pruning statement, keeping only the newest entry.
        params = {"below": 2**62, "keep_seconds": 3600, "keep_rows": 1, "limit": 100}
        conn.execute(repository.PRUNE_JOURNAL, params)
    server.start()

    expect(titles(page)).to_have_text(["one", "two", "three", "four"], timeout=15000)
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live")
    assert any("CURSOR_EXPIRED" in frame for frame in frames)
    insert_sql(server, "live again")
    expect(titles(page)).to_have_text(["one", "two", "three", "four", "live again"], timeout=LIVE_MS)


def block_mutations(route: Route) -> None:
    """Every mutation is a POST to /graphql; the socket and page loads go through."""
    if route.request.method == "POST":
        route.abort()
    else:
        route.continue_()


def test_an_edit_the_server_cannot_take_yet_waits_in_the_outbox(
    server: Server, context: BrowserContext
) -> None:
    page = open_app(context, server)
    alert = page.get_by_role("alert")
    new_todo = page.locator(".new-todo")
    # The limit the server enforces reaches the page through the schema.
    expect(new_todo).to_have_attribute("maxlength", str(MAX_TITLE_LENGTH))

    page.route("**/graphql", block_mutations)
    add_todo(page, "kept until sent")
    # Shown at once and stored: the input is free for the next one.
    expect(titles(page)).to_have_text(["kept until sent"])
    expect(new_todo).to_have_value("")
    expect(page.locator(".outbox-count")).to_have_text("1 change waiting")
    expect(alert).to_have_count(0)

    page.unroute("**/graphql")
    expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
    expect(titles(page)).to_have_text(["kept until sent"])
    with httpx.Client(base_url=server.url) as client:
        assert [t["title"] for t in data(client, "{ todos { title } }")["todos"]] == ["kept until sent"]


def test_what_the_server_refuses_is_rolled_back_with_its_reason(
    db_dsn: str, context: BrowserContext
) -> None:
    """The real server refusing: a title over its limit (the page's maxlength
    taken off, as an older page would have it); and a toggle whose row is
    locked from psql past the statement timeout, which is no verdict: it waits
    in the outbox and is applied once the row is free."""
    with serving(db_dsn, statement_timeout_seconds=0.5) as server, httpx.Client(base_url=server.url) as client:
        page = open_app(context, server)
        alert = page.get_by_role("alert")
        new_todo = page.locator(".new-todo")
        too_long = "x" * (MAX_TITLE_LENGTH + 1)
        refusal = gql(client, "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", {"t": too_long})
        [message] = [e["message"] for e in refusal["errors"]]

        page.evaluate("document.querySelector('.new-todo').removeAttribute('maxlength')")
        add_todo(page, too_long)
        expect(alert).to_contain_text(f"Could not add “{'x' * 40}…”: {message}", timeout=LIVE_MS)
        expect(titles(page)).to_have_count(0)  # rolled back
        page.get_by_role("button", name="Dismiss").click()
        expect(alert).to_have_count(0)
        new_todo.fill("kept short")
        new_todo.press("Enter")
        expect(titles(page)).to_have_text(["kept short"], timeout=LIVE_MS)
        expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)

        titles(page).nth(0).dblclick()
        edit = page.locator(".todo-list li.editing .edit")
        edit.evaluate("input => input.removeAttribute('maxlength')")
        edit.fill(too_long)
        edit.press("Enter")
        expect(alert).to_contain_text(f"Could not change “kept short”: {message}", timeout=LIVE_MS)
        expect(titles(page)).to_have_text(["kept short"])  # rolled back
        page.get_by_role("button", name="Dismiss").click()
        expect(alert).to_have_count(0)

        toggle = page.locator(".todo-list li").nth(0).locator(".toggle")
        timed_out: list[int] = []
        page.on("response", lambda r: timed_out.append(r.status) if r.request.method == "POST" else None)
        with psycopg.connect(server.dsn) as locker:
            locker.execute("SELECT 1 FROM todos FOR UPDATE")
            toggle.click()
            expect(toggle).to_be_checked()  # at once, before the server answers
            expect(page.locator(".outbox-count")).to_have_text("1 change waiting")
            wait_until(lambda: timed_out, timeout=LIVE_MS / 1000, sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))
            expect(toggle).to_be_checked()  # no verdict: still waiting
            expect(page.locator(".outbox-count")).to_have_text("1 change waiting")
        expect(page.locator(".outbox-count")).to_have_count(0, timeout=LIVE_MS)
        expect(toggle).to_be_checked()
        expect(alert).to_have_count(0)
        assert data(client, "{ todos { completed } }")["todos"] == [{"completed": True}]


def test_routes_filter_the_list(server: Server, context: BrowserContext) -> None:
    page = open_app(context, server)
    add_todo(page, "open")
    expect(titles(page)).to_have_count(1, timeout=LIVE_MS)
    add_todo(page, "done")
    expect(titles(page)).to_have_count(2, timeout=LIVE_MS)
    page.get_by_role("checkbox", name='Toggle "done"').click()
    expect(page.locator(".todo-count")).to_have_text("1 item left", timeout=LIVE_MS)

    selected = page.locator(".filters a.selected")
    expect(selected).to_have_text("All")
    page.get_by_role("link", name="Active").click()
    expect(page).to_have_url(server.url + "/#/active")
    expect(selected).to_have_text("Active")
    expect(titles(page)).to_have_text(["open"])
    page.get_by_role("link", name="Completed").click()
    expect(selected).to_have_text("Completed")
    expect(titles(page)).to_have_text(["done"])
    page.goto(server.url + "/#/")
    expect(selected).to_have_text("All")
    expect(titles(page)).to_have_text(["open", "done"], timeout=LIVE_MS)


def test_editing_from_mouse_and_keyboard(server: Server, context: BrowserContext) -> None:
    page = open_app(context, server)
    for title in ("first", "second"):
        add_todo(page, title)
        expect(page.locator(".new-todo")).to_have_value("", timeout=LIVE_MS)
    expect(titles(page)).to_have_count(2, timeout=LIVE_MS)
    edit = page.locator(".todo-list li.editing .edit")

    # Escape cancels: the title stays, focus returns to the row.
    titles(page).nth(0).dblclick()
    expect(edit).to_be_focused()
    edit.fill("not saved")
    edit.press("Escape")
    expect(edit).to_have_count(0)
    expect(titles(page)).to_have_text(["first", "second"])
    expect(titles(page).nth(0)).to_be_focused()

    # Enter (or F2) on a focused label edits; the field is labelled for screen readers.
    page.keyboard.press("F2")
    expect(page.get_by_role("textbox", name='Edit "first"')).to_be_focused()
    page.keyboard.press("Escape")
    titles(page).nth(1).focus()
    page.keyboard.press("Enter")
    expect(edit).to_be_focused()
    edit.fill("second, renamed")
    edit.press("Enter")
    expect(titles(page)).to_have_text(["first", "second, renamed"], timeout=LIVE_MS)

    # An emptied title deletes the todo.
    titles(page).nth(0).dblclick()
    edit.fill("   ")
    edit.press("Enter")
    expect(titles(page)).to_have_text(["second, renamed"], timeout=LIVE_MS)

    # The delete button is one Tab from its row, shown once focused, with the mouse away.
    page.mouse.move(0, 0)
    delete = page.get_by_role("button", name='Delete "second, renamed"')
    expect(delete).to_have_css("opacity", "0")
    titles(page).nth(0).focus()
    page.keyboard.press("Tab")
    expect(delete).to_be_focused()
    expect(delete).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    expect(titles(page)).to_have_count(0, timeout=LIVE_MS)


def test_edited_row_stays_while_another_page_moves_it(
    server: Server, context: BrowserContext
) -> None:
    a, b = open_app(context, server), open_app(context, server)
    add_todo(a, "moving")
    expect(titles(b)).to_have_text(["moving"], timeout=LIVE_MS)
    a.goto(server.url + "/#/active")
    titles(a).nth(0).dblclick()
    edit = a.locator(".todo-list li.editing .edit")
    edit.fill("draft")

    b.get_by_role("checkbox", name='Toggle "moving"').click()
    expect(a.locator(".todo-count")).to_have_text("0 items left", timeout=LIVE_MS)
    # Completed elsewhere, so no longer "active", yet the draft and focus survive.
    expect(edit).to_have_value("draft")
    expect(edit).to_be_focused()
    edit.press("Enter")
    expect(titles(b)).to_have_text(["draft"], timeout=LIVE_MS)
    expect(titles(a)).to_have_count(0)

    # Deleted elsewhere mid-edit: editing ends and focus goes to the new-todo field.
    a.goto(server.url + "/#/")
    titles(a).nth(0).dblclick()
    expect(edit).to_be_focused()
    b.get_by_role("button", name='Delete "draft"').focus()
    b.keyboard.press("Enter")
    expect(a.locator(".todo-list li")).to_have_count(0, timeout=LIVE_MS)
    expect(a.locator(".new-todo")).to_be_focused()
    expect(a.get_by_role("alert")).to_have_count(0)


def run_in_graphiql(page: Page, document: str, prettify: bool = False) -> None:
    """Replace the editor's text and press the run button."""
    editor = page.locator(".graphiql-query-editor")
    editor.locator(".view-lines").click()
    page.keyboard.press("ControlOrMeta+A")
    # One line through insert_text, not type(): Monaco would auto-close brackets.
    page.keyboard.insert_text(document)
    if prettify:
        page.get_by_role("button", name="Prettify query").click()
        expect(editor.locator(".view-line")).not_to_have_count(1)
    page.locator(".graphiql-execute-button").click()


def test_graphiql_runs_everything_offline(server: Server, context: BrowserContext) -> None:
    aborted: list[str] = []
    requested: list[str] = []

    def local_only(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOCAL_HOSTS:
            aborted.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", local_only)
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_viewport_size({"width": 1400, "height": 720})
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    page.goto(server.url + "/graphql", wait_until="networkidle")
    editor = page.locator(".graphiql-query-editor")
    expect(editor).to_contain_text("subscription")
    expect(editor).to_contain_text("todoChanges")
    expect(page.get_by_role("button", name="Show GraphiQL Explorer")).to_be_visible()
    response = page.locator(".graphiql-response")

    run_in_graphiql(page, 'mutation { createTodo(input: {title: "via GraphiQL"}) { id title } }')
    expect(response).to_contain_text('"title": "via GraphiQL"', timeout=5000)

    run_in_graphiql(page, "query { todoList { cursor todos { title completed } } }")
    expect(response).to_contain_text('"cursor"', timeout=5000)
    expect(response).to_contain_text("via GraphiQL")

    # From the start of the journal, so the SQL row counts even if it commits before the
    # subscription is registered; the response pane shows the latest event.
    run_in_graphiql(
        page,
        'subscription { todoChanges(after: "0") { op cursor todo { id title completed } } }',
        prettify=True,
    )
    insert_sql(server, "seen by GraphiQL")
    expect(response).to_contain_text("seen by GraphiQL", timeout=5000)
    expect(response).to_contain_text('"op": "CREATED"')

    page.get_by_role("button", name="Show GraphiQL Explorer").click()
    expect(page.locator(".graphiql-plugin")).to_contain_text("todoChanges")
    screenshot(page, "screenshot-graphiql.png")

    assert csp_violations(page) == []
    assert aborted == []
    foreign = [
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob")
        and urlsplit(url).hostname not in LOCAL_HOSTS
    ]
    assert foreign == []
    assert sockets and all(urlsplit(url).hostname in LOCAL_HOSTS for url in sockets), sockets


def test_the_pages_ask_for_the_token_once_and_send_it_everywhere(
    guarded: Server, context: BrowserContext
) -> None:
    page = context.new_page()
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(TOKEN)

    page.on("dialog", answer)
    page.goto(guarded.url + "/")
    # Refused, the socket reopens with backoff once the token is given.
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=15000)
    add_todo(page, "behind a token")
    expect(titles(page)).to_have_text(["behind a token"], timeout=LIVE_MS)
    stored(guarded, 1)
    insert_sql(guarded, "live behind a token")
    expect(titles(page)).to_have_text(["behind a token", "live behind a token"], timeout=LIVE_MS)

    # The tab keeps it: reloading and GraphiQL ask no more.
    page.reload()
    expect(page.locator(".connection-status")).to_have_attribute("data-state", "live", timeout=LIVE_MS)
    page.goto(guarded.url + "/graphql", wait_until="networkidle")
    response = page.locator(".graphiql-response")
    run_in_graphiql(page, "query { todos { title } }")
    expect(response).to_contain_text("live behind a token", timeout=5000)
    run_in_graphiql(page, 'subscription { todoChanges(after: "0") { todo { title } } }')
    expect(response).to_contain_text("behind a token", timeout=5000)
    assert len(asked) == 1, asked
    assert csp_violations(page) == []


HOSTILE = [
    '<img src=x onerror="window.__injected = 1">',
    "<script>window.__injected = 1</script>",
    "'); DROP TABLE todos; --",
    "שלום עולם 🎉 e\u0301",
    "é" * MAX_TITLE_LENGTH,
]


def test_titles_are_shown_as_text(server: Server, context: BrowserContext) -> None:
    page = open_app(context, server)
    for title in HOSTILE:
        add_todo(page, title)
        expect(page.locator(".new-todo")).to_have_value("", timeout=LIVE_MS)
    expect(titles(page)).to_have_text(HOSTILE, timeout=LIVE_MS)
    assert page.locator(".todo-list img, .todo-list script").count() == 0
    assert page.evaluate("window.__injected") is None
    assert csp_violations(page) == []


def test_the_policy_blocks_inline_scripts_and_other_origins(server: Server, context: BrowserContext) -> None:
    """What an injection would try, tried in the page itself: an inline script
    does not run, and a request to another origin is not made; the browser
    reports each as a violation of the directive that blocked it."""
    page = open_app(context, server)
    other = f"http://127.0.0.1:{free_port()}/steal"
    page.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.__injected = 1';
        document.body.appendChild(script);
    }""")
    fetched = page.evaluate(f"fetch({other!r}).then(() => 'fetched', (e) => e.name)")
    assert fetched == "TypeError"
    wait_until(lambda: len(csp_violations(page)) >= 2, sleep=lambda seconds: page.wait_for_timeout(seconds * 1000))
    assert page.evaluate("window.__injected") is None
    assert sorted(csp_violations(page)) == sorted(["script-src-elem inline", f"connect-src {other}"])
