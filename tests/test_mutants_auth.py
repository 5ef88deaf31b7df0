"""Behaviour of the REST sign-in and its parameters (rest/auth.py,
rest/params.py) no other test held: each case kills a hand-made mutant
that the rest of the suite let live (tests/test_mutants_seq.py's module
docstring has the run's table)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import TOKEN, Server, serving

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN, sign_in_failures_per_account=3) as srv:
        yield srv


def _signed_up(server: Server, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=10)
    response = client.post("/api/auth/sign-up", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return client


def test_a_token_never_used_says_so(accounts: Server) -> None:
    """A new token's used_time is null, listed as when made, until its first
    use (given its created_time, every token looked used at once)."""
    client = _signed_up(accounts, "tina")
    made = client.post("/api/tokens/", json={"name": "unused"})
    assert made.status_code == 201, made.text
    assert made.json()["token"]["used_time"] is None
    assert [token["used_time"] for token in client.get("/api/tokens/").json()] == [None]


def test_guessing_the_current_password_is_limited_and_told_when_to_retry(accounts: Server) -> None:
    """A wrong current password counts against the account as a sign-in's
    does: past the limit, 429 with Retry-After, as sign-in answers (without
    change_password's except TooManyAttempts it was 429 with no Retry-After)."""
    client = _signed_up(accounts, "uma")
    wrong = {"current": "guessing-123", "new": "a new password"}
    for _ in range(3):  # sign_in_failures_per_account
        assert client.post("/api/auth/password", json=wrong).status_code == 401
    refused = client.post("/api/auth/password", json={**wrong, "current": PASSWORD})
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "TOO_MANY_REQUESTS"), refused.text
    assert 0 < int(refused.headers["retry-after"]) <= 900


def test_a_malformed_token_id_in_the_url_is_400_as_a_session_s_is(accounts: Server) -> None:
    """DELETE /api/tokens/{id}/ checks the id as every id in a URL is
    checked: 400 (without TokenItem's in_url, the service's 422)."""
    client = _signed_up(accounts, "vera")
    for path in ("/api/tokens/nope/", "/api/sessions/nope/"):
        refused = client.delete(path)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BAD_USER_INPUT"), (path, refused.text)


def test_every_token_and_a_session_s_whole_user_agent_are_listed(accounts: Server) -> None:
    """GET /api/tokens/ lists each of one's tokens (one alone was listed and
    no test told: every test made one); a session's user agent is listed
    as kept, up to MAX_USER_AGENT (256) characters (cut at 64, unseen: the
    tests' agents were short)."""
    agent = "Mozilla/5.0 " + "x" * 200
    client = _signed_up(accounts, "wendy")
    client.headers["User-Agent"] = agent
    assert client.post("/api/auth/sign-in", json={"username": "wendy", "password": PASSWORD}).status_code == 200
    for name in ("first", "second"):
        assert client.post("/api/tokens/", json={"name": name}).status_code == 201
    assert sorted(token["name"] for token in client.get("/api/tokens/").json()) == ["first", "second"]
    assert agent in [session["user_agent"] for session in client.get("/api/sessions/").json()]


def test_a_body_without_a_required_field_is_422_naming_it(accounts: Server) -> None:
    """A token's name and a new password are required: their absence is
    told (422, the field named), not a KeyError's 500 (json_body's
    `required` without them; the suite's property run meets these routes
    only with AUTH=open, where they are 404)."""
    client = _signed_up(accounts, "xena")
    for path, body, name in (("/api/tokens/", {}, "name"), ("/api/auth/password", {"current": PASSWORD}, "new")):
        refused = client.post(path, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "BAD_USER_INPUT"), (path, refused.text)
        assert refused.json()["error"]["message"].startswith(f"{name} "), refused.text


def test_completed_takes_true_and_false_alone(server: Server) -> None:
    """?completed= is true or false, as written: the spellings other
    servers take (1, 0, True, yes, empty) are 400, not read as false (a
    "1" let through, `value == "true"` read it as false; only "maybe" was
    tried)."""
    for value in ("1", "0", "True", "FALSE", "yes", ""):
        refused = httpx.get(f"{server.url}/api/todos/", params={"completed": value}, timeout=10)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "BAD_USER_INPUT"), (value, refused.text)
        assert refused.json()["error"]["message"].startswith("completed "), refused.text


def test_a_page_takes_ascii_digits_alone(server: Server) -> None:
    """?limit= and ?offset= are ASCII digits: other digits are 400 (without
    int_param's isascii, an Arabic-Indic "٢" was read as 2, and a
    superscript "²", a digit to str.isdigit that int() refuses, was a 500);
    and none at all, ?limit=, is no page size either (`not value` for
    `value is None` read it as absent)."""
    for name, value in (("limit", "\u0662"), ("offset", "\u00b2"), ("offset", "\uff11"), ("limit", "")):
        refused = httpx.get(f"{server.url}/api/todos/", params={name: value}, timeout=10)
        assert refused.status_code == 400, (value, refused.text)
        assert refused.json()["error"]["message"].startswith(f"{name} must be an integer"), refused.text
