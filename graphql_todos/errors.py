"""Every error a client can see, and the domain errors that carry data.

`ErrorCode` is the one table: each code's name is the GraphQL
`extensions.code` and the REST `error.code`, with the HTTP status and the
WebSocket close code every transport uses for it. The domain errors below
know their code and their facts (which todo, which field), never a status.
"""

# Members share values on purpose; __new__ numbers them (see below).
# ruff: noqa: PIE796

from __future__ import annotations

import uuid
from enum import Enum
from typing import ClassVar, Self

from psycopg.errors import QueryCanceled
from psycopg_pool import PoolTimeout


class ErrorCode(Enum):
    """name -> (HTTP status, WebSocket close code)."""

    BAD_USER_INPUT = (422, 4400)
    NOT_FOUND = (404, 4404)
    GRAPHQL_PARSE_FAILED = (400, 4400)
    GRAPHQL_VALIDATION_FAILED = (400, 4400)
    # A request that is not GraphQL at all, or not one this route takes.
    BAD_REQUEST = (400, 4400)
    MALFORMED_JSON = (400, 4400)
    METHOD_NOT_ALLOWED = (405, 4405)
    UNSUPPORTED_MEDIA_TYPE = (415, 4415)
    # No valid bearer token, when the server requires one (security.py).
    UNAUTHENTICATED = (401, 4401)
    # A WebSocket from an origin the server does not allow; the legacy
    # graphql-ws protocol's refused connection_error.
    FORBIDDEN = (403, 4403)
    PAYLOAD_TOO_LARGE = (413, 4413)
    # A request body that did not arrive within REQUEST_SECONDS.
    REQUEST_TIMEOUT = (408, 4408)
    # More WebSockets from one client address than MAX_SOCKETS_PER_CLIENT.
    TOO_MANY_REQUESTS = (429, 4429)
    # The database is too busy: no pooled connection within POOL_TIMEOUT_SECONDS,
    # or a statement over STATEMENT_TIMEOUT_SECONDS. Worth retrying later.
    UNAVAILABLE = (503, 1013)
    INTERNAL_SERVER_ERROR = (500, 1011)

    http_status: int
    close_code: int

    def __new__(cls, http_status: int, close_code: int) -> Self:
        # Codes may share a status and a close code: number the members so
        # that none becomes an alias of another.
        member = object.__new__(cls)
        member._value_ = len(cls.__members__)
        member.http_status = http_status
        member.close_code = close_code
        return member

    @classmethod
    def for_status(cls, status: int) -> ErrorCode:
        """The code for a status another layer chose (Starlette's 404 and 405)."""
        return next((code for code in cls if code.http_status == status), cls.BAD_REQUEST)


# What the database raises when a limit of ours stopped a request: UNAVAILABLE.
BUSY: tuple[type[Exception], ...] = (PoolTimeout, QueryCanceled)


class DomainError(Exception):
    """What the rules of todos refuse. Subclasses keep their facts as attributes."""

    code: ClassVar[ErrorCode]

    @property
    def message(self) -> str:
        return str(self)


class BadUserInput(DomainError):
    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, todo_id: uuid.UUID) -> None:
        super().__init__(f"no todo with id {todo_id}")
        self.todo_id = todo_id


class RequestError(Exception):
    """A request a transport cannot take before the domain sees it (malformed
    JSON, a wrong media type, a bad value in the URL). `status` overrides the
    code's own where HTTP distinguishes them: a bad value in the URL is 400,
    the same value in a body 422."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = code.http_status if status is None else status
        self.headers = headers
