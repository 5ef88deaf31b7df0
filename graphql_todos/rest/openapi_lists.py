"""The OpenAPI description of the lists and members routes (README: People and sign-in, lists and sharing)."""

from __future__ import annotations

from typing import Any

from graphql_todos.core.service import MAX_OFFSET
from graphql_todos.core.settings import Settings
from graphql_todos.rest.openapi_auth import BODY_ERRORS, PERSONS_OWN, SIGNED_IN, refusals
from graphql_todos.rest.openapi_parts import CURSOR_HEADERS, IDEMPOTENCY_KEY, body, json_content, ref

_LIST_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}
_ROLE = {"enum": ["editor", "viewer"], "description": "owner is the list's maker, and no one else"}
_LIST_ID = [
    {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
]
_MEMBER_ID = [*_LIST_ID, {"name": "person_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
_NOT_ITS = "No list of the caller's with this id (NOT_FOUND)"
_MAY_NOT = "The caller sees the list but may not do this (FORBIDDEN): a viewer's change, a non-owner's share, the owner's own row, the default list"
# A list write is never numbered: its cursor alone.
_CURSOR = {"Journal-Cursor": CURSOR_HEADERS["Journal-Cursor"]}
LIST_PATHS: dict[str, Any] = {
    "/api/lists/": {
        "get": {
            "operationId": "listLists",
            "responses": {
                "200": json_content({"type": "array", "items": ref("List")}, "The caller's lists, oldest first"),
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN),
            },
        },
        "post": {
            "operationId": "createList",
            "requestBody": body("ListName"),
            "responses": {
                "201": json_content(ref("List"), "Created: the caller owns it", headers=_CURSOR),
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN, s403=PERSONS_OWN),
            },
        },
    },
    "/api/lists/{id}/": {
        "parameters": _LIST_ID,
        "get": {
            "operationId": "getList",
            "responses": {
                "200": json_content(ref("List"), "The list"),
                **refusals(s400="A malformed id", s401=SIGNED_IN, s403=PERSONS_OWN, s404=_NOT_ITS),
            },
        },
        "patch": {
            "operationId": "renameList",
            "requestBody": body("ListName"),
            "responses": {
                "200": json_content(ref("List"), "Renamed (owner or editor)", headers=_CURSOR),
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
        "delete": {
            "operationId": "deleteList",
            "responses": {
                "204": {"description": "Deleted with its todos (owner only; not the default list)", "headers": _CURSOR},
                **refusals(s400="A malformed id", s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
    },
    "/api/lists/{id}/members/": {
        "parameters": _LIST_ID,
        "get": {
            "operationId": "listMembers",
            "responses": {
                "200": json_content({"type": "array", "items": ref("Member")}, "The list's members, the owner first"),
                **refusals(s400="A malformed id", s401=SIGNED_IN, s403=PERSONS_OWN, s404=_NOT_ITS),
            },
        },
        "post": {
            "operationId": "shareList",
            "requestBody": body("Share"),
            "responses": {
                "201": json_content(ref("Member"), "Shared (owner only)", headers=_CURSOR),
                **BODY_ERRORS,
                **refusals(
                    s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no person with this username",
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
                # openapi.document() puts the server's own MAX_LIST_ROWS here.
                {
                    "name": "limit", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": Settings.max_list_rows},
                },
                {
                    "name": "offset", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                },
            ],
            "responses": {
                "200": json_content({"type": "array", "items": ref("Todo")}, "The list's todos"),
                **refusals(
                    s400="A malformed id or query parameter; LIST_TOO_LARGE",
                    s401=SIGNED_IN, s403=PERSONS_OWN, s404=_NOT_ITS,
                ),
            },
        },
        "post": {
            "operationId": "createTodoInList",
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": body("NewTodo"),
            "responses": {
                "201": json_content(ref("Todo"), "Created in the list (editor or owner)", headers=CURSOR_HEADERS),
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS),
            },
        },
    },
    "/api/lists/{id}/members/{person_id}/": {
        "parameters": _MEMBER_ID,
        "patch": {
            "operationId": "setMemberRole",
            "requestBody": body("MemberRole"),
            "responses": {
                "200": json_content(ref("Member"), "The member with the new role (owner only)", headers=_CURSOR),
                **BODY_ERRORS,
                **refusals(s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no such member"),
            },
        },
        "delete": {
            "operationId": "removeMember",
            "responses": {
                "204": {"description": "Removed (owner only), or left (oneself)", "headers": _CURSOR},
                **refusals(
                    s400="A malformed id", s401=SIGNED_IN, s403=_MAY_NOT, s404=_NOT_ITS + "; or no such member"
                ),
            },
        },
    },
}
LIST_SCHEMAS: dict[str, Any] = {
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
        "properties": {"person": ref("Person"), "role": {"enum": ["owner", "editor", "viewer"]}},
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
