"""Broadcast groups over real sockets: every member gets every change once,
in commit order, whatever the others do; a stalled member reads what it
missed from the journal; leaving cleans up."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from websockets.sync.client import connect

from graphql_todos.live.broadcast import Groups, Member
from graphql_todos.live.retention import Retention
from tests.gql import CHANGES, LegacyWs, TransportWs
from tests.helpers import Server, make_server, serving, wait_until
from tests.sse_client import events

SMALL = "subscription { todoChanges { cursor } }"


def groups(server: Server) -> Groups:
    assert server._uvicorn is not None
    found: Groups = server._uvicorn.lifespan.state["broadcast_groups"]
    return found


def insert(server: Server, titles: list[str]) -> None:
    """One statement, one change per row, in order."""
    with psycopg.connect(server.dsn, autocommit=True) as db:
        db.execute("INSERT INTO todos (title) SELECT unnest(%s::text[]) ORDER BY 1", (titles,))


def prune(server: Server) -> int:
    """This process's retention, now: how many journal entries went."""
    retention: Retention = server.state("retention")
    return server.run(retention.prune())


def cursors(ws: TransportWs, count: int, op_id: str = "1") -> list[int]:
    got = []
    for _ in range(count):
        message = ws.recv()
        assert message["type"] == "next" and message["id"] == op_id, message
        got.append(int(message["payload"]["data"]["todoChanges"]["cursor"]))
    return got


def test_one_group_delivers_every_change_once_in_order_while_writers_write(server: Server) -> None:
    members = [TransportWs(server.ws_url) for _ in range(20)]
    try:
        for ws in members:
            ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 20)
        assert server.call(lambda: len(groups(server))) == 1
        writers = [
            threading.Thread(target=insert, args=(server, [f"w{w} {i:03}" for i in range(10)]))
            for w in range(3)
            for _ in range(2)
        ]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        got = [cursors(ws, 60) for ws in members]
        assert got[0] == sorted(set(got[0]))  # in commit order, none twice
        assert all(g == got[0] for g in got)
        # A latecomer from cursor "0" reads the gap, then goes on live with the group.
        late = TransportWs(server.ws_url)
        late.subscribe(CHANGES, {"after": "0"})
        insert(server, ["after the late one"])
        assert cursors(late, 61) == [*got[0], got[0][-1] + 1]
        assert all(cursors(ws, 1) == [got[0][-1] + 1] for ws in members)
        late.close()
    finally:
        for ws in members:
            ws.close()
    wait_until(lambda: server.subscriber_count() == 0)
    assert server.call(lambda: len(groups(server))) == 0


def test_transport_ws_members_hold_no_task_of_their_own(server: Server) -> None:
    ws = TransportWs(server.ws_url)
    try:
        ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        tasks = server.call(lambda: len(asyncio.all_tasks()))
        for _ in range(5):
            ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 6)
        # Each joined its group; the task that joined it ended.
        wait_until(lambda: server.call(lambda: len(asyncio.all_tasks())) == tasks)
        ws.complete("3")
        wait_until(lambda: server.subscriber_count() == 5)
        insert(server, ["to the five"])
        ids = sorted(ws.recv()["id"] for _ in range(5))
        assert ids == ["1", "2", "4", "5", "6"]
    finally:
        ws.close()
    wait_until(lambda: server.subscriber_count() == 0)


def test_frames_differ_by_id_and_document_only(server: Server) -> None:
    with TransportWs(server.ws_url) as a, TransportWs(server.ws_url) as b:
        legacy = LegacyWs(server.ws_url)
        rest = connect(server.ws_url + "/api/todos/")
        try:
            a.subscribe(CHANGES)
            b.send({"id": "x", "type": "subscribe", "payload": {"query": CHANGES, "variables": {"after": None}}})
            b.send({"id": "y", "type": "subscribe", "payload": {"query": SMALL}})
            legacy.send({"id": "L", "type": "start", "payload": {"query": CHANGES}})
            wait_until(lambda: server.subscriber_count() == 5)
            # CHANGES with and without a cursor share a group; SMALL and REST have their own.
            assert server.call(lambda: len(groups(server))) == 3
            insert(server, ["shared"])
            first = a.recv()
            by_id = {m["id"]: m for m in (b.recv(), b.recv())}
            assert first["payload"] == by_id["x"]["payload"]
            assert first["payload"]["data"]["todoChanges"]["todo"]["title"] == "shared"
            assert by_id["y"]["payload"] == {"data": {"todoChanges": {"cursor": first["payload"]["data"]["todoChanges"]["cursor"]}}}
            assert legacy.recv() == {"type": "data", "id": "L", "payload": first["payload"]}
            assert json.loads(rest.recv(timeout=5))["todo"]["title"] == "shared"
            b.complete("x")
            wait_until(lambda: server.subscriber_count() == 4)
        finally:
            legacy.close()
            rest.close()
    wait_until(lambda: server.subscriber_count() == 0)
    assert server.call(lambda: len(groups(server))) == 0


def test_a_transport_ws_member_woken_and_cancelled_in_one_turn_leaves_all_it_held(server: Server) -> None:
    """Its group drops a task-less member (which starts its task) and a
    `complete` read in the same turn cancels that task before its first
    step, when none of its code runs: the member still leaves the hub's
    journal readers (else it pins the journal forever) and the gauge."""

    def gauge() -> float:
        return REGISTRY.get_sample_value("graphql_todos_subscriptions", {"transport": "graphql-transport-ws"}) or 0.0

    before = gauge()
    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        assert gauge() == before + 1

        def drop_and_cancel() -> None:
            [member] = server.hub.readers
            assert isinstance(member, Member)
            broadcast = member.on_signal.__self__  # type: ignore[union-attr]
            # As Group._fan_out drops it, then cleanup_operation cancels it.
            broadcast.following.group.members.discard(member)
            member.signal()
            broadcast.operation.task.cancel()

        server.call(drop_and_cancel)
        wait_until(lambda: server.call(lambda: len(server.hub.readers)) == 0)
        wait_until(lambda: gauge() == before)


class StalledClient:
    """A graphql-transport-ws client on a raw socket with a tiny receive
    buffer, so that not reading soon fills the server's write buffer."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.settimeout(10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        assert self.buffer.startswith(b"HTTP/1.1 101")
        self.buffer = self.buffer.split(b"\r\n\r\n", 1)[1]

    def send(self, message: dict[str, Any]) -> None:
        data, mask = json.dumps(message).encode(), os.urandom(4)
        assert len(data) < 1 << 16
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(struct.pack("!BBH", 0x81, 0x80 | 126, len(data)) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self.sock.recv(65536)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self) -> Any:
        first, length = self._read(2)
        assert first == 0x81, first  # one whole text frame
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        return json.loads(self._read(length))


@pytest.fixture(params=["websockets-sansio", "websockets"])
def any_ws_server(request: pytest.FixtureRequest, db_dsn: str) -> Iterator[Server]:
    """The app under both uvicorn WebSocket protocols: frames written
    straight to the transport, and (the other) through ASGI sends. Its
    journal is pruned (all but the newest) only when a test says so."""
    settings = make_server(db_dsn, journal_keep_rows=1, journal_prune_seconds=3600).settings
    srv = Server(settings, uvicorn_overrides={"ws": request.param})
    srv.start()
    yield srv
    srv.stop()


def test_a_stalled_member_does_not_hold_up_the_group_and_misses_nothing(any_ws_server: Server) -> None:
    server = any_ws_server
    stalled = StalledClient(server)
    stalled.send({"type": "connection_init"})
    assert stalled.recv()["type"] == "connection_ack"
    stalled.send({"id": "s", "type": "subscribe", "payload": {"query": CHANGES}})
    with TransportWs(server.ws_url) as live:
        live.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 2)
        sent: list[int] = []
        # Until the group drops the stalled member: the live one keeps up all along.
        while server.call(lambda: groups(server).drops) == 0:
            insert(server, [f"{len(sent) + i:05} " + "x" * 500 for i in range(50)])
            sent += cursors(live, 50)
        insert(server, ["after the drop"])
        sent += cursors(live, 1)
        # Dropped, it is no member of the group: the process still keeps
        # what it has to read.
        assert prune(server) > 0
        got: list[int] = []
        while len(got) < len(sent):
            message = stalled.recv()
            assert message["type"] == "next" and message["id"] == "s", message
            got.append(int(message["payload"]["data"]["todoChanges"]["cursor"]))
        assert got == sent
        # Caught up, it is back in the group for what comes next.
        insert(server, ["rejoined"])
        assert cursors(live, 1) == [sent[-1] + 1]
        assert stalled.recv()["payload"]["data"]["todoChanges"]["cursor"] == str(sent[-1] + 1)
    stalled.sock.close()
    wait_until(lambda: server.subscriber_count() == 0)



def lag_samples() -> float:
    return REGISTRY.get_sample_value("graphql_todos_commit_to_delivery_seconds_count") or 0.0


def test_lag_is_sampled_once_the_frames_are_written(any_ws_server: Server) -> None:
    server = any_ws_server
    with TransportWs(server.ws_url) as a, TransportWs(server.ws_url) as b, TransportWs(server.ws_url) as c:
        for ws in (a, b, c):
            ws.subscribe(SMALL)
        wait_until(lambda: server.subscriber_count() == 3)
        before = lag_samples()
        insert(server, [f"{n}" for n in range(5)])
        for ws in (a, b, c):
            assert len(cursors(ws, 5)) == 5
        # Direct writes: one sample per change for the group, after all its
        # members' frames are written; ASGI sends: one per frame, once sent.
        expected = 5 if server.uvicorn_overrides["ws"] == "websockets-sansio" else 15
        wait_until(lambda: lag_samples() - before >= expected)
        assert lag_samples() - before == expected


class StalledEvents:
    """An event stream read through a socket with a tiny receive buffer, so
    that not reading soon fills the server's write buffer."""

    def __init__(self, server: Server, path: str) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.conn.sock = sock
        self.conn.request("GET", path, headers={"accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200

    def next(self) -> dict[str, str]:
        """The next event (heartbeats, and blocks with no data, as an
        EventSource dispatches none, skipped), as sse_client reads them."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "data" in fields:
                return fields
            else:
                fields = {}


EVENT_STREAMS = {
    "rest": ("/api/todos/", lambda e: int(e["id"])),
    "graphql": (
        "/graphql?" + urlencode({"query": SMALL}),
        lambda e: int(json.loads(e["data"])["data"]["todoChanges"]["cursor"]),
    ),
}


@pytest.mark.parametrize("route", EVENT_STREAMS)
def test_a_stalled_event_stream_is_dropped_to_the_journal_and_misses_nothing(db_dsn: str, route: str) -> None:
    path, cursor_of = EVENT_STREAMS[route]
    # Long enough for the flood below: the stream is dropped from the group,
    # not ended (SEND_TIMEOUT_SECONDS, tested in test_stalled.py).
    with serving(db_dsn, send_timeout_seconds=300, journal_keep_rows=1, journal_prune_seconds=3600) as server:
        stalled = StalledEvents(server, path)
        try:
            with events(server.url + path) as live:
                wait_until(lambda: server.subscriber_count() == 2)
                assert server.call(lambda: len(groups(server))) == 1
                sent: list[int] = []
                # Until the group drops the stalled stream: the live one keeps up all along.
                while server.call(lambda: groups(server).drops) == 0:
                    insert(server, [f"{len(sent) + i:05} " + "x" * 500 for i in range(200)])
                    sent += [cursor_of(live.next()) for _ in range(200)]
                insert(server, ["after the drop"])
                sent.append(cursor_of(live.next()))
                assert prune(server) > 0
                got = [cursor_of(stalled.next()) for _ in sent]
                assert got == sent
                # Caught up, it is back in the group for what comes next.
                insert(server, ["rejoined"])
                assert cursor_of(live.next()) == cursor_of(stalled.next()) == sent[-1] + 1
        finally:
            stalled.conn.close()
        wait_until(lambda: server.subscriber_count() == 0)


MULTIPART = {"accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}


def test_multipart_subscribers_share_a_group(server: Server) -> None:
    groups_ = groups(server)
    body = {"query": CHANGES, "variables": {"after": None}}
    with ExitStack() as stack, ExitStack() as leaving:
        responses = [
            (leaving if i == 0 else stack).enter_context(
                httpx.stream("POST", server.url + "/graphql", json=body, headers=MULTIPART, timeout=10)
            )
            for i in range(8)
        ]
        ws = stack.enter_context(TransportWs(server.ws_url))
        ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 9)
        # One group for the multipart parts, one for the WebSocket frames.
        assert server.call(lambda: len(groups_)) == 2
        renders = server.call(lambda: groups_.renders)
        insert(server, ["over multipart"])
        payload = ws.recv()["payload"]
        # Each part: its headers, {"payload": the result}, the boundary.
        part = f'{{"payload":{json.dumps(payload, separators=(",", ":"))}}}\r\n--graphql'.encode()
        # Kept iterators: one dropped or left by a loop closes its response.
        readers = [response.iter_raw() for response in responses]
        for reader in readers:
            received = b""
            while not received.endswith(part):
                received += next(reader)
        assert server.call(lambda: groups_.renders) - renders == 2
        leaving.close()
        wait_until(lambda: server.subscriber_count() == 8)
    wait_until(lambda: server.subscriber_count() == 0)
    assert server.call(lambda: len(groups_)) == 0
