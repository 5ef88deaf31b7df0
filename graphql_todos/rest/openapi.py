"""The OpenAPI 3.1 description of the REST routes, served at /api/openapi.json.

It is also the contract the property-based tests hold every response to, so
request schemas say exactly what the service accepts: a title it would refuse
is out of schema, and a refusal of anything in schema is a bug.
"""

from __future__ import annotations

import copy
from typing import Any

from graphql_todos.core.service import MAX_OFFSET, MAX_TITLE_LENGTH
from graphql_todos.core.settings import Settings


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _json_or_events(schema: dict[str, Any], description: str, events: str) -> dict[str, Any]:
    """A GET that, asked for `Accept: text/event-stream`, streams instead."""
    response = _json(schema, description)
    response["content"]["text/event-stream"] = {"schema": {"type": "string", "description": events}}
    return response


_EVENTS = (
    " Each event is named for its op (created, updated, deleted; snapshot first on an item),"
    " its id is the change's cursor and its data the RESTSocket message {\"op\", \"todo\", \"cursor\"};"
    " a comment line is sent every KEEPALIVE_SECONDS."
)


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(_ref("Error"), _ERROR_DESCRIPTIONS[status]) for status in statuses}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _todo_input(*required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"title": _ref("Title"), "completed": {"type": "boolean"}},
        "required": list(required),
        "additionalProperties": False,
    }


_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, id or query parameter",
    404: "No todo with this id",
    415: "The body is not application/json",
    422: "The body is not a todo this operation accepts",
}

_ITEM_ERRORS = _errors(400, 404)
_WRITE_ERRORS = _errors(400, 415, 422)
# docs/design/offline.md: a numbered mutation is applied once; a retry gets
# the first answer (status, body, headers) again. The key's form, as
# core/mutations.from_header takes it.
_HEX = "[0-9a-fA-F]"
IDEMPOTENCY_KEY_PATTERN = f'^"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}:[1-9][0-9]{{0,17}}"$'

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": 'Number this mutation: "<client uuid>:<sequence number>" (an sf-string, quotes'
    " included; sequence 1 to 10^18-1). Applied once: a retry answers as the first time; the same key"
    " with another request is 422 IDEMPOTENCY_KEY_REUSED; a malformed key is 400 BAD_USER_INPUT."
    " Remembered for MUTATIONS_KEEP_SECONDS",
}
# Every mutation's answer says where its effect (or its no-op) is in the journal.
_CURSOR_HEADERS = {
    "Journal-Cursor": {
        "description": "The journal cursor at which this mutation's effect (or its no-op) is visible in a change stream",
        "schema": {"type": "string"},
    },
    "Idempotency-Key": {"description": "A numbered mutation's key, echoed", "schema": {"type": "string"}},
}


def _refusals(**descriptions: str) -> dict[str, Any]:
    """Error answers of the people and sign-in routes: status (s401...) -> when."""
    return {status.removeprefix("s"): _json(_ref("Error"), description) for status, description in descriptions.items()}


_OFF = "AUTH=open: accounts are off (NOT_FOUND)"
_SIGNED_IN = "No valid session, personal access token or TODOS_TOKEN (UNAUTHENTICATED)"
_PERSONS_OWN = (
    "The service token is no person (FORBIDDEN); or a cookie-authenticated request without this app's Origin"
)
_BODY_ERRORS = _refusals(
    s400="Malformed JSON", s415="The body is not application/json", s422="A field missing, of the wrong type or refused"
)
_LIMITED = _json(
    _ref("Error"),
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
_AUTH_PATHS: dict[str, Any] = {
    "/api/auth/sign-up": {
        "post": {
            "operationId": "signUp",
            "summary": "A new person, signed in (AUTH=accounts)",
            "requestBody": _body("Credentials"),
            "responses": {
                "201": _json(_ref("SignedIn"), "Signed up and in", headers=_SET_COOKIE),
                **_BODY_ERRORS,
                **_refusals(s404=_OFF, s409="The username is taken (CONFLICT)"),
                "429": _LIMITED,
            },
        }
    },
    "/api/auth/sign-in": {
        "post": {
            "operationId": "signIn",
            "requestBody": _body("Credentials"),
            "responses": {
                "200": _json(_ref("SignedIn"), "Signed in", headers=_SET_COOKIE),
                **_BODY_ERRORS,
                **_refusals(s401="Wrong username or password (UNAUTHENTICATED)", s404=_OFF),
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
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_OFF),
            },
        }
    },
    "/api/auth/password": {
        "post": {
            "operationId": "changePassword",
            "summary": "Change one's password; every other session of the person ends",
            "requestBody": _body("PasswordChange"),
            "responses": {
                "204": {"description": "Changed"},
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN + "; or a wrong current password", s403=_PERSONS_OWN, s404=_OFF),
                "429": _LIMITED,
            },
        }
    },
    "/api/auth/me": {
        "get": {
            "operationId": "me",
            "responses": {"200": _json(_ref("Me"), "Who the request acts for"), **_refusals(s401=_SIGNED_IN)},
        }
    },
    "/api/sessions/": {
        "get": {
            "operationId": "listSessions",
            "responses": {
                "200": _json({"type": "array", "items": _ref("Session")}, "The caller's live sessions"),
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_OFF),
            },
        }
    },
    "/api/sessions/{id}/": {
        "parameters": _ID,
        "delete": {
            "operationId": "revokeSession",
            "responses": {
                "204": {"description": "Revoked: its next request is refused"},
                **_refusals(
                    s400="A malformed id", s401=_SIGNED_IN, s403=_PERSONS_OWN,
                    s404="No session of the caller's with this id; or " + _OFF,
                ),
            },
        },
    },
    "/api/tokens/": {
        "get": {
            "operationId": "listAccessTokens",
            "responses": {
                "200": _json({"type": "array", "items": _ref("AccessToken")}, "The caller's personal access tokens"),
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_OFF),
            },
        },
        "post": {
            "operationId": "createAccessToken",
            "requestBody": _body("NewAccessTokenRequest"),
            "responses": {
                "201": _json(_ref("NewAccessToken"), "Created: its secret is shown in this answer only"),
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_OFF),
            },
        },
    },
    "/api/tokens/{id}/": {
        "parameters": _ID,
        "delete": {
            "operationId": "revokeAccessToken",
            "responses": {
                "204": {"description": "Revoked: its next request is refused"},
                **_refusals(
                    s400="A malformed id", s401=_SIGNED_IN, s403=_PERSONS_OWN,
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
_AUTH_SCHEMAS: dict[str, Any] = {
    "Person": _PERSON,
    "SignedIn": {
        "type": "object",
        "properties": {"person": _ref("Person")},
        "required": ["person"],
        "additionalProperties": False,
    },
    "Me": {
        "type": "object",
        "properties": {
            "mode": {"enum": ["open", "accounts"]},
            "person": {"oneOf": [_ref("Person"), {"type": "null"}], "description": "null: the service token"},
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
            "token": _ref("AccessToken"),
        },
        "required": ["secret", "token"],
        "additionalProperties": False,
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "graphql-todos REST",
        "version": "1.0.0",
        "description": (
            "The same todos as /graphql. Each URL is also a WebSocket (RESTSocket):"
            " /api/todos/?after=<cursor> sends every change after the cursor,"
            ' {"op", "todo", "cursor"}; /api/todos/{id}/ sends a "snapshot", then'
            " each change to that row. Both send {\"op\": \"keepalive\"} when idle."
            " With Accept: text/event-stream, a GET of either URL streams the same"
            " messages as Server-Sent Events."
        ),
    },
    "paths": {
        "/api/todos/": {
            "get": {
                "operationId": "listTodos",
                "summary": "The todos (a page of them with limit and offset), ordered by created_time, then id",
                "parameters": [
                    {
                        "name": "completed",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                        "description": "Only the completed (true) or the active (false) ones",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        # document() puts the server's own MAX_LIST_ROWS here.
                        "schema": {"type": "integer", "minimum": 0, "maximum": Settings.max_list_rows},
                        "description": "At most this many todos (up to MAX_LIST_ROWS); without it, a list"
                        " of more than MAX_LIST_ROWS is refused (400 LIST_TOO_LARGE), never cut short",
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                        "description": "Skip this many todos first",
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Event stream only: send the changes after this cursor (0: all)",
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Event stream only: resume after this event (wins over after)",
                    },
                ],
                "responses": {
                    "200": _json_or_events(
                        {"type": "array", "items": _ref("Todo")},
                        "The todos; with Accept: text/event-stream, every change from now"
                        " (or after the cursor) in commit order",
                        "Server-Sent Events." + _EVENTS,
                    ),
                    "400": _json(
                        _ref("Error"),
                        "A malformed query parameter (BAD_USER_INPUT), or more than MAX_LIST_ROWS"
                        " todos asked for without limit (LIST_TOO_LARGE)",
                    ),
                },
            },
            "post": {
                "operationId": "createTodo",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": _body("NewTodo"),
                "responses": {
                    "201": _json(
                        _ref("Todo"),
                        "Created",
                        headers={
                            "Location": {
                                "description": "/api/todos/{id}/",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            **_CURSOR_HEADERS,
                        },
                        # The id in the body is what every item operation takes.
                        links={
                            op: {"operationId": op, "parameters": {"id": "$response.body#/id"}}
                            for op in ("getTodo", "replaceTodo", "updateTodo", "deleteTodo")
                        },
                    ),
                    **_WRITE_ERRORS,
                },
            },
        },
        "/api/todos/{id}/": {
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            "get": {
                "operationId": "getTodo",
                "responses": {
                    "200": _json_or_events(
                        _ref("Todo"),
                        "The todo; with Accept: text/event-stream, the row now and each change"
                        " to it, ending after it is deleted",
                        "Server-Sent Events." + _EVENTS,
                    ),
                    **_ITEM_ERRORS,
                },
            },
            "put": {
                "operationId": "replaceTodo",
                "summary": "Set both fields",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": _body("TodoReplacement"),
                "responses": {
                    "200": _json(_ref("Todo"), "Updated", headers=_CURSOR_HEADERS), **_ITEM_ERRORS, **_WRITE_ERRORS
                },
            },
            "patch": {
                "operationId": "updateTodo",
                "summary": "Set the fields given",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": _body("TodoPatch"),
                "responses": {
                    "200": _json(_ref("Todo"), "Updated", headers=_CURSOR_HEADERS), **_ITEM_ERRORS, **_WRITE_ERRORS
                },
            },
            "delete": {
                "operationId": "deleteTodo",
                "parameters": [_IDEMPOTENCY_KEY],
                "responses": {
                    "204": {"description": "Deleted", "headers": _CURSOR_HEADERS},
                    **_ITEM_ERRORS,
                    "422": _json(_ref("Error"), "The Idempotency-Key was used for another request (IDEMPOTENCY_KEY_REUSED)"),
                },
            },
        },
        "/api/mutations/{client}/": {
            "get": {
                "operationId": "mutationVerdicts",
                "summary": "A client's numbered mutations' verdicts after a sequence number, in order"
                " (at most MAX_LIST_ROWS; kept for MUTATIONS_KEEP_SECONDS)",
                "parameters": [
                    {"name": "client", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
                        "description": "Only the verdicts of sequence numbers after this one (default 0)",
                    },
                ],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("MutationVerdict")}, "The verdicts"),
                    "400": _json(_ref("Error"), "A malformed client id or sequence number (BAD_USER_INPUT)"),
                },
            },
        },
        **_AUTH_PATHS,
    },
    "components": {
        "schemas": {
            "Todo": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "title": {"type": "string"},
                    "completed": {"type": "boolean"},
                    "created_time": {"type": "string", "format": "date-time"},
                    "updated_time": {"type": "string", "format": "date-time"},
                },
                "required": ["id", "title", "completed", "created_time", "updated_time"],
                "additionalProperties": False,
            },
            "Title": {
                "type": "string",
                "description": "Stored without surrounding whitespace; must not be blank",
                "minLength": 1,
                "maxLength": MAX_TITLE_LENGTH,
                # Something besides whitespace, and no NUL (PostgreSQL text can't hold it).
                "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
            },
            "MutationVerdict": {
                "type": "object",
                "properties": {
                    "seq": {"type": "string"},
                    "verdict": {"enum": ["APPLIED", "REJECTED"]},
                    "cursor": {"type": "string", "description": "Where its effect (or its no-op) is in the journal"},
                    "code": {"type": ["string", "null"], "description": "A rejection's error code"},
                    "message": {"type": ["string", "null"], "description": "A rejection's reason"},
                    "todo": {
                        "anyOf": [_ref("Todo"), {"type": "null"}],
                        "description": "The row it left; a rejection's: the row as the server had it",
                    },
                },
                "required": ["seq", "verdict", "cursor", "code", "message", "todo"],
                "additionalProperties": False,
            },
            "NewTodo": _todo_input("title"),
            "TodoReplacement": _todo_input("title", "completed"),
            "TodoPatch": _todo_input(),
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "examples": ["BAD_USER_INPUT", "NOT_FOUND"]},
                            "message": {"type": "string"},
                        },
                        "required": ["code", "message"],
                    }
                },
                "required": ["error"],
            },
            **_AUTH_SCHEMAS,
        }
    },
}


def document(max_list_rows: int) -> dict[str, Any]:
    """DOCUMENT as a server whose lists hold at most max_list_rows rows describes itself."""
    described = copy.deepcopy(DOCUMENT)
    for parameter in described["paths"]["/api/todos/"]["get"]["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"]["maximum"] = max_list_rows
    return described
