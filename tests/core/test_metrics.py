"""/metrics in Prometheus text format: per process, and summed over the
workers of `serve --workers 2`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import httpx
import psutil
import psycopg
import pytest
import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from graphql_todos.app import TodoApp
from graphql_todos.core import metrics
from graphql_todos.core.metrics import LIMITS
from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES
from tests.gql import CHANGES, LegacyWs, TransportWs, create, error_codes, gql, subscribed
from tests.helpers import Serve, Server, raw_exchange, serving, wait_until
from tests.sse_client import events

CONNECTIONS = "graphql_todos_open_connections"
SUBSCRIPTIONS = "graphql_todos_subscriptions"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_streams_deliveries_lag_and_requests(server: Server, client: httpx.Client) -> None:
    # The counters are per process, and the tests run many apps in one: compare.
    before = scrape(server.url)
    events = {"accept": "text/event-stream"}
    with (
        subscribed(server, CHANGES) as ws,
        connect(server.ws_url + "/api/todos/") as rest,
        httpx.stream("GET", server.url + "/api/todos/", headers=events, timeout=10) as stream,
    ):
        assert stream.status_code == 200
        wait_until(lambda: server.subscriber_count() >= 3)
        during = scrape(server.url)
        assert value(during, CONNECTIONS, transport="graphql-transport-ws") >= 1
        assert value(during, CONNECTIONS, transport="restsocket") >= 1
        assert value(during, CONNECTIONS, transport="rest-sse") >= 1
        create(client, "counted")
        ws.next_data()
        assert json.loads(rest.recv(timeout=5))["op"] == "created"
        after = scrape(server.url)
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert value(delta, "graphql_todos_events_delivered_total") >= 2
    assert value(delta, "graphql_todos_commit_to_delivery_seconds_count") >= 2
    assert value(delta, "graphql_todos_http_request_seconds_count", route="/graphql", method="POST") == 1
    assert value(after, "graphql_todos_journal_entries") == 1
    assert value(after, "graphql_todos_journal_oldest_cursor") == 0
    assert ("graphql_todos_pool_in_use", ()) in after


def by_transport(url: str, name: str) -> dict[str, float]:
    samples = scrape(url)
    return {transport: value(samples, name, transport=transport) for transport in metrics.TRANSPORTS}


def test_connections_and_subscriptions_by_transport_go_back_to_zero(server: Server) -> None:
    # Per process, and the tests run many apps in one: compare with before.
    before = {name: by_transport(server.url, name) for name in (CONNECTIONS, SUBSCRIPTIONS)}
    feed = {"query": "subscription { todoChanges { cursor } }"}
    multipart = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    with contextlib.ExitStack() as stack:
        transport_ws = stack.enter_context(TransportWs(server.ws_url))
        transport_ws.subscribe(feed["query"])  # the broadcast path
        transport_ws.subscribe("subscription { todos { id @include(if: true) } }")  # Strawberry's (a directive)
        legacy = LegacyWs(server.ws_url)
        stack.callback(legacy.close)
        legacy.send({"id": "1", "type": "start", "payload": feed})
        stack.enter_context(connect(server.ws_url + "/api/todos/"))
        stack.enter_context(events(server.url + "/api/todos/"))
        stack.enter_context(events(server.url + "/graphql", json=feed))
        stack.enter_context(httpx.stream("POST", server.url + "/graphql", json=feed, headers=multipart, timeout=10))
        wait_until(lambda: server.subscriber_count() == 7)
        during = {name: by_transport(server.url, name) for name in (CONNECTIONS, SUBSCRIPTIONS)}
    one_each = dict.fromkeys(metrics.TRANSPORTS, 1.0)
    assert {t: during[CONNECTIONS][t] - before[CONNECTIONS][t] for t in metrics.TRANSPORTS} == one_each
    assert {t: during[SUBSCRIPTIONS][t] - before[SUBSCRIPTIONS][t] for t in metrics.TRANSPORTS} == {
        **one_each, "graphql-transport-ws": 2.0,
    }
    wait_until(lambda: all(by_transport(server.url, name) == before[name] for name in before))


def test_open_stream_counts_while_open_nests_and_holds_nothing_per_stream() -> None:
    def counts() -> tuple[float, float, float]:
        return (
            REGISTRY.get_sample_value(CONNECTIONS, {"transport": "sse"}) or 0.0,
            REGISTRY.get_sample_value(SUBSCRIPTIONS, {"transport": "sse"}) or 0.0,
            REGISTRY.get_sample_value(SUBSCRIPTIONS, {"transport": "graphql-ws"}) or 0.0,
        )

    before = counts()
    # Shared by every stream of a transport: nothing kept per stream.
    assert metrics.open_stream("sse") is metrics.open_stream("sse")
    with metrics.open_stream("sse"), metrics.open_stream("sse"), metrics.open_stream("graphql-ws"):
        # A GraphQL socket counts its subscriptions itself; an SSE stream is one.
        assert counts() == (before[0] + 2, before[1] + 2, before[2])
        with metrics.open_stream(None):
            assert counts() == (before[0] + 2, before[1] + 2, before[2])
    assert counts() == before
    with pytest.raises(RuntimeError), metrics.open_stream("sse"):
        raise RuntimeError
    assert counts() == before


def test_a_tally_is_its_gauge_s_value_when_scraped_or_written_to_it_with_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("tallied", "a tally's gauge", ["transport"], registry=registry)
    kept = metrics.tally(gauge.labels("sse"))
    assert registry.get_sample_value("tallied", {"transport": "sse"}) == 0.0
    kept.n += 2
    kept.n -= 1
    assert registry.get_sample_value("tallied", {"transport": "sse"}) == 1.0
    # With several workers /metrics reads each worker's gauge: every move is written to it.
    monkeypatch.setenv(metrics.MULTIPROC_DIR, "/nonexistent")
    written = metrics.tally(gauge.labels("restsocket"))
    written.n += 3
    written.n -= 1
    assert (written.n, registry.get_sample_value("tallied", {"transport": "restsocket"})) == (2, 2.0)


def test_a_socket_s_transport_is_the_first_graphql_subprotocol_offered() -> None:
    def of(path: str, *offered: str) -> str:
        return metrics.transport_of({"path": path, "subprotocols": offered})

    assert of("/graphql", "chat", "graphql-ws", "graphql-transport-ws") == "graphql-ws"
    assert of("/graphql", "graphql-transport-ws", "graphql-ws") == "graphql-transport-ws"
    assert of("/graphql", "chat") == "graphql-ws"
    assert metrics.transport_of({"path": "/graphql"}) == "graphql-ws"
    assert of("/api/todos/", "graphql-transport-ws") == "restsocket"


def test_listener_reconnects_are_counted(server: Server) -> None:
    before = value(scrape(server.url), "graphql_todos_listener_reconnects_total")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (server.hub.backend_pid,))
    wait_until(lambda: value(scrape(server.url), "graphql_todos_listener_reconnects_total") == before + 1, timeout=10)


def test_a_request_is_counted_by_the_time_its_client_has_the_answer() -> None:
    """The count a scrape reads right after a client's answer includes it
    (with --workers 2, the scrape may land on the other worker while the
    answering one has yet to count). Forced here: the app holds the request
    open after its last byte went out until the client has checked."""
    labels = {"route": "/healthz", "method": "GET"}
    name = "graphql_todos_http_request_seconds_count"

    async def scenario() -> tuple[float, float]:
        release = asyncio.Event()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            await release.wait()  # what the layers do after the send, made long

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(metrics.MetricsMiddleware(app), lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            before = REGISTRY.get_sample_value(name, labels) or 0.0
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await reader.readuntil(b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200") and await reader.readexactly(2) == b"ok"
            counted = REGISTRY.get_sample_value(name, labels) or 0.0
            release.set()
            writer.close()
            return before, counted
        finally:
            release.set()
            server.should_exit = True
            await serving

    before, counted = asyncio.run(scenario())
    assert counted == before + 1


def _holding(app: ASGIApp, held: threading.Event, release: threading.Event) -> ASGIApp:
    """`app`, but for one request while `held` is set: held open after its
    last byte went out (the server's send returning late) until `release`."""

    async def holder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics" or not held.is_set():
            return await app(scope, receive, send)
        held.clear()

        async def sending(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await asyncio.to_thread(release.wait, 10)

        await app(scope, receive, sending)

    return holder


def _requests_counted(url: str) -> float:
    """Plain requests timed so far, but the scrapes'."""
    return sum(
        count for (name, labels), count in scrape(url).items()
        if name == "graphql_todos_http_request_seconds_count" and ("route", "/metrics") not in labels
    )


QUERY = {"query": "{ todos { id title } }"}
MUTATION = {"query": "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", "variables": {"t": "x"}}


@pytest.mark.parametrize(
    ("path", "body", "door"),
    [("/graphql", MUTATION, "writes"), ("/api/todos/", {"title": "x"}, "writes"), ("/graphql", QUERY, "replies")],
    ids=["graphql-write-door", "rest-write-door", "cached-reply"],
)
def test_the_front_doors_count_a_request_by_the_time_its_client_has_the_answer(
    server: Server, path: str, body: dict[str, Any], door: str
) -> None:
    """As test_a_request_is_counted_by_the_time_its_client_has_the_answer,
    for what the front door answers past the metrics layer: a write the
    short way (write_door.py) and a reply kept (front.py)."""
    held, release = threading.Event(), threading.Event()
    app = cast(TodoApp, server.app)
    # Outermost: a send that returns late, as the server's may.
    app._front = _holding(app._front, held, release)
    taken = {"writes": lambda: int(app.state.writes.taken), "replies": lambda: int(server.state("response_replies").hits)}[door]
    post = functools.partial(httpx.post, server.url + path, json=body, timeout=10)
    assert post().status_code in (200, 201)  # the intake takes the mutation in; the reply is kept
    before, door_before = _requests_counted(server.url), taken()
    held.set()
    try:
        assert post().status_code in (200, 201)
        assert taken() == door_before + 1
        counted = _requests_counted(server.url)
    finally:
        release.set()
    assert counted == before + 1


def _journal_positions(dsn: str) -> int:
    """The journal's positions kept (newest - pruned through), as the database has them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(max(position), 0) - (SELECT through FROM todo_changes_pruned) FROM todo_changes"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_journal_gauge_counts_positions(server: Server, client: httpx.Client) -> None:
    """graphql_todos_journal_entries is the positions kept (its help says so,
    as JOURNAL_KEEP_ROWS counts them), not a count of the rows: a position
    taken by a transaction that rolled back (a write batch refused, its
    writes then run alone) is counted though no entry holds it."""
    with psycopg.connect(server.dsn) as conn:
        conn.execute("SELECT nextval('todo_changes_position')")
        conn.rollback()
    create(client, "after the gap")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM todo_changes").fetchone()
    assert row is not None and row[0] == 1
    assert value(scrape(server.url), "graphql_todos_journal_entries") == _journal_positions(server.dsn) == 2


def test_workers_metrics_add_up(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": ""}
    serve = Serve(env, args=["--workers", "2"])
    try:
        # No keep-alive: each request may land on either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=serve.url, limits=limits, timeout=10) as client:
            for n in range(10):
                response = client.post("/graphql", json={"query": f'mutation {{ createTodo(input: {{title: "{n}"}}) {{ id }} }}'})
                assert "errors" not in response.json()
        samples = scrape(serve.url)
        assert value(samples, "graphql_todos_http_request_seconds_count", route="/graphql", method="POST") == 10
        # One worker's reading (livemostrecent), not the two summed: the
        # journal's positions, 10 unless a rolled-back batch took one
        # (test_the_journal_gauge_counts_positions).
        assert value(samples, "graphql_todos_journal_entries") == _journal_positions(db_dsn) >= 10
        # Sockets land on either worker; the gauges add up the live ones.
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                stack.enter_context(connect(serve.ws_url + "/api/todos/"))
                stack.enter_context(TransportWs(serve.ws_url)).subscribe("subscription { todoChanges { cursor } }")
            wait_until(lambda: by_transport(serve.url, SUBSCRIPTIONS)["restsocket"] == 3, timeout=10)
            wait_until(lambda: by_transport(serve.url, SUBSCRIPTIONS)["graphql-transport-ws"] == 3, timeout=10)
            assert by_transport(serve.url, CONNECTIONS)["restsocket"] == 3
        wait_until(lambda: set(by_transport(serve.url, SUBSCRIPTIONS).values()) == {0.0}, timeout=10)
    finally:
        serve.stop(signal.SIGTERM)


def _worker_of(serve: Serve, client_port: int) -> int | None:
    """The pid of the worker holding the connection from client_port."""
    for worker in psutil.Process(serve.process.pid).children():
        for conn in worker.net_connections(kind="tcp"):
            if conn.laddr.port == serve.port and conn.raddr and conn.raddr.port == client_port:
                return int(worker.pid)
    return None


def test_a_killed_workers_connections_are_no_longer_counted(db_dsn: str) -> None:
    """A worker SIGKILLed leaves its gauges behind (prometheus_client sums a
    livesum gauge's files until its pid is marked dead): the supervisor that
    replaces it marks it dead, and open_connections is the true count again."""
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": ""}
    serve = Serve(env, args=["--workers", "2"])
    with contextlib.ExitStack() as stack:
        stack.callback(serve.stop, signal.SIGTERM)
        held: dict[int, list[object]] = {}
        # The kernel hands connections to whichever worker accepts first.
        while len(held) < 2 or min(map(len, held.values())) < 2:
            assert sum(map(len, held.values())) < 100, "connections all went to one worker"
            ws = stack.enter_context(connect(serve.ws_url + "/api/todos/"))
            worker = wait_until(functools.partial(_worker_of, serve, ws.socket.getsockname()[1]))
            held.setdefault(worker, []).append(ws)
        total = sum(map(len, held.values()))
        wait_until(lambda: by_transport(serve.url, CONNECTIONS)["restsocket"] == total, timeout=10)
        victim, survivor = held
        children = len(_children(serve))
        os.kill(victim, signal.SIGKILL)
        # uvicorn starts another worker in its place.
        wait_until(lambda: victim not in _children(serve) and len(_children(serve)) == children, timeout=30)
        wait_until(lambda: by_transport(serve.url, CONNECTIONS)["restsocket"] == len(held[survivor]), timeout=30)


def _children(serve: Serve) -> list[int]:
    return [child.pid for child in psutil.Process(serve.process.pid).children()]


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(10)  # the test's patience, not a bound
    return sock.recv(1) == b""


def _refusals(server: Server) -> dict[str, float]:
    samples = scrape(server.url)
    return {limit: value(samples, "graphql_todos_limit_refusals_total", limit=limit) for limit in LIMITS}


def test_each_limit_counts_its_refusals(db_dsn: str) -> None:
    small = {
        "max_body_bytes": 2000, "request_seconds": 0.5, "ws_max_bytes": 1000, "max_tokens": 40,
        "max_depth": 1, "max_aliases": 1, "max_fields": 6, "max_list_rows": 1, "max_subscriptions": 1,
        "requests_in_flight": 1,
        # A statement timeout far beyond the database timeout: the second
        # request below must give up while the first still waits.
        "max_sockets_per_client": 2, "connection_init_seconds": 0.5, "statement_timeout_seconds": 5.0,
        "database_timeout_seconds": 0.5, "pool_size": 1,
    }
    with serving(db_dsn, **small) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        before = _refusals(server)
        assert client.post("/api/todos/", content=b"{" * 3000, headers={"content-type": "application/json"}).status_code == 413
        slow = b"POST /api/todos/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n"
        assert raw_exchange(server, slow, [b"{"] * 20, pause=0.1).startswith(b"HTTP/1.1 408 ")
        big_head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n"
        assert raw_exchange(server, big_head).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", server.port)) as silent:
            assert _closed(silent)
        for document, code in (
            ("{ " + " ".join(f"a{i}: todos {{ id }}" for i in range(10)) + " }", "GRAPHQL_PARSE_FAILED"),
            ("{ todoList { todos { id } } }", "GRAPHQL_VALIDATION_FAILED"),
            ("{ a: todos { id } b: todos { id } }", "GRAPHQL_VALIDATION_FAILED"),
            ("{ todos { id title completed createdTime updatedTime updatedTime } }", "GRAPHQL_VALIDATION_FAILED"),
        ):
            assert error_codes(gql(client, document)) == [code]
        create(client, "a")
        create(client, "b")
        assert error_codes(gql(client, "{ todos { id } }")) == ["LIST_TOO_LARGE"]
        with TransportWs(server.ws_url) as ws:
            ws.subscribe("subscription { todoChanges { cursor } }")
            refused = ws.subscribe("subscription { todoChanges { cursor } }")
            message = ws.recv()
            assert (message["type"], message["id"]) == ("error", refused)
            with connect(server.ws_url + "/api/todos/"), pytest.raises(InvalidStatus):
                connect(server.ws_url + "/api/todos/")
            ws.send({"type": "ping", "payload": {"pad": "x" * 1000}})
            with pytest.raises(ConnectionClosed):
                ws.recv()
        transport_ws = [Subprotocol("graphql-transport-ws")]
        with connect(server.ws_url + "/graphql", subprotocols=transport_ws) as quiet, pytest.raises(ConnectionClosed):
            quiet.recv(timeout=10)  # closed at connection_init_seconds
        with psycopg.connect(server.dsn) as locker:
            todo_id = locker.execute("SELECT id FROM todos LIMIT 1 FOR UPDATE").fetchone()[0]  # type: ignore[index]
            # The one pooled connection waits on the lock until the statement times out...
            url = f"{server.url}/api/todos/{todo_id}/"
            patched: list[int] = []
            waiting = threading.Thread(
                target=lambda: patched.append(httpx.patch(url, json={"completed": True}, timeout=10).status_code)
            )
            waiting.start()
            with psycopg.connect(server.dsn, autocommit=True) as observer:
                lock_waits = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'graphql-todos'"
                wait_until(lambda: observer.execute(lock_waits).fetchone() == (1,))  # type: ignore[arg-type]
            # ... while another request waits for it in vain, and a query on
            # a socket too (in flight meanwhile: one more is refused).
            assert httpx.get(server.url + "/api/todos/?limit=1", timeout=10).status_code == 503
            with TransportWs(server.ws_url) as ws:
                ws.subscribe("{ todos(first: 1) { id } }")  # waits for the pool
                over = ws.subscribe("{ todos(first: 1) { id } }")
                message = ws.recv()
                assert (message["type"], message["id"]) == ("error", over), message
            waiting.join(10)
            assert patched == [503]
        after = _refusals(server)
    counted = {limit: after[limit] - before[limit] for limit in LIMITS}
    # The listener's own journal reads wait for the pool meanwhile, and may time out too.
    assert counted.pop("pool_timeout") >= 1
    assert counted == dict.fromkeys(counted, 1.0)


def test_hub_subscribers_count_each_hub_subscription_once(server: Server, client: httpx.Client) -> None:
    """Three members of one broadcast group, two watchers of one live list and
    a RESTSocket on one row: three hub subscriptions."""
    todo = create(client, "watched")
    before = value(scrape(server.url), "graphql_todos_hub_subscribers")
    with contextlib.ExitStack() as stack:
        for query in [CHANGES] * 3 + ["subscription { todos { id } }"] * 2:
            socket_ = stack.enter_context(TransportWs(server.ws_url))
            socket_.subscribe(query)
            if "todos" in query:
                socket_.recv()  # the live list, once it is watched
        stack.enter_context(connect(f"{server.ws_url}/api/todos/{todo['id']}/")).recv(timeout=5)
        # (The hub's own count serves the group's members each, the live list once.)
        wait_until(lambda: server.subscriber_count() == 5)
        assert value(scrape(server.url), "graphql_todos_hub_subscribers") == before + 3
    wait_until(lambda: value(scrape(server.url), "graphql_todos_hub_subscribers") == before)


@dataclasses.dataclass(frozen=True)
class _HeldPool:
    """A server whose only pooled connection a PATCH holds, waiting on a row
    lock taken from psql (let go by `locker.rollback()`)."""

    server: Server
    client: httpx.Client
    pool: ThreadPoolExecutor
    patched: Future[httpx.Response]
    locker: psycopg.Connection


@contextlib.contextmanager
def _pool_held(db_dsn: str) -> Iterator[_HeldPool]:
    # Only these requests use the pool: no heartbeat or pruning reads meanwhile.
    quiet = {"heartbeat_seconds": 3600, "journal_prune_seconds": 3600}
    with (
        serving(db_dsn, pool_size=1, database_timeout_seconds=30, statement_timeout_seconds=30, **quiet) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        ThreadPoolExecutor(2) as pool,
        psycopg.connect(db_dsn, autocommit=True) as observer,
    ):
        todo = create(client, "locked")
        with psycopg.connect(server.dsn) as locker:
            locker.execute("SELECT 1 FROM todos FOR UPDATE")
            patched = pool.submit(client.patch, f"/api/todos/{todo['id']}/", json={"completed": True})
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'graphql-todos'"
            wait_until(lambda: observer.execute(waiting).fetchone() == (1,))  # type: ignore[arg-type]
            yield _HeldPool(server, client, pool, patched, locker)


def test_the_pool_gauges_say_how_many_connections_are_in_use_and_waited_for(db_dsn: str) -> None:
    """Set as requests end: here by one that needs no connection, while
    the only one waits on a row lock held from psql and a second request
    waits for it."""
    with _pool_held(db_dsn) as held:
        listed = held.pool.submit(held.client.get, "/api/todos/")
        wait_until(lambda: held.server.pool_stats()["requests_waiting"] == 1)
        # (Polled: about one run in ten, a request's end showed 0 in use once.)
        wait_until(lambda: held.client.get("/api/openapi.json").is_success and _pool_gauges() == (1, 1))
        held.locker.rollback()
        assert (held.patched.result().status_code, listed.result().status_code) == (200, 200)
        wait_until(lambda: held.server.pool_stats()["pool_available"] == 1)
        wait_until(lambda: held.client.get("/api/openapi.json").is_success and _pool_gauges() == (0, 0))


def test_the_pool_gauges_catch_up_after_the_last_request(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's figures are read at most every POOL_READ_SECONDS: a request
    that ends sooner, the last before a quiet spell, is not lost but read at
    the end of the interval."""
    monkeypatch.setattr(metrics, "POOL_READ_SECONDS", 1.0)
    with _pool_held(db_dsn) as held:
        assert held.client.get("/api/openapi.json").is_success
        wait_until(lambda: _pool_gauges() == (1, 0))
        held.locker.rollback()
        # The lock gone, the PATCH ends within a second of that read: its
        # figures wait for the interval's end, with no request after it.
        assert held.patched.result().status_code == 200
        wait_until(lambda: _pool_gauges() == (0, 0))


def _pool_gauges() -> tuple[float | None, float | None]:
    """In use and waiting, as this process's registry holds them (a scrape would wait for the pool)."""
    return (
        REGISTRY.get_sample_value("graphql_todos_pool_in_use"),
        REGISTRY.get_sample_value("graphql_todos_pool_waiting"),
    )
