"""The OpenAPI description of the people and sign-in routes (README: People and sign-in)."""

from __future__ import annotations

from typing import Any

from graphql_todos.rest.openapi_parts import body, json_content, ref


def refusals(**descriptions: str) -> dict[str, Any]:
    """Error answers of the people and sign-in routes: status (s401...) -> when."""
    return {status.removeprefix("s"): json_content(ref("Error"), description) for status, description in descriptions.items()}


_OFF = "AUTH=open: accounts are off (NOT_FOUND)"
SIGNED_IN = "No valid session, personal access token or TODOS_TOKEN (UNAUTHENTICATED)"
PERSONS_OWN = (
    "The service token is no person (FORBIDDEN); or a cookie-authenticated request without this app's Origin"
)
BODY_ERRORS = refusals(
    s400="Malformed JSON", s415="The body is not application/json", s422="A field missing, of the wrong type or refused"
)
_LIMITED = json_content(
    ref("Error"),
    "Too many failed sign-ins for the account or the address (TOO_MANY_REQUESTS)",
    headers={"Retry-After": {"description": "seconds", "required": True, "schema": {"type": "string"}}},
)
_SET_COOKIE = {
    "Set-Cookie": {
        "description": "todos_session (__Host-todos_session over HTTPS): HttpOnly; SameSite=Lax; Path=/",
        "required": True,
        "schema": {"type": "string"},
    }
}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
AUTH_PATHS: dict[str, Any] = {
    "/api/auth/sign-up": {
        "post": {
            "operationId": "signUp",
            "summary": "A new person, signed in (AUTH=accounts)",
            "requestBody": body("Credentials"),
            "responses": {
                "201": json_content(ref("SignedIn"), "Signed up and in", headers=_SET_COOKIE),
                **BODY_ERRORS,
                **refusals(
                    s403="SIGN_UP=closed, the default beside JWTs: this server takes no sign-ups (FORBIDDEN)",
                    s404=_OFF, s409="The username is taken (CONFLICT)",
                ),
                "429": _LIMITED,
            },
        }
    },
    "/api/auth/sign-in": {
        "post": {
            "operationId": "signIn",
            "requestBody": body("Credentials"),
            "responses": {
                "200": json_content(ref("SignedIn"), "Signed in", headers=_SET_COOKIE),
                **BODY_ERRORS,
                **refusals(s401="Wrong username or password (UNAUTHENTICATED)", s404=_OFF),
                "429": _LIMITED,
            },
        }
    },
    "/api/auth/sign-out": {
        "post": {
            "operationId": "signOut",
            "summary": "End the session the request came with, and clear its cookie",
            "responses": {
                "204": {"description": "Signed out"},
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN, s404=_OFF),
            },
        }
    },
    "/api/auth/password": {
        "post": {
            "operationId": "changePassword",
            "summary": "Change one's password; every other session of the person ends",
            "requestBody": body("PasswordChange"),
            "responses": {
                "204": {"description": "Changed"},
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN + "; or a wrong current password", s403=PERSONS_OWN, s404=_OFF),
                "429": _LIMITED,
            },
        }
    },
    "/api/auth/me": {
        "get": {
            "operationId": "me",
            "responses": {"200": json_content(ref("Me"), "Who the request acts for"), **refusals(s401=SIGNED_IN)},
        }
    },
    "/api/sessions/": {
        "get": {
            "operationId": "listSessions",
            "responses": {
                "200": json_content({"type": "array", "items": ref("Session")}, "The caller's live sessions"),
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN, s404=_OFF),
            },
        }
    },
    "/api/sessions/{id}/": {
        "parameters": _ID,
        "delete": {
            "operationId": "revokeSession",
            "responses": {
                "204": {"description": "Revoked: its next request is refused"},
                **refusals(
                    s400="A malformed id", s401=SIGNED_IN, s403=PERSONS_OWN,
                    s404="No session of the caller's with this id; or " + _OFF,
                ),
            },
        },
    },
    "/api/tokens/": {
        "get": {
            "operationId": "listAccessTokens",
            "responses": {
                "200": json_content({"type": "array", "items": ref("AccessToken")}, "The caller's personal access tokens"),
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN, s404=_OFF),
            },
        },
        "post": {
            "operationId": "createAccessToken",
            "requestBody": body("NewAccessTokenRequest"),
            "responses": {
                "201": json_content(ref("NewAccessToken"), "Created: its secret is shown in this answer only"),
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN, s404=_OFF),
            },
        },
    },
    "/api/tokens/{id}/": {
        "parameters": _ID,
        "delete": {
            "operationId": "revokeAccessToken",
            "responses": {
                "204": {"description": "Revoked: its next request is refused"},
                **refusals(
                    s400="A malformed id", s401=SIGNED_IN, s403=PERSONS_OWN,
                    s404="No token of the caller's with this id; or " + _OFF,
                ),
            },
        },
    },
}
_TIME = {"type": "string", "format": "date-time"}
_PERSON = {
    "type": "object",
    "properties": {"id": {"type": "string", "format": "uuid"}, "username": {"type": "string"}},
    "required": ["id", "username"],
    "additionalProperties": False,
}
_PASSWORD = {"type": "string", "minLength": 8, "maxLength": 256}
AUTH_SCHEMAS: dict[str, Any] = {
    "Person": _PERSON,
    "SignedIn": {
        "type": "object",
        "properties": {"person": ref("Person")},
        "required": ["person"],
        "additionalProperties": False,
    },
    "Me": {
        "type": "object",
        "properties": {
            "mode": {"enum": ["open", "accounts"]},
            "person": {"oneOf": [ref("Person"), {"type": "null"}], "description": "null: the service token"},
        },
        "required": ["mode", "person"],
        "additionalProperties": False,
    },
    "Credentials": {
        "type": "object",
        "properties": {
            "username": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{1,38}$"},
            "password": {**_PASSWORD, "pattern": "^[^\\u0000]*$"},
        },
        "required": ["username", "password"],
        "additionalProperties": False,
    },
    "PasswordChange": {
        "type": "object",
        "properties": {"current": _PASSWORD, "new": _PASSWORD},
        "required": ["current", "new"],
        "additionalProperties": False,
    },
    "Session": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "current": {"type": "boolean", "description": "the session this request came with"},
            "created_time": _TIME,
            "seen_time": _TIME,
            "expires_time": {**_TIME, "description": "the earlier of its absolute end and its idle end"},
            "user_agent": {"type": ["string", "null"]},
        },
        "required": ["id", "current", "created_time", "seen_time", "expires_time", "user_agent"],
        "additionalProperties": False,
    },
    "AccessToken": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "created_time": _TIME,
            "used_time": {"type": ["string", "null"], "format": "date-time"},
            "expires_time": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["id", "name", "created_time", "used_time", "expires_time"],
        "additionalProperties": False,
    },
    "NewAccessTokenRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"},
            "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "NewAccessToken": {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "pattern": "^gt_[A-Za-z0-9_-]{43}$", "description": "Authorization: Bearer <secret>"},
            "token": ref("AccessToken"),
        },
        "required": ["secret", "token"],
        "additionalProperties": False,
    },
}
