"""JSON Web Tokens from an identity provider (AUTH=accounts): HS256 with a
secret, ES256 with a key from a JWKS file; what makes one refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import connect

from graphql_todos.core.settings import SettingError, Settings
from graphql_todos.edge.jwts import Jwts
from tests.helpers import serving

SECRET = "an-hs256-secret-for-the-tests-0123456789"


def _hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, secret, algorithm="HS256")


def _me(url: str, token: str) -> httpx.Response:
    return httpx.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"})


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
