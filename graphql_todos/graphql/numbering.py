"""Numbered mutations over GraphQL (docs/design/offline.md, section 1): the
request's `extensions.mutation`, on every transport and both paths (the
compiled one and Strawberry's), and the reply's `extensions`."""

from __future__ import annotations

import uuid
from typing import Any

from graphql import FieldNode, OperationDefinitionNode, OperationType

from graphql_todos.core import mutations
from graphql_todos.core.errors import BadUserInput, DomainError, Rejected
from graphql_todos.core.models import Todo
from graphql_todos.core.mutations import Key, Receipt

# The mutations an outbox sends: each changes rows and answers with exactly
# them, so its reply can be rendered again from its record.
NUMBERED = frozenset({"createTodo", "updateTodo", "deleteTodo", "toggleAll", "clearCompleted", "moveTodo"})
_ONLY = f"numbers one mutation sent alone, one of {', '.join(sorted(NUMBERED))}"


def key(
    extensions: dict[str, Any],
    definition: OperationDefinitionNode | None,
    principal: uuid.UUID,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> Key | None:
    """The key a request numbers its operation with (None: it numbers none);
    BadUserInput for a malformed one, or one on any other operation. The
    fingerprint is of the document as run, the operation name and the
    variables (not the extensions): a retry over another transport matches."""
    value = extensions.get("mutation")
    if value is None:
        return None
    selections = () if definition is None else definition.selection_set.selections
    if (
        definition is None
        or definition.operation is not OperationType.MUTATION
        or len(selections) != 1
        or not isinstance(selections[0], FieldNode)
        or selections[0].name.value not in NUMBERED
    ):
        raise BadUserInput("extensions.mutation", _ONLY)
    request = {"query": query, "operationName": operation_name, "variables": variables or {}}
    return mutations.from_extension(value, principal, request)


def reply_extensions(receipt: Receipt) -> dict[str, Any] | None:
    """The reply's extensions: the cursor, and a numbered one's verdict."""
    if receipt.cursor is None:
        return None
    extensions: dict[str, Any] = {"cursor": str(receipt.cursor)}
    if receipt.key is not None and receipt.verdict is not None:
        extensions["mutation"] = {
            "client": str(receipt.key.client),
            "seq": receipt.key.seq,
            "verdict": receipt.verdict.name,
        }
    return extensions


def rejected_row(error: DomainError) -> dict[str, Any]:
    """A rejection's `extensions.row`: the row it named as the server has it
    (when the caller may see it), under GraphQL's names, as REST's error
    object carries it under REST's; an outbox shows it in the edit's place."""
    if not isinstance(error, Rejected) or error.row is None:
        return {}
    todo = Todo.from_json(error.row)
    return {"row": {
        "id": str(todo.id), "title": todo.title, "completed": todo.completed,
        "createdTime": todo.created_time.isoformat(), "updatedTime": todo.updated_time.isoformat(),
        "listId": str(todo.list_id),
    }}
