"""The pure rules of todos: ids and titles."""

from __future__ import annotations

import uuid

import pytest

from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.service import MAX_TITLE_LENGTH, clean_title, parse_id

ID = "1b4e28ba-2fa1-11d2-883f-0016785cfb29"


def test_parse_id_takes_the_usual_spelling_in_either_case() -> None:
    assert parse_id(ID) == uuid.UUID(ID)
    assert parse_id(ID.upper()) == uuid.UUID(ID)


@pytest.mark.parametrize("value", ["", "nope", "{" + ID + "}", "urn:uuid:" + ID, ID.replace("-", ""), ID + " "])
def test_parse_id_refuses_other_spellings(value: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        parse_id(value)
    assert (refused.value.field, refused.value.message) == ("id", f"id is malformed: {value!r}")


def test_clean_title_trims() -> None:
    assert clean_title("  milk \n") == "milk"
    assert clean_title("é" * MAX_TITLE_LENGTH) == "é" * MAX_TITLE_LENGTH


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        (" \t", "must not be blank"),
        ("x" * (MAX_TITLE_LENGTH + 1), f"must be at most {MAX_TITLE_LENGTH} characters"),
        ("a\x00b", "must not contain NUL characters"),
        ("a\ud800", "must be valid Unicode text"),
    ],
)
def test_clean_title_refuses(title: str, reason: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        clean_title(title)
    assert (refused.value.field, refused.value.reason) == ("title", reason)
