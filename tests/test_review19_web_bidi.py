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
from tests.test_web_bidi import FSI, PDI, drawn, notice_text


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
    # The sentence after the title, from its closing quote on, left to right: its x falls
    # back only where the notice's line wraps (twice at most), where reversed it fell at
    # nearly every character.
    after = [x for x in drawn(notice)[text.rindex(PDI) + 1 :] if x is not None]
    falls = sum(b < a for a, b in itertools.pairwise(after))
    assert len(after) > 30 and falls <= 2, (text, after)
