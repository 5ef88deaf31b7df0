"""The OpenAPI description of /api/feed/ (rest/feed.py)."""

from __future__ import annotations

from typing import Any

from graphql_todos.rest.openapi_auth import SIGNED_IN, refusals
from graphql_todos.rest.openapi_parts import ref

_KINDS = [
    "todo_created", "todo_updated", "todo_deleted", "todo_arrived", "todo_removed",
    "list_added", "list_updated", "list_removed", "member_added", "member_updated", "member_removed",
]
_UUID = {"type": "string", "format": "uuid"}

FEED_PATHS: dict[str, Any] = {
    "/api/feed/": {
        "get": {
            "operationId": "feed",
            "summary": "Every entry the caller may see, in commit order, as what it is for the caller:"
            " GraphQL's feed subscription. Only a stream: an event stream here, or this URL as a"
            " WebSocket (a FeedEvent per message, {\"op\": \"keepalive\"} when idle)",
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The entries after this cursor (0: all the journal holds); from now without it",
                },
                {
                    "name": "list_id",
                    "in": "query",
                    "required": False,
                    "schema": _UUID,
                    "description": "Only the entries of this list",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Resume after this event (wins over after)",
                },
            ],
            "responses": {
                "200": {
                    "description": "Server-Sent Events, each named for its kind, its id the entry's cursor,"
                    " its data a FeedEvent; a comment line every KEEPALIVE_SECONDS",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **refusals(
                    s400="A malformed cursor or list id, or a cursor not yet written (BAD_USER_INPUT)",
                    s401=SIGNED_IN,
                    s406="An Accept that does not take text/event-stream (NOT_ACCEPTABLE)",
                    s410="The journal no longer holds what came after the cursor (CURSOR_EXPIRED)",
                ),
            },
        },
    },
}

FEED_SCHEMAS: dict[str, Any] = {
    "FeedEvent": {
        "type": "object",
        "description": "A field is left out where it does not apply.",
        "properties": {
            "kind": {"enum": _KINDS},
            "cursor": {"type": "string"},
            "todo_id": {**_UUID, "description": "Every todo_* kind"},
            "todo": {**ref("Todo"), "description": "The row: todo_created, _updated, _deleted (as it was), _arrived"},
            "list_id": {**_UUID, "description": "The list the entry concerns"},
            "member": {**ref("Member"), "description": "member_* kinds"},
            "reason": {"enum": ["LIST_DELETED"], "description": "The entry went with its list's deletion"},
        },
        "required": ["kind", "cursor"],
        "additionalProperties": False,
    },
}
