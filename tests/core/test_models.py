"""Todo.from_json (core/models.py) builds its Todo by setting the slots
directly: the same Todo as the constructor's, frozen all the same."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

import pytest

from graphql_todos.core.models import LOCAL_LIST_ID, Todo

_AT = "2026-12-05T06:01:00.123456+00:00"


def _row(**extra: str) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "title": "t", "completed": True, "created_time": _AT, "updated_time": _AT} | extra


def test_from_json_is_the_constructors_todo() -> None:
    row = _row(list_id=str(uuid.uuid4()), updated_time="2026-12-05T07:00:00+01:00")
    built = Todo.from_json(row)
    made = Todo(
        uuid.UUID(row["id"]), "t", True, datetime.fromisoformat(_AT),  # type: ignore[arg-type]
        datetime.fromisoformat("2026-12-05T07:00:00+01:00"), uuid.UUID(row["list_id"]),  # type: ignore[arg-type]
    )
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert type(built) is Todo
    # Every field set: one added to Todo and not to from_json fails here.
    assert dataclasses.astuple(built) == dataclasses.astuple(made)
    assert [getattr(built, f.name) for f in dataclasses.fields(Todo)] == [getattr(made, f.name) for f in dataclasses.fields(Todo)]


def test_from_json_before_lists_is_in_locals_default_list() -> None:
    assert Todo.from_json(_row()).list_id == LOCAL_LIST_ID


def test_from_json_todo_is_frozen() -> None:
    built = Todo.from_json(_row())
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.title = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del built.title  # type: ignore[misc]
    assert dataclasses.replace(built, title="changed").title == "changed"
