"""SIGN_UP: whether anyone may make an account with a password. Closed by
default beside a JWT key, where a sign-up could take a name the identity
provider gives someone later (docs/security.md); an explicit value wins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import psycopg
import pytest

from graphql_todos.core.settings import SettingError, Settings, to_env
from tests.helpers import errors_logged, serving
from tests.test_accounts_jwt import SECRET, _hs256, _me
from tests.test_lists import PASSWORD

CLOSED = {
    "error": {
        "code": "FORBIDDEN",
        "message": "this server takes no sign-ups (SIGN_UP=closed): sign in with an account you have",
    }
}


def test_sign_up_is_closed_by_default_only_beside_a_jwt_key(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    assert Settings().sign_up_open
    assert Settings(auth="accounts").sign_up_open
    for keyed in (
        Settings(auth="accounts", jwt_secret=SECRET),
        Settings(auth="accounts", jwt_secret_file=str(secret_file)),
        Settings(auth="accounts", jwt_jwks_file=str(jwks)),
    ):
        assert not keyed.sign_up_open, keyed
        assert dataclasses.replace(keyed, sign_up="open").sign_up_open, keyed
    assert not Settings(auth="accounts", sign_up="closed").sign_up_open


def test_sign_up_reads_open_or_closed_and_unset_gives_the_default_back() -> None:
    assert Settings.from_env({"SIGN_UP": "closed"}).sign_up == "closed"
    assert Settings.from_env({"SIGN_UP": ""}).sign_up is None
    with pytest.raises(SettingError, match="SIGN_UP='maybe': must be open or closed"):
        Settings.from_env({"SIGN_UP": "maybe"})
    # What `serve --workers` hands each worker: unset stays unset (the default, not "open").
    for value in (None, "open", "closed"):
        settings = Settings(auth="accounts", jwt_secret=SECRET, sign_up=value)
        assert Settings.from_env(to_env(settings)) == settings


def _sign_up(url: str, username: str) -> httpx.Response:
    return httpx.post(url + "/api/auth/sign-up", json={"username": username, "password": PASSWORD}, timeout=20)


def test_closed_refuses_sign_up_and_lets_everyone_else_in(db_dsn: str) -> None:
    # ann signs up while the operator has it open; then it closes (the default beside a JWT key).
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET, sign_up="open") as server:
        assert _sign_up(server.url, "ann").status_code == 201
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET) as server, errors_logged() as errors:
        refused = _sign_up(server.url, "wendy")
        assert (refused.status_code, refused.json()) == (403, CLOSED)
        assert "set-cookie" not in refused.headers
        # Refused before the name is looked at: a malformed one gets the same answer.
        assert _sign_up(server.url, "Not A Name").json() == CLOSED
        # The people there still sign in; the identity provider's wendy is hers.
        signed_in = httpx.post(server.url + "/api/auth/sign-in", json={"username": "ann", "password": PASSWORD})
        assert signed_in.status_code == 200
        assert _me(server.url, _hs256({"sub": "wendy"})).json()["person"]["username"] == "wendy"
    assert errors == []
    with psycopg.connect(db_dsn) as conn:
        origins: dict[str, str] = dict(conn.execute("SELECT username, origin FROM people").fetchall())
    assert origins == {"local": "local", "ann": "sign_up", "wendy": "jwt"}


def test_closed_without_jwts_when_the_operator_says_so(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", sign_up="closed") as server:
        assert _sign_up(server.url, "ann").json() == CLOSED
    with serving(db_dsn, auth="accounts") as server:
        assert _sign_up(server.url, "ann").status_code == 201
    # AUTH=open has no accounts: the route is off whatever SIGN_UP says.
    with serving(db_dsn, sign_up="closed") as server:
        assert _sign_up(server.url, "bob").json()["error"]["code"] == "NOT_FOUND"
