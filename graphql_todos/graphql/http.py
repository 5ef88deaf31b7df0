"""What the GraphQL over HTTP specification asks of a response: the media
type the client accepts (for the kind of operation it runs), and a request
error (one that could not execute) told apart from an executed result."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

from graphql import GraphQLError
from starlette.responses import JSONResponse, Response

from graphql_todos.core.errors import ErrorCode
from graphql_todos.edge import negotiation
from graphql_todos.edge.error_handlers import header_text
from graphql_todos.edge.negotiation import (
    EVENT_STREAM,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    JSON_TYPES,
    MULTIPART,
    PRIVATE,
    stamped,
)


class MediaTypes(NamedTuple):
    """What a request over HTTP is answered in, by the kind of operation it
    runs; None: nothing the client accepts."""

    # A query or mutation: JSON, or the event stream if the client prefers it.
    operation: str | None
    # A subscription: a stream; None: as an operation (which refuses it).
    subscription: str | None

    @property
    def any(self) -> bool:
        return self.operation is not None or self.subscription is not None


@functools.lru_cache(maxsize=256)
def media_types(accept: str | None) -> MediaTypes:
    """RFC 9110 negotiation (negotiation.py) over what each kind of operation
    can be answered in, in the server's order of preference."""
    # A client that does not name application/graphql-response+json (no
    # Accept, */*, application/*) is taken for a legacy client, as graphql-http's
    # reference server takes it: application/json, a request error still 200.
    json = JSON_TYPES if negotiation.names(accept, GRAPHQL_RESPONSE_JSON) else JSON_TYPES[::-1]
    return MediaTypes(
        negotiation.choose(accept, (*json, EVENT_STREAM)), negotiation.choose(accept, (EVENT_STREAM, MULTIPART))
    )


def not_acceptable(accept: str | None) -> Response:
    """406, in the GraphQL error shape and the legacy media type (the spec
    keeps application/graphql-response+json for GraphQL responses)."""
    # Named per kind of operation: multipart alone is acceptable for a
    # subscription only, and the message should say so.
    operations = ", ".join((*JSON_TYPES, EVENT_STREAM))
    message = (
        f"Accept: {header_text(accept or '')} takes none of the media types /graphql answers this request in"
        f"{negotiation.in_utf8(accept, JSON_TYPES)}: a query or"
        f" mutation in {operations}; a subscription in {EVENT_STREAM} or {MULTIPART}"
    )
    error = {"message": message, "extensions": {"code": ErrorCode.NOT_ACCEPTABLE.name}}
    refused = JSONResponse({"errors": [error]}, status_code=ErrorCode.NOT_ACCEPTABLE.http_status)
    refused.raw_headers[:] = stamped(refused.raw_headers, PRIVATE)
    return refused


def is_request_error(data: Any, errors: Sequence[GraphQLError] | None) -> bool:
    """True when nothing executed: no data, and no error at a field path
    (parse, validation and variable errors have none)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())


def negotiate(response: Response, media_type: str | None, request_error: bool) -> Response:
    """Give a JSON response the media type negotiated; under
    application/graphql-response+json, a request error is a 400. Whatever
    the method, it says what chose it and that no cache may keep it
    (negotiation.PRIVATE): the write door's answers have it as the stack's."""
    response.raw_headers[:] = stamped(response.raw_headers, PRIVATE)
    if response.media_type != JSON or media_type != GRAPHQL_RESPONSE_JSON:
        return response
    response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
    if request_error and response.status_code == 200:
        response.status_code = 400
    return response
