"""The same operations in each server's naming, selecting the same fields.

PostGraphile 5's amber preset names the uuid column `rowId` (its `id` is the
node id): aliased `id` here, so every server answers the same keys.
PostGraphile 4's subscriptions are its simple `listen`, which delivers the
row's node id (`relatedNodeId`, no read per subscriber); PostGraphile 5's are
bench/peer5.config.mjs's, which deliver the row from the NOTIFY payload.
"""

from __future__ import annotations

from .servers import FLOOR, OURS, OURS_WORKERS, POSTGRAPHILE, POSTGRAPHILE5

# Every row of the 50-row table.
LIST = {
    OURS: "{ todos { id title completed } }",
    POSTGRAPHILE5: "{ allTodos(orderBy: [CREATED_TIME_ASC, ROW_ID_ASC]) { nodes { id: rowId title completed } } }",
    POSTGRAPHILE: "{ allTodos(orderBy: [CREATED_TIME_ASC, ID_ASC]) { nodes { id title completed } } }",
}
# The first 50 rows of a larger table.
PAGE = {
    OURS: "{ todos(first: 50) { id title completed } }",
    POSTGRAPHILE5: (
        "{ allTodos(first: 50, orderBy: [CREATED_TIME_ASC, ROW_ID_ASC]) { nodes { id: rowId title completed } } }"
    ),
    POSTGRAPHILE: "{ allTodos(first: 50, orderBy: [CREATED_TIME_ASC, ID_ASC]) { nodes { id title completed } } }",
}
CREATE = {
    OURS: "mutation($t: String!) { createTodo(input: {title: $t}) { id title completed } }",
    POSTGRAPHILE5: (
        "mutation($t: String!) { createTodo(input: {todo: {title: $t}}) { todo { id: rowId title completed } } }"
    ),
    POSTGRAPHILE: "mutation($t: String!) { createTodo(input: {todo: {title: $t}}) { todo { id title completed } } }",
}
# Variables {"id": ..., "t": ...}.
UPDATE = {
    OURS: "mutation($id: ID!, $t: String!) { updateTodo(id: $id, input: {title: $t}) { id title completed } }",
    POSTGRAPHILE5: (
        "mutation($id: UUID!, $t: String!) { updateTodoByRowId(input: {rowId: $id, todoPatch: {title: $t}}) "
        "{ todo { id: rowId title completed } } }"
    ),
    POSTGRAPHILE: (
        "mutation($id: UUID!, $t: String!) { updateTodoById(input: {id: $id, todoPatch: {title: $t}}) "
        "{ todo { id title completed } } }"
    ),
}
# Every change, one shared document (the floor: raw NOTIFY payloads).
CHANGES = {
    OURS: "subscription { todoChanges { op todo { id title completed } } }",
    OURS_WORKERS: "subscription { todoChanges { op todo { id title completed } } }",
    POSTGRAPHILE5: "subscription { todoChanges { op todo { id title completed } } }",
    POSTGRAPHILE: 'subscription { listen(topic: "todos") { relatedNodeId } }',
    FLOOR: "",
}
# One row's changes, with the variables naming the row.
ROW = {
    OURS: "subscription($id: ID!) { todo(id: $id) { title completed } }",
    POSTGRAPHILE5: "subscription($id: UUID!) { todo(id: $id) { title completed } }",
    POSTGRAPHILE: "subscription($topic: String!) { listen(topic: $topic) { relatedNodeId } }",
}


def row_variables(server: str, todo_id: str) -> dict[str, str]:
    return {"topic": f"todo:{todo_id}"} if server == POSTGRAPHILE else {"id": todo_id}


# Ours only: neither peer has live queries (PostGraphile 4's need wal2json).
LIVE_LIST = "subscription { todos { title } }"
# Beside it, ours' change feed (CHANGES) with the same changes, a row's new
# title: the title first, as the client counts a frame under its first uuid.
LIVE_FEED_CHANGES = "subscription { todoChanges { op todo { title id completed } } }"
