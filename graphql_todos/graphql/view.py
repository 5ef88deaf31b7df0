"""The GraphQL transport: HTTP, WebSockets (both protocols), SSE and multipart
subscriptions on /graphql, plus GraphiQL from our own built assets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from graphql_todos.core.errors import ErrorCode
from graphql_todos.core.settings import NO_WEB_CLIENT, Settings
from graphql_todos.edge import json_intake
from graphql_todos.edge.access import PRINCIPAL, Access, is_bearer
from graphql_todos.edge.guard import graphiql_page
from graphql_todos.edge.json_intake import RefusedJson
from graphql_todos.edge.negotiation import EVENT_STREAM, JSON_TYPES, MULTIPART, accept_header
from graphql_todos.edge.response_cache import ResponseCache
from graphql_todos.graphql import multipart, sse
from graphql_todos.graphql.fanout import GraphQLFanout
from graphql_todos.graphql.fast.path import PARSED_BODY, FastPath, ParsedBody
from graphql_todos.graphql.http import (
    MediaTypes,
    is_request_error,
    media_types,
    negotiate,
    not_acceptable,
)
from graphql_todos.graphql.intake import Intake
from graphql_todos.graphql.outcomes import QueryLimits
from graphql_todos.graphql.persisted import PersistedQueries, judging
from graphql_todos.graphql.schema import Context, build_schema
from graphql_todos.internals.strawberry_legacy_ws import GatedLegacyWs
from graphql_todos.internals.strawberry_transport_ws import GatedTransportWs
from graphql_todos.internals.strawberry_view import BoundedSendAdapter, JsonIntake

# Where graphql/socket.py leaves, for the socket's Context, whether
# connection_init's payload may decide who it acts for (Context.offer_decides).
OFFER_DECIDES = "graphql_todos.offer_decides"


class TodoGraphQL(JsonIntake, GraphQL[Context, None]):
    loads = staticmethod(json_intake.loads)
    websocket_adapter_class = BoundedSendAdapter  # type: ignore[assignment]
    # Both check the bearer token at connection_init, then offer todoChanges
    # to the fan-out: one execution and encoding per group; graphql-transport-ws
    # also looks up persisted documents first.
    graphql_transport_ws_handler_class = GatedTransportWs
    graphql_ws_handler_class = GatedLegacyWs

    def __init__(self, settings: Settings, cache: ResponseCache[bytes], access: Access) -> None:
        self.access = access
        persisted = PersistedQueries(settings.persisted_queries_size, settings.trusted_documents, settings.max_tokens)
        schema = build_schema(settings.execution_cache_size, QueryLimits.of(settings), persisted)
        self.trusted_only = persisted.trusted is not None
        super().__init__(
            schema,
            keep_alive=True,
            keep_alive_interval=settings.keepalive_seconds,
            # Over HTTP, Strawberry answers only in JSON: the view negotiates
            # the media type and streams SSE and multipart itself.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=settings.connection_init_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions,
            # security.Guard refuses foreign origins first; the same list here
            # keeps Strawberry's own check from refusing what it allowed.
            allowed_origins=settings.allowed_origins,
        )
        self.send_timeout_seconds = settings.send_timeout_seconds
        # Each GraphQL socket's bound on queries and mutations in flight (the
        # handlers read it at every open: strawberry_sockets.Limited).
        self.requests_in_flight = settings.requests_in_flight
        # One intake of documents for every path but Strawberry's own.
        self.intake = Intake(schema)
        schema.definitions = self.intake.definition
        self.fanout = GraphQLFanout(self.intake)
        self.graphiql = settings.web_dist / "graphiql.html" if settings.web_dist else None
        self.fast = FastPath(self.intake, cache)
        self.keepalive_seconds = settings.keepalive_seconds

    async def get_context(self, request: Request | WebSocket, response: object) -> Context:
        # Lifespan state, copied into every request's scope by Starlette
        # (read as the dict it is: request.state wraps it in an object whose
        # every attribute is a __getattr__ call).
        state = request.scope["state"]
        principal = request.scope.get(PRINCIPAL)
        return Context(
            state["service"], state["journal"], state["hub"], state["live_lists"], principal, state["accounts"],
            lists=state["lists"], revocations=state["revocations"], offer_decides=request.scope.get(OFFER_DECIDES, False),
        )

    def hold(self, context: Context, end: Callable[[str], None]) -> Callable[[], None]:
        """Register an acknowledged socket to be ended if its credential is revoked."""
        if context.revocations is None:
            return lambda: None
        return context.revocations.hold(context.principal, end)

    async def connection_allowed(self, context: Context, params: object) -> bool:
        # The first bearer credential decides (README): a bearer Authorization
        # in the payload does when the upgrade brought none, over the
        # upgrade's cookie; a wrong one refuses. Else the principal
        # graphql/socket.py found at the upgrade stands (or none: refused).
        if context.offer_decides and context.accounts is not None:
            offered = params.get("Authorization") if isinstance(params, dict) else None
            if is_bearer(offered):
                context.principal = await self.access.bearer(context.accounts, offered)
        return context.principal is not None

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # __call__ renders it, for exactly the request the guard lets in
        # without a token; a request Strawberry sees is always an operation.
        return False

    async def render_graphql_ide(self, request: Request) -> Response:
        # Strawberry's default page loads GraphiQL from a CDN; ours is bundled.
        if self.graphiql is None or not self.graphiql.exists():
            return HTMLResponse(NO_WEB_CLIENT, status_code=503)
        return HTMLResponse(self.graphiql.read_text())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        if self.trusted_only:
            # A POST's body is read anew by each path it tries: its document
            # is judged trusted or not once (persisted.py).
            judging()
        request = Request(scope, receive)
        parsed: ParsedBody | None = scope.get(PARSED_BODY)
        if parsed is not None:
            # A mutation's POST the write door read: its media types negotiated there.
            media = parsed.media
        elif graphiql_page(scope, request.headers):
            # The one public request (edge.guard.graphiql_page): nothing runs.
            return await (await self.render_graphql_ide(request))(scope, receive, send)
        else:
            media = media_types(accept_header(request.headers))
        response: ASGIApp
        try:
            context = await self.get_context(request, None)
            response = await self.respond(request, context, media)
        except HTTPException as exc:
            # Strawberry answers a request it cannot run (no document, a
            # batch, a method other than GET and POST) in plain text; keep
            # the GraphQL error shape.
            if exc.status_code == ErrorCode.METHOD_NOT_ALLOWED.http_status:
                response = _refusal(
                    media, exc.status_code, exc.reason, ErrorCode.METHOD_NOT_ALLOWED, {"Allow": "GET, POST"}
                )
            else:
                response = _refusal(media, exc.status_code, exc.reason, ErrorCode.BAD_REQUEST)
        except RefusedJson as exc:
            # A body, or GET variables or extensions, that is not JSON is a
            # request that is not GraphQL; one escaping a lone surrogate, a
            # value the rules refuse (json_intake).
            code = ErrorCode.BAD_REQUEST if exc.code is ErrorCode.MALFORMED_JSON else exc.code
            response = _refusal(media, 400, exc.message, code)
        await response(scope, receive, send)

    async def respond(self, request: Request, context: Context, media: MediaTypes) -> ASGIApp:
        """The response in the media type negotiated for the operation the
        request runs (http.media_types; the README lists them)."""
        if media.operation in JSON_TYPES and (answer := await self.fast.respond(request, context)) is not None:
            return negotiate(answer, media.operation, self._request_error(request))
        # (The fast path runs no mutation over GET: a GET it answered asks nothing here.)
        if request.method == "GET" and await self.operation(request) is OperationType.MUTATION:
            # GraphQL over HTTP: a GET is safe, so a mutation over GET is
            # 405 whatever the client takes, before anything runs.
            return _refusal(
                media, 405, "Cannot perform mutations over GET", ErrorCode.METHOD_NOT_ALLOWED, {"Allow": "POST"}
            )
        # The kind of operation decides only when the client takes a stream
        # for a subscription but something else for a query (the fast path
        # has answered most of those).
        chosen = media.operation
        if media.subscription not in (None, chosen) and await self.operation(request) is OperationType.SUBSCRIPTION:
            chosen = media.subscription
        if chosen == EVENT_STREAM:
            # graphql-sse: from here on, errors travel as events.
            return await self.event_stream(request, context)
        if chosen == MULTIPART:
            return await self.multipart(request, context)
        if chosen is None:
            return not_acceptable(accept_header(request.headers))
        # The request keeps the body it read, so Strawberry reads it too.
        return negotiate(await self.run(request), chosen, self._request_error(request))

    async def operation(self, request: Request) -> OperationType | None:
        """The kind of operation the request runs (sent in full, or by a
        persisted hash this server knows); None for a request that cannot
        tell, which is answered as any other (with its error)."""
        try:
            fields = await self.parse_http_body(self.request_adapter_class(request))
        except (ValueError, KeyError, HTTPException):  # json.JSONDecodeError is a ValueError
            return None
        if isinstance(fields, list) or not isinstance(fields.operation_name, (str, type(None))):
            return None
        document = self.intake.schema.runnable(fields.query, fields.extensions)
        kind = None if document is None else self.intake.operation_type(document, fields.operation_name)
        return None if kind is None else OperationType(kind.value)

    @staticmethod
    def _request_error(request: Request) -> bool:
        # The dict request.state writes to, read as a dict: State's
        # __getattr__ raises (and formats) an AttributeError for a name never
        # set, which is every request's but a refused one's.
        return bool(request.scope.get("state", {}).get("graphql_request_error", False))

    async def event_stream(self, request: Request, context: Context) -> ASGIApp:
        return await sse.respond(
            self, request, context, self._encoder(request), self.fanout, self.keepalive_seconds,
            self.send_timeout_seconds,
        )

    async def multipart(self, request: Request, context: Context) -> ASGIApp:
        return await multipart.respond(
            self, request, context, self._encoder(request), self.fanout, self.send_timeout_seconds
        )

    def _encoder(self, request: Request) -> sse.Encode:
        """A result as the stream transports encode it."""

        async def encode(result: ExecutionResult) -> bytes:
            return orjson.dumps(await self.process_result(request, result))

        return encode

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if is_request_error(result.data, result.errors):
            # GraphQL over HTTP: a request that could not execute has no
            # data entry at all (and is a 400 when the client speaks
            # application/graphql-response+json, see negotiate).
            del response["data"]
            request.state.graphql_request_error = True
        return response

    def encode_json(self, data: object) -> str:
        # orjson also writes the Fragments of shared subscription results.
        return orjson.dumps(data).decode()


def _refusal(
    media: MediaTypes, status: int, message: str, code: ErrorCode, headers: dict[str, str] | None = None
) -> Response:
    """A request that could not execute, in the GraphQL error shape."""
    error = {"message": message, "extensions": {"code": code.name}}
    failed = JSONResponse({"errors": [error]}, status_code=status, headers=headers)
    return negotiate(failed, media.operation, request_error=True)
