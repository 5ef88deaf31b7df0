"""Who a request acts for (docs/design/people.md, section 8). AUTH=open: the
one person, local, once TODOS_TOKEN (if set) is shown, as before accounts.
AUTH=accounts: the person of a session cookie or a personal access token,
or the service principal for TODOS_TOKEN; nobody otherwise."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import Scope

from graphql_todos.core.people import OPEN, SERVICE, Accounts, Principal, is_token
from graphql_todos.core.settings import Settings
from graphql_todos.edge.jwts import Jwts

# Where the guard leaves the principal it found, for the routes (scope[PRINCIPAL]).
PRINCIPAL = "graphql_todos.principal"
SESSION_COOKIE = "todos_session"
# Over HTTPS: a __Host- cookie is Secure, has no Domain and Path=/, so no
# other site (a sibling subdomain) can set one for us.
SECURE_SESSION_COOKIE = "__Host-todos_session"


class Access:
    """The credentials a server takes, and the principal each stands for."""

    def __init__(self, settings: Settings) -> None:
        token = settings.bearer_token
        self._token = token.encode() if token is not None else None
        self.accounts = settings.auth == "accounts"
        self.cookie_secure = settings.cookie_secure
        self.cookie_seconds = round(settings.session_max_seconds)
        self.jwts = Jwts.configured(settings)

    @property
    def refusal(self) -> str:
        """What a request without a valid credential is told."""
        if self.accounts:
            return "sign in, or send a personal access token or the service token as Authorization: Bearer"
        return "this server requires a bearer token"

    @property
    def refusal_details(self) -> dict[str, str]:
        """Beside the refusal: with AUTH=accounts, that one signs in (the
        web client then shows its sign-in page rather than asking for a token)."""
        return {"mode": "accounts"} if self.accounts else {}

    def allows(self, credential: object) -> bool:
        """Whether `credential` (an Authorization value, `Bearer <token>`, or
        None) grants access with no lookup: the service token (compared in
        constant time); in open mode without one, anything."""
        if self._token is None:
            return not self.accounts
        if not isinstance(credential, str):
            return False
        scheme, _, token = credential.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    async def authenticate(self, scope: Scope, headers: Headers, offered: object = None) -> Principal | None:
        """The principal of what a request or socket brings: its Authorization
        header, one `offered` otherwise (connection_init's payload, a
        RESTSocket's ?token= as `Bearer <token>`), or (accounts) its session
        cookie. The first bearer credential present decides: a wrong one is
        refused, not passed over for the cookie (a revoked token beside a
        browser's cookie must not act as the cookie's person). None: it may
        not come in."""
        header = authorization(headers.raw)
        if not self.accounts:
            return OPEN if self.allows(header) or self.allows(offered) else None
        accounts = _accounts(scope)
        for credential in (header, offered):
            if is_bearer(credential):
                return await self.bearer(accounts, credential)
        secret = self.session_secret(scope, headers)
        return None if secret is None else await accounts.authenticate(secret)

    def remembered(self, scope: Scope, headers: Headers) -> Principal | None:
        """authenticate()'s answer to an HTTP request when it needs no lookup:
        open mode's, the service token's, or a session's or personal access
        token's that this process trusts now (Accounts.remembered). None: only
        authenticate() can tell (a JWT, a credential not looked up lately,
        or none)."""
        header = authorization(headers.raw)
        if self.allows(header):
            return SERVICE if self.accounts else OPEN
        if not self.accounts:
            return None
        if header is not None:
            scheme, _, token = header.partition(" ")
            token = token.strip()
            # Whatever else it holds, authenticate() has to look at it.
            return _accounts(scope).remembered(token) if scheme.lower() == "bearer" and is_token(token) else None
        secret = self.session_secret(scope, headers)
        return None if secret is None else _accounts(scope).remembered(secret)

    async def bearer(self, accounts: Accounts, credential: object) -> Principal | None:
        """The principal of an Authorization value (`Bearer <token>`):
        open mode's local or the service principal for TODOS_TOKEN (when
        set), a person for their personal access token or a valid JWT."""
        if self.allows(credential):
            return SERVICE if self.accounts else OPEN
        if not (self.accounts and isinstance(credential, str)):
            return None
        scheme, _, token = credential.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            return None
        if is_token(token):
            return await accounts.authenticate(token)
        if self.jwts is not None and token.count(".") == 2:
            named = self.jwts.username(token)
            if named is None:
                return None
            person = await accounts.named(named[0])
            # Stateless: it cannot be revoked, but its sockets and streams end at its exp.
            return None if person is None else Principal(person, expires_at=named[1])
        return None

    def secure(self, scope: Scope) -> bool:
        """Whether the session cookie is Secure: over HTTPS (the scheme a
        trusted proxy names: FORWARDED_ALLOW_IPS), or COOKIE_SECURE."""
        return self.cookie_secure or scope.get("scheme") in ("https", "wss")

    def session_secret(self, scope: Scope, headers: Headers) -> str | None:
        name = SECURE_SESSION_COOKIE if self.secure(scope) else SESSION_COOKIE
        return cookie_value(headers.get("cookie", ""), name) or None

    def session_cookie(self, scope: Scope, secret: str | None) -> str:
        """The Set-Cookie value for a new session's secret (None: one that ends it)."""
        secure = self.secure(scope)
        name = SECURE_SESSION_COOKIE if secure else SESSION_COOKIE
        value, age = (secret, self.cookie_seconds) if secret is not None else ("", 0)
        return f"{name}={value}; Max-Age={age}; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")


def cookie_value(header: str, name: str) -> str | None:
    """Starlette's `cookie_parser(header).get(name)`, in time linear in the
    header: it unquotes every cookie with http.cookies._unquote, which takes
    time quadratic in a quoted value's backslashes before Python 3.11.10
    (CVE-2024-7592; 58 KB of them, any cookie's, held the loop 8 s). Here
    only `name`'s value is unquoted, as Python 3.12's _unquote does it."""
    value = None
    for chunk in header.split(";"):
        key, equals, rest = chunk.partition("=")
        if equals and key.strip() == name:
            value = rest.strip()
    if value is None or len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _ESCAPE.sub(_unescaped, value[1:-1])


# A backslash escape in a quoted cookie value: three octal digits, or any character.
_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _unescaped(match: re.Match[str]) -> str:
    return chr(int(match[1], 8)) if match[1] else match[2]


def first_values(raw: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Each header name's first value, as Headers.get finds it (uvicorn's
    names come in lower case), made in C: reversed, the first of a name is
    the one a dict keeps."""
    return dict(reversed(raw))


def authorization(raw: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Headers.get("authorization") of raw header pairs, found in C:
    Mapping.get's Python `__getitem__` walked the pairs, and raised and
    caught a KeyError for a request without one (every socket of a client
    that signs in by cookie, or in connection_init, or not at all)."""
    value = first_values(raw).get(b"authorization")
    return None if value is None else value.decode("latin-1")


def is_bearer(credential: object) -> bool:
    """Whether an Authorization value (or one offered as such) is `Bearer
    <token>`: another scheme (a proxy's Basic) is not ours to judge."""
    return isinstance(credential, str) and credential.partition(" ")[0].lower() == "bearer"


def _accounts(scope: Scope) -> Accounts:
    # Lifespan state, copied into every request's scope by Starlette.
    accounts: Accounts = scope["state"]["accounts"]
    return accounts


def principal_of(scope: Scope) -> Principal:
    """The principal the guard let in (every route it does not leave public)."""
    principal: Principal = scope[PRINCIPAL]
    return principal
