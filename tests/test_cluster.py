"""Three instances on one database behind nginx (deploy/, `make cluster`):
subscribers of every transport connect through nginx, each from an address
of its own; instances are stopped (SIGTERM, SIGKILL) and started again while
4 writers run; a transaction stays open while 1,000 others commit. Every
subscriber resumes with its cursor wherever nginx sends it and gets every
change exactly once, in commit order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import psutil
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection as Connection
from websockets.sync.client import connect as connect_sync
from websockets.typing import Subprotocol

from deploy.cluster import Cluster, cluster, site_config
from graphql_todos.core import metrics
from graphql_todos.core.settings import Settings
from tests.core.test_metrics import CONNECTIONS, by_transport
from tests.helpers import ROOT, free_port, wait_until
from tests.test_cli import alive, embedded, postmaster_pid

CHANGES = "subscription($after: String) { todoChanges(after: $after) { op cursor todo { id } } }"
MULTIPART = "multipart/mixed;subscriptionSpec=1.0"
# Which instance is stopped, and how, in turn: every instance twice, once
# each way, so every subscriber loses its connection at least once.
ROUNDS = [(0, signal.SIGTERM), (1, signal.SIGKILL), (2, signal.SIGTERM),
          (0, signal.SIGKILL), (1, signal.SIGTERM), (2, signal.SIGKILL)]
# How many changes the writers make between one step of a round and the next.
STEP = 25
Entry = tuple[int, str, str]  # a change as a subscriber saw it: position, op, todo id


@pytest.fixture(scope="module")
def running(module_db_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {
        **os.environ, "DATABASE_URL": module_db_dsn, "WEB_DIST": "", "HEARTBEAT_SECONDS": "1",
        "SHUTDOWN_SECONDS": "2", "MAX_SOCKETS_PER_CLIENT": "2",
    }
    with cluster(env, tmp_path_factory.mktemp("cluster"), log_instances=True) as running:
        yield running


@contextlib.contextmanager
def logs_on_failure(running: Cluster) -> Iterator[None]:
    """A failure carries the ends of nginx's error log and of the instances' logs."""
    try:
        yield
    except BaseException as exc:
        logs = [("nginx error.log", running.nginx.error_log())]
        logs += [(f"instance {i.url}", i.log.read_text() if i.log else "") for i in running.instances]
        exc.add_note("\n".join(f"--- {name}:\n" + "\n".join(text.splitlines()[-30:]) for name, text in logs))
        raise


def _journal(dsn: str, after: int) -> list[Entry]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT position, op, todo_id::text FROM todo_changes WHERE position > %s ORDER BY position", (after,)
        ).fetchall()
    return [(int(p), op, todo_id) for p, op, todo_id in rows]


def _newest(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()
    assert row is not None
    return int(row[0])


class Follower:
    """A subscriber of one transport through nginx, from an address of its own
    (127.x.y.z: each counts as a client by itself, and nginx's access log
    says where each of its connections went). Whenever its connection ends it
    connects again, through nginx, with its last cursor."""

    transport: ClassVar[str]

    def __init__(self, running: Cluster, address: str, after: int) -> None:
        self.nginx = running.nginx
        self.address = address
        self.start = after
        self.cursor = str(after)
        self.received: list[Entry] = []
        self.connections = 0
        self.refused: list[int] = []  # statuses other than 101/200 (nginx's 502: no instance took it)
        self.unexpected: list[Any] = []
        self.client = httpx.AsyncClient(
            base_url=self.nginx.url, transport=httpx.AsyncHTTPTransport(local_address=address),
            timeout=httpx.Timeout(10, read=60),
        )
        self.task = asyncio.create_task(self._run())

    @property
    def position(self) -> int:
        return self.received[-1][0] if self.received else self.start

    async def _run(self) -> None:
        while True:
            self.connections += 1
            with contextlib.suppress(ConnectionClosed, OSError, httpx.TransportError):
                try:
                    await self.follow()
                except InvalidStatus as refused:
                    self.refused.append(refused.response.status_code)
            await asyncio.sleep(0.05)  # a client's backoff

    async def follow(self) -> None:
        """Connect, subscribe from self.cursor and take changes until the connection ends."""
        raise NotImplementedError

    def change(self, change: dict[str, Any]) -> None:
        # GraphQL's ops are the enum's values (CREATED), REST's lower case.
        self.received.append((int(change["cursor"]), change["op"].lower(), change["todo"]["id"]))
        self.cursor = change["cursor"]

    def websocket(self, path: str, protocol: str | None = None) -> Any:
        return connect(
            self.nginx.ws_url + path, subprotocols=[Subprotocol(protocol)] if protocol else None,
            local_addr=(self.address, 0), open_timeout=10,
        )

    def stream(self, method: str, path: str, accept: str, **kwargs: Any) -> Any:
        return self.client.stream(method, path, headers={"accept": accept, "last-event-id": self.cursor}, **kwargs)

    def streaming(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            self.refused.append(response.status_code)
        return response.status_code == 200

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.aclose()


class GraphQLSocketFollower(Follower):
    """The two GraphQL WebSocket protocols: the same exchange, other names."""

    subscribe: ClassVar[str]  # the message that starts an operation
    result: ClassVar[str]  # the one that carries a result
    idle: ClassVar[tuple[str, ...]]  # the server's keep-alives

    async def follow(self) -> None:
        async with self.websocket("/graphql", self.transport) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            while (message := json.loads(await ws.recv()))["type"] != "connection_ack":
                assert message["type"] in self.idle, message
            payload = {"query": CHANGES, "variables": {"after": self.cursor}}
            await ws.send(json.dumps({"id": "1", "type": self.subscribe, "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == self.result:
                    self.change(message["payload"]["data"]["todoChanges"])
                elif message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] not in self.idle:
                    self.unexpected.append(message)


class TransportWsFollower(GraphQLSocketFollower):
    transport, subscribe, result, idle = "graphql-transport-ws", "subscribe", "next", ("pong",)


class LegacyWsFollower(GraphQLSocketFollower):
    transport, subscribe, result, idle = "graphql-ws", "start", "data", ("ka",)


async def _events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The events of an event stream, each a dict of its fields (comments,
    and blocks with no data, as an EventSource dispatches none, skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


class GraphQLSseFollower(Follower):
    transport = "sse"

    async def follow(self) -> None:
        # graphql-sse's distinct connections: Last-Event-ID resumes.
        body = {"query": CHANGES, "variables": {"after": str(self.start)}}
        async with self.stream("POST", "/graphql", "text/event-stream", json=body) as response:
            if self.streaming(response):
                async for event in _events(response):
                    if event.get("event") == "next":
                        self.change(json.loads(event["data"])["data"]["todoChanges"])
                    else:
                        self.unexpected.append(event)


class MultipartFollower(Follower):
    transport = "multipart"

    async def follow(self) -> None:
        body = {"query": CHANGES, "variables": {"after": self.cursor}}
        async with self.client.stream("POST", "/graphql", json=body, headers={"accept": MULTIPART}) as response:
            if not self.streaming(response):
                return
            buffered = b""
            async for chunk in response.aiter_bytes():
                *parts, buffered = (buffered + chunk).split(b"\r\n--graphql")
                for part in parts:
                    # Its headers, a blank line, {"payload": ...} ({} for a heartbeat).
                    body_text = part.partition(b"\r\n\r\n")[2].strip()
                    if body_text and (payload := json.loads(body_text).get("payload")) is not None:
                        self.change(payload["data"]["todoChanges"])


class RestSocketFollower(Follower):
    transport = "restsocket"

    async def follow(self) -> None:
        async with self.websocket(f"/api/todos/?after={self.cursor}") as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["op"] != "keepalive":
                    self.change(message)


class RestSseFollower(Follower):
    transport = "rest-sse"

    async def follow(self) -> None:
        # As an EventSource resumes: Last-Event-ID.
        async with self.stream("GET", "/api/todos/", "text/event-stream") as response:
            if self.streaming(response):
                async for event in _events(response):
                    if event.get("event") in ("created", "updated", "deleted"):
                        self.change(json.loads(event["data"]))
                    else:
                        self.unexpected.append(event)


FOLLOWERS: list[type[Follower]] = [
    TransportWsFollower, LegacyWsFollower, GraphQLSseFollower, MultipartFollower,
    RestSocketFollower, RestSseFollower,
]
assert {f.transport for f in FOLLOWERS} == set(metrics.TRANSPORTS)


class Writers:
    """Writers through nginx, GraphQL and REST in turn, each creating,
    updating and deleting todos of its own until told to stop (or until
    `creates` are made). A write nginx answers 502 (its instance died with
    it) or an instance 503 (shutting down) is sent again: it may have
    committed, which the journal, not the writer, says."""

    def __init__(self, running: Cluster, count: int, creates_only: int | None = None) -> None:
        self.url = running.nginx.url
        self.stop = asyncio.Event()
        self.creates_only = creates_only
        self.committed = 0
        self.resent = 0
        self.tasks = [asyncio.create_task(self._write(n)) for n in range(count)]

    async def wait(self) -> None:
        await asyncio.gather(*self.tasks)

    def check(self) -> None:
        """Raise what failed a writer."""
        for task in self.tasks:
            if task.done() and task.exception():
                task.result()

    async def _write(self, n: int) -> None:
        rest = n % 2 == 1
        ids: list[str] = []
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            for step in range(self.creates_only or sys.maxsize):
                if self.stop.is_set():
                    return
                if self.creates_only is None and ids and step % 5 == 4:
                    await self._send(client, rest, "delete", ids.pop(0))
                elif self.creates_only is None and ids and step % 2 == 1:
                    await self._send(client, rest, "update", ids[-1], step)
                else:
                    ids.append(await self._send(client, rest, "create", f"w{n}-{step}"))
                self.committed += 1

    async def _send(self, client: httpx.AsyncClient, rest: bool, op: str, *args: Any) -> str:
        deadline = time.monotonic() + 30
        for attempt in itertools.count():
            method, url, content = (_rest if rest else _graphql)(op, *args)
            response = await client.request(method, url, **content)
            if response.status_code in (502, 503):
                assert time.monotonic() < deadline, f"{op} answered {response.status_code} for 30 s"
                self.resent += 1
                await asyncio.sleep(0.05)  # a client's backoff
                continue
            if rest:
                # A resent update or delete finds its row gone: the first one committed.
                assert response.status_code in (200, 201, 204) or (attempt and response.status_code == 404), response.text
                return str(response.json()["id"]) if op == "create" else ""
            body = response.json()
            assert "errors" not in body or (attempt and body["errors"][0]["extensions"]["code"] == "NOT_FOUND"), body
            return str(body["data"]["createTodo"]["id"]) if op == "create" else ""
        raise AssertionError("unreachable")


def _rest(op: str, *args: Any) -> tuple[str, str, dict[str, Any]]:
    if op == "create":
        return "POST", "/api/todos/", {"json": {"title": args[0]}}
    if op == "update":
        return "PATCH", f"/api/todos/{args[0]}/", {"json": {"completed": args[1] % 4 == 1}}
    return "DELETE", f"/api/todos/{args[0]}/", {}


def _graphql(op: str, *args: Any) -> tuple[str, str, dict[str, Any]]:
    if op == "create":
        query, variables = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", {"t": args[0]}
    elif op == "update":
        query = "mutation($id: ID!, $c: Boolean) { updateTodo(id: $id, input: {completed: $c}) { id } }"
        variables = {"id": args[0], "c": args[1] % 4 == 1}
    else:
        query, variables = "mutation($id: ID!) { deleteTodo(id: $id) { id } }", {"id": args[0]}
    return "POST", "/graphql", {"json": {"query": query, "variables": variables}}


async def _reached(followers: list[Follower], position: int, timeout: float = 60) -> None:
    """Wait until every follower has had every change up to position."""
    deadline = time.monotonic() + timeout
    while laggards := [f for f in followers if f.position < position]:
        for follower in laggards:
            if follower.task.done():
                follower.task.result()  # what stopped it
        assert time.monotonic() < deadline, [(f.transport, f.address, f.position, position) for f in laggards]
        await asyncio.sleep(0.02)


async def _advanced(writers: Writers, dsn: str, by: int, timeout: float = 60) -> int:
    """Wait until the writers committed `by` more changes; the newest position then."""
    target = await asyncio.to_thread(_newest, dsn) + by
    deadline = time.monotonic() + timeout
    while (newest := await asyncio.to_thread(_newest, dsn)) < target:
        writers.check()
        assert time.monotonic() < deadline, "the writers made no progress"
        await asyncio.sleep(0.02)
    return newest


def _tally(followers: list[Follower], journal: list[Entry]) -> dict[str, int]:
    lost = duplicated = 0
    for follower in followers:
        expected = [e for e in journal if e[0] > follower.start]
        seen = Counter(follower.received)
        lost += sum(1 for e in expected if e not in seen)
        duplicated += sum(n - 1 for n in seen.values())
    return {"lost": lost, "duplicated": duplicated}


def _check_exactly_once(followers: list[Follower], journal: list[Entry]) -> None:
    for follower in followers:
        assert not follower.unexpected, (follower.transport, follower.unexpected[:3])
        assert set(follower.refused) <= {502}, (follower.transport, follower.refused)
        assert follower.received == [e for e in journal if e[0] > follower.start], (follower.transport, _tally([follower], journal))


_LOG_LINE = re.compile(r'^(?P<client>\S+) \[[^]]*\] "(?P<method>\S+) (?P<uri>\S+)" (?P<status>\d+) .* upstream=(?P<upstream>.*)$')


def _instances_reached(running: Cluster) -> dict[str, list[str]]:
    """Client address -> the instance ("host:port") that took each of its
    connections, from nginx's access log (the last one tried answered)."""
    reached: dict[str, list[str]] = {}
    for line in running.nginx.access_log():
        match = _LOG_LINE.match(line)
        if match and match["status"] in ("101", "200") and match["upstream"] != "-":
            reached.setdefault(match["client"], []).append(match["upstream"].split(", ")[-1])
    return reached


def test_subscribers_on_every_transport_resume_through_nginx_as_instances_stop_and_start(
    running: Cluster, module_db_dsn: str
) -> None:
    with logs_on_failure(running):
        asyncio.run(_restarts(running, module_db_dsn))


async def _restarts(running: Cluster, dsn: str) -> None:
    started = time.monotonic()
    start = await asyncio.to_thread(_newest, dsn)
    followers = [kind(running, f"127.0.1.{10 * k + n + 1}", start) for k, kind in enumerate(FOLLOWERS) for n in range(3)]
    writers = Writers(running, 4)
    try:
        await _reached(followers, await _advanced(writers, dsn, STEP))
        for index, sig in ROUNDS:
            await asyncio.to_thread(running.instances[index].stop, sig)
            # Its subscribers resume on the others, from their cursors,
            # while the writers go on (their writes go to the others too).
            await _reached(followers, await _advanced(writers, dsn, STEP))
            await asyncio.to_thread(running.instances[index].start)
            await _reached(followers, await _advanced(writers, dsn, STEP))
        writers.stop.set()
        await writers.wait()
        journal = await asyncio.to_thread(_journal, dsn, start)
        await _reached(followers, journal[-1][0])
        tally = _tally(followers, journal)
        _check_exactly_once(followers, journal)
    finally:
        writers.stop.set()
        for follower in followers:
            await follower.close()
    # Every subscriber lost its instance at least once, and was taken by another.
    addresses = [f.address for f in followers]

    def moved() -> dict[str, list[str]] | None:
        reached = _instances_reached(running)
        return reached if all(len(set(reached.get(a, []))) >= 2 for a in addresses) else None

    reached = wait_until(moved, timeout=10)
    instance = {f"127.0.0.1:{i.port}": n for n, i in enumerate(running.instances)}
    landed = Counter(instance[upstream] for a in addresses for upstream in reached[a])
    print(
        f"\ncluster: {len(journal)} changes, {len(followers)} subscribers (3 on each of 6 transports),"
        f" {len(ROUNDS)} restarts (3 SIGTERM, 3 SIGKILL), {sum(f.connections for f in followers)} connections"
        f" (per instance {dict(sorted(landed.items()))}), lost {tally['lost']}, duplicated {tally['duplicated']},"
        f" writes resent {writers.resent}, in {time.monotonic() - started:.1f} s"
    )


# The long transaction: open this long, while this many short ones commit.
HOLD_SECONDS = 10
SHORT_COMMITS = 1000


def test_a_long_transaction_reaches_every_subscriber_once_after_the_commits_it_outlived(
    running: Cluster, module_db_dsn: str
) -> None:
    with logs_on_failure(running):
        asyncio.run(_long_transaction(running, module_db_dsn))


def _open_by_transport(running: Cluster) -> list[dict[str, float]]:
    return [by_transport(instance.url, CONNECTIONS) for instance in running.instances]


async def _on_every_instance(running: Cluster, start: int) -> list[Follower]:
    """Subscribers of each transport through nginx, until every instance holds
    at least one of each (told by each instance's /metrics)."""
    addresses = (f"127.0.2.{n}" for n in itertools.count(1))
    followers: list[Follower] = []
    for kind in FOLLOWERS:
        while not all(counts[kind.transport] for counts in await asyncio.to_thread(_open_by_transport, running)):
            assert sum(isinstance(f, kind) for f in followers) < 3 * len(running.instances), kind.transport
            followers.append(kind(running, next(addresses), start))
            opened = sum(isinstance(f, kind) for f in followers)
            deadline = time.monotonic() + 30
            while sum(c[kind.transport] for c in await asyncio.to_thread(_open_by_transport, running)) < opened:
                assert time.monotonic() < deadline, f"a {kind.transport} subscriber did not connect"
                await asyncio.sleep(0.05)
    return followers


async def _long_transaction(running: Cluster, dsn: str) -> None:
    # The first test's subscribers are gone from every instance's gauges.
    await asyncio.to_thread(
        wait_until, lambda: not any(any(c.values()) for c in _open_by_transport(running)), 10
    )
    start = await asyncio.to_thread(_newest, dsn)
    followers = await _on_every_instance(running, start)
    middle: list[Follower] = []
    writers: Writers | None = None
    try:
        with psycopg.connect(dsn) as long:
            row = long.execute("INSERT INTO todos (title) VALUES ('the long one') RETURNING id::text").fetchone()
            assert row is not None
            long_id, opened = row[0], time.monotonic()
            writers = Writers(running, 4, creates_only=SHORT_COMMITS // 4)
            while writers.committed < SHORT_COMMITS // 2:
                writers.check()
                await asyncio.sleep(0.01)
            # A cursor taken in the middle (as a client reads it), and one
            # subscriber of each transport resuming from it.
            async with httpx.AsyncClient(base_url=running.nginx.url, timeout=10) as client:
                body = (await client.post("/graphql", json={"query": "{ todoList(first: 1) { cursor } }"})).json()
            cursor = int(body["data"]["todoList"]["cursor"])
            middle = [kind(running, f"127.0.3.{n + 1}", cursor) for n, kind in enumerate(FOLLOWERS)]
            await writers.wait()
            # The scenario's hold: the transaction stays open this long.
            await asyncio.sleep(max(0.0, opened + HOLD_SECONDS - time.monotonic()))
            shorts = await asyncio.to_thread(_journal, dsn, start)
            assert len(shorts) == SHORT_COMMITS and long_id not in {todo_id for *_, todo_id in shorts}
            assert start < cursor < shorts[-1][0]
            # Every subscriber is live, at the newest change, when it commits.
            await _reached(followers + middle, shorts[-1][0])
            held = time.monotonic() - opened
            long.commit()
        journal = await asyncio.to_thread(_journal, dsn, start)
        # Its position is its commit's: after the 1,000 it outlived.
        assert journal[:-1] == shorts and journal[-1][1:] == ("created", long_id)
        await _reached(followers + middle, journal[-1][0])
        tally = _tally(followers + middle, journal)
        _check_exactly_once(followers + middle, journal)
    finally:
        if writers is not None:
            writers.stop.set()
        for follower in followers + middle:
            await follower.close()
    print(
        f"\nlong transaction: open {held:.1f} s while {SHORT_COMMITS} others committed; {len(followers)}"
        f" subscribers on the 3 instances (each transport on each) and {len(middle)} from a cursor taken"
        f" in the middle got it at position {journal[-1][0]}, after the {SHORT_COMMITS}:"
        f" lost {tally['lost']}, duplicated {tally['duplicated']}"
    )


def test_nginx_passes_on_the_host_the_origin_and_the_client_address(running: Cluster) -> None:
    nginx = running.nginx
    # The Host the client asked for reaches the instances, which refuse a
    # name they do not answer to (a DNS-rebinding page's).
    response = httpx.get(nginx.url + "/api/todos/", headers={"Host": "rebound.example"})
    assert response.status_code == 421
    assert response.json()["error"]["code"] == "MISDIRECTED_REQUEST"
    # A page served through nginx may open sockets (its Origin is nginx's
    # address, port included); another site's page may not.
    for path, protocols in (("/graphql", [Subprotocol("graphql-transport-ws")]), ("/api/todos/", None)):
        with connect_sync(nginx.ws_url + path, origin=nginx.url, subprotocols=protocols):  # type: ignore[arg-type]
            pass
        with pytest.raises(InvalidStatus) as refused:
            connect_sync(nginx.ws_url + path, origin="https://evil.example", subprotocols=protocols)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    # Each client counts as itself: 127.0.0.2 fills its MAX_SOCKETS_PER_CLIENT
    # (2) on every instance, and is refused; 127.0.0.3 is not.
    held: list[Connection] = []
    try:
        refusals = 0
        while len(held) < 2 * len(running.instances):
            try:
                held.append(_socket_from(nginx.ws_url, "127.0.0.2"))
            except InvalidStatus as exc:
                assert exc.response.status_code == 429
                refusals += 1
                assert refusals <= 2 * len(running.instances), "sockets counted together"
        with pytest.raises(InvalidStatus) as refused:
            _socket_from(nginx.ws_url, "127.0.0.2")
        assert refused.value.response.status_code == 429
        held.append(_socket_from(nginx.ws_url, "127.0.0.3"))
    finally:
        for ws in held:
            ws.close()


def _socket_from(ws_url: str, address: str) -> Connection:
    return connect_sync(ws_url + "/api/todos/", source_address=(address, 0), open_timeout=10)


def test_instances_back_from_a_restart_take_requests_at_once(running: Cluster) -> None:
    # A rolling restart: two instances go and come back, then the third
    # goes. nginx had seen the two refuse; by default (max_fails=1) it would
    # keep them out for 10 s and answer 502 with two instances up.
    first, second, third = running.instances
    with httpx.Client(base_url=running.nginx.url, timeout=10) as client:
        for instance in (first, second):
            instance.stop(signal.SIGTERM)
        for _ in range(3):  # nginx tries the two that are down, and goes on
            assert client.get("/api/todos/?limit=1").status_code == 200
        for instance in (first, second):
            instance.start()
        third.stop(signal.SIGTERM)
        try:
            assert client.get("/api/todos/?limit=1").status_code == 200
            created = client.post("/api/todos/", json={"title": "two of three up"})
            assert created.status_code == 201, created.text
        finally:
            third.start()


def test_with_no_instance_up_nginx_answers_json_in_each_api_s_shape(running: Cluster) -> None:
    with httpx.Client(base_url=running.nginx.url, timeout=10) as client:
        for instance in running.instances:
            instance.stop(signal.SIGTERM)
        try:
            rest = client.post("/api/todos/", json={"title": "nowhere"})
            graphql = client.post("/graphql", json={"query": "{ todos { id } }"})
        finally:
            for instance in running.instances:
                instance.start()
    assert (rest.status_code, rest.headers["content-type"], rest.headers["retry-after"]) == (502, "application/json", "1")
    assert rest.json()["error"]["code"] == "NO_INSTANCE", rest.text
    assert (graphql.status_code, graphql.headers["content-type"]) == (502, "application/json")
    assert graphql.json()["errors"][0]["extensions"]["code"] == "NO_INSTANCE", graphql.text


def test_make_cluster_runs_on_the_embedded_postgres_and_sigterm_stops_everything(server_dir: Path) -> None:
    env = {**embedded(server_dir), "PORT": str(free_port()), "SHUTDOWN_SECONDS": "2"}
    url = f"http://127.0.0.1:{env['PORT']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cluster"], env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until(lambda: _answers(url, process), timeout=120, interval=0.2)
        # Instances, then nginx, then PostgreSQL: all to be stopped.
        children = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        nginx_pid = int((server_dir / "cluster" / "nginx" / "nginx.pid").read_text())
        postgres = postmaster_pid(server_dir)
        assert nginx_pid in children and len(children) >= 4
        with connect_sync(url.replace("http", "ws") + "/api/todos/?after=0", open_timeout=10) as ws:
            assert httpx.post(url + "/api/todos/", json={"title": "through nginx"}).status_code == 201
            assert json.loads(ws.recv(timeout=10))["todo"]["title"] == "through nginx"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        wait_until(lambda: not any(alive(pid) for pid in [*children, postgres]), timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=30)[0]
    assert "serving on " + url in output


def _answers(url: str, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        raise AssertionError("make cluster exited: " + (process.stdout.read() if process.stdout else ""))
    try:
        return httpx.get(url + "/healthz").status_code == 200
    except httpx.TransportError:
        return False


SITE = ROOT / "deploy" / "graphql-todos.conf"


def test_the_readme_shows_the_nginx_configuration_that_runs() -> None:
    assert "```nginx\n" + SITE.read_text() + "```\n" in (ROOT / "README.md").read_text()


def test_nginx_waits_longer_than_the_instances_keep_streams_alive() -> None:
    directives = re.findall(r"^ *(proxy_read_timeout|proxy_send_timeout|send_timeout) (\d+)s;", SITE.read_text(), re.MULTILINE)
    timeouts = {name: float(seconds) for name, seconds in directives}
    assert set(timeouts) == {"proxy_read_timeout", "proxy_send_timeout", "send_timeout"}
    settings = Settings()
    # A quiet stream sends something every KEEPALIVE_SECONDS; a client that
    # stops reading is the instance's to let go (with 4408 and a reason).
    assert min(timeouts.values()) > settings.keepalive_seconds
    assert timeouts["send_timeout"] > settings.send_timeout_seconds


def test_the_template_leaves_no_blank_and_nginx_s_variables_alone() -> None:
    filled = site_config("127.0.0.1:1", "    server 127.0.0.1:2 max_fails=0;")
    assert "${" not in filled.replace("${...}", "")
    assert re.findall(r"\$[a-z_]+", filled) == re.findall(r"\$[a-z_]+", SITE.read_text())
