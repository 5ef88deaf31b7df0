"""The fan-out's `todo(id)` renders (fanout._RowRenders: its row's, its
entries' for the hub's row sink) are made once per plan and shared by every
subscriber of it, whatever its row (GraphQLFanout._renders_of_row)."""

from __future__ import annotations

from graphql_todos.graphql.fanout import GraphQLFanout, _RowRenders
from graphql_todos.graphql.intake import Intake
from tests.graphql.fast.test_events import SCHEMA, _strawberry
from tests.graphql.fast.test_plans import IDS
from tests.graphql.test_fanout import ROW

ROW_QUERY = "subscription ($id: ID!) { todo(id: $id) { id title completed } }"


def test_a_row_plans_renders_are_made_once_for_all_its_subscribers() -> None:
    """Made per subscriber, the plan's leaves were walked again at each open
    (a tenth of a `todo(id)` open's bytecodes)."""
    fanout = GraphQLFanout(Intake(SCHEMA))

    def renders(query: str, todo_id: str) -> _RowRenders | None:
        planned = fanout._planned(query, {"id": todo_id}, None, None)
        assert planned is not None and planned[0].root == "todo"
        return fanout._renders_of_row(*planned)

    first = renders(ROW_QUERY, IDS[0])
    assert first is not None
    assert renders(ROW_QUERY, IDS[1]) is first
    assert renders(ROW_QUERY, IDS[0]) is first
    # Another document: its own, each writing its own plan's payload.
    other_query = ROW_QUERY.replace("title ", "")
    other = renders(other_query, IDS[1])
    assert other is not None and other is not first and other.plan is not first.plan
    assert renders(other_query, IDS[0]) is other
    assert first.row(ROW) == _strawberry(ROW_QUERY, {"id": IDS[0]}, ROW)
    assert other.row(ROW) == _strawberry(other_query, {"id": IDS[0]}, ROW)
