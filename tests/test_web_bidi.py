"""People's text in the web client's sentences is bidi-isolated (web/src/bidi.ts), end
to end in Debian's headless Chromium against the real server: a right-to-left title or
list name in a notice, a confirm dialog or a control's name sits between FSI and PDI,
and the sentence around it is laid out in its own order. Where a character is drawn is
read from the page (a Range's box per character). Needs web/dist and /usr/bin/chromium,
as tests/test_web.py."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, Dialog, Locator, Page, expect

from graphql_todos.core.service import MAX_TITLE_LENGTH
from tests.gql import gql
from tests.helpers import Server
from tests.test_web import LIVE_MS, add_todo, browser, context, open_app, titles  # noqa: F401 - fixtures
from tests.test_web_people import share, sign_up, two  # noqa: F401 - fixtures

FSI, PDI = "\u2068", "\u2069"

# The x of each UTF-16 unit of the element's text, where it is drawn (null if not drawn:
# FSI, PDI, a second surrogate).
_XS = """element => {
  const xs = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode()); ) {
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      xs.push(box.width > 0 ? box.x + box.width / 2 : null);
    }
  }
  return xs;
}"""


def drawn(text: Locator) -> list[float | None]:
    xs: list[float | None] = text.evaluate(_XS)
    return xs


def assert_isolated(notice: Locator, text: str, opening: str, closing: str, rtl: bool = True) -> None:
    """`notice` says `text`, whose isolate sits between `opening` and `closing`; it is drawn
    between them, and the sentence goes on after them (its next character, on the same
    line): the quotes stay around the title. An `rtl` one reads right to left: its first
    character on the right, its last (a "!", the ellipsis that cuts it) on the left,
    where in the sentence's direction it would stand on the right."""
    expect(notice).to_have_text(text, timeout=LIVE_MS)
    xs = drawn(notice)
    start, end = text.index(opening + FSI) + 2, text.index(PDI + closing)
    inside = [x for x in xs[start:end] if x is not None]
    quote_open, quote_close, after = xs[start - 2], xs[end + 1], xs[end + 2]
    assert quote_open is not None and quote_close is not None and after is not None
    assert quote_open < min(inside) and max(inside) < quote_close < after, (text, xs)
    first, last = xs[start], xs[end - 1]
    assert not rtl or (first is not None and last is not None and last < first), (text, xs)


def notice_text(page: Page, selector: str) -> Locator:
    notice = page.locator(selector).locator("span")
    expect(notice).to_have_count(1, timeout=LIVE_MS)
    return notice


def test_a_refused_right_to_left_title_is_isolated_in_its_notice(
    server: Server, client: httpx.Client, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    page = open_app(context, server)
    too_long = ("אבג! " * MAX_TITLE_LENGTH)[: MAX_TITLE_LENGTH + 1]
    refusal = gql(client, "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", {"t": too_long})
    [message] = [e["message"] for e in refusal["errors"]]
    page.evaluate("document.querySelector('.new-todo').removeAttribute('maxlength')")

    add_todo(page, too_long)
    notice = notice_text(page, ".rejection")
    assert_isolated(notice, f"Could not add “{FSI}{too_long[:40]}…{PDI}”: {message}", "“", "”")
    page.get_by_role("button", name="Dismiss").click()

    # A right-to-left override in a title reverses no more than the title.
    override = "\u202e" + "x" * MAX_TITLE_LENGTH
    add_todo(page, override)
    notice = notice_text(page, ".rejection")
    assert_isolated(notice, f"Could not add “{FSI}{override[:40]}…{PDI}”: {message}", "“", "”", rtl=False)
    page.get_by_role("button", name="Dismiss").click()

    # A row's title is a <bdi> of its own; its controls' names quote it isolated, and a
    # left-to-right title's names are as they were.
    add_todo(page, "אבג 123")
    add_todo(page, "abc!")
    expect(titles(page)).to_have_text(["אבג 123", "abc!"], timeout=LIVE_MS)
    expect(page.locator(".todo-list li label > bdi")).to_have_text(["אבג 123", "abc!"])
    rtl = page.locator(".todo-list li").nth(0)
    expect(rtl.locator(".toggle")).to_have_attribute("aria-label", f'Toggle "{FSI}אבג 123{PDI}"')
    expect(rtl.locator(".destroy")).to_have_attribute("aria-label", f'Delete "{FSI}אבג 123{PDI}"')
    expect(page.get_by_role("checkbox", name='Toggle "abc!"')).to_have_count(1)


def test_a_right_to_left_list_name_is_isolated_where_the_page_names_it(
    accounts: Server, two: tuple[BrowserContext, BrowserContext]  # noqa: F811 - the fixtures
) -> None:
    ann = sign_up(two[0], accounts, "ann")
    bob = sign_up(two[1], accounts, "bob")
    name = "קניות!"
    ann.locator(".new-list").fill(name)
    ann.locator(".new-list").press("Enter")
    # An <option> holds no <bdi>: its text is isolated.
    mine = ann.locator(".list-select option", has_text=f"{FSI}{name}{PDI} (yours)")
    expect(mine).to_have_count(1, timeout=LIVE_MS)
    ann.locator(".list-select").select_option(mine.get_attribute("value"))
    share(ann, "bob", "EDITOR")
    expect(ann.get_by_role("dialog")).to_have_attribute("aria-label", f"Sharing «{FSI}{name}{PDI}»")
    theirs = bob.locator(".list-select option", has_text=f"{FSI}{name}{PDI} (shared: you edit)")
    expect(theirs).to_have_count(1, timeout=LIVE_MS)

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    ann.once("dialog", accept)
    ann.locator(".delete-list").click()
    expect(ann.locator(".list-select")).not_to_contain_text(name, timeout=LIVE_MS)
    assert asked == [f"Delete «{FSI}{name}{PDI}» and its todos, for everyone it is shared with?"]

    notice = notice_text(bob, ".list-notice")
    assert_isolated(notice, f"«{FSI}{name}{PDI}» was deleted", "«", "»")
