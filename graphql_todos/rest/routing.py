"""The REST route tables' one rule for a GET: it answers the media types its
operation in the OpenAPI document lists (rest/openapi.py). One that lists
application/json alone (or that the document leaves out) refuses a client
that takes no JSON, before its endpoint runs (406, edge/negotiation.JsonOnly),
and the document lists that 406; one that lists an event stream negotiates
in its endpoint. Every table passes through `negotiated`, so a new GET
cannot forget it."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from graphql_todos.edge.negotiation import JsonOnly
from graphql_todos.rest.openapi import DOCUMENT
from graphql_todos.rest.openapi_parts import answers_only_json

# Where app.py mounts the tables: the document's paths begin with it.
API = "/api"


def negotiated(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes, each GET that answers only JSON made so through JsonOnly."""
    return [_json_only(route) if isinstance(route, Route) and _answers_only_json(route) else route for route in routes]


def _answers_only_json(route: Route) -> bool:
    if not _gets(route):
        return False
    item = DOCUMENT["paths"].get(API + route.path, {})
    return answers_only_json(item.get("get"))


def _gets(route: Route) -> bool:
    """A function's route by its methods; an endpoint class's (methods None) by its get()."""
    return "GET" in route.methods if route.methods is not None else hasattr(route.endpoint, "get")


def _json_only(route: Route) -> Route:
    return Route(
        route.path, route.endpoint, methods=route.methods, name=route.name,
        include_in_schema=route.include_in_schema, middleware=[Middleware(JsonOnly)],
    )
