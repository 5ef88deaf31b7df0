"""Every place the app relies on uvicorn's internals: to bound a request
head's size and time, to shut down well, to send a response's head and body
in one write (all three HttpProtocol), to keep an open WebSocket small, to
let no connection outlive its close by more than a bound, and to tell
/metrics of the workers that died (Supervisor).

On SIGTERM (or Ctrl-C) uvicorn stops accepting, then calls `shutdown()` on
each open connection, all in one go, before it waits for them and long
before the app's lifespan shutdown runs. Its WebSocket protocol closes with a
bare 1012, and a streaming HTTP response (SSE, multipart) is left to run
until SHUTDOWN_SECONDS cut it. Our protocols do the same, with two changes:

- a WebSocket is closed with 1012 *and a reason* that tells the client what
  to do (every protocol on it: graphql-transport-ws, graphql-ws, RESTSockets);
- the first connection told to shut down closes the hub's subscriptions, so
  every stream ends now: an event stream or multipart response finishes
  with its proper end instead of being cut, and clients resume by cursor.

An open WebSocket keeps, for as long as it lives, what uvicorn made for
it: ours drops the handshake's request and response once the handshake is
sent (their headers, parsed twice over: some 3 kB), and its receive queue
and `writable` event are lighter ones (asyncio's Queue makes four deques
and Event one, 760 bytes each, before anyone waits). At 10,000 subscribers
that is some 65 MB.

A connection being closed waits, in asyncio (and uvloop), until its unsent
data has drained: for a client that stopped reading (its TCP window full),
forever, holding the socket and megabytes of kernel buffer. So every
connection's transport is a BoundedClose: closed, it is reset (RST, the
unsent data dropped) once that data has not moved for CLOSE_SECONDS
(uvicorn's own close-handshake timeout, or SEND_TIMEOUT_SECONDS when
shorter). A WebSocket's close frame goes out behind the unsent data at once
(uvicorn's send would first wait for the buffer to drain, forever), and the
connection is reset when the close handshake times out. An HTTP response
whose send the app gives up on (an event stream whose client stopped
reading) is over as if the client had left, and its connection is closed
the same way: uvicorn would log the app's return as an error.

These are the protocols `serve` gives uvicorn (cli.server_options), so each
worker of `serve --workers N` gets them too (uvicorn pickles its config).
tests/test_graphql_internals.py and tests/test_uvicorn_internals.py pin what
each override assumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import signal
import socket
import struct
import termios
from collections.abc import Callable, Generator, Iterator
from typing import Any, Literal, TypeVar, cast

import uvicorn
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.supervisors import Multiprocess
from websockets.frames import CloseCode
from websockets.protocol import State

from graphql_todos.core import metrics
from graphql_todos.live.hub import Hub

# What uvicorn writes, before a response, to a client that asked for it.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Service restart (RFC 6455 7.4.1, as IANA registers 1012).
RESTART_CODE = 1012
RESTART_REASON = "server restarting: resume from your cursor"
# uvicorn's WebSocket close-handshake timeout (its protocol's close_timeout).
CLOSE_SECONDS = 10.0


def close_seconds(app_state: dict[str, Any]) -> float:
    """How long a closing connection may wait on its peer: uvicorn's close
    timeout, or SEND_TIMEOUT_SECONDS when shorter (a peer that takes nothing
    for that long is stalled already)."""
    settings = app_state.get("settings")
    return CLOSE_SECONDS if settings is None else min(CLOSE_SECONDS, settings.send_timeout_seconds)


def reset(transport: asyncio.WriteTransport) -> None:
    """End the connection now, unsent data dropped: an RST, not a FIN (after
    a plain close the kernel would go on offering the data to a peer that
    reads nothing, keeping the connection for minutes)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def unsent(transport: asyncio.WriteTransport) -> int:
    """Bytes the peer has not taken yet: the transport's buffer, and the
    kernel's send queue where it tells (Linux's SIOCOUTQ; the transport's
    buffer alone moves only once the kernel's has half drained)."""
    count = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and hasattr(termios, "TIOCOUTQ"):
        with contextlib.suppress(OSError, ValueError):
            count += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    return count


class BoundedClose:
    """A connection's transport whose close cannot wait forever: the unsent
    data gets `seconds` at a time to move; when none moved, the connection
    is reset. Everything else is the transport's own."""

    __slots__ = ("_closing", "_loop", "_seconds", "_transport", "write")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._transport = transport
        self._loop = loop
        self._seconds = seconds
        self._closing = False
        # The hot path, bound once (broadcast frames are written with it).
        self.write = transport.write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        if not self._closing and self._transport.get_write_buffer_size():
            self._watch(unsent(self._transport))
        self._closing = True
        self._transport.close()

    def _watch(self, before: int) -> None:
        self._loop.call_later(self._seconds, self._check, before)

    def _check(self, before: int) -> None:
        # An empty buffer: asyncio has closed the socket (the kernel sends
        # the rest); otherwise the connection is still ours to end.
        if not self._transport.get_write_buffer_size():
            return
        now = unsent(self._transport)
        if now >= before:
            reset(self._transport)
        else:
            self._watch(now)


def _end_streams(app_state: dict[str, Any]) -> None:
    # Assumes: uvicorn hands each protocol the lifespan state as `app_state`
    # (the dict app.lifespan yields, with the hub in it once started).
    hub: Hub | None = app_state.get("hub")
    if hub is not None:
        hub.close_subscriptions()


T = TypeVar("T")


class LeanEvent(asyncio.Event):
    """asyncio.Event, its list of waiters made only when one waits."""

    def __init__(self) -> None:  # not asyncio's: no deque
        self._value = False
        self._waiting: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            for waiter in self._waiting or ():
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> Literal[True]:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiting is None:
            self._waiting = []
        self._waiting.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiting.remove(waiter)
            if not self._waiting:
                self._waiting = None


class LeanQueue(asyncio.Queue[T]):
    """The part of asyncio.Queue uvicorn's protocol uses (unbounded
    `put_nowait`, `get`, `empty`, `qsize`), on a list and a LeanEvent."""

    def __init__(self) -> None:  # not asyncio's: no deques
        self._items: list[T] = []
        self._arrived = LeanEvent()

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._arrived.set()

    async def get(self) -> T:
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, closing with a reason on
    shutdown, counting messages refused for their size, and lighter (see
    above).

    Assumes, to be lighter: of `queue` uvicorn uses only the methods
    LeanQueue has, of `writable` only `set`, `clear`, `wait` (and
    graphql_internals.direct_write `is_set`); it reads `request` and
    `response` only in `handle_connect` and, until the handshake is
    complete, in `send`.

    Assumes, for a handshake refused in HTTP: `send` sets `close_sent` once
    the refusal's last body is written, and with `handshake_complete` set
    `run_asgi` logs nothing and `send_500_response` sends nothing (as after
    `connection_lost`, which sets it too).

    Assumes (tests/test_metrics.py pins it): a message over `ws_max_size`
    makes websockets close the connection with 1009, which uvicorn carries
    out in `handle_parser_exception`; and that `send` raises
    ClientDisconnected first thing when `disconnected` is set.

    Assumes, for a text message that is not UTF-8 (closed with 1007, quietly):
    uvicorn hands each whole message to `send_receive_event_to_app`, its
    frames in `frames` and its kind in `curr_msg_data_type`, and decodes it
    there; `handle_parser_exception` ends the connection once `conn` has a
    close to send.

    On shutdown it assumes: its own `shutdown()` (for an open, handshaken connection) queues
    `websocket.disconnect` for the app, writes the close frame that
    `conn.send_close` makes, and closes the transport, leaving `close_sent`
    unset (so later sends of the app fail as on a lost connection); with
    `close_sent` set, or before the handshake, it has nothing to say.

    Assumes, to close a connection whose peer stopped reading (see above):
    `send` awaits `writable` before anything, then answers the app's
    `websocket.close` on an open connection as `_close` does, with a timer of
    `close_timeout` seconds in `close_timer` that closes the transport;
    `handle_close` cancels that timer when the peer answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()
        self.writable = LeanEvent()
        self.writable.set()
        self.close_timeout = close_seconds(self.app_state)

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and self._open():
            return self._close(message.get("code", 1000), message.get("reason") or "")
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # Sent: nothing reads them again.
            del self.request, self.response
        elif message["type"] == "websocket.http.response.body" and self.close_sent:
            # A handshake refused in HTTP (403, 429) is answered and over, but
            # uvicorn leaves handshake_complete unset, so its run_asgi would
            # log "ASGI callable returned without completing handshake" as an
            # error for every refusal.
            self.handshake_complete = True

    def send_receive_event_to_app(self) -> None:
        # uvicorn decodes a text message itself; one that is not UTF-8 it
        # logs as an error with a traceback before closing with 1007, and a
        # close from the client already in hand makes that close raise too
        # ("Fatal error on transport"). RFC 6455's answer, without either.
        if self.curr_msg_data_type == "text" and not self.close_sent and not _utf8(self.frames):
            self.frames = []
            if self.conn.state is State.OPEN:
                self.conn.send_close(CloseCode.INVALID_DATA, "a text message must be UTF-8")
            self.handle_parser_exception()
            return
        super().send_receive_event_to_app()


    def _open(self) -> bool:
        return (
            self.handshake_complete
            and self.initial_response is None
            and not (self.close_sent or self.disconnected or self.transport.is_closing())
            and self.conn.state is State.OPEN
        )

    def _close(self, code: int, reason: str) -> None:
        """uvicorn's close, but without waiting for the unsent data to drain
        first (for a peer that stopped reading: forever): the close frame goes
        behind it, and a close handshake that does not end in time resets
        the connection, whatever is still unsent."""
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, reset, self.transport)

    def handle_parser_exception(self) -> None:
        if self.conn.close_sent is not None and self.conn.close_sent.code == CloseCode.MESSAGE_TOO_BIG:
            metrics.refused("frame_size")
        super().handle_parser_exception()
        # Closed by the server, not the app: a send of the app's under way
        # (a change being broadcast) must fail as on a lost connection, not
        # with uvicorn's RuntimeError for a send after the app's own close
        # (which a stream logs as its failure).
        self.disconnected = True

    def shutdown(self) -> None:
        _end_streams(self.app_state)
        if self.close_sent or self.disconnected or not self.handshake_complete or self.conn.state is not State.OPEN:
            return super().shutdown()
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": RESTART_CODE, "reason": RESTART_REASON})
        self.conn.send_close(RESTART_CODE, RESTART_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


def _utf8(frames: list[bytes]) -> bool:
    try:
        b"".join(frames).decode()
    except UnicodeDecodeError:
        return False
    return True


# Far more than any browser sends; httptools itself takes heads of any size.
MAX_HEAD_BYTES = 65536
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with five changes.

    - A connection whose request head has not arrived within REQUEST_SECONDS
      is closed, and one whose head is over MAX_HEAD_BYTES gets 431. Assumes
      (tests/test_security.py pins it): uvicorn times out only idle keep-alive
      connections, so a client that connects and sends nothing, or its
      headers a byte at a time, would hold a connection forever; and it calls
      `on_headers_complete` once a head is read and `on_response_complete`
      once an answer is sent.
    - Streams end on shutdown. Assumes: uvicorn's `shutdown()` lets a
      response in progress run on (it only turns keep-alive off).
    - Each response's head leaves with its first body write (HeadWithBody).
      Assumes: `on_headers_complete` makes the request's RequestResponseCycle,
      which writes to its `transport` with `write`, `close` and `is_closing`
      only: `100 Continue` as one write before the response starts, then the
      head as one write, then the body (every response but one to HEAD writes
      it, if only b"").
    - Its transport is a BoundedClose. Assumes: uvicorn keeps the transport
      `connection_made` gets as `transport`, hands that one to the request
      cycles and to a WebSocket it upgrades to, and reaches the socket only
      through it.
    - A send the app gives up on lets the connection go (LettingGo).
      Assumes: `on_headers_complete` gives the request cycle it makes the
      connection's `flow`, of which the cycle uses `write_paused`, `drain`
      and `resume_reading`, and `drain` is all its `send` awaits (while
      writing is paused); `run_asgi` logs nothing when the app returns from
      a cycle `disconnected` (as `connection_lost` leaves it), whose `send`
      then writes nothing."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_tail = b""
    _answered = False

    def __init__(self, *args: Any, request_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_seconds = request_seconds

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            # Still reading a head: count it up to its blank line (which may
            # straddle two reads), not the body that may follow.
            end = (self._head_tail + data).find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_tail = data[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                metrics.refused("head_size")
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # A WebSocket upgraded from here gets this transport too.
        bounded = BoundedClose(transport, self.loop, close_seconds(self.app_state))
        super().connection_made(cast(asyncio.Transport, bounded))
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        earlier = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade makes no cycle (the one there is an earlier request's).
        if cycle is not None and cycle is not earlier:
            cycle.flow = LettingGo(cycle, self.flow, self.transport)  # type: ignore[assignment]
            if self.scope["method"] != "HEAD":
                cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self._answered = True
        # A pipelined request waiting its turn has its head already.
        if not self.pipeline:
            self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        _end_streams(self.app_state)
        super().shutdown()

    def _arm(self) -> None:
        self._disarm()
        self._head_bytes, self._head_tail = 0, b""
        self._head_timer = self.loop.call_later(self.request_seconds, self._expire)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expire(self) -> None:
        if not self.transport.is_closing():
            # A keep-alive connection that merely stays idle is not refused anything.
            if self._head_bytes or not self._answered:
                metrics.refused("head_timeout")
            self.transport.close()


class LettingGo:
    """A request's view of its connection's flow control, where a send the
    app cancels while it waits for the peer to take the data before (an
    event stream's SEND_TIMEOUT_SECONDS: the client stopped reading) lets
    the connection go. Nothing the send had was written, so the response
    cannot end well, and the peer is the one that failed it: the request is
    over as after connection_lost (uvicorn would log the app's return as an
    error), and the connection is closed (BoundedClose resets it when its
    data does not move)."""

    __slots__ = ("_cycle", "_flow", "_transport")

    def __init__(self, cycle: RequestResponseCycle, flow: FlowControl, transport: asyncio.Transport) -> None:
        self._cycle = cycle
        self._flow = flow
        self._transport = transport

    @property
    def write_paused(self) -> bool:
        return self._flow.write_paused

    def resume_reading(self) -> None:
        self._flow.resume_reading()

    async def drain(self) -> None:
        try:
            await self._flow.drain()
        except asyncio.CancelledError:
            self._cycle.disconnected = True
            self._transport.close()
            raise


class HeadWithBody:
    """A request's transport, holding the response head until the body's
    first write: two writes in a row become one send(), one syscall and
    one segment (a quarter of a cached reply's CPU went to the two). A head
    whose body does not follow at once (a stream) leaves at the end of this
    turn of the event loop; everything else goes straight through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started and data != CONTINUE:
            self._started = True
            self._head = data
            self._loop.call_soon(self._flush)
            return
        head, self._head = self._head, None
        self._transport.write(data if head is None else head + data)

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def http_protocol(request_seconds: float) -> Callable[..., Any]:
    """uvicorn's `http=`: a partial of a module-level class, which --workers
    can pickle to each worker."""
    return functools.partial(HttpProtocol, request_seconds=request_seconds)


class Server(uvicorn.Server):
    """uvicorn's server of a single process, whose clean shutdown on SIGTERM
    exits with status 0: uvicorn raises the signal again once shut down, so
    the process died of it and `make run` reported "Terminated". Ctrl-C
    (SIGINT) is still raised again, as a shell expects.

    Assumes: `capture_signals` records each signal in `_captured_signals`
    and raises them again after its `yield` returns."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals = [sig for sig in self._captured_signals if sig != signal.SIGTERM]


class Supervisor(Multiprocess):
    """uvicorn's supervisor of `serve --workers N` (started as uvicorn.run
    starts it), marking each worker it replaces or retires dead for
    /metrics: prometheus_client sums a `livesum` gauge's files until their
    pid is marked dead, so a SIGKILLed worker's open connections would be
    counted forever.

    Assumes: the workers are `processes` (each with its `pid`), replaced
    only by `keep_subprocess_alive` (a dead or hung worker killed, joined and
    started anew) and by the handlers `handle_signals` calls (SIGHUP restarts
    them, SIGTTOU retires one), which `run` calls in turn."""

    def keep_subprocess_alive(self) -> None:
        with self._marking_gone():
            super().keep_subprocess_alive()

    def handle_signals(self) -> None:
        with self._marking_gone():
            super().handle_signals()

    @contextlib.contextmanager
    def _marking_gone(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        try:
            yield
        finally:
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    metrics.worker_gone(pid)
