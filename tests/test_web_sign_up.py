"""The web client's sign-up form where SIGN_UP is closed (the default beside
a JWT key): the refusal is shown in words a person acts on, and sign-in
still works. Needs web/dist and /usr/bin/chromium, as tests/test_web.py."""

from __future__ import annotations

import httpx
from playwright.sync_api import BrowserContext, expect

from tests.helpers import serving
from tests.test_accounts_jwt import SECRET
from tests.test_web import LIVE_MS, browser, context  # noqa: F401 - fixtures
from tests.test_web_people import PASSWORD


def test_a_closed_sign_up_says_so_and_sign_in_still_works(
    db_dsn: str, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET, sign_up="open") as server:
        body = {"username": "ann", "password": PASSWORD}
        assert httpx.post(server.url + "/api/auth/sign-up", json=body).status_code == 201
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET) as server:
        page = context.new_page()
        page.goto(server.url + "/")
        page.get_by_role("button", name="New here? Create an account").click()
        page.get_by_label("Username").fill("wendy")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("alert")).to_have_text("This server takes no sign-ups: sign in with an account you have.")
        page.get_by_role("button", name="I have an account: sign in").click()
        page.get_by_label("Username").fill("ann")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".account-name")).to_have_text("ann", timeout=LIVE_MS)
