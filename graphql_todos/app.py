"""Assembles the app: the database, the service, the hub and every transport."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import anyio.to_thread
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from graphql_todos.core import metrics, paths, tasks
from graphql_todos.core.database import GatedPool, connect_timeout
from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.journal import Journal
from graphql_todos.core.journal_mode import DECODED, settle
from graphql_todos.core.lists import Lists
from graphql_todos.core.migrations import migrate
from graphql_todos.core.people import Accounts
from graphql_todos.core.service import TodoService
from graphql_todos.core.settings import NO_WEB_CLIENT, Settings
from graphql_todos.edge import error_handlers, guard, negotiation
from graphql_todos.edge.access import Access
from graphql_todos.edge.response_cache import ResponseCache
from graphql_todos.edge.revocation import Revocations
from graphql_todos.edge.shared_counts import SharedCounts
from graphql_todos.edge.socket_routes import SocketRoutes
from graphql_todos.graphql.fast.front import Reply, ResponseFront
from graphql_todos.graphql.fast.write_door import WriteDoor
from graphql_todos.graphql.socket import GraphQLSockets
from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.live.broadcast import Groups
from graphql_todos.live.hub import Hub
from graphql_todos.live.retention import Retention
from graphql_todos.live.sequencer import Sequencer
from graphql_todos.live.streams import LiveLists
from graphql_todos.rest import auth, feed, lists, resources

logger = logging.getLogger(__name__)

# The collector's generation thresholds while serving (Python's: 700, 10,
# 10). Every open WebSocket keeps some hundred objects, and each full
# collection walks them all: opening 3,000 subscriptions spent a third of
# its CPU collecting (0.9 s in five full collections), 0.4 s in all with
# these. Garbage cycles wait for 20,000 allocations instead of 700.
GC_THRESHOLDS = (20_000, 20, 20)


class TodoApp(Starlette):
    """Starlette behind `front`, layers (ASGI middleware) that run before
    it, outermost first: each hands on what it does not answer itself, and
    is no coroutine while it does.

    What the front answers (the GraphQL socket, graphql/socket.py) skips
    Starlette's own coroutine and its middleware's (ServerErrorMiddleware,
    and ours that pass a socket on unchanged): an open socket's stack holds
    none of them for as long as it lives, and its handshake takes none of
    their hops. Starlette never sees that socket (its scope has no "app")."""

    def __init__(self, front: Sequence[Middleware], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front_middleware = list(front)
        self._front = guard.stacked(super().__call__, self.front_middleware)

    # Not a coroutine (Starlette's is), so that the front adds no frame.
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        return self._front(scope, receive, send)


class State(TypedDict):
    service: TodoService
    accounts: Accounts
    lists: Lists
    access: Access
    journal: Journal
    hub: Hub
    live_lists: LiveLists
    broadcast_groups: Groups
    revocations: Revocations
    pool: AsyncConnectionPool
    retention: Retention
    # JOURNAL=decoded: this process's candidate sequencer (None: the trigger journals).
    sequencer: Sequencer | None
    settings: Settings
    response_cache: ResponseCache[bytes]
    response_replies: ResponseCache[Reply]


async def healthz(request: Request) -> JSONResponse:
    hub: Hub = request.state.hub
    journal: Journal = request.state.journal
    if not hub.connected:
        return JSONResponse({"status": "unavailable", "reason": "listener"}, status_code=503)
    try:
        await journal.ping(timeout=2.0)
    except Exception as exc:  # noqa: BLE001 - any failure is "not healthy"
        logger.warning("health check: database unreachable: %s", exc)
        return JSONResponse({"status": "unavailable", "reason": "database"}, status_code=503)
    return JSONResponse({"status": "ok"})


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    if settings.database_url is not None:
        yield settings.database_url
        return
    # Blocking start and stop (about a second each) run off the event loop.
    embedded = embedded_postgres(settings.data_dir)
    dsn = await anyio.to_thread.run_sync(embedded.__enter__)
    try:
        yield dsn
    finally:
        await anyio.to_thread.run_sync(embedded.__exit__, None, None, None)


def app_from_env() -> TodoApp:
    """The app as a factory import string builds it (`graphql_todos.app:app_from_env`):
    how each of `serve --workers N` gets its settings, from the environment."""
    return create_app(Settings.from_env())


def create_app(settings: Settings) -> TodoApp:
    # One per process: GraphQL queries and REST reads.
    cache = ResponseCache[bytes](settings.response_cache_size)
    # Whole responses to repeated requests, answered in front of the stack.
    replies = ResponseCache[Reply](settings.response_cache_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        async with _database(settings) as dsn:
            await anyio.to_thread.run_sync(migrate, dsn)
            await anyio.to_thread.run_sync(settle, dsn, settings.journal)
            pool = GatedPool(
                dsn,
                min_size=1,
                max_size=settings.pool_size,
                open=False,
                # A request waits this long for a connection, then fails with
                # DATABASE_UNAVAILABLE rather than hang through an outage.
                timeout=settings.database_timeout_seconds,
                # Each operation is one statement: autocommit spares it the
                # BEGIN and COMMIT round trips.
                kwargs={
                    "application_name": "graphql-todos",
                    "autocommit": True,
                    "connect_timeout": connect_timeout(settings.database_timeout_seconds),
                    # app.cursor_notice: the journal tells each mutation its
                    # cursor by a NOTICE at commit (sql/006_mutations.sql).
                    "options": f"-c statement_timeout={round(settings.statement_timeout_seconds * 1000)}"
                    " -c app.cursor_notice=on",
                },
            )
            await pool.open(wait=True)
            service = TodoService(pool, settings.max_list_rows, settings.journal, settings.database_timeout_seconds)
            accounts = Accounts(pool, settings)
            journal = Journal(pool, service.writes.decoded)
            hub = Hub(dsn, journal, settings, service.cursors, service.read_cursors)
            revocations = Revocations()

            def revoked(detail: dict[str, Any] | None) -> None:
                # Another process's revocation too: this one trusts it no more.
                accounts.revoked(detail)
                revocations.revoke(detail)

            hub.on_revoked = revoked
            retention = Retention(journal, hub, settings)
            pruning: asyncio.Task[None] | None = None
            expiring: asyncio.Task[None] | None = None
            sequencer = Sequencer(dsn) if settings.journal == DECODED else None
            try:
                await hub.start()
                if sequencer is not None:
                    sequencer.start()
                pruning = asyncio.create_task(retention.run(), name="journal retention")
                expiring = asyncio.create_task(revocations.sweep(accounts), name="session expiry")
                gc.set_threshold(*GC_THRESHOLDS)
                logger.info("graphql-todos ready")
                live_lists = LiveLists(service, hub)
                yield {
                    "service": service,
                    "accounts": accounts,
                    "lists": Lists(pool, service),
                    "access": access,
                    "journal": journal,
                    "hub": hub,
                    "live_lists": live_lists,
                    "broadcast_groups": Groups(hub),
                    "revocations": revocations,
                    "pool": pool,
                    "retention": retention,
                    "sequencer": sequencer,
                    "settings": settings,
                    "response_cache": cache,
                    "response_replies": replies,
                }
            finally:
                for task in (pruning, expiring):
                    if task is not None:
                        await tasks.ended(task)
                if sequencer is not None:
                    await anyio.to_thread.run_sync(sequencer.stop)
                await hub.stop()
                await pool.close()

    access = Access(settings)
    # Under `serve --workers N`, the sockets per address count across workers.
    shared = os.environ.get(metrics.MULTIPROC_DIR)
    sockets = guard.SocketGate(settings, SharedCounts(Path(shared)) if shared else None)
    graphql = TodoGraphQL(settings, cache, access)
    graphql_route = Route(paths.GRAPHQL, graphql, methods=["GET", "POST"])
    # Starlette adds HEAD to a route that takes GET; GraphQL refuses it
    # (graphql/view.py), so a 405's Allow must not name it.
    graphql_route.methods = {"GET", "POST"}
    api = Mount("/api", routes=[*resources.routes, *auth.routes, *lists.routes, *feed.routes])
    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics.metrics), graphql_route, api]
    # Mutations and REST's writes to todos, past the layers that change nothing of their answers.
    todo_routes = [
        route for route in resources.routes
        if isinstance(route, Route) and route.endpoint in (resources.TodoCollection, resources.TodoItem)
    ]
    writes = WriteDoor(settings, access, sockets, graphql.intake, (graphql_route,), tuple((api, r) for r in todo_routes))
    if settings.web_dist is not None:
        index = settings.web_dist / "index.html"
        routes += [
            Route("/", lambda request: FileResponse(index), methods=["GET"]),
            Mount("/assets", StaticFiles(directory=settings.web_dist / "assets")),
        ]
        worker = settings.web_dist / "sw.js"
        if worker.is_file():
            routes.append(Route(paths.SERVICE_WORKER, lambda request: FileResponse(worker), methods=["GET"]))
    else:
        # Say how to get the client, rather than a bare 404.
        routes.append(
            Route("/", lambda request: HTMLResponse(NO_WEB_CLIENT, status_code=503), methods=["GET"])
        )
    app = TodoApp(
        # The Host check before anything; then the GraphQL socket's front
        # door (graphql/socket.py), ahead of Starlette itself.
        front=[
            Middleware(guard.HostCheck, settings=settings),
            # Any other handshake to a path no WebSocket route serves: 404
            # before the upgrade (SocketRoutes, on sockets' way alone).
            Middleware(
                GraphQLSockets, graphql=graphql, sockets=sockets, access=access,
                others=functools.partial(SocketRoutes, routes=routes),
            ),
        ],
        routes=routes,
        lifespan=lifespan,
        exception_handlers=error_handlers.EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        # The front door for repeated reads and the short way for writes
        # (graphql/fast/front.py, which times its own answers) skips the
        # rest; then metrics, so that it times what the others answer too.
        # What answers to GET and HEAD tell caches (negotiation.Cached)
        # inside the front door: its kept replies carry it, at no cost a hit.
        middleware=[
            Middleware(error_handlers.ShutdownCut),
            Middleware(ResponseFront, settings, access, sockets, replies, writes),
            Middleware(negotiation.Cached),
            Middleware(metrics.MetricsMiddleware),
            *guard.middleware(settings, access, sockets),
            *error_handlers.MIDDLEWARE,
        ],
    )
    # For operators and tests: the schema keeps the shared-execution counters.
    app.state.schema = graphql.schema
    app.state.writes = writes
    return app
