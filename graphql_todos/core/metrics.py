"""Prometheus metrics: what each process counts, and /metrics to read them.

With several workers (`serve --workers N`), the parent sets
PROMETHEUS_MULTIPROC_DIR before the workers start: each writes its samples
there and /metrics, whichever worker answers, adds up every live worker's
(the parent marks each worker it replaces dead: internals.uvicorn_server.Supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import weakref
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_todos.core import paths
from graphql_todos.internals import prometheus_client

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

# The transports of live streams, as the two gauges below label them.
TRANSPORTS = ("graphql-transport-ws", "graphql-ws", "multipart", "sse", "rest-sse", "restsocket")
_GRAPHQL_SOCKETS = ("graphql-transport-ws", "graphql-ws")
OPEN_CONNECTIONS = Gauge(
    "graphql_todos_open_connections",
    "Open stream connections by transport: " + ", ".join(TRANSPORTS) + ".",
    ["transport"],
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "graphql_todos_subscriptions",
    "Open subscriptions by transport (a GraphQL socket carries any number; an operation counts while it runs).",
    ["transport"],
    multiprocess_mode="livesum",
)


class Tally:
    """A live gauge's count as a plain int, `n`, that the gauge reads when
    scraped (set_function): a stream's count moves with no call, where
    Gauge.inc was three Python calls and a lock (twice at every socket's
    open, twice at its close). With several workers (MULTIPROC_DIR) each
    worker's gauge is written as the count moves (_Written): /metrics reads
    the workers' files, not their counts."""

    __slots__ = ("n",)

    def __init__(self, gauge: Gauge) -> None:
        self.n = 0
        gauge.set_function(self._read)

    def _read(self) -> float:
        return self.n


class _Written(Tally):
    """A Tally whose every move is written to its gauge (its worker's file)."""

    __slots__ = ("_count", "_gauge")

    def __init__(self, gauge: Gauge) -> None:  # not Tally's: no set_function
        self._gauge = gauge
        self._count = 0

    @property  # type: ignore[override]
    def n(self) -> int:
        return self._count

    @n.setter
    def n(self, value: int) -> None:
        self._gauge.inc(value - self._count)
        self._count = value


def tally(gauge: Gauge) -> Tally:
    """The count `gauge` shows (a child of a labelled one), kept as a Tally."""
    return _Written(gauge) if MULTIPROC_DIR in os.environ else Tally(gauge)


# Shown at 0 before the first stream of each kind opens; looked up here, not
# with labels() (a lock and a tuple) at every socket's every operation.
_OPEN_CONNECTIONS = {transport: tally(OPEN_CONNECTIONS.labels(transport)) for transport in TRANSPORTS}
_SUBSCRIPTIONS = {transport: tally(SUBSCRIPTIONS.labels(transport)) for transport in TRANSPORTS}
SUBSCRIBERS = Gauge(
    "graphql_todos_hub_subscribers", "Subscribers of the hubs (live lists count once).", multiprocess_mode="livesum"
)
DELIVERED = Counter("graphql_todos_events_delivered", "Changes handed to subscribers' transports.")
ROW_SINK_EVENTS = Counter(
    "graphql_todos_row_sink_events",
    "Of those, row events a watcher's sink wrote in the hub's turn (the per-row path), not its subscription's task.",
)
FALLBACKS = Counter("graphql_todos_journal_fallbacks", "Subscribers that fell behind and read the journal instead.")
RECONNECTS = Counter("graphql_todos_listener_reconnects", "Times the LISTEN connection was lost and made again.")
LAG = Histogram(
    "graphql_todos_commit_to_delivery_seconds",
    "From a change's commit (the journal's changed_at) to its frame written to a subscriber's connection.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
# JOURNAL=decoded (core/cursors.py): a write's wait for its own entry.
CURSOR_WAIT = Histogram(
    "graphql_todos_cursor_wait_seconds",
    "JOURNAL=decoded: from a write's reply being ready (or a retry's read) to its journal entry heard of.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOURNAL_LATE = Counter(
    "graphql_todos_journal_late", "JOURNAL=decoded: writes answered DATABASE_UNAVAILABLE, their entry not journaled in time."
)
REQUESTS = Histogram(
    "graphql_todos_http_request_seconds",
    "HTTP request latency by route and method (streams excepted: they last as long as the client).",
    ["route", "method"],
)
POOL_IN_USE = Gauge("graphql_todos_pool_in_use", "Pooled connections in use.", multiprocess_mode="livesum")
POOL_WAITING = Gauge("graphql_todos_pool_waiting", "Requests waiting for a pooled connection.", multiprocess_mode="livesum")
JOURNAL_ENTRIES = Gauge(
    "graphql_todos_journal_entries", "Journal positions kept (newest - pruned through).", multiprocess_mode="livemostrecent"
)
JOURNAL_OLDEST = Gauge(
    "graphql_todos_journal_oldest_cursor",
    "The oldest cursor that can still resume (older ones get CURSOR_EXPIRED).",
    multiprocess_mode="livemostrecent",
)
# JOURNAL=decoded: the sequencer's slot, as the process that streams it last saw it.
SLOT_LAG = Gauge(
    "graphql_todos_journal_slot_lag_bytes",
    "WAL written since the sequencer's last confirmed batch (pg_current_wal_lsn() - confirmed_flush_lsn).",
    multiprocess_mode="livemostrecent",
)
SLOT_WAL_STATUS = Gauge(
    "graphql_todos_journal_slot_wal_status",
    "1 for the sequencer slot's wal_status (lost: entries were missed; the slot is made again).",
    ["status"],
    multiprocess_mode="livemostrecent",
)

# Every limit whose refusals are counted, where docs/security.md lists it.
LIMITS = (
    "body_size", "body_timeout", "head_size", "head_timeout", "frame_size",
    "tokens", "depth", "aliases", "fields", "list_rows",
    "subscriptions_per_socket", "requests_per_socket", "sockets_per_client", "connection_init_timeout",
    "statement_timeout", "pool_timeout",
)
LIMIT_REFUSALS = Counter(
    "graphql_todos_limit_refusals",
    "Requests, documents, sockets and statements refused for going over a limit, by limit.",
    ["limit"],
)
for _limit in LIMITS:
    LIMIT_REFUSALS.labels(_limit)  # present at 0 before the first refusal


def refused(limit: str) -> None:
    assert limit in LIMITS, limit
    LIMIT_REFUSALS.labels(limit).inc()


_UUID = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/")
_ROUTES = {paths.GRAPHQL, paths.SERVICE_WORKER, "/healthz", "/metrics", "/", "/api/todos/", "/api/todos/{id}/", "/api/openapi.json"}


def route_of(path: str) -> str:
    """A bounded label for a path: ids become {id}, unknown paths "other"."""
    route = _UUID.sub("/{id}/", path)
    return route if route in _ROUTES else ("/assets" if path.startswith("/assets/") else "other")


def observe_lag(changed_at: datetime | None) -> None:
    if changed_at is not None:
        LAG.observe(max(0.0, (datetime.now(UTC) - changed_at).total_seconds()))


def worker_gone(pid: int) -> None:
    """Stop counting a dead worker's live gauges (its counters stay summed)."""
    if MULTIPROC_DIR in os.environ:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def render() -> Response:
    """The metrics of this process, or of every live worker in multiprocess mode."""
    if MULTIPROC_DIR in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def transport_of(scope: Scope) -> str:
    """The transport a WebSocket opens."""
    if scope["path"] != paths.GRAPHQL:
        return "restsocket"
    # The one Strawberry picks: the first the client offers that it speaks
    # (a loop: a generator expression in next() was two objects an open).
    for protocol in scope.get("subprotocols", ()):
        if protocol in _GRAPHQL_SOCKETS:
            return protocol
    return "graphql-ws"


def _stream_of(scope: Scope, start: Message) -> str | None:
    """The stream an HTTP response opens, by its media type (what was
    negotiated for the request); None for a plain response."""
    media_type = next((value for name, value in start["headers"] if name == b"content-type"), b"")
    if media_type.startswith(b"text/event-stream"):
        return "sse" if scope["path"] == paths.GRAPHQL else "rest-sse"
    return "multipart" if media_type.startswith(b"multipart/mixed") else None


def graphql_operation(transport: str) -> contextlib.AbstractContextManager[None]:
    """Counts an operation of a GraphQL socket as an open subscription while it runs."""
    return _OPERATIONS[transport]


def graphql_subscriptions(transport: str) -> Tally:
    """The open subscriptions of a GraphQL socket transport, for an operation
    that outlives the call counting it (a broadcast member with no task):
    `n += 1` as it opens, `n -= 1` as it ends."""
    return _SUBSCRIPTIONS[transport]


class _OpenStream:
    """Counts a stream connection of one transport while it is open (one per
    transport, shared: it holds no state of its own, so a socket keeps only
    the bound `__exit__` on its stack, where a generator context manager was
    four objects, its generator and its list of gauges among them)."""

    __slots__ = ("_tallies",)

    def __init__(self, tallies: tuple[Tally, ...]) -> None:
        self._tallies = tallies

    def __enter__(self) -> None:
        for counted in self._tallies:
            counted.n += 1

    def __exit__(self, *_: object) -> None:
        for counted in self._tallies:
            counted.n -= 1


# Every stream but a GraphQL socket is one subscription too (the sockets
# count theirs: graphql_operation); a plain request (None) is not counted.
_OPEN_STREAMS: dict[str | None, _OpenStream] = {
    None: _OpenStream(()),
    **{
        transport: _OpenStream(
            (_OPEN_CONNECTIONS[transport],)
            if transport in _GRAPHQL_SOCKETS
            else (_OPEN_CONNECTIONS[transport], _SUBSCRIPTIONS[transport])
        )
        for transport in TRANSPORTS
    },
}
# A GraphQL socket's operation while it runs (graphql_operation).
_OPERATIONS = {transport: _OpenStream((_SUBSCRIPTIONS[transport],)) for transport in _GRAPHQL_SOCKETS}


def open_stream(transport: str | None) -> contextlib.AbstractContextManager[None]:
    """Counts a stream connection while it is open; every stream but a
    GraphQL socket is one subscription too (the sockets count theirs:
    graphql_operation). None: a plain request, not counted."""
    return _OPEN_STREAMS[transport]


# How often at most the pool's figures are read, per pool: get_stats() builds
# and merges dicts, 4% of a REST write's CPU when read as every request ended.
POOL_READ_SECONDS = 0.05


def read_pool(pool: AsyncConnectionPool) -> None:
    """The pool's gauges, from its figures now."""
    stats = pool.get_stats()
    POOL_IN_USE.set(stats["pool_size"] - stats["pool_available"])
    POOL_WAITING.set(stats.get("requests_waiting", 0))


class _PoolReader:
    """Reads one pool's figures as a request ends, at most every
    POOL_READ_SECONDS: one that ends sooner leaves a read scheduled for the
    end of the interval, so the gauges are never older than that, quiet or
    not."""

    __slots__ = ("due", "timer")

    def __init__(self) -> None:
        self.due = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def observe(self, pool: AsyncConnectionPool) -> None:
        if self.timer is not None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self.due:
            self.read(pool)
        else:
            self.timer = loop.call_at(self.due, self.read, pool)

    def read(self, pool: AsyncConnectionPool) -> None:
        self.timer = None
        self.due = asyncio.get_running_loop().time() + POOL_READ_SECONDS
        read_pool(pool)


# Weak: a reader must not keep a pool (tests run many apps in one process),
# and a pending read holds its pool only until it runs.
_POOL_READERS: weakref.WeakKeyDictionary[AsyncConnectionPool, _PoolReader] = weakref.WeakKeyDictionary()


def observe_pool(scope: Scope) -> None:
    """The pool's gauges, as a request or stream ends (at most every POOL_READ_SECONDS)."""
    pool = scope.get("state", {}).get("pool")
    if pool is not None:
        reader = _POOL_READERS.get(pool)
        if reader is None:
            reader = _POOL_READERS[pool] = _PoolReader()
        reader.observe(pool)


# The scope key of a request's arrival (time.perf_counter()), set by a layer
# in front of MetricsMiddleware that holds the request before it.
STARTED = "graphql_todos.started"


class MetricsMiddleware:
    """Counts open streams by transport and times HTTP requests by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            try:
                with open_stream(transport_of(scope)):
                    await self.app(scope, receive, send)
            finally:
                observe_pool(scope)
            return
        # A layer in front that saw the request first (graphql/fast/front.py)
        # says when it arrived: the time is the client's, from there.
        answer = Answer(scope, scope.get(STARTED) or time.perf_counter(), send)
        streams: list[str] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and (stream := _stream_of(scope, message)) is not None:
                streams.append(stream)
                opened.enter_context(open_stream(stream))
            elif not streams:
                answer.going(message)
            await send(message)

        with contextlib.ExitStack() as opened:
            try:
                await self.app(scope, receive, sending)
            finally:
                if streams:
                    observe_pool(scope)
                else:
                    answer.ended()


class Answer:
    """A plain request's answer, timed (answered) once: as the last of its
    body goes out, not after the send returns, so that a client holding its
    answer (and scraping, say on another worker) finds its request counted;
    or, with no whole answer (the app failed, the client left), as it ends.
    Each layer that answers a plain request past MetricsMiddleware (the
    front door's replies and writes) sends through `send`."""

    __slots__ = ("_send", "counted", "scope", "started")

    def __init__(self, scope: Scope, started: float, send: Send) -> None:
        self.scope = scope
        self.started = started
        self._send = send
        self.counted = False

    def going(self, message: Message) -> None:
        """`message` is about to be sent: the request counted if it ends the body."""
        if not (self.counted or message["type"] != "http.response.body" or message.get("more_body", False)):
            self.counted = True
            answered(self.scope, self.started)

    async def send(self, message: Message) -> None:
        self.going(message)
        await self._send(message)

    def ended(self) -> None:
        """The request is over: counted now unless it was as its body went out."""
        if not self.counted:
            self.counted = True
            answered(self.scope, self.started)


# REQUESTS' children by (route, method): labels() validates and locks on every call.
_TIMERS: dict[tuple[str, str], Histogram] = {}


def answered(scope: Scope, started: float) -> None:
    """A plain request answered: its time by route, and the pool's gauges."""
    labels = (route_of(scope["path"]), scope["method"])
    timer = _TIMERS.get(labels)
    if timer is None:
        timer = _TIMERS[labels] = REQUESTS.labels(*labels)
    prometheus_client.observe(timer, time.perf_counter() - started)
    observe_pool(scope)


async def metrics(request: Request) -> Response:
    state = request.state
    through, newest = await state.journal.bounds()
    JOURNAL_ENTRIES.set(newest - through)
    JOURNAL_OLDEST.set(through)
    read_pool(state.pool)  # this process's, as of the scrape
    return render()

