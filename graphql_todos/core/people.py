"""People and sign-in (AUTH=accounts): accounts, sessions, personal access
tokens and the sign-in limits, all in PostgreSQL so that every process
checks and revokes them alike (docs/design/people.md, section 8).

A secret (a session cookie's, a token's) is 32 random bytes, base64url;
only its sha256 is stored, so the tables hand no one a credential.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core import people_statements as sql
from graphql_todos.core.bounded import LRU
from graphql_todos.core.database import connection
from graphql_todos.core.errors import BadUserInput, DomainError, ErrorCode
from graphql_todos.core.models import ALL, LOCAL_ID, Viewer
from graphql_todos.core.passwords import Passwords, TooManyAttempts, check
from graphql_todos.core.service import made_for, parse_id
from graphql_todos.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Person:
    id: uuid.UUID
    username: str


# The person who owned everything before accounts: open mode acts as it.
LOCAL = Person(LOCAL_ID, "local")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for (no person: the service token, TODOS_TOKEN),
    and the session or personal access token it came with."""

    person: Person | None
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    # Open mode's local reads every list, as before lists existed: open mode
    # behaves as it did (the same statements and plans); writes still act as
    # local.
    every_list: bool = False
    # A JWT's `exp` (seconds since the epoch): its sockets and streams end then.
    expires_at: float | None = None

    @property
    def actor(self) -> uuid.UUID | None:
        """Whom the service's writes act for (None: the service, unchecked)."""
        return None if self.person is None else self.person.id

    @property
    def viewer(self) -> Viewer:
        """Whose todos its reads return: the person's lists, or every list."""
        return ALL if self.every_list else Viewer(self.actor)


SERVICE = Principal(None)
OPEN = Principal(LOCAL, every_list=True)


@dataclass(frozen=True, slots=True)
class Session:
    id: uuid.UUID
    created_time: datetime
    seen_time: datetime
    # The earlier of the absolute expiry and the idle one (if unused till then).
    expires_time: datetime
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class AccessToken:
    id: uuid.UUID
    name: str
    created_time: datetime
    used_time: datetime | None
    expires_time: datetime | None


@dataclass(frozen=True, slots=True)
class Client:
    """Where a sign-in comes from: its address (the rate limit's key) and browser."""

    address: str
    user_agent: str | None


class WrongCredentials(DomainError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self) -> None:
        super().__init__("wrong username or password")


class UsernameTaken(DomainError):
    code = ErrorCode.CONFLICT

    def __init__(self, username: str) -> None:
        super().__init__(f"the username {username!r} is taken")
        self.username = username


class SignUpClosed(DomainError):
    """SIGN_UP=closed (the default beside JWTs): no one makes an account of
    their own; the operator's and the identity provider's people sign in."""

    code = ErrorCode.FORBIDDEN

    def __init__(self) -> None:
        super().__init__("this server takes no sign-ups (SIGN_UP=closed): sign in with an account you have")


class NotForJwts(DomainError):
    """A JWT names a person made by a password sign-up, or local: it does
    not sign in as them, whoever its identity provider calls by that name
    (020_people_origin.sql; the operator's `graphql-todos vouch` lets it)."""

    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, username: str, origin: str) -> None:
        why = (
            "is the owner of the todos from before accounts"
            if origin == "local"
            else "belongs to an account that signed up with a password"
        )
        super().__init__(f"the username {username!r} {why}: a JWT does not sign in as it")
        self.username = username
        self.origin = origin


class NotAPerson(DomainError):
    """The service token asked for what only a person has."""

    code = ErrorCode.FORBIDDEN

    def __init__(self) -> None:
        super().__init__("the service token (TODOS_TOKEN) is no person: it has no password, sessions or tokens")


class NoSuchAccess(DomainError):
    """No session or token of the caller's with that id (another's is none of theirs)."""

    code = ErrorCode.NOT_FOUND

    def __init__(self, kind: str, key: uuid.UUID) -> None:
        super().__init__(f"no {kind} of yours with id {key}")
        self.kind = kind
        self.key = key


# How a person was made (people.origin) that a JWT naming them may sign in as.
JWT_NAMES = frozenset({"jwt", "operator"})
USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{1,38}")
TOKEN_PREFIX = "gt_"
_SECRET_LENGTH = 43  # 32 bytes, base64url without padding
MAX_TOKEN_NAME = 100
MAX_TOKEN_DAYS = 3650
MAX_USER_AGENT = 256
# How long a process trusts what it read of a session or token: a
# revocation by another process reaches it within this (by this one: at once).
CACHE_SECONDS = 1.0
CACHE_SIZE = 10_000


def clean_username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        raise BadUserInput(
            "username", "must be 2 to 39 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


def _secret(prefix: str = "") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def is_token(secret: str) -> bool:
    """Shaped like a personal access token (what Authorization: Bearer gt_... sends)."""
    return secret.startswith(TOKEN_PREFIX) and len(secret) == len(TOKEN_PREFIX) + _SECRET_LENGTH


class Accounts:
    """Sign-up, sign-in and what a person does with their sessions and
    tokens; and, for every request, the principal a secret stands for."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings, passwords: Passwords | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.passwords = passwords or Passwords()
        # sha256 of a secret -> (its principal, monotonic time to forget it)
        self._known: LRU[bytes, tuple[Principal, float]] = LRU(CACHE_SIZE)
        # A session's or token's id -> the sha256 it is known by: what an
        # access_revoked entry (which names the id) forgets.
        self._hashes: LRU[uuid.UUID, bytes] = LRU(CACHE_SIZE)
        # username -> (the person, monotonic time to forget it), for JWTs
        self._named: LRU[str, tuple[Person, float]] = LRU(CACHE_SIZE)
        # Revocations seen: a lookup that one came during keeps nothing, as
        # its row may be from before the revocation committed.
        self._revocations = 0

    @property
    def _limits(self) -> dict[str, Any]:
        return {"window": self.settings.sign_in_window_seconds, "idle": self.settings.session_idle_seconds}

    async def sign_up(self, username: object, password: object, client: Client) -> tuple[Person, str]:
        """A new person, signed in: (the person, the session's secret).
        Each sign-up counts against its address's limit; none is taken
        where SIGN_UP is closed (SignUpClosed)."""
        if not self.settings.sign_up_open:
            raise SignUpClosed
        name = clean_username(username)
        check(password)
        assert isinstance(password, str)
        await self._refuse_if_over(None, client.address)
        await self._record_failure({"address": client.address})
        hashed = await self.passwords.hash(password)
        async with connection(self.pool) as conn:
            row = await (await conn.execute(sql.INSERT_PERSON, {"username": name, "hash": hashed})).fetchone()
            if row is None:
                raise UsernameTaken(name)
            person = Person(row[0], row[1])
            return person, await self._open_session(conn, person, client)

    async def sign_in(self, username: object, password: object, client: Client) -> tuple[Person, str]:
        """(the person, a new session's secret); WrongCredentials alike for
        an unknown name and a wrong password, TooManyAttempts over a limit."""
        if not isinstance(username, str):
            raise BadUserInput("username", "must be a string")
        check(password)
        assert isinstance(password, str)
        account = username.lower()[:64]
        await self._refuse_if_over(account, client.address)
        async with connection(self.pool) as conn:
            row = await (await conn.execute(sql.SELECT_PERSON, {"username": account})).fetchone()
        hashed = row[2] if row is not None else None
        if not await self.passwords.verify(hashed, password):
            await self._record_failure({"account": account, "address": client.address})
            raise WrongCredentials
        assert row is not None and hashed is not None
        person = Person(row[0], row[1])
        async with connection(self.pool) as conn:
            await conn.execute(sql.RESET_ACCOUNT_FAILURES, {"account": account})
            await conn.execute(sql.DELETE_DEAD_SESSIONS, {"person": person.id, **self._limits})
        if self.passwords.needs_rehash(hashed):
            await self._store_password(person, password)
        async with connection(self.pool) as conn:
            return person, await self._open_session(conn, person, client)

    async def sign_out(self, principal: Principal) -> None:
        """End the session the request came with (a token or the service token has none)."""
        if principal.person is not None and principal.session_id is not None:
            await self._revoke(sql.DELETE_SESSION, principal.session_id, principal.person)

    async def change_password(self, principal: Principal, current: object, new: object) -> None:
        """Needs the current password; ends every other session of the person."""
        person = _person(principal)
        check(current, "current")
        check(new, "new")
        assert isinstance(current, str) and isinstance(new, str)
        await self._refuse_if_over(person.username, None)
        async with connection(self.pool) as conn:
            row = await (await conn.execute(sql.SELECT_PERSON, {"username": person.username})).fetchone()
        if row is None or not await self.passwords.verify(row[2], current):
            await self._record_failure({"account": person.username})
            raise WrongCredentials
        await self._store_password(person, new)
        async with connection(self.pool) as conn:
            cur = await conn.execute(sql.DELETE_OTHER_SESSIONS, {"person": person.id, "keep": principal.session_id})
            self._forget([r[0] for r in await cur.fetchall()])

    def remembered(self, secret: str) -> Principal | None:
        """What authenticate() found for this secret, while it trusts it (at
        most CACHE_SECONDS, never past the credential's expiry, forgotten at
        its revocation); None: only authenticate() can tell. No lookup."""
        return self._remembered(digest(secret), time.monotonic())

    def _remembered(self, key: bytes, now: float) -> Principal | None:
        known = self._known.get(key)
        return known[0] if known is not None and known[1] > now else None

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal a session's or a personal access token's secret stands for, if it is live."""
        key = digest(secret)
        now = time.monotonic()
        remembered = self._remembered(key, now)
        if remembered is not None:
            return remembered
        token = is_token(secret)
        if not token and len(secret) != _SECRET_LENGTH:
            return None
        revocations = self._revocations
        async with connection(self.pool) as conn:
            cur = await conn.execute(sql.TOKEN_BY_SECRET if token else sql.SESSION_BY_SECRET, {"hash": key, **self._limits})
            row = await cur.fetchone()
        if row is None:
            self._known.pop(key)
            return None
        person = Person(row[1], row[2])
        principal = Principal(person, token_id=row[0]) if token else Principal(person, session_id=row[0])
        if self._revocations == revocations:
            left = CACHE_SECONDS if row[3] is None else min(CACHE_SECONDS, row[3])
            self._known.put(key, (principal, now + left))
            self._hashes.put(row[0], key)
        return principal

    def revoked(self, detail: dict[str, Any] | None) -> None:
        """An access_revoked entry's detail ({"session": id} or {"token": id}),
        from whichever process revoked it: no longer trusted here either."""
        self._revocations += 1
        for kind in ("session", "token"):
            value = (detail or {}).get(kind)
            key = None if value is None else self._hashes.pop(uuid.UUID(str(value)))
            if key is not None:
                self._known.pop(key)

    async def live(self, credentials: list[uuid.UUID]) -> dict[uuid.UUID, float | None]:
        """Which of these sessions and tokens are live, each with the seconds
        before it must be asked about again (None: never, a token with no
        expiry; a revocation is journaled); the sessions among them count as
        in use (people.md section 8: open sockets are activity)."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(sql.LIVE_HELD, {"ids": credentials, **self._limits})
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def named(self, username: str) -> Person | None:
        """The person of this username (a JWT's), made if new; None if it
        went between the two statements (deleted by hand). NotForJwts:
        the name is a sign-up's (or local's), never a JWT's."""
        known = self._named.get(username)
        now = time.monotonic()
        if known is not None and known[1] > now:
            return known[0]
        params = {"username": clean_username(username)}
        async with connection(self.pool) as conn:
            row = await (await conn.execute(sql.NAMED_PERSON, params)).fetchone()
            if row is None:  # made meanwhile by another statement: a new snapshot sees it
                row = await (await conn.execute(sql.NAMED_PERSON, params)).fetchone()
        if row is None:
            return None
        if row[2] not in JWT_NAMES:
            raise NotForJwts(row[1], row[2])
        person = Person(row[0], row[1])
        self._named.put(username, (person, now + CACHE_SECONDS))
        return person

    async def sessions(self, principal: Principal) -> list[Session]:
        person = _person(principal)
        async with connection(self.pool) as conn:
            cur = conn.cursor(row_factory=class_row(Session))
            return await (await cur.execute(sql.SELECT_SESSIONS, {"person": person.id, **self._limits})).fetchall()

    async def revoke_session(self, principal: Principal, session_id: str) -> None:
        await self._revoke(sql.DELETE_SESSION, parse_id(session_id), _person(principal), "session")

    async def create_token(
        self, principal: Principal, name: object, expires_in_days: object, *, expires_field: str = "expires_in_days"
    ) -> tuple[str, AccessToken]:
        """(the secret, shown this once; the token). `expires_field`: what
        the caller calls expires_in_days (a refused one's message names it)."""
        person = _person(principal)
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOKEN_NAME or "\x00" in name:
            raise BadUserInput("name", f"must be a non-blank string of at most {MAX_TOKEN_NAME} characters")
        if expires_in_days is not None and (
            not isinstance(expires_in_days, int)
            or isinstance(expires_in_days, bool)
            or not 1 <= expires_in_days <= MAX_TOKEN_DAYS
        ):
            raise BadUserInput(expires_field, f"must be an integer from 1 to {MAX_TOKEN_DAYS}, or null")
        secret = _secret(TOKEN_PREFIX)
        values = {"hash": digest(secret), "person": person.id, "name": name.strip(), "days": expires_in_days}
        async with connection(self.pool) as conn, made_for(person.id):
            cur = conn.cursor(row_factory=class_row(AccessToken))
            token = await (await cur.execute(sql.INSERT_TOKEN, values)).fetchone()
        assert token is not None
        return secret, token

    async def tokens(self, principal: Principal) -> list[AccessToken]:
        person = _person(principal)
        async with connection(self.pool) as conn:
            cur = conn.cursor(row_factory=class_row(AccessToken))
            return await (await cur.execute(sql.SELECT_TOKENS, {"person": person.id})).fetchall()

    async def revoke_token(self, principal: Principal, token_id: str) -> None:
        await self._revoke(sql.DELETE_TOKEN, parse_id(token_id), _person(principal), "token")

    async def _revoke(self, statement: str, key: uuid.UUID, person: Person, kind: str = "session") -> None:
        async with connection(self.pool) as conn:
            row = await (await conn.execute(statement, {"id": key, "person": person.id})).fetchone()
        if row is None:
            raise NoSuchAccess(kind, key)
        self._forget([row[0]])

    def _forget(self, hashes: list[bytes]) -> None:
        self._revocations += 1
        for key in hashes:
            self._known.pop(key)

    async def _open_session(self, conn: psycopg.AsyncConnection[Any], person: Person, client: Client) -> str:
        secret = _secret()
        values = {
            "hash": digest(secret),
            "person": person.id,
            "max": self.settings.session_max_seconds,
            "user_agent": client.user_agent[:MAX_USER_AGENT] if client.user_agent else None,
            "address": _inet(client.address),
        }
        async with made_for(person.id):
            await conn.execute(sql.INSERT_SESSION, values)
        return secret

    async def _store_password(self, person: Person, password: str) -> None:
        hashed = await self.passwords.hash(password)
        async with connection(self.pool) as conn:
            await conn.execute(sql.UPDATE_PASSWORD, {"hash": hashed, "person": person.id})

    async def _refuse_if_over(self, account: str | None, address: str | None) -> None:
        """TooManyAttempts when the account or the address has used its failures."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(sql.SELECT_FAILURES, {"account": account, "address": address, **self._limits})
            rows = await cur.fetchall()
        limits = {
            "account": self.settings.sign_in_failures_per_account,
            "address": self.settings.sign_in_failures_per_address,
        }
        over = [left for scope, failures, left in rows if failures >= limits[scope]]
        if over:
            raise TooManyAttempts(
                f"too many failed sign-ins: try again in {max(over)} s", max(1, math.ceil(max(over)))
            )

    async def _record_failure(self, keys: dict[str, str | None]) -> None:
        counted = {scope: key for scope, key in keys.items() if key}
        values = {"scopes": list(counted), "keys": list(counted.values()), **self._limits}
        async with connection(self.pool) as conn:
            await conn.execute(sql.RECORD_FAILURE, values)
            await conn.execute(sql.PRUNE_FAILURES, values)


def _inet(address: str) -> str | None:
    """The client's address as the sessions table keeps it: an IP address, or none."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _person(principal: Principal) -> Person:
    if principal.person is None:
        raise NotAPerson
    return principal.person
