"""The pieces the OpenAPI description is built of (rest/openapi.py, rest/openapi_auth.py)."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def json_or_events(schema: dict[str, Any], description: str, events: str) -> dict[str, Any]:
    """A GET that, asked for `Accept: text/event-stream`, streams instead."""
    response = json_content(schema, description)
    response["content"]["text/event-stream"] = {"schema": {"type": "string", "description": events}}
    return response


def answers_only_json(operation: dict[str, Any] | None) -> bool:
    """A GET whose answer is application/json alone (no event stream), as
    its operation describes it; one the document leaves out (None) too."""
    return operation is None or list(operation["responses"]["200"]["content"]) == ["application/json"]


def refusing_the_unacceptable(paths: dict[str, Any]) -> None:
    """Each GET gets its 406 (one that has none yet), in order among its
    statuses: an Accept that takes none of the media types of its 200."""
    for item in paths.values():
        operation = item.get("get")
        if operation is None or "406" in operation["responses"]:
            continue
        types = " nor ".join(operation["responses"]["200"]["content"])
        refused = NOT_JSON if answers_only_json(operation) else f"An Accept that takes neither {types} (NOT_ACCEPTABLE)"
        responses = {**operation["responses"], "406": json_content(ref("Error"), refused)}
        operation["responses"] = dict(sorted(responses.items()))


NOT_JSON = "An Accept that does not take application/json (NOT_ACCEPTABLE): this URL answers only JSON"


def errors(*statuses: int) -> dict[str, Any]:
    return {str(status): json_content(ref("Error"), ERROR_DESCRIPTIONS[status]) for status in statuses}


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


def todo_input(*required: str, moves: bool = False) -> dict[str, Any]:
    """A todo's fields in a body; `moves`: an update, which may also name
    another list (moveTodo's rights: editor or owner of both)."""
    moved = {"list_id": {
        "type": "string", "format": "uuid",
        "description": "Move it there (editor or owner of both lists); a list the caller cannot see, or none: 422 NOT_FOUND",
    }} if moves else {}
    return {
        "type": "object",
        "properties": {"title": ref("Title"), "completed": {"type": "boolean"}, **moved},
        "required": list(required),
        "additionalProperties": False,
    }


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, id or query parameter",
    404: "No todo with this id",
    415: "The body is not application/json",
    422: "The body is not a todo this operation accepts",
}


# docs/design/offline.md: a numbered mutation is applied once; a retry gets
# the first answer (status, body, headers) again. The key's form, as
# core/mutations.from_header takes it.
_HEX = "[0-9a-fA-F]"
IDEMPOTENCY_KEY_PATTERN = f'^"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}:[1-9][0-9]{{0,17}}"$'

IDEMPOTENCY_KEY = {
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
CURSOR_HEADERS = {
    "Journal-Cursor": {
        "description": "The journal cursor at which this mutation's effect (or its no-op) is visible in a change stream",
        "schema": {"type": "string"},
    },
    "Idempotency-Key": {"description": "A numbered mutation's key, echoed", "schema": {"type": "string"}},
}
