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
from graphql_todos.rest.openapi_auth import AUTH_PATHS, AUTH_SCHEMAS
from graphql_todos.rest.openapi_feed import FEED_PATHS, FEED_SCHEMAS
from graphql_todos.rest.openapi_lists import LIST_PATHS, LIST_SCHEMAS
from graphql_todos.rest.openapi_parts import (
    CACHING_HEADERS,
    CURSOR_HEADERS,
    FRONT_DOOR,
    IDEMPOTENCY_KEY,
    answered_at_the_door,
    body,
    errors,
    json_content,
    json_or_events,
    ref,
    refusing_the_unacceptable,
    todo_input,
    told_to_caches,
)

_EVENTS = (
    " Each event is named for its op (created, updated, deleted; snapshot first on an item),"
    " its id is the change's cursor and its data the RESTSocket message {\"op\", \"todo\", \"cursor\"};"
    " a comment line is sent every KEEPALIVE_SECONDS."
)


_ITEM_ERRORS = errors(400, 404)
_WRITE_ERRORS = errors(400, 415, 422)



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
                    "200": json_or_events(
                        {"type": "array", "items": ref("Todo")},
                        "The todos; with Accept: text/event-stream, every change from now"
                        " (or after the cursor) in commit order",
                        "Server-Sent Events." + _EVENTS,
                    ),
                    "400": json_content(
                        ref("Error"),
                        "A malformed query parameter (BAD_USER_INPUT), or more than MAX_LIST_ROWS"
                        " todos asked for without limit (LIST_TOO_LARGE)",
                    ),
                },
            },
            "post": {
                "operationId": "createTodo",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": body("NewTodo"),
                "responses": {
                    "201": json_content(
                        ref("Todo"),
                        "Created",
                        headers={
                            "Location": {
                                "description": "/api/todos/{id}/",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            **CURSOR_HEADERS,
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
                    "200": json_or_events(
                        ref("Todo"),
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
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": body("TodoReplacement"),
                "responses": {
                    "200": json_content(ref("Todo"), "Updated", headers=CURSOR_HEADERS), **_ITEM_ERRORS, **_WRITE_ERRORS
                },
            },
            "patch": {
                "operationId": "updateTodo",
                "summary": "Set the fields given",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": body("TodoPatch"),
                "responses": {
                    "200": json_content(ref("Todo"), "Updated", headers=CURSOR_HEADERS), **_ITEM_ERRORS, **_WRITE_ERRORS
                },
            },
            "delete": {
                "operationId": "deleteTodo",
                "parameters": [IDEMPOTENCY_KEY],
                "responses": {
                    "204": {"description": "Deleted", "headers": CURSOR_HEADERS},
                    **_ITEM_ERRORS,
                    "422": json_content(ref("Error"), "The Idempotency-Key was used for another request (IDEMPOTENCY_KEY_REUSED)"),
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
                    "200": json_content({"type": "array", "items": ref("MutationVerdict")}, "The verdicts"),
                    "400": json_content(ref("Error"), "A malformed client id or sequence number (BAD_USER_INPUT)"),
                },
            },
        },
        **AUTH_PATHS,
        **LIST_PATHS,
        **FEED_PATHS,
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
            "MutationVerdict": {
                "type": "object",
                "properties": {
                    "seq": {"type": "string"},
                    "verdict": {"enum": ["APPLIED", "REJECTED"]},
                    "cursor": {"type": "string", "description": "Where its effect (or its no-op) is in the journal"},
                    "code": {"type": ["string", "null"], "description": "A rejection's error code"},
                    "message": {"type": ["string", "null"], "description": "A rejection's reason"},
                    "todo": {
                        "anyOf": [ref("Todo"), {"type": "null"}],
                        "description": "The row it left; a rejection's: the row as the server had it",
                    },
                },
                "required": ["seq", "verdict", "cursor", "code", "message", "todo"],
                "additionalProperties": False,
            },
            "NewTodo": todo_input("title"),
            "TodoReplacement": todo_input("title", "completed", moves=True),
            "TodoPatch": todo_input(moves=True),
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
            **AUTH_SCHEMAS,
            **LIST_SCHEMAS,
            **FEED_SCHEMAS,
        },
        "responses": FRONT_DOOR,
        "headers": CACHING_HEADERS,
    },
}
# A GET refuses a client that takes none of its media types (rest/routing.py, edge/event_stream.py).
refusing_the_unacceptable(DOCUMENT["paths"])
# What the front door refuses before any route (README: Errors).
answered_at_the_door(DOCUMENT["paths"])
# What each GET's answers tell caches (edge/negotiation.py).
told_to_caches(DOCUMENT["paths"])


def document(max_list_rows: int) -> dict[str, Any]:
    """DOCUMENT as a server whose lists hold at most max_list_rows rows describes itself."""
    described = copy.deepcopy(DOCUMENT)
    for path in ("/api/todos/", "/api/lists/{id}/todos/"):
        for parameter in described["paths"][path]["get"]["parameters"]:
            if parameter["name"] == "limit":
                parameter["schema"]["maximum"] = max_list_rows
    return described
