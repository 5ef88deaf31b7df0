"""A view of every list (core/visibility.py): the service token's and
single-user mode's, judged without the general path's steps, says what the
design's view says (docs/design/prototypes/visibility.py) of every kind of
entry, and never moves."""

from __future__ import annotations

import itertools
import uuid

from graphql_todos.core.models import Entry
from graphql_todos.core.visibility import View
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
