"""The one way JSON from a client comes in.

Every transport decodes what a client sends through `loads`: REST bodies,
GraphQL bodies (whatever they accept: JSON, SSE, multipart), GraphQL's GET
`variables` and `extensions`, and the messages of both GraphQL WebSocket
protocols (internals.strawberry_view.JsonIntake). It returns the value, or raises
RefusedJson, which each transport answers in its own way (REST: the code's
status; GraphQL over HTTP: a 400 with the code in `extensions`; a WebSocket:
a close with the code's close code and the message as the reason). Nothing a
client sends can make it raise anything else.

What it takes is what orjson takes: UTF-8 without a byte order mark, at most
1,024 levels of nesting (deeper, or more levels left open than orjson makes
room for, is refused saying which), numbers within a double's range (integers beyond 64
bits become doubles), no NaN or Infinity; a key given twice keeps its last
value. Python's json module, by contrast, raises RecursionError on deep
nesting, ValueError on a 5,000-digit number and UnicodeDecodeError on bytes
that are not text.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from graphql_todos.core.errors import ErrorCode, RequestError

# A \uD800 to \uDFFF escape: half of a UTF-16 surrogate pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# What stands in for each while telling a lone surrogate from other faults.
_ANY_ESCAPE = rb"\\u0020"
_LONE_SURROGATE = "must be Unicode text: the JSON escapes a lone surrogate (\\ud800 to \\udfff unpaired)"
# orjson's deepest nesting of arrays and objects.
MAX_NESTING = 1024
# What orjson says of text nested deeper, and of text whose open arrays and
# objects outnumber what it makes room for from the text's length (many
# levels that are never closed: `[[[[...` cut short, or deeper than 1,024).
_TOO_DEEP = "depth limit exceeded"
_NO_ROOM = "failed to allocate memory"
_ENDS = "unexpected end of data"


class RefusedJson(RequestError):
    """JSON a client sent that the server does not take. `code` says why:
    MALFORMED_JSON (not JSON, or beyond what the server reads: see the
    module), or BAD_USER_INPUT (well-formed JSON escaping a lone surrogate,
    `"\\ud800"`: no Unicode text, a value the rules refuse)."""


def loads(data: bytes | str) -> Any:
    """The value `data` holds (RefusedJson: none)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _refusal(data, exc) from None


def _refusal(data: bytes | str, exc: orjson.JSONDecodeError) -> RefusedJson:
    # Only a refused text pays for telling why: the common path is one parse.
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        # orjson says "str is not valid UTF-8" even of bytes: say where.
        message = f"malformed JSON: not UTF-8 ({bad.reason} at byte {bad.start})"
        return RefusedJson(ErrorCode.MALFORMED_JSON, message)
    # Each surrogate escape made a plain one (same length, same place in the
    # grammar): if that parses, lone surrogates were the only fault.
    stand_in = _SURROGATE_ESCAPE.sub(_ANY_ESCAPE, raw)
    if stand_in != raw and _parses(stand_in) is None:
        return RefusedJson(ErrorCode.BAD_USER_INPUT, _LONE_SURROGATE)
    if exc.msg == _NO_ROOM:
        # Room enough once the text is twice as long (in spaces): the fault
        # it has, cut short or too deep, is then told.
        exc = _parses(raw + b" " * len(raw)) or exc
        if exc.msg == _ENDS:
            text = raw.decode()
            where = f"line {text.count(chr(10)) + 1} column {len(text) - text.rfind(chr(10))} (char {len(text)})"
            return RefusedJson(ErrorCode.MALFORMED_JSON, f"malformed JSON: {_ENDS}: {where}")
    if exc.msg == _TOO_DEEP:
        where = str(exc).removeprefix(_TOO_DEEP)
        message = f"malformed JSON: {_TOO_DEEP} (at most {MAX_NESTING:,} levels of arrays and objects){where}"
        return RefusedJson(ErrorCode.MALFORMED_JSON, message)
    return RefusedJson(ErrorCode.MALFORMED_JSON, f"malformed JSON: {exc}")


def _parses(raw: bytes) -> orjson.JSONDecodeError | None:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return exc
    return None
