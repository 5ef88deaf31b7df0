"""A view of every list (core/visibility.py): the service token's and
single-user mode's, judged without the general path's steps, says what the
design's view says (docs/design/prototypes/visibility.py) of every kind of
entry, and never moves. An entry's legacy Change is made once per kind."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from graphql_todos.core.models import Entry, Op, Todo
from graphql_todos.core.visibility import Kind, View, legacy_change
from tests.oracle import View as DesignView

OPS = (
    "created", "updated", "deleted", "arrived", "removed", "list_created", "list_updated", "list_deleted",
    "member_added", "member_updated", "member_removed", "access_revoked",
)


def test_a_view_of_every_list_judges_each_entry_as_the_design_does() -> None:
    lists, person = (uuid.uuid4(), uuid.uuid4()), uuid.uuid4()
    view, design = View(None), DesignView(None)
    for position, (op, before, after, named) in enumerate(
        itertools.product(OPS, (None, *lists), (None, *lists), (None, person)), 1
    ):
        if op.startswith("member_") and named is None:
            continue  # a member entry names its member (the design's view would call None the service's)
        entry = Entry(position, op, uuid.uuid4(), None, before, after, named)
        kind = view.step(entry)
        expected = design.step(
            {"op": op, "list_before": before, "list_after": after, "person_id": named, "todo_id": entry.todo_id}
        )
        assert (None if kind is None else kind.value) == expected, (op, before, after, named)
        assert view.lists == set() and view.person is None


def test_an_entrys_legacy_change_is_made_once_per_kind_for_every_reader() -> None:
    at = datetime.now(UTC)
    row = Todo(uuid.uuid4(), "t", False, at, at)
    entry = Entry(1, "updated", row.id, row, row.list_id, row.list_id, before=row)
    update = legacy_change(entry, Kind.UPDATE)
    assert update is not None and update.op is Op.UPDATED and update.todo is row
    # Renders are shared by the change's identity: each reader of a kind gets the same one.
    assert legacy_change(entry, Kind.UPDATE) is update
    removal = legacy_change(entry, Kind.REMOVAL)
    assert removal is not None and removal.removed and removal is legacy_change(entry, Kind.REMOVAL)
    assert legacy_change(entry, None) is None and legacy_change(entry, Kind.LIST) is None
