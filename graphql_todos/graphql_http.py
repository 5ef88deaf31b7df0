"""What the GraphQL over HTTP specification asks of a response: the media
type the client accepts, and a request error (one that could not execute)
told apart from an executed result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError
from starlette.responses import Response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def response_media_type(accept: str) -> str:
    """application/graphql-response+json when the client accepts it at least
    as well as application/json; application/json otherwise (the legacy
    default, also for a missing or `*/*` Accept)."""
    qualities: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = part.split(";")
        qualities[media.strip().lower()] = _quality(params)
    preferred = qualities.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= qualities.get(JSON, 0.0) else JSON


def is_request_error(data: Any, errors: Sequence[GraphQLError] | None) -> bool:
    """True when nothing executed: no data, and no error at a field path
    (parse, validation and variable errors have none)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())


def negotiate(response: Response, accept: str, request_error: bool) -> Response:
    """Give a JSON response the media type the client asked for; under
    application/graphql-response+json, a request error is a 400."""
    if response.media_type != JSON or response_media_type(accept) != GRAPHQL_RESPONSE_JSON:
        return response
    response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
    if request_error and response.status_code == 200:
        response.status_code = 400
    return response
