"""The pieces the OpenAPI description is built of (rest/openapi.py, rest/openapi_auth.py)."""

from __future__ import annotations

from typing import Any

from graphql_todos.core.paths import SIGN_IN
from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES


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


def _refused(code: str, description: str, **extra: Any) -> dict[str, Any]:
    """A front door's refusal: the Error shape, its code the one it answers with."""
    return json_content(_error_coded(code), description, **extra)


def _error_coded(*codes: str) -> dict[str, Any]:
    code = {"const": codes[0]} if len(codes) == 1 else {"enum": list(codes)}
    return {"allOf": [ref("Error"), {"properties": {"error": {"properties": {"code": code}}}}]}


# What stands in front of every route answers these itself, before any
# handler runs (edge/guard.py, internals/uvicorn_http.py, edge/error_handlers.py
# ShutdownCut): components.responses, each operation referring to those it
# can meet (answered_at_the_door). The body is the Error shape throughout.
FRONT_DOOR: dict[str, Any] = {
    "BadRequest": _refused(
        "BAD_REQUEST",
        "A request HTTP/1.1 cannot read (an invalid request line; a control byte, NUL or DEL in a header's"
        " name or value; a folded header line; Content-Length with Transfer-Encoding), the message naming what"
        " was found, the connection closed; or more than one Host header, or none in HTTP/1.1 (RFC 9112, 3.2): refused before"
        " anything else runs (BAD_REQUEST)",
    ),
    "Unauthenticated": _refused(
        "UNAUTHENTICATED",
        "No valid session, personal access token, JWT or TODOS_TOKEN where one is needed (UNAUTHENTICATED)",
        headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    ),
    "ForeignOrigin": _refused(
        "FORBIDDEN",
        "A change signed in by the session cookie without an Origin that is this server's own or in"
        " ALLOWED_ORIGINS (FORBIDDEN)",
    ),
    "BodyTooSlow": _refused(
        "REQUEST_TIMEOUT", "The body did not arrive within REQUEST_SECONDS (REQUEST_TIMEOUT); the connection is closed"
    ),
    "BodyTooLarge": _refused(
        "PAYLOAD_TOO_LARGE",
        "A body (declared or sent) over MAX_BODY_BYTES (PAYLOAD_TOO_LARGE), refused unread; the connection is closed",
    ),
    "Misdirected": _refused(
        "MISDIRECTED_REQUEST",
        "A Host this server does not answer to (ALLOWED_HOSTS) (MISDIRECTED_REQUEST), refused before anything else runs",
    ),
    "HeadTooLarge": _refused(
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        f"A request head (request line and headers) over {MAX_HEAD_BYTES // 1024} KiB"
        " (REQUEST_HEADER_FIELDS_TOO_LARGE); the connection is closed",
    ),
    "VersionNotSupported": _refused(
        "HTTP_VERSION_NOT_SUPPORTED",
        "A request in an HTTP version other than 1.0 and 1.1 (HTTP_VERSION_NOT_SUPPORTED); the connection is closed",
    ),
    "Unavailable": json_content(
        _error_coded("DATABASE_UNAVAILABLE", "SHUTTING_DOWN"),
        "PostgreSQL could not be reached in time (DATABASE_UNAVAILABLE), or the request was still running when"
        " the shutdown's SHUTDOWN_SECONDS ran out (SHUTTING_DOWN): try again",
    ),
    # The 400's first name, published before it covered requests HTTP cannot
    # read: names are a contract, so it stays, one with BadRequest.
    "SeveralHosts": {"$ref": "#/components/responses/BadRequest"},
}
_SAFE = ("get", "head", "options")


def door_refusals(path: str, method: str, operation: dict[str, Any]) -> dict[str, str]:
    """Status -> FRONT_DOOR response an operation can meet: every one for
    every operation, but a credential's where none is asked, a cookie's
    Origin on a change alone, a slow body where a body is read."""
    door = {"400": "BadRequest", "401": "Unauthenticated", "403": "ForeignOrigin", "408": "BodyTooSlow",
            "413": "BodyTooLarge", "421": "Misdirected", "431": "HeadTooLarge", "503": "Unavailable",
            "505": "VersionNotSupported"}
    if method == "post" and path in SIGN_IN:
        del door["401"], door["403"]
    if method in _SAFE:
        door.pop("403", None)
    if "requestBody" not in operation:
        del door["408"]
    return door


def answered_at_the_door(paths: dict[str, Any]) -> None:
    """Each operation refers to the FRONT_DOOR responses it can meet, in
    order among its statuses; a status it lists already keeps its own
    (the same Error shape, its own description)."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            door = {status: {"$ref": f"#/components/responses/{name}"} for status, name in door_refusals(path, method, operation).items()}
            operation["responses"] = dict(sorted({**door, **operation["responses"]}.items()))


# What every answer to a GET (or HEAD) tells caches (edge/negotiation.py,
# PRIVATE and STREAM): the request headers that chose it, and that no cache
# may keep it. components.headers; each GET's own responses refer to them
# (told_to_caches), so a client generator, and the schemathesis test, see them.
CACHING_HEADERS: dict[str, Any] = {
    "Vary": {
        "description": "The request headers that chose this answer: Accept, Authorization, Cookie and (CORS) Origin;"
        " an event stream's also Last-Event-ID",
        "required": True,
        "schema": {"type": "string", "pattern": "^(?=.*\\bAccept\\b)(?=.*\\bAuthorization\\b)(?=.*\\bCookie\\b)(?=.*\\bOrigin\\b)"},
    },
    "Cache-Control": {
        "description": "no-store: an answer behind the credential is kept by no cache, shared or the browser's",
        "required": True,
        "schema": {"type": "string", "pattern": "(^|,)\\s*no-store\\s*(,|$)"},
    },
}


def told_to_caches(paths: dict[str, Any]) -> None:
    """Each GET's own responses (not the front door's, shared with other
    methods) declare CACHING_HEADERS."""
    refs = {name: {"$ref": f"#/components/headers/{name}"} for name in CACHING_HEADERS}
    for item in paths.values():
        operation = item.get("get")
        if operation is None:
            continue
        operation["responses"] = {
            # A copy: other methods' operations share some responses' dicts.
            status: response if "$ref" in response else {**response, "headers": {**refs, **response.get("headers", {})}}
            for status, response in operation["responses"].items()
        }

