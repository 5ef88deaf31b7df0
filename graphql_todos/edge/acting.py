"""Whose numbered mutations a request's keys are: a person's own, or the
service token's (docs/design/offline.md: keys are scoped by who acts)."""

from __future__ import annotations

import uuid

from graphql_todos.core.people import LOCAL, Principal

# The service token (TODOS_TOKEN) acts for no person: its keys are its own.
SERVICE_SCOPE = uuid.UUID(int=0)


def key_scope(principal: Principal | None) -> uuid.UUID:
    """The person acting, else the service token's scope (open mode: local)."""
    if principal is None:
        return LOCAL.id
    return SERVICE_SCOPE if principal.person is None else principal.person.id
