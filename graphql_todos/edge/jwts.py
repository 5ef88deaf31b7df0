"""JSON Web Tokens from an identity provider (AUTH=accounts): HS256 with
JWT_SECRET, or RS256/ES256 with a key of JWT_JWKS_FILE (the token's `kid`,
or the set's only key); `exp` required, `aud` and `iss` when set. The claim
JWT_USER_CLAIM names the person by username. A JWT cannot be revoked before
it expires: that is the identity provider's to keep short."""

from __future__ import annotations

from typing import Any

import jwt

from graphql_todos.core.people import USERNAME
from graphql_todos.core.setting_values import read_jwks
from graphql_todos.core.settings import SettingError, Settings

_SIGNED_BY_KEYS = ("RS256", "ES256")


class Jwts:
    """Which username a JWT names, if it is valid."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_key
        self.keys: jwt.PyJWKSet | None = None
        if settings.jwt_jwks_file is not None:
            try:
                self.keys = jwt.PyJWKSet.from_dict(read_jwks(settings.jwt_jwks_file))
            except (ValueError, jwt.PyJWTError) as exc:
                raise SettingError("JWT_JWKS_FILE", settings.jwt_jwks_file, str(exc)) from None
        self.claim = settings.jwt_user_claim
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer

    @classmethod
    def configured(cls, settings: Settings) -> Jwts | None:
        """The verifier, where AUTH=accounts takes JWTs at all."""
        if settings.auth != "accounts" or (settings.jwt_key is None and settings.jwt_jwks_file is None):
            return None
        return cls(settings)

    def username(self, token: str) -> str | None:
        """The username a valid token names; None for anything else (forged,
        expired, without exp, for another audience or issuer, naming no one)."""
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            key: Any
            if algorithm == "HS256" and self.secret is not None:
                key = self.secret
            elif algorithm in _SIGNED_BY_KEYS and self.keys is not None:
                key = self._key(header.get("kid"))
            else:
                return None
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return None
        name = claims.get(self.claim)
        return name if isinstance(name, str) and USERNAME.fullmatch(name) else None

    def _key(self, kid: object) -> Any:
        assert self.keys is not None
        if kid is None and len(self.keys.keys) == 1:
            return self.keys.keys[0].key
        return self.keys[str(kid)].key
