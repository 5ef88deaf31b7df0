"""The soak's subscribers: many graphql-transport-ws connections per process,
read as raw WebSocket frames, so that a million frames cost the client little
CPU (a websockets client and json.loads per frame were what held the full
soak to a few changes a second on two cores).

A `next` frame is recognized by its exact bytes, the expected prefix, a
cursor of digits and the expected suffix, so nothing the server sends is
counted without being checked; any other message is decoded as JSON and
answered (ping) or reported (error, complete, close). Each process returns,
for its subscribers, how many positions were lost, duplicated or out of
order against the committed ones.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import struct
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection

CHANGES = "subscription($after: String) { todoChanges(after: $after) { cursor } }"
_PREFIX = b'{"id":"1","type":"next","payload":{"data":{"todoChanges":{"cursor":"'
_SUFFIX = b'"}}}}'
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


@dataclass
class Tally:
    """What one process's subscribers received, against the committed positions."""

    subscribers: int
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    failures: int = 0
    cpu_seconds: float = 0.0


def _frame(opcode: int, payload: bytes) -> bytes:
    # A client's frames are masked (RFC 6455 5.3).
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    key = int.from_bytes(mask * (length // 4 + 1), "big") >> (8 * (4 - length % 4))
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big") if length else b""
    return head + mask + masked


def _send_json(transport: asyncio.Transport, message: dict[str, object]) -> None:
    transport.write(_frame(_TEXT, json.dumps(message).encode()))


class _Subscriber(asyncio.Protocol):
    def __init__(self, host: str, after: str, expected: int) -> None:
        self.host = host
        self.after = after
        self.expected = expected
        self.positions = array("q")
        self.subscribed = asyncio.get_running_loop().create_future()
        self.live = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.failure: str | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET /graphql HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                return self._fail(f"upgrade refused: {bytes(buffer[:end])!r}")
            self._upgraded = True
            start = end + 4
            assert self.transport is not None
            _send_json(self.transport, {"type": "connection_init"})
        size = len(buffer)
        while size - start >= 2:
            opcode, length = buffer[start] & 0x0F, buffer[start + 1] & 0x7F
            offset = start + 2
            if length == 126:
                if size - start < 4:
                    break
                length, offset = int.from_bytes(buffer[start + 2 : start + 4], "big"), start + 4
            elif length == 127:
                if size - start < 10:
                    break
                length, offset = int.from_bytes(buffer[start + 2 : start + 10], "big"), start + 10
            if size < offset + length:
                break
            payload = bytes(buffer[offset : offset + length])
            start = offset + length
            if opcode == _TEXT and payload.startswith(_PREFIX) and payload.endswith(_SUFFIX):
                # int() refuses anything but digits: the frame is exactly as expected.
                self.positions.append(int(payload[len(_PREFIX) : -len(_SUFFIX)]))
                if len(self.positions) == 1:
                    self.live.set_result(None)
                if len(self.positions) >= self.expected and not self.done.done():
                    self.done.set_result(None)
            else:
                self._other(opcode, payload)
        del buffer[:start]

    def _other(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == _PING:
            self.transport.write(_frame(_PONG, payload))
        elif opcode == _CLOSE:
            self._fail(f"closed by the server: {payload!r}")
        elif opcode == _TEXT:
            message = json.loads(payload)
            if message["type"] == "connection_ack":
                payload_ = {"query": CHANGES, "variables": {"after": self.after}}
                _send_json(self.transport, {"id": "1", "type": "subscribe", "payload": payload_})
                self.subscribed.set_result(None)
            elif message["type"] == "ping":
                _send_json(self.transport, {"type": "pong"})
            elif message["type"] != "pong":
                self._fail(f"unexpected message: {message}")

    def _fail(self, why: str) -> None:
        self.failure = self.failure or why
        for future in (self.subscribed, self.live, self.done):
            if not future.done():
                future.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"connection lost: {exc}")

    def tally(self, after: int, changes: int, into: Tally) -> None:
        got = self.positions
        expected = set(range(after + 1, after + 1 + changes))
        distinct = set(got)
        into.received += len(got)
        into.lost += len(expected - distinct)
        into.duplicated += len(got) - len(distinct)
        into.out_of_order += any(a > b for a, b in itertools.pairwise(got))
        into.failures += self.failure is not None


async def _run(port: int, count: int, after: str, changes: int, seconds: float, parent: Connection) -> Tally:
    loop = asyncio.get_running_loop()
    host = f"127.0.0.1:{port}"
    subscribers: list[_Subscriber] = []
    opening = asyncio.Semaphore(100)  # not a thousand handshakes at once

    async def open_one() -> None:
        async with opening:
            _, protocol = await loop.create_connection(lambda: _Subscriber(host, after, changes), "127.0.0.1", port)
            subscribers.append(protocol)
            await asyncio.wait_for(protocol.subscribed, 60)

    await asyncio.gather(*(open_one() for _ in range(count)))
    parent.send("subscribed")
    # The first change (the parent makes it alone) shows every subscription
    # registered with the server's hub: only then do the writers start.
    await asyncio.wait_for(asyncio.gather(*(s.live for s in subscribers)), seconds)
    parent.send("live")
    # Until each has as many as will be made (or one fails), then a moment
    # for anything more, which would be a duplicate.
    await asyncio.wait([s.done for s in subscribers], timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
    await asyncio.sleep(0.5)
    tally = Tally(count)
    for subscriber in subscribers:
        subscriber.tally(int(after), changes, tally)
        if subscriber.transport is not None:
            subscriber.transport.close()
    return tally


def run_clients(port: int, count: int, after: str, changes: int, seconds: float, parent: Connection) -> None:
    """A process's share of the subscribers (its target): sends "subscribed",
    "live" once each has the first change, then its Tally once they have all
    (or `seconds` have passed)."""
    started = time.process_time()
    tally = asyncio.run(_run(port, count, after, changes, seconds, parent))
    tally.cpu_seconds = time.process_time() - started
    parent.send(tally)
