"""JSON Web Tokens from an identity provider (AUTH=accounts): HS256 with a
secret, ES256 with a key from a JWKS file; what makes one refused; which
people a JWT may name (020_people_origin.sql: never one made by a password
sign-up, nor local), and two first sights of one name at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from graphql_todos.core.migrations import migrate
from graphql_todos.core.settings import SettingError, Settings
from graphql_todos.edge.jwts import Jwts
from tests.helpers import Server, errors_logged, serving, wait_until
from tests.test_lists import CREATE, Caller

SECRET = "an-hs256-secret-for-the-tests-0123456789"


def _hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, secret, algorithm="HS256")


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)


def test_an_hs256_token_names_a_person_made_on_first_sight(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET, jwt_audience="todos", jwt_issuer="https://idp") as server:
        valid = {"sub": "wendy", "aud": "todos", "iss": "https://idp"}
        first = _me(server.url, _hs256(valid))
        assert first.status_code == 200
        assert first.json()["person"]["username"] == "wendy"
        assert _me(server.url, _hs256(valid)).json() == first.json()  # the same person again
        assert httpx.post(
            server.url + "/api/todos/", json={"title": "by jwt"}, headers={"Authorization": f"Bearer {_hs256(valid)}"}
        ).status_code == 201
        # And on a socket (a RESTSocket's ?token=).
        with connect(server.ws_url + f"/api/todos/?after=0&token={_hs256(valid)}") as ws:
            assert json.loads(ws.recv(timeout=5))["op"] == "created"

        refused = {
            "expired": _hs256({**valid, "exp": int(time.time()) - 10}),
            "without exp": jwt.encode(valid, SECRET, algorithm="HS256"),
            "another secret": _hs256(valid, "another-secret-0123456789-abcdefghij"),
            "another audience": _hs256({**valid, "aud": "other"}),
            "another issuer": _hs256({**valid, "iss": "https://evil"}),
            "no username": _hs256({**valid, "sub": "Not A Username"}),
            "unsigned": jwt.encode({**valid, "exp": int(time.time()) + 60}, "", algorithm="none"),
        }
        for why, token in refused.items():
            answer = _me(server.url, token)
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "UNAUTHENTICATED"), why


def test_the_user_claim_is_a_setting(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET, jwt_user_claim="preferred_username") as server:
        token = _hs256({"sub": "8f0c", "preferred_username": "xavier"})
        assert _me(server.url, token).json()["person"]["username"] == "xavier"


def _jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": "ES256", "use": "sig"}


def test_an_es256_token_signed_by_a_key_of_the_jwks_file(db_dsn: str, tmp_path: Path) -> None:
    ours, theirs = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_jwk(ours, "k1")]}))
    claims = {"sub": "yolanda", "exp": int(time.time()) + 60}
    with serving(db_dsn, auth="accounts", jwt_jwks_file=str(jwks)) as server:
        signed = jwt.encode(claims, ours, algorithm="ES256", headers={"kid": "k1"})
        assert _me(server.url, signed).json()["person"]["username"] == "yolanda"
        assert _me(server.url, jwt.encode(claims, ours, algorithm="ES256")).status_code == 200  # the only key
        for token in (
            jwt.encode(claims, theirs, algorithm="ES256", headers={"kid": "k1"}),
            jwt.encode(claims, ours, algorithm="ES256", headers={"kid": "unknown"}),
            _hs256(claims),  # no secret configured: HS256 is not taken
        ):
            assert _me(server.url, token).status_code == 401


def test_a_jwks_file_without_usable_keys_stops_start_up(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "nonsense"}]}))
    with pytest.raises(SettingError, match="JWT_JWKS_FILE"):
        Jwts(Settings(auth="accounts", jwt_jwks_file=str(jwks)))
    jwks.write_text("[]")
    with pytest.raises(SettingError, match="JSON Web Key Set"):
        Settings.from_env({"JWT_JWKS_FILE": str(jwks)})


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    # Sign-up open beside JWTs (SIGN_UP=open; closed is the default there):
    # what these tests refuse is what an operator who opens it allows.
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET, sign_up="open") as srv:
        yield srv


def _bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_hs256({'sub': username})}"}


SIGNED_UP = "the username 'wendy' belongs to an account that signed up with a password: a JWT does not sign in as it"


def _closed(url: str, headers: dict[str, str], subprotocol: str | None, init: dict[str, str] | None) -> tuple[int, str]:
    """How a socket is closed before it says anything: (code, reason)."""
    offered = [Subprotocol(subprotocol)] if subprotocol else None
    with connect(url, additional_headers=headers, subprotocols=offered) as ws, pytest.raises(ConnectionClosed) as closed:
        if init is not None:
            ws.send(json.dumps({"type": "connection_init", "payload": init}))
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_a_name_signed_up_with_a_password_is_not_the_identity_provider_s(server: Server) -> None:
    # mallory signs up as the name the identity provider will one day give
    # wendy: wendy's JWT must not make her mallory, who knows the password.
    mallory = Caller(server, "wendy")
    mallory.data(CREATE, t="bait", l=None)
    for answer in (
        _me(server.url, _hs256({"sub": "wendy"})),
        httpx.post(server.url + "/graphql", json={"query": "{ me { username } }"}, headers=_bearer("wendy")),
    ):
        assert answer.status_code == 401
        assert answer.json() == {"error": {"code": "UNAUTHENTICATED", "message": SIGNED_UP, "mode": "accounts"}}
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="graphql-todos"'
    # A name first made by a JWT stays the JWT's: it goes on naming it, and no one signs up as it.
    first = _me(server.url, _hs256({"sub": "xavier"}))
    assert first.status_code == 200
    assert _me(server.url, _hs256({"sub": "xavier"})).json() == first.json()
    taken = httpx.post(server.url + "/api/auth/sign-up", json={"username": "xavier", "password": "correct horse battery"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "CONFLICT")
    with psycopg.connect(server.dsn) as conn:
        origins: dict[str, str] = dict(conn.execute("SELECT username, origin FROM people").fetchall())
    assert origins == {"local": "local", "wendy": "sign_up", "xavier": "jwt"}


def test_a_name_signed_up_with_a_password_is_refused_on_every_socket(server: Server) -> None:
    Caller(server, "wendy").data(CREATE, t="bait", l=None)
    token = _hs256({"sub": "wendy"})
    bearer = {"Authorization": f"Bearer {token}"}
    graphql = server.ws_url + "/graphql"
    ways = {
        "graphql-transport-ws, connection_init": (graphql, {}, "graphql-transport-ws", bearer),
        "graphql-transport-ws, upgrade": (graphql, bearer, "graphql-transport-ws", {}),
        "legacy graphql-ws, connection_init": (graphql, {}, "graphql-ws", bearer),
        "legacy graphql-ws, upgrade": (graphql, bearer, "graphql-ws", {}),
        "RESTSocket, ?token=": (server.ws_url + f"/api/todos/?after=0&token={token}", {}, None, None),
        "RESTSocket, header": (server.ws_url + "/api/feed/?after=0", bearer, None, None),
    }
    with errors_logged() as errors:
        for way, (url, headers, subprotocol, init) in ways.items():
            assert _closed(url, headers, subprotocol, init) == (4401, SIGNED_UP), way
    assert errors == []


def test_a_person_the_operator_made_or_vouched_for_is_the_jwt_s(server: Server) -> None:
    env = {**os.environ, "DATABASE_URL": server.dsn}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "graphql_todos.cli", *args]
        password = "correct horse battery\n"
        return subprocess.run(command, input=password, capture_output=True, text=True, timeout=120, env=env, check=False)

    # `passwd` makes a new person the operator's: the identity provider's of that name.
    assert cli("passwd", "oscar").stdout.strip() == "password set for oscar (a new person)"
    with psycopg.connect(server.dsn) as conn:
        oscar = conn.execute("SELECT id::text FROM people WHERE username = 'oscar'").fetchone()
    assert _me(server.url, _hs256({"sub": "oscar"})).json()["person"] == {"id": oscar and oscar[0], "username": "oscar"}
    # A password reset vouches for no one; `vouch` does, for the same human.
    sally = Caller(server, "sally")
    assert cli("passwd", "sally").returncode == 0
    assert _me(server.url, _hs256({"sub": "sally"})).status_code == 401
    assert cli("vouch", "sally").stdout.strip() == "a JWT naming sally now signs in as them"
    assert _me(server.url, _hs256({"sub": "sally"})).json()["person"] == {"id": sally.id, "username": "sally"}
    unknown = cli("vouch", "nobody")
    assert unknown.returncode == 2
    assert "'nobody' is no one's" in unknown.stderr


def test_local_is_no_jwt_s(server: Server) -> None:
    # local owns every todo from before lists: a JWT whose claim says
    # `local` (a name an identity provider may let anyone pick) is not it.
    answer = _me(server.url, _hs256({"sub": "local"}))
    assert answer.status_code == 401
    message = "the username 'local' is the owner of the todos from before accounts: a JWT does not sign in as it"
    assert answer.json()["error"]["message"] == message


def test_the_migration_reads_who_made_the_people_there(db_dsn: str) -> None:
    """020 on a database of the migrations before it: a person without a
    password was a JWT's first sight, one with a password is read as a
    sign-up (a JWT does not take it), local stays local."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        # As the migrations before 020 leave it (020 adds the column, no more).
        conn.execute("ALTER TABLE people DROP COLUMN origin")
        conn.execute("DELETE FROM schema_migrations WHERE name = '020_people_origin.sql'")
        conn.execute("INSERT INTO people (username) VALUES ('jimmy')")
        conn.execute("INSERT INTO people (username, password_hash) VALUES ('sally', 'a hash')")
        conn.execute("UPDATE people SET password_hash = 'a hash' WHERE username = 'local'")
    assert migrate(db_dsn) == ["020_people_origin.sql"]
    with psycopg.connect(db_dsn) as conn:
        origins: dict[str, str] = dict(conn.execute("SELECT username, origin FROM people").fetchall())
    assert origins == {"local": "local", "jimmy": "jwt", "sally": "sign_up"}
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET) as server:
        assert _me(server.url, _hs256({"sub": "jimmy"})).status_code == 200
        for refused in ("sally", "local"):
            assert _me(server.url, _hs256({"sub": refused})).status_code == 401


def _first_sight_while_made(server: Server, username: str, origin: str) -> tuple[httpx.Response, str]:
    """A JWT's first sight of `username` while another transaction makes
    that person (with `origin`) and has not committed: ours waits for it on
    the unique index, then must find that person. (The answer; the person's id.)"""
    with psycopg.connect(server.dsn) as other:
        made = other.execute(
            "INSERT INTO people (username, origin) VALUES (%s, %s) RETURNING id::text", (username, origin)
        ).fetchone()
        assert made is not None
        answers: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: answers.append(_me(server.url, _hs256({"sub": username}))))
        thread.start()
        wait_until(lambda: other.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone() == (1,))
        other.commit()
    thread.join(20)
    return answers[0], made[0]


def test_two_first_sights_of_one_name_at_once_are_one_person(server: Server) -> None:
    answer, made = _first_sight_while_made(server, "yolanda", "jwt")
    assert answer.status_code == 200, answer.text
    assert answer.json()["person"]["id"] == made


def test_a_sign_up_committed_while_a_jwt_first_sees_the_name_keeps_it(server: Server) -> None:
    # The sign-up's person, found on the second look, is refused as any
    # sign-up's: the JWT does not take it (review13).
    answer, _ = _first_sight_while_made(server, "wendy", "sign_up")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["message"] == SIGNED_UP
