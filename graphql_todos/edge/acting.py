"""Who a request acts as: the principal that scopes numbered mutations'
keys (docs/design/offline.md). One seam for issue 19's sign-in to fill."""

from __future__ import annotations

import uuid

from starlette.requests import HTTPConnection

from graphql_todos.core.mutations import LOCAL_PRINCIPAL


def principal(connection: HTTPConnection) -> uuid.UUID:
    """The principal of a request or WebSocket: today always the local person."""
    return LOCAL_PRINCIPAL
