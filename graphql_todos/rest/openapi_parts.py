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
