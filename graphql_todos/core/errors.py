"""Every error a client can see, and the domain errors that carry data.

`ErrorCode` is the one table: each code's name is the GraphQL
`extensions.code` and the REST `error.code`, with the HTTP status and the
WebSocket close code every transport uses for it. The domain errors below
know their code and their facts (which todo, which field), never a status.
"""

# Members share values on purpose; __new__ numbers them (see below).
# ruff: noqa: PIE796

from __future__ import annotations

import http
import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Any, Self


class ErrorCode(Enum):
    """name -> (HTTP status, WebSocket close code)."""

    BAD_USER_INPUT = (422, 4400)
    NOT_FOUND = (404, 4404)
    GRAPHQL_PARSE_FAILED = (400, 4400)
    GRAPHQL_VALIDATION_FAILED = (400, 4400)
    # A request that is not GraphQL at all, or not one this route takes.
    BAD_REQUEST = (400, 4400)
    # A persisted-query hash this process has not been sent the document
    # of (yet): Apollo clients then send it.
    PERSISTED_QUERY_NOT_FOUND = (400, 4400)
    # With TRUSTED_DOCUMENTS: a document not in the manifest.
    DOCUMENT_NOT_TRUSTED = (400, 4400)
    # A numbered mutation's key sent again with a different request
    # (docs/design/offline.md): a client bug, never retried.
    IDEMPOTENCY_KEY_REUSED = (422, 4422)
    # A list asked for whole that has more than MAX_LIST_ROWS rows: ask for pages.
    LIST_TOO_LARGE = (400, 4400)
    MALFORMED_JSON = (400, 4400)
    METHOD_NOT_ALLOWED = (405, 4405)
    # An Accept header that takes none of the media types the route answers in.
    NOT_ACCEPTABLE = (406, 4406)
    UNSUPPORTED_MEDIA_TYPE = (415, 4415)
    # The journal no longer holds what came after the cursor: reload, go on live.
    CURSOR_EXPIRED = (410, 4410)
    # PostgreSQL cannot be reached within DATABASE_TIMEOUT_SECONDS: try again.
    DATABASE_UNAVAILABLE = (503, 4503)
    # A request still running when the shutdown's SHUTDOWN_SECONDS ran out:
    # try again (another instance, or this one once it is back).
    SHUTTING_DOWN = (503, 1012)
    # A WebSocket client that took nothing for SEND_TIMEOUT_SECONDS: resume by cursor.
    CLIENT_STALLED = (408, 4408)
    # No valid credential where one is needed (edge/guard.py): the bearer
    # token; with AUTH=accounts also a session or personal access token; a
    # wrong username or password; a person deleted since their credential
    # was checked (PersonGone).
    UNAUTHENTICATED = (401, 4401)
    # A WebSocket from an origin the server does not allow; the legacy
    # graphql-ws protocol's refused connection_error; a cookie-authenticated
    # write from a foreign origin; the service token asking for a person's own;
    # a sign-up where SIGN_UP is closed.
    FORBIDDEN = (403, 4403)
    # A username taken (sign-up).
    CONFLICT = (409, 4409)
    # A Host this server does not answer to (ALLOWED_HOSTS): DNS rebinding.
    MISDIRECTED_REQUEST = (421, 4421)
    PAYLOAD_TOO_LARGE = (413, 4413)
    # A request body that did not arrive within REQUEST_SECONDS.
    REQUEST_TIMEOUT = (408, 4408)
    # More WebSockets from one client address than MAX_SOCKETS_PER_CLIENT;
    # too many failed sign-ins (with Retry-After).
    TOO_MANY_REQUESTS = (429, 4429)
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




def error_body(
    code: ErrorCode | http.HTTPStatus, message: str, details: Mapping[str, object] | None = None
) -> dict[str, dict[str, object]]:
    """The Error shape every answer outside GraphQL takes (REST's, a refused
    handshake's, an event stream's error): the code's name, and an answer
    given before the app runs (internals/, which has no ErrorCode for it)
    names its HTTP status so."""
    return {"error": {"code": code.name, "message": message, **(details or {})}}


class DomainError(Exception):
    """What the rules of todos refuse. Subclasses keep their facts as attributes."""

    # A class's own, but for a rejection read back from its record (Rejected).
    code: ErrorCode

    @property
    def message(self) -> str:
        return str(self)

    def details(self) -> dict[str, str]:
        """Facts a client acts on, beside the code (GraphQL `extensions`, REST `error`)."""
        return {}


class BadUserInput(DomainError):
    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, todo_id: uuid.UUID | None, kind: str = "todo") -> None:
        super().__init__(f"no {kind} with id {todo_id}")
        self.todo_id = todo_id
        self.kind = kind


class Forbidden(DomainError):
    """What the caller may see but may not do (a viewer's write, a member's share)."""

    code = ErrorCode.FORBIDDEN


class PersonGone(DomainError):
    """The person a request acts for is no longer in the database: deleted
    (by hand) after their session, token or JWT was checked. Their
    credential names no one now: sign in again."""

    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, person_id: uuid.UUID) -> None:
        super().__init__("the person this credential names is gone (deleted since it was checked): sign in again")
        self.person_id = person_id

    def details(self) -> dict[str, str]:
        # As the guard's refusal: the web client shows its sign-in page.
        return {"mode": "accounts"}


class TodoExists(DomainError):
    """A create naming an id (a client that made it, so its later edits can
    name the row) that a todo has already."""

    code = ErrorCode.CONFLICT

    def __init__(self, todo_id: uuid.UUID) -> None:
        super().__init__(f"a todo with id {todo_id} exists")
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
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = code.http_status if status is None else status
        self.headers = headers
        # Facts beside the code, in the REST error object (a rejection's row).
        self.details = details


class ListTooLarge(DomainError):
    """A list asked for without a page size has more rows than `limit`
    (MAX_LIST_ROWS): it is refused, not cut short."""

    code = ErrorCode.LIST_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the list has more than {limit} rows (MAX_LIST_ROWS): ask for pages of at most {limit}"
            " (GraphQL first and offset, REST ?limit= and ?offset=)"
        )
        self.limit = limit


class CursorExpired(DomainError):
    """The journal was pruned past the cursor; `oldest` is the oldest cursor
    that can still resume (everything after it is kept)."""

    code = ErrorCode.CURSOR_EXPIRED

    def __init__(self, cursor: int, oldest: int) -> None:
        super().__init__(f"cursor {cursor} has expired; the oldest cursor available is {oldest}")
        self.cursor = cursor
        self.oldest = oldest

    def details(self) -> dict[str, str]:
        return {"oldest": str(self.oldest)}


class DatabaseUnavailable(DomainError):
    """PostgreSQL could not be reached in time (down, restarting, or every
    pooled connection busy)."""

    code = ErrorCode.DATABASE_UNAVAILABLE

    def __init__(self, reason: str) -> None:
        super().__init__(f"the database is unavailable: {reason}")
        self.reason = reason


class ClientStalled(DomainError):
    """The client stopped reading: its socket took no message for `seconds`."""

    code = ErrorCode.CLIENT_STALLED

    def __init__(self, seconds: float) -> None:
        super().__init__(f"took no message for {seconds:g} s; reconnect with your last cursor")
        self.seconds = seconds


class IdempotencyKeyReused(DomainError):
    """A numbered mutation's key came with a request other than the one it
    was first used for."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, client: uuid.UUID, seq: int) -> None:
        super().__init__(f"mutation {seq} of client {client} was a different request; number each mutation anew")
        self.client = client
        self.seq = seq


class Rejected(DomainError):
    """A numbered mutation's rejection, as recorded: the first reply and
    every retry raise this, so they say the same. `row`: the row it named
    as the server had it (the journal's JSON of it), when there was one."""

    def __init__(self, code: ErrorCode, message: str, row: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.row = row
