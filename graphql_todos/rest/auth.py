"""People and sign-in over REST (AUTH=accounts): sign up, sign in and out,
change the password, who am I; one's sessions and personal access tokens.
GraphQL cannot set a cookie over a WebSocket: the web client signs in here.
With AUTH=open only `GET /api/auth/me` answers (local); the rest is 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from graphql_todos.core.errors import BadUserInput, ErrorCode, RequestError
from graphql_todos.core.passwords import TooManyAttempts
from graphql_todos.core.people import AccessToken, Accounts, Client, Person, Principal, Session
from graphql_todos.edge.access import Access, principal_of
from graphql_todos.edge.error_handlers import header_text
from graphql_todos.internals.starlette_endpoint import Endpoint
from graphql_todos.rest.params import in_url
from graphql_todos.rest.resources import json_body
from graphql_todos.rest.routing import negotiated

# Accounts.sign_up or sign_in: (the person, the new session's secret).
Enter = Callable[[object, object, Client], Awaitable[tuple[Person, str]]]

_CREDENTIALS: dict[str, tuple[type, str]] = {"username": (str, "a string"), "password": (str, "a string")}
_PASSWORDS: dict[str, tuple[type, str]] = {"current": (str, "a string"), "new": (str, "a string")}
_TOKEN: dict[str, tuple[type, str]] = {"name": (str, "a string"), "expires_in_days": (int, "an integer")}


def person_json(person: Person | None) -> dict[str, str] | None:
    return None if person is None else {"id": str(person.id), "username": person.username}


def session_json(session: Session, principal: Principal) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "current": session.id == principal.session_id,
        "created_time": session.created_time.isoformat(),
        "seen_time": session.seen_time.isoformat(),
        "expires_time": session.expires_time.isoformat(),
        "user_agent": session.user_agent,
    }


def token_json(token: AccessToken) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "name": token.name,
        "created_time": token.created_time.isoformat(),
        "used_time": token.used_time and token.used_time.isoformat(),
        "expires_time": token.expires_time and token.expires_time.isoformat(),
    }


def _json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


def _access(request: Request) -> Access:
    access: Access = request.state.access
    return access


def _accounts(request: Request) -> Accounts:
    """The accounts, where AUTH=accounts; a 404 otherwise (the routes are off)."""
    if not _access(request).accounts:
        raise RequestError(ErrorCode.NOT_FOUND, "accounts are off: this server runs with AUTH=open")
    accounts: Accounts = request.state.accounts
    return accounts


def _client(request: Request) -> Client:
    agent = request.headers.get("user-agent")
    return Client(request.client.host if request.client else "", None if agent is None else header_text(agent))


def _retry_later(exc: TooManyAttempts) -> RequestError:
    return RequestError(exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})


def _signed_in(request: Request, person: Person, secret: str, status_code: int) -> Response:
    cookie = _access(request).session_cookie(request.scope, secret)
    return _json({"person": person_json(person)}, status_code, {"Set-Cookie": cookie})


async def _enter(request: Request, enter: Enter, status_code: int) -> Response:
    """Sign up or in with the body's username and password: a new session and its cookie."""
    body = await json_body(request, ("username", "password"), _CREDENTIALS)
    try:
        person, secret = await enter(body["username"], body["password"], _client(request))
    except TooManyAttempts as exc:
        raise _retry_later(exc) from None
    return _signed_in(request, person, secret, status_code)


async def sign_up(request: Request) -> Response:
    return await _enter(request, _accounts(request).sign_up, 201)


async def sign_in(request: Request) -> Response:
    return await _enter(request, _accounts(request).sign_in, 200)


async def sign_out(request: Request) -> Response:
    """Ends the session the request came with, and clears its cookie."""
    await _accounts(request).sign_out(principal_of(request.scope))
    cookie = _access(request).session_cookie(request.scope, None)
    return Response(status_code=204, headers={"Set-Cookie": cookie})


async def change_password(request: Request) -> Response:
    """Ends every other session of the person."""
    accounts = _accounts(request)
    body = await json_body(request, ("current", "new"), _PASSWORDS)
    try:
        await accounts.change_password(principal_of(request.scope), body["current"], body["new"])
    except TooManyAttempts as exc:
        raise _retry_later(exc) from None
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """Who the request acts for (the service token: no person), and the mode."""
    mode = "accounts" if _access(request).accounts else "open"
    return _json({"mode": mode, "person": person_json(principal_of(request.scope).person)})


class SessionCollection(Endpoint):
    async def get(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        sessions = await _accounts(request).sessions(principal)
        return _json([session_json(session, principal) for session in sessions])


class SessionItem(Endpoint):
    async def delete(self, request: Request) -> Response:
        accounts = _accounts(request)
        try:
            await accounts.revoke_session(principal_of(request.scope), request.path_params["id"])
        except BadUserInput as exc:
            raise in_url(exc) from None
        return Response(status_code=204)


class TokenCollection(Endpoint):
    async def get(self, request: Request) -> Response:
        tokens = await _accounts(request).tokens(principal_of(request.scope))
        return _json([token_json(token) for token in tokens])

    async def post(self, request: Request) -> Response:
        """A new token; its secret is in this answer and nowhere else, ever."""
        accounts = _accounts(request)
        body = await json_body(request, ("name",), _TOKEN)
        secret, token = await accounts.create_token(
            principal_of(request.scope), body["name"], body.get("expires_in_days"), expires_field="expires_in_days"
        )
        return _json({"secret": secret, "token": token_json(token)}, 201)


class TokenItem(Endpoint):
    async def delete(self, request: Request) -> Response:
        accounts = _accounts(request)
        try:
            await accounts.revoke_token(principal_of(request.scope), request.path_params["id"])
        except BadUserInput as exc:
            raise in_url(exc) from None
        return Response(status_code=204)


# Under /api (app.py mounts them, with resources.routes).
routes: list[BaseRoute] = negotiated([
    Route("/auth/sign-up", sign_up, methods=["POST"]),
    Route("/auth/sign-in", sign_in, methods=["POST"]),
    Route("/auth/sign-out", sign_out, methods=["POST"]),
    Route("/auth/password", change_password, methods=["POST"]),
    Route("/auth/me", me, methods=["GET"]),
    Route("/sessions/", SessionCollection),
    Route("/sessions/{id}/", SessionItem),
    Route("/tokens/", TokenCollection),
    Route("/tokens/{id}/", TokenItem),
])
