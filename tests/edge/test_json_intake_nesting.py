"""edge/json_intake.py on deep nesting: orjson says "failed to allocate
memory" of a text whose open arrays and objects outnumber the room it makes
from the text's length (`[[[[...` cut short, or deeper than it reads), which
tells a client nothing true. The intake says which it is: the end came
first, or the nesting limit was passed, naming the limit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from graphql_todos.core.errors import ErrorCode
from graphql_todos.edge.json_intake import MAX_NESTING, RefusedJson, loads
from tests.helpers import Server, errors_logged, serving

OPEN = [b"[" * 500, b"[" * 1023, b'\n{"query": "{ todos { id } }", "variables": ' + b"[" * 1000]
TOO_DEEP = [b"[" * 1025, b"[" * 1100 + b"]" * 1100, b'{"a":' * 5000]


def _message(text: bytes | str) -> str:
    with pytest.raises(RefusedJson) as refused:
        loads(text)
    assert refused.value.code is ErrorCode.MALFORMED_JSON
    return refused.value.message


def test_orjson_says_it_found_no_room_for_many_open_levels() -> None:
    """What the intake reads orjson's errors for (its messages): a text of
    many levels left open has no room; twice as long, it has."""
    for text in OPEN:
        with pytest.raises(orjson.JSONDecodeError) as short:
            orjson.loads(text)
        assert short.value.msg == "failed to allocate memory"
        with pytest.raises(orjson.JSONDecodeError) as padded:
            orjson.loads(text + b" " * len(text))
        assert padded.value.msg == "unexpected end of data"
    with pytest.raises(orjson.JSONDecodeError) as deep:
        orjson.loads(b"[" * (MAX_NESTING + 1) + b"]" * (MAX_NESTING + 1))
    assert deep.value.msg == "depth limit exceeded"
    assert orjson.loads(b"[" * MAX_NESTING + b"]" * MAX_NESTING) is not None


@pytest.mark.parametrize("text", OPEN)
def test_many_levels_left_open_are_a_text_that_ends_too_soon(text: bytes) -> None:
    for sent in (text, text.decode()):
        message = _message(sent)
        # As orjson says it of a text it has room for.
        line, column = text.count(b"\n") + 1, len(text) - text.rfind(b"\n")
        assert message == f"malformed JSON: unexpected end of data: line {line} column {column} (char {len(text)})"


@pytest.mark.parametrize("text", TOO_DEEP)
def test_nesting_too_deep_names_the_limit(text: bytes) -> None:
    message = _message(text)
    assert message.startswith("malformed JSON: depth limit exceeded (at most 1,024 levels of arrays and objects): line 1")


def test_another_fault_among_open_levels_is_told_as_it_is() -> None:
    assert _message(b"[" * 600 + b"x").startswith("malformed JSON: unexpected character")
    assert "line 1 column 601 (char 600)" in _message(b"[" * 600 + b"x")


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn) as srv:
        yield srv


@pytest.mark.parametrize("text", [OPEN[2], b'{"query": "{ todos { id } }", "variables": ' + b"[" * 1100])
def test_a_deeply_nested_body_gets_a_400_saying_why(server: Server, text: bytes) -> None:
    with errors_logged() as logged:
        graphql = httpx.post(server.url + "/graphql", content=text, headers={"content-type": "application/json"})
        rest = httpx.post(server.url + "/api/todos/", content=text, headers={"content-type": "application/json"})
    assert (graphql.status_code, rest.status_code) == (400, 400)
    messages = [graphql.json()["errors"][0]["message"], rest.json()["error"]["message"]]
    assert graphql.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert rest.json()["error"]["code"] == "MALFORMED_JSON"
    expected = "unexpected end of data" if text.endswith(b"[" * 1000) and len(text) < 1100 else "depth limit exceeded (at most 1,024"
    assert all(expected in message and "memory" not in message for message in messages), messages
    assert logged == []
