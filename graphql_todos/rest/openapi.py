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


def _todo_input(*required: str, moves: bool = False) -> dict[str, Any]:
    """A todo's fields in a body; `moves`: an update, which may also name
    another list (moveTodo's rights: editor or owner of both)."""
    moved = {"list_id": {"type": "string", "format": "uuid"}} if moves else {}
    return {
        "type": "object",
        "properties": {"title": _ref("Title"), "completed": {"type": "boolean"}, **moved},
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
_LIST_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}
_ROLE = {"enum": ["editor", "viewer"], "description": "owner is the list's maker, and no one else"}
_LIST_ID = [
    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
]
_MEMBER_ID = [*_LIST_ID, {"name": "person_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
_NOT_ITS = "No list of the caller's with this id (NOT_FOUND)"
_MAY_NOT = "The caller sees the list but may not do this (FORBIDDEN): a viewer's change, a non-owner's share, the owner's own row, the default list"
_LIST_PATHS: dict[str, Any] = {
    "/api/lists/": {
        "get": {
            "operationId": "listLists",
            "responses": {
                "200": _json({"type": "array", "items": _ref("List")}, "The caller's lists, oldest first"),
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN),
            },
        },
        "post": {
            "operationId": "createList",
            "requestBody": _body("ListName"),
            "responses": {
                "201": _json(_ref("List"), "Created: the caller owns it"),
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN, s403=_PERSONS_OWN),
            },
        },
    },
    "/api/lists/{id}/": {
        "parameters": _LIST_ID,
        "get": {
            "operationId": "getList",
            "responses": {
                "200": _json(_ref("List"), "The list"),
                **_refusals(s400="A malformed id", s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_NOT_ITS),
            },
        },
        "patch": {
            "operationId": "renameList",
            "requestBody": _body("ListName"),
            "responses": {
                "200": _json(_ref("List"), "Renamed (owner or editor)"),
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
        "delete": {
            "operationId": "deleteList",
            "responses": {
                "204": {"description": "Deleted with its todos (owner only; not the default list)"},
                **_refusals(s400="A malformed id", s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
    },
    "/api/lists/{id}/members/": {
        "parameters": _LIST_ID,
        "get": {
            "operationId": "listMembers",
            "responses": {
                "200": _json({"type": "array", "items": _ref("Member")}, "The list's members, the owner first"),
                **_refusals(s400="A malformed id", s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_NOT_ITS),
            },
        },
        "post": {
            "operationId": "shareList",
            "requestBody": _body("Share"),
            "responses": {
                "201": _json(_ref("Member"), "Shared (owner only)"),
                **_BODY_ERRORS,
                **_refusals(
                    s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no person with this username",
                    s409="The person is a member already (CONFLICT)",
                ),
            },
        },
    },
    "/api/lists/{id}/todos/": {
        "parameters": _LIST_ID,
        "get": {
            "operationId": "listTodosOfList",
            "summary": "One list's todos, as /api/todos/ pages them (completed, limit, offset)",
            "parameters": [
                {"name": "completed", "in": "query", "required": False, "schema": {"type": "boolean"}},
                {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
                {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "200": _json({"type": "array", "items": _ref("Todo")}, "The list's todos"),
                **_refusals(
                    s400="A malformed id or query parameter; LIST_TOO_LARGE",
                    s401=_SIGNED_IN, s403=_PERSONS_OWN, s404=_NOT_ITS,
                ),
            },
        },
        "post": {
            "operationId": "createTodoInList",
            "requestBody": _body("NewTodo"),
            "responses": {
                "201": _json(_ref("Todo"), "Created in the list (editor or owner)"),
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
    },
    "/api/lists/{id}/members/{person_id}/": {
        "parameters": _MEMBER_ID,
        "patch": {
            "operationId": "setMemberRole",
            "requestBody": _body("MemberRole"),
            "responses": {
                "200": _json(_ref("Member"), "The member with the new role (owner only)"),
                **_BODY_ERRORS,
                **_refusals(s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no such member"),
            },
        },
        "delete": {
            "operationId": "removeMember",
            "responses": {
                "204": {"description": "Removed (owner only), or left (oneself)"},
                **_refusals(
                    s400="A malformed id", s401=_SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no such member"
                ),
            },
        },
    },
}
_LIST_SCHEMAS: dict[str, Any] = {
    "List": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "is_default": {"type": "boolean"},
            "role": {"enum": ["owner", "editor", "viewer"], "description": "the caller's"},
            "created_time": {"type": "string", "format": "date-time"},
            "updated_time": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "name", "is_default", "role", "created_time", "updated_time"],
        "additionalProperties": False,
    },
    "Member": {
        "type": "object",
        "properties": {"person": _ref("Person"), "role": {"enum": ["owner", "editor", "viewer"]}},
        "required": ["person", "role"],
        "additionalProperties": False,
    },
    "ListName": {"type": "object", "properties": {"name": _LIST_NAME}, "required": ["name"], "additionalProperties": False},
    "Share": {
        "type": "object",
        "properties": {"username": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{1,38}$"}, "role": _ROLE},
        "required": ["username", "role"],
        "additionalProperties": False,
    },
    "MemberRole": {"type": "object", "properties": {"role": _ROLE}, "required": ["role"], "additionalProperties": False},
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
                            }
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
                "requestBody": _body("TodoReplacement"),
                "responses": {"200": _json(_ref("Todo"), "Updated"), **_ITEM_ERRORS, **_WRITE_ERRORS},
            },
            "patch": {
                "operationId": "updateTodo",
                "summary": "Set the fields given",
                "requestBody": _body("TodoPatch"),
                "responses": {"200": _json(_ref("Todo"), "Updated"), **_ITEM_ERRORS, **_WRITE_ERRORS},
            },
            "delete": {
                "operationId": "deleteTodo",
                "responses": {"204": {"description": "Deleted"}, **_ITEM_ERRORS},
            },
        },
        **_AUTH_PATHS,
        **_LIST_PATHS,
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
                    "list_id": {"type": "string", "format": "uuid"},
                },
                "required": ["id", "title", "completed", "created_time", "updated_time", "list_id"],
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
            "NewTodo": _todo_input("title"),
            "TodoReplacement": _todo_input("title", "completed", moves=True),
            "TodoPatch": _todo_input(moves=True),
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
            **_LIST_SCHEMAS,
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
