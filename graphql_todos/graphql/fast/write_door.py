"""The front door's short way for writes (issue 21): a GraphQL mutation
posted as plain JSON, and REST's POST on the todo collection and PATCH
(or PUT) on a todo, go from the front door (front.py) straight to
their route through the layers that change what a client gets: CORS, the
guard (credentials, the cookie's Origin rule, body bounds, the security
headers) and the error answers, built from the stack's own classes and
settings. What it leaves out changes no byte of an answer: the GraphQL
socket's pass-through, the metrics layer (it times the request itself,
with that layer's metrics.Answer: counted as its last byte goes out), the router's walk past the routes it
does not take, and the second of the stack's two ExceptionMiddlewares
(error_handlers.answering holds both tables in one), whose send wrapper and
the guard's are one (_Routed). The Host check and the shutdown cut stand in
front of the front door, and so in front of this.

It takes no request that could open a stream (a GraphQL subscription or
query: the front door's replies, or the stack, answer those), no chunked body,
and no path but the two routes; everything else goes down the stack as before.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

from graphql import OperationType
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from graphql_todos.core import metrics, paths
from graphql_todos.core.settings import Settings
from graphql_todos.edge import error_handlers, guard, json_intake
from graphql_todos.edge.access import Access, first_values
from graphql_todos.edge.guard import SocketGate
from graphql_todos.edge.json_intake import RefusedJson
from graphql_todos.graphql.fast.path import PARSED_BODY, ParsedBody
from graphql_todos.graphql.http import MediaTypes
from graphql_todos.graphql.intake import Intake
from graphql_todos.internals.starlette_endpoint import HANDLERS, ExceptionAnswers
from graphql_todos.internals.uvicorn_http import arrived_whole

# Where the door leaves the route it matched, for the innermost layer.
_ROUTE = "graphql_todos.write_route"
# Where it leaves whether the request has an Origin header (CORS's layer
# runs only then), found where the request's head was read.
_ORIGIN = "graphql_todos.write_origin"
# The REST writes with a body: the collection's POST, the item's PUT and PATCH.
REST_WRITES = frozenset({"POST", "PUT", "PATCH"})

# The paths whose route the door keeps (WriteDoor.literal).
KEPT_ROUTES = 4096

# A route as the router reaches it: the Mount(s) it sits in, then itself.
Chain = tuple[BaseRoute, ...]


class WriteDoor:
    """Runs a write past the layers that leave its answer as it is."""

    def __init__(
        self,
        settings: Settings,
        access: Access,
        sockets: SocketGate,
        intake: Intake,
        graphql: Chain,
        rest: tuple[Chain, ...],
    ) -> None:
        self.intake = intake
        self.graphql = graphql
        self.max_body_bytes = settings.max_body_bytes
        # Per method, the chains whose endpoint answers it first: a PATCH
        # meets the item's route without failing the collection's first.
        # A chain whose endpoint does not answer the method is still tried
        # (its endpoint's 405, as the stack answers).
        self.rest = {method: _answering_first(rest, method) for method in REST_WRITES}
        # What a chain added to the scope of a path, by method, path and root
        # paths (the router's answer depends on nothing else): the
        # collection's, /graphql, and the items' paths (an id each) written
        # lately, at most KEPT_ROUTES, forgotten all at once (an LRU's
        # bookkeeping would cost more than matching a path forgotten too
        # soon). Matching an item's path was some 300 bytecodes a REST PATCH.
        self.literal: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
        # The stack's own layers between metrics and the router, outermost
        # first, the guard's headers put on in the route's one send wrapper.
        self.layers = guard.stacked(_Routed(vary_origin=False), guard.middleware(settings, access, sockets, headed_behind=True))
        # The same, to a request without Origin: CORS's part done by the guard.
        self.without_origin = guard.without_origin(_Routed(vary_origin=True), settings, access, sockets, headed_behind=True)
        # Requests taken; read by tests and benchmarks.
        self.taken = 0

    def rest_route(self, scope: Scope, receive: Receive) -> dict[str, Any] | None:
        """The router's scope for a REST write to a todo route with a declared
        body size (a chunked one is left to the stack, as the front door's
        reads leave it); None for any other request (the stack's). A body
        come whole within the limit is marked so (BODY_READ), as the guard
        would find it (one decision, where the guard took it again: its
        Content-Length, its limit, uvicorn's state, some 60 bytecodes)."""
        method = scope["method"]
        if method not in REST_WRITES or not scope["path"].startswith(paths.TODOS):
            return None
        # The first Content-Length, as the guard reads it (uvicorn refuses a
        # request with two: tests/internals/test_uvicorn_http.py), and
        # Origin, from one dict of the headers.
        head = first_values(scope["headers"])
        length = head.get(b"content-length", b"").decode("latin-1")
        if not length.isdigit():
            return None
        route = self._route(scope, self.rest[method])
        if route is None:
            return None
        route[_ORIGIN] = b"origin" in head
        # uvicorn hands over no more than the declared length: within the
        # limit and whole, nothing is left to bound (the guard behind hands
        # uvicorn's receive() on as it is).
        if int(length) <= self.max_body_bytes and arrived_whole(receive):
            route[guard.BODY_READ] = True
        return route

    def _route(self, scope: Scope, chains: tuple[Chain, ...]) -> dict[str, Any] | None:
        """What the first of `chains` to match adds to the scope; None when none does."""
        if "path_params" in scope:  # within a mounted app: the router's own walk
            return _first_match(scope, chains)
        key = (scope["method"], scope["path"], scope.get("root_path", ""), scope.get("app_root_path"))
        known = self.literal.get(key)
        if known is None:
            known = _first_match(scope, chains)
            if known is None:
                return None
            if len(self.literal) >= KEPT_ROUTES:
                self.literal.clear()
            self.literal[key] = known
        # The request's own path parameters: a route may change them.
        return {**known, "path_params": known["path_params"].copy()}

    def mutation_route(self, scope: Scope, body: bytes, media: MediaTypes, origin: bool) -> dict[str, Any] | None:
        """The router's scope for a GraphQL POST whose body (plain JSON, the
        front door checked, answered in `media`; `origin`: whether it has an
        Origin header, the front door read) runs a mutation the intake
        took in before (with the body as parsed, its operation and media, for
        the view and the fast path); None for anything else: a query or
        subscription, a document new or refused, a body that is no JSON
        object, a persisted hash not known."""
        try:
            fields = json_intake.loads(body)
        except RefusedJson:
            return None
        if type(fields) is not dict:
            return None
        query, name, extensions = fields.get("query"), fields.get("operationName"), fields.get("extensions")
        if extensions is not None:
            query = self.intake.schema.runnable(query, extensions) if type(extensions) is dict and type(query) in (str, type(None)) else None
        if type(query) is not str or type(name) not in (str, type(None)):
            return None
        # A mutation the intake has taken in (valid, so kept): the first
        # request of a document, and a refused one, go down the stack.
        operation = self.intake.kept(query, name)
        if operation is None or operation.definition.operation is not OperationType.MUTATION:
            return None
        route = self._route(scope, (self.graphql,))
        if route is not None:
            # The view and the fast path read the body as parsed here, not parsing it again.
            route[PARSED_BODY] = ParsedBody(fields, operation, media)
            route[_ORIGIN] = origin
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send, route: Mapping[str, Any]) -> None:
        """Answer the request on `route` (what rest_route or mutation_route said),
        timed from scope[metrics.STARTED] when a layer in front set it."""
        answer = metrics.Answer(scope, scope.get(metrics.STARTED) or time.perf_counter(), send)
        self.taken += 1
        scope.update(route)
        scope.setdefault("router", scope["app"].router)
        try:
            await (self.layers if scope[_ORIGIN] else self.without_origin)(scope, receive, answer.send)
        finally:
            answer.ended()


def _first_match(scope: Scope, chains: tuple[Chain, ...]) -> dict[str, Any] | None:
    return next((m for chain in chains if (m := _matched(scope, chain)) is not None), None)


def _matched(scope: Scope, chain: Chain) -> dict[str, Any] | None:
    """What the router adds to the scope on its way down `chain` (each Mount's
    root path, the path's parameters, the endpoint), or None when the path
    does not lead to the chain's last route."""
    child: dict[str, Any] = {}
    for route in chain:
        match, found = route.matches({**scope, **child} if child else scope)
        if match is not Match.FULL:
            return None
        child.update(found)
    child[_ROUTE] = chain[-1]
    return child


def _answering_first(chains: tuple[Chain, ...], method: str) -> tuple[Chain, ...]:
    """`chains`, those whose endpoint has a handler for `method` first (in order)."""
    handler = method.lower()
    return tuple(sorted(chains, key=lambda chain: not hasattr(getattr(chain[-1], "endpoint", None), handler)))


class _Routed:
    """The route the door matched, inside the guard's headers and the stack's
    error answers (error_handlers.answering) with one send wrapper, not two
    (the guard's and ExceptionMiddleware's, a Request made besides: some
    140 bytecodes a write): the wrapper notes the start, as
    ExceptionMiddleware's, then puts the guard's headers on it, as the
    guard's (the Guard in front, `headed_behind`, adds them to its own
    refusals only). Every answer as the two layers gave it."""

    def __init__(self, vary_origin: bool) -> None:
        # What the stack's ExceptionMiddlewares, as one around this, would answer.
        self.answers = ExceptionAnswers(cast(ExceptionMiddleware, error_handlers.answering(self)))
        self.vary_origin = vary_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vary_origin = self.vary_origin
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = guard.headed(message, scope, vary_origin)
            await send(message)

        scope[HANDLERS] = self.answers.tables
        route: BaseRoute = scope[_ROUTE]
        try:
            await route.handle(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - each as ExceptionMiddleware answers it
            await self.answers.answer(exc, started, scope, receive, sending)
