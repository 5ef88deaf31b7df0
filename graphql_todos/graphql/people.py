"""The GraphQL fields of one's own account (docs/design/people.md section 9):
who am I, my sessions and personal access tokens. Signing in stays REST's
(GraphQL cannot set a cookie over a WebSocket: rest/auth.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol, TypeVar

import strawberry
from strawberry.types import Info

from graphql_todos.core import people
from graphql_todos.core.errors import NotFound
from graphql_todos.core.people import SERVICE, Accounts, Principal
from graphql_todos.core.service import parse_id
from graphql_todos.graphql.types import Person


class _Context(Protocol):
    principal: Principal | None
    accounts: Accounts | None


def _principal(info: Info[Any, None]) -> Principal:
    context: _Context = info.context
    return context.principal or SERVICE


def _accounts(info: Info[Any, None]) -> Accounts:
    context: _Context = info.context
    assert context.accounts is not None, "the view gives every context the accounts"
    return context.accounts


@strawberry.type
class Session:
    id: strawberry.ID
    current: bool = strawberry.field(description="The session this request came with.")
    created_time: datetime
    seen_time: datetime
    expires_time: datetime
    user_agent: str | None


@strawberry.type
class AccessToken:
    id: strawberry.ID
    name: str
    created_time: datetime
    used_time: datetime | None
    expires_time: datetime | None


@strawberry.type
class NewAccessToken:
    secret: str = strawberry.field(description="Shown once: only its hash is kept.")
    access_token: AccessToken


def _session(session: people.Session, principal: Principal) -> Session:
    return Session(
        id=strawberry.ID(str(session.id)),
        current=session.id == principal.session_id,
        created_time=session.created_time,
        seen_time=session.seen_time,
        expires_time=session.expires_time,
        user_agent=session.user_agent,
    )


def _token(token: people.AccessToken) -> AccessToken:
    return AccessToken(
        id=strawberry.ID(str(token.id)),
        name=token.name,
        created_time=token.created_time,
        used_time=token.used_time,
        expires_time=token.expires_time,
    )


class _Identified(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


_Item = TypeVar("_Item", bound=_Identified)


def _one(found: list[_Item], key: uuid.UUID, kind: str) -> _Item:
    """The caller's own session or token by id (another's: NOT_FOUND)."""
    for item in found:
        if item.id == key:
            return item
    raise NotFound(key, kind)


@strawberry.type
class PeopleQuery:
    @strawberry.field(description="Who the caller is (open mode: local); null for the service token.")
    def me(self, info: Info[Any, None]) -> Person | None:
        person = _principal(info).person
        return None if person is None else Person(id=strawberry.ID(str(person.id)), username=person.username)

    @strawberry.field(description="The caller's sessions (signed-in browsers), oldest first.")
    async def sessions(self, info: Info[Any, None]) -> list[Session]:
        principal = _principal(info)
        return [_session(s, principal) for s in await _accounts(info).sessions(principal)]

    @strawberry.field(description="The caller's personal access tokens (never their secrets).")
    async def access_tokens(self, info: Info[Any, None]) -> list[AccessToken]:
        return [_token(t) for t in await _accounts(info).tokens(_principal(info))]


@strawberry.type
class PeopleMutation:
    @strawberry.mutation(description="A personal access token (Authorization: Bearer) acting as the caller.")
    async def create_access_token(
        self, info: Info[Any, None], name: str, expires_in_days: int | None = None
    ) -> NewAccessToken:
        secret, token = await _accounts(info).create_token(
            _principal(info), name, expires_in_days, expires_field="expiresInDays"
        )
        return NewAccessToken(secret=secret, access_token=_token(token))

    @strawberry.mutation(description="Ends one of the caller's sessions; returns it.")
    async def revoke_session(self, info: Info[Any, None], id: strawberry.ID) -> Session:
        principal, accounts, key = _principal(info), _accounts(info), parse_id(id)
        found = _one(await accounts.sessions(principal), key, "session")
        await accounts.revoke_session(principal, str(key))
        return _session(found, principal)

    @strawberry.mutation(description="Revokes one of the caller's tokens; returns it.")
    async def revoke_access_token(self, info: Info[Any, None], id: strawberry.ID) -> AccessToken:
        principal, accounts, key = _principal(info), _accounts(info), parse_id(id)
        found = _one(await accounts.tokens(principal), key, "token")
        await accounts.revoke_token(principal, str(key))
        return _token(found)
