"""review19: a title holding a paragraph separator keeps its notice's sentence in order,
in Debian's headless Chromium against the real server. A paragraph separator (U+2029,
NEL) ends every isolate open before it: a right-to-left override after it reversed the
rest of the notice ("”: the title must be at most ..." drawn right to left) until
web/src/bidi.ts isolated each paragraph of the text. Needs web/dist and
/usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

import itertools

import httpx
import pytest
from playwright.sync_api import BrowserContext

from graphql_todos.core.service import MAX_TITLE_LENGTH
from tests.gql import gql
from tests.helpers import Server
from tests.test_web import add_todo, browser, context, open_app  # noqa: F401 - fixtures
from tests.test_web_bidi import FSI, PDI, notice_text

# Where each UTF-16 unit of the element's text is drawn, [x, y] (null if not drawn), as
# test_web_bidi's _XS with the line: the notice wraps.
_XYS = """element => {
  const xys = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode()); ) {
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      xys.push(box.width > 0 ? [box.x + box.width / 2, Math.round(box.y)] : null);
    }
  }
  return xys;
}"""


@pytest.mark.parametrize("separator", ["\u2029", "\u0085"], ids=["U+2029", "NEL"])
def test_an_override_after_a_paragraph_separator_reverses_no_more_than_the_title(
    server: Server, client: httpx.Client, context: BrowserContext, separator: str  # noqa: F811 - the fixture
) -> None:
    page = open_app(context, server)
    title = "x" + separator + "\u202e" + "y" * MAX_TITLE_LENGTH
    refusal = gql(client, "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", {"t": title})
    [message] = [e["message"] for e in refusal["errors"]]
    page.evaluate("document.querySelector('.new-todo').removeAttribute('maxlength')")

    add_todo(page, title)
    notice = notice_text(page, ".rejection")
    text = notice.inner_text()
    assert text.startswith("Could not add “" + FSI + "x" + separator) and text.endswith(PDI + "”: " + message), text
    xys = notice.evaluate(_XYS)
    # The sentence after the title, from its closing quote on, left to right on each line.
    after = [xy for xy in xys[text.rindex(PDI) + 1 :] if xy is not None]
    assert len(after) > 10, (text, xys)
    backwards = [(a, b) for a, b in itertools.pairwise(after) if a[1] == b[1] and b[0] < a[0]]
    assert backwards == [], (text, xys)
