"""uvicorn's `websockets-sansio` protocol, made to close with a reason on shutdown, refuse what
it must quietly, let no close wait on a peer that stopped reading, keep an open WebSocket small and
open one from the request httptools parsed, refuse a handshake in JSON (JsonRefusals); and the
direct frame writer broadcasts use on it."""

from __future__ import annotations

import asyncio
import binascii
import contextvars
import email.utils
import functools
import hashlib
import http
import json
import logging
import struct
import uuid
from collections.abc import Awaitable, Callable
from types import MappingProxyType, MethodType
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from starlette.websockets import WebSocket
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent, WebSocketReceiveEvent
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import SecurityError
from websockets.frames import CloseCode, Frame, apply_mask
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request, Response
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.utils import GUID

from graphql_todos.core import metrics
from graphql_todos.core.bounded import bounded_send
from graphql_todos.core.errors import ClientStalled, error_body
from graphql_todos.internals.uvicorn_close import close_seconds, end_streams, reset
from graphql_todos.internals.uvicorn_keepalive import Pinger, pinger

# Service restart (RFC 6455 7.4.1, as IANA registers 1012).
RESTART_CODE = 1012
RESTART_REASON = "server restarting: resume from your cursor"
# How uvicorn's WebSocket protocols log each handshake on uvicorn.error: the
# client, the target with its query string, then how it went ([accepted],
# 403, another status); ours logs its [accepted] the same way.
HANDSHAKE_LINE = '%s - "WebSocket %s"'

T = TypeVar("T")


class LeanEvent(asyncio.Event):
    """asyncio.Event, its list of waiters made only when one waits."""

    def __init__(self, value: bool = False) -> None:  # not asyncio's: no deque
        # `value`: made set, without its `set` call (a connection's `writable`).
        self._value = value
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
    `put_nowait`, `empty`, `qsize`), on two lists, read by
    WebSocketProtocol.receive alone (uvicorn's only `get`): a getter waits
    on a future of its own (an Event, and its `wait` coroutine, were two
    objects more that every open socket kept as it waited for a message),
    and an item put while one waits is that future's result, never in the
    list. Its list of items is made only while it holds one: an open
    socket's queue is empty nearly always, and its list was one more object
    for the collector."""

    def __init__(self) -> None:  # not asyncio's: no deques
        self._items: list[T] | None = None
        self._getters: list[asyncio.Future[T]] = []

    def handed(self, item: T) -> bool:
        """put_nowait; True when a getter was waiting: the item is its
        future's result (listed for the getter to take, it cost a list made
        and three calls a client's every message)."""
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(item)
                return True
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        return False

    def withdrawn(self, getter: asyncio.Future[T]) -> None:
        """A getter's receive was cancelled: forgotten, and an item handed to
        it but never returned is the next one's, first in line (a getter waits
        only while the list is empty: what came after it is behind it)."""
        if getter.done() and not getter.cancelled():
            item = getter.result()
            if self._items:
                self._items.insert(0, item)
            else:
                self.handed(item)
            return
        getter.cancel()
        if getter in self._getters:
            self._getters.remove(getter)

    # The same function (its answer unheard): no call more per item.
    put_nowait = handed  # type: ignore[assignment]

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, closing with a reason on
    shutdown, counting messages refused for their size, and lighter: it
    drops the handshake's request and response once sent (some 3 kB), and
    its queue and `writable` event make no deques (760 bytes each), and
    its __init__ makes no asyncio Queue and Event to throw away (_lean_init).

    Assumes, to be lighter: of `queue` uvicorn uses only the methods
    LeanQueue has, of `writable` only `set`, `clear`, `wait` (and
    direct_write below `is_set`); it reads `request` and
    `response` only in `handle_connect` and, until the handshake is
    complete, in `send`.

    Assumes, for a handshake refused in HTTP: `send` sets `close_sent` once
    the refusal's last body is written, and with `handshake_complete` set
    `run_asgi` logs nothing and `send_500_response` sends nothing (as after
    `connection_lost`, which sets it too).

    Assumes (tests/core/test_metrics.py pins it): a message over `ws_max_size`
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

    Assumes, to close a connection whose peer stopped reading (uvicorn_close):
    `send` awaits `writable` before anything, then answers the app's
    `websocket.close` on an open connection as `_close` does, with a timer of
    `close_timeout` seconds in `close_timer` that closes the transport;
    `handle_close` cancels that timer when the peer answers."""

    # Opened by `open_upgraded`: the 101's Sec-WebSocket-Accept value, until it is sent.
    _accept: bytes | None = None
    # The loop's pinger while this connection is kept alive (uvicorn_keepalive).
    _pinger: Pinger | None = None
    queue: LeanQueue[ASGIReceiveEvent]

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None, *, opened: bool = False, close_timeout: float | None = None,
    ) -> None:
        # `opened`: for `open_upgraded` (HttpProtocol asks it only of a loaded
        # config without per-message deflate, which _lean_init serves).
        # `close_timeout`: close_seconds of this app state, which the HTTP
        # protocol upgrading the connection asked already.
        if config.ws_per_message_deflate or not config.loaded:
            super().__init__(config, server_state, app_state, _loop)
            # uvicorn's ServerProtocol refusing in JSON (JsonRefusals keeps no state of its own).
            self.conn.__class__ = JsonRefusals
        else:
            self._lean_init(config, server_state, app_state, _loop, opened)
        self.queue = LeanQueue()
        self.writable = LeanEvent(True)
        self.close_timeout = close_seconds(self.app_state) if close_timeout is None else close_timeout

    def _lean_init(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None, opened: bool,
    ) -> None:
        """uvicorn's __init__ without per-message deflate, less the asyncio
        Queue and Event that __init__ replaces at once, and the lookups it
        repeats per connection (3-6% of the samples of an open, py-spy);
        `opened`, its websockets protocol an OpenedServer.
        tests/internals/test_uvicorn_upgrade.py checks it sets what uvicorn's
        sets, to the same values."""
        self.__dict__.update(_FRESH)
        self.config = config
        self.app = config.loaded_app
        self.loop = loop or asyncio.get_event_loop()
        self.logger = _LOGGER
        self.root_path = config.root_path
        self.asgi_version = asgi_version(config)
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.conn = (
            OpenedServer(config.ws_max_size, _LOGGER)
            if opened
            else JsonRefusals(extensions=[], max_size=config.ws_max_size, logger=_LOGGER)
        )
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.frames = []

    def handle_connect(self, event: Request) -> None:
        """uvicorn's, a Sec-WebSocket-Key past ASCII read as latin-1 first:
        websockets before 17 reads such a byte as a surrogate, which its key
        check encodes again (a 500, and "opening handshake failed" logged
        with a traceback, for a client's bad header); read as 17 reads it,
        the key is refused as any key not base64 is (400). Only upgrades
        that upgrade_accept leaves to uvicorn's path come here."""
        keys = event.headers.get_all("Sec-WebSocket-Key")
        if not all(key.isascii() for key in keys):
            del event.headers["Sec-WebSocket-Key"]
            for key in keys:
                event.headers["Sec-WebSocket-Key"] = key.encode("latin-1", "surrogateescape").decode("latin-1")
        super().handle_connect(event)

    def connection_handed(
        self, transport: asyncio.Transport, server: tuple[str, int | None] | None, client: tuple[str, int] | None,
        tls: bool,
    ) -> None:
        """uvicorn's `connection_made`, with the addresses the HTTP protocol
        upgrading the connection found (asking the transport again was 3% of
        an open's CPU). Assumes: `connection_made` does no more than this
        (and a trace log)."""
        self.connections.add(self)
        self.transport = transport
        self.server = server
        self.client = client
        self.scheme = "wss" if tls else "ws"

    def open_upgraded(self, target: bytes, headers: list[tuple[bytes, bytes]], accept: bytes) -> None:
        """uvicorn's `handle_connect`, for an upgrade httptools parsed and
        `upgrade_accept` found sound (its Sec-WebSocket-Accept `accept`), on
        a protocol made `opened` (its websockets protocol open, reading
        frames): the same scope, from the bytes at hand, without serializing
        the request for websockets to parse it again, and a 101 written as
        bytes at `websocket.accept` (`_switch`). uvicorn's own path made a
        quarter of an open's CPU (py-spy, bench/opening.py).

        Assumes, of websockets' ServerProtocol: its sends of a refusal
        (`reject`, `send_response`) work in any state. Of uvicorn:
        `handle_connect` does no more than this (the scope,
        `websocket.connect` queued, `run_asgi` as a task in `tasks`).

        The scope's `state` and `extensions` are shared by every socket, read
        only (uvicorn gives each a copy of the app's state, 15 entries, and
        two dicts of extensions: 0.6 KiB and three objects more per open
        socket for the collector). Nothing writes a socket's: the app's state
        is the lifespan's, and a write would raise, not leak to the others."""
        self.handshake_initiated = True
        self._accept = accept
        raw_path, _, query_string = target.partition(b"?")
        path = raw_path.decode("ascii")
        # A tuple (of strings: the collector stops tracking it), where
        # uvicorn's list is one more object per open socket for it to walk.
        # (Made from a list: a generator into tuple() is twice as slow; the
        # tokens stripped by str.strip in C, not a comprehension's call.)
        offered: list[str] = []
        for name, value in headers:
            if name == b"sec-websocket-protocol":
                offered += map(str.strip, value.decode("ascii", "surrogateescape").split(","))
        subprotocols = tuple(offered)
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            # unquote hands back a path with no escape as it is: not called
            # for one (a call an open).
            "path": self.root_path + (unquote(path) if "%" in path else path),
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query_string,
            "headers": headers,
            "subprotocols": subprotocols,
            # Read-only mappings where uvicorn's type says dicts (not cast():
            # a call and a generic alias made per open).
            "state": _read_only(self.app_state),  # type: ignore[typeddict-item]
            "extensions": _EXTENSIONS,  # type: ignore[typeddict-item]
        }
        # The connect, in the queue just made (empty, nothing waiting on
        # it): its put_nowait's call an open.
        self.queue._items = [{"type": "websocket.connect"}]
        # The task's own context for its done callback too (uvicorn's only
        # discards the task): add_done_callback would copy one more, kept
        # beside every open socket for the collector to walk.
        context = contextvars.copy_context()
        task = self.loop.create_task(self.run_asgi(), context=context)
        task.add_done_callback(self.on_task_complete, context=context)
        self.tasks.add(task)

    async def receive(self) -> ASGIReceiveEvent:
        """uvicorn's (reading resumed once paused and the queue empty), taking
        from the LeanQueue itself: where uvicorn awaits `queue.get()`, a
        coroutine frame more, made and resumed, for each of a socket's
        messages; and with the protocol's loop at hand (asyncio's
        `get_running_loop` is a system call, getpid, on Python 3.11). A
        message put while it waits is its getter's result: never listed, so
        no pause to resume."""
        queue = self.queue
        items = queue._items
        if not items:
            getter: asyncio.Future[ASGIReceiveEvent] = self.loop.create_future()
            queue._getters.append(getter)
            try:
                return await getter
            except asyncio.CancelledError:
                queue.withdrawn(getter)
                raise
        message = items.pop(0)
        if not items:
            queue._items = None
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
        return message

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and self._open():
            return self._close(message.get("code", 1000), message.get("reason") or "")
        if message["type"] == "websocket.accept" and self._accept is not None and self.initial_response is None:
            return await self._switch(message)
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

    def data_received(self, data: bytes) -> None:
        text = _whole_text(self.conn, data)
        if text is not None:
            # What uvicorn's handle_text does with the frame websockets'
            # parser would make of it (a client's every message to open).
            self.curr_msg_data_type = "text"
            self.frames = [text]
            return self.send_receive_event_to_app()
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            self._refuse_unparsed(self.conn.handshake_exc.__cause__)

    def _refuse_unparsed(self, cause: BaseException | None) -> None:
        """A handshake request websockets could not read (a POST, a body,
        over its limits of MAX_NUM_HEADERS headers and MAX_LINE_LENGTH bytes
        a line): websockets only ends its side and uvicorn never answers, so
        the client would wait for ever. Answered here in HTTP, naming what
        websockets found.

        Assumes (tests/internals/test_uvicorn_upgrade.py pins it): a request
        websockets' ServerProtocol cannot parse leaves `handshake_exc` set
        (the parser's error as its `__cause__`) and no Request event, so
        uvicorn's `handle_connect` is never called."""
        self.handshake_initiated = self.handshake_complete = self.close_sent = True
        too_large = isinstance(cause, SecurityError)
        if too_large:
            metrics.refused("head_size")
        reason = f"invalid WebSocket handshake: {cause}"
        self.logger.info("%s - WebSocket handshake refused: %s", self.client, reason)
        response = self.conn.reject(431 if too_large else 400, reason)
        self.transport.write(response.serialize())
        self.transport.close()

    def send_receive_event_to_app(self) -> None:
        """uvicorn's: the whole message (in `frames`, of `curr_msg_data_type`)
        queued for the app, nothing once the app has closed; but a text
        message that is not UTF-8 closes with RFC 6455's answer (uvicorn logs
        it as an error with a traceback before closing with 1007, and a close
        from the client already in hand makes that close raise too: "Fatal
        error on transport"); and reading is paused (until `receive` takes it)
        only for a message no `receive` was waiting for. uvicorn pauses for
        every one: with the app waiting, as it nearly always is, a pause and a
        resume per message (the event loop's watcher changed twice: system
        calls), for a message taken at the loop's next turn. The queue still
        holds at most one message more than uvicorn's would.

        Assumes (tests/internals/test_uvicorn_websocket.py pins it): uvicorn's
        does no more than this, and its `receive` resumes reading once paused
        and the queue empty."""
        frames, self.frames = self.frames, []
        if self.close_sent:
            return
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        message: WebSocketReceiveEvent
        if self.curr_msg_data_type == "text":
            try:
                message = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                if self.conn.state is State.OPEN:
                    self.conn.send_close(CloseCode.INVALID_DATA, "a text message must be UTF-8")
                self.handle_parser_exception()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        if not self.queue.handed(message) and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    async def _switch(self, message: ASGISendEvent) -> None:
        """uvicorn's answer to `websocket.accept` (the headers of the server,
        then the app's, then its subprotocol), for a connection
        `open_upgraded` opened."""
        # LeanEvent's wait, not awaited when set (as it is but while the
        # transport is paused): a coroutine's call an open.
        if not self.writable._value:  # type: ignore[attr-defined] # LeanEvent's flag (made so above)
            await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(HANDSHAKE_LINE + " [accepted]", get_client_addr(self.scope), get_path_with_query_string(self.scope))
        head = [_SWITCHING, self._accept or b"", b"\r\n"]
        for name, value in (*self.default_headers, *message.get("headers", ())):  # type: ignore[misc]
            head += (name.lower(), b": ", value, b"\r\n")
        subprotocol = message.get("subprotocol")
        if isinstance(subprotocol, str) and subprotocol:
            head += (b"Sec-WebSocket-Protocol: ", subprotocol.encode(), b"\r\n")
        head.append(b"\r\n")
        self._accept = None
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.transport.write(b"".join(head))
            self.start_keepalive()

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

    def start_keepalive(self) -> None:
        """uvicorn's keep-alive, by the loop's pinger instead of a ping timer
        and a pong timer per connection.

        Assumes, of uvicorn: `start_keepalive` (at the handshake's end) and
        `stop_keepalive` (on `connection_lost` and `shutdown`) are the only
        callers of the timers' methods (`schedule_ping`,
        `send_keepalive_ping`) but `handle_pong`; `handle_pong` is called for
        every pong frame; `keepalive_timeout` fails the connection (1011,
        transport closed) whatever its timers."""
        if self.ping_interval is not None and self.ping_interval > 0 and self._pinger is None:
            self._pinger = pinger(self.loop, self.ping_interval, self.ping_timeout)
            self._pinger.add(self)

    def stop_keepalive(self) -> None:
        if self._pinger is not None:
            self._pinger.discard(self)
            self._pinger = None
        self.pending_ping_payload = None

    def handle_pong(self, event: Frame) -> None:
        # uvicorn's check: a pong of the ping in flight, or nothing.
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self._pinger is not None:
            self._pinger.answered(self)

    def keepalive_ping(self, payload: bytes, now: float) -> bool:
        """uvicorn's `send_keepalive_ping` for the pinger (`payload` its id,
        sent at `now`), without the pong timer: False when the connection is
        closing (nothing to keep alive)."""
        if self.close_sent or self.transport.is_closing():
            return False
        self.pending_ping_payload = payload
        self.ping_sent_at = now
        self.conn.send_ping(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def keepalive_timeout(self) -> None:
        """uvicorn's, but the connection is failed as a stalled client's
        (CLIENT_STALLED, 4408, ClientStalled's reason), not with 1011: a peer
        whose ping goes unanswered has stopped reading or is gone, which is
        not the server's fault; one that reads again later learns why and
        resumes from its last cursor, as one stalled on a send does. It
        covers what a bounded send cannot: a stalled client whose unread
        frames all fit in the buffers (refusals, then nothing more to send).

        Assumes, of uvicorn (tests/internals/test_uvicorn_keepalive.py):
        its `keepalive_timeout` fails the connection and closes the
        transport, with no other state than `pong_timer` (the pinger's
        connections have none) and `pending_ping_payload`."""
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        stalled = ClientStalled(self.ping_timeout or 0.0)
        self.conn.fail(stalled.code.close_code, stalled.message)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    def shutdown(self) -> None:
        end_streams(self.app_state)
        if self.close_sent or self.disconnected or not self.handshake_complete or self.conn.state is not State.OPEN:
            return super().shutdown()
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": RESTART_CODE, "reason": RESTART_REASON})
        self.conn.send_close(RESTART_CODE, RESTART_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


class JsonRefusals(ServerProtocol):
    """websockets' ServerProtocol, whose refusals of a handshake (its
    `reject`: 400 naming the header at fault, 426 without an Upgrade, 500,
    uvicorn's 403 for an app closing before it accepts, our 400 and 431 of
    `_refuse_unparsed`) carry the app's Error body in JSON, not plain text.

    Assumes (tests/internals/test_uvicorn_refusals.py pins it): every
    refusal websockets and uvicorn make before the app answers is made by
    `reject`, which they may change after (426 adds Upgrade) but whose
    body they send as it is."""

    def reject(self, status: http.HTTPStatus | int, text: str) -> Response:
        status = http.HTTPStatus(status)
        body = error_json(status, " ".join(text.split()) or status.phrase)
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Vary", REFUSAL_VARY.decode()),
            ]
        )
        return Response(status.value, status.phrase, headers, body)


# The Vary of every refusal made before the app, as the app's own say
# (edge/negotiation.py's PRIVATE; tests/test_refusals_before_the_app.py
# checks they agree): what a cache would have to tell answers apart by.
REFUSAL_VARY = b"Accept, Authorization, Cookie"


def error_json(status: http.HTTPStatus, message: str) -> bytes:
    """The app's Error body (core/errors.py's error_body), its code the
    status's name, for an answer given before the app runs."""
    return json.dumps(error_body(status, message), ensure_ascii=False).encode()


class OpenedServer(JsonRefusals):
    """websockets' ServerProtocol for a connection whose handshake
    `open_upgraded` answers, as uvicorn makes it without per-message deflate
    (no origins, extensions or subprotocols of its own), made OPEN: its
    parser reads frames from the start, where ServerProtocol's first reads a
    request (a parser made, started, and replaced at once). Its `id`, a UUID
    for websockets' logs (os.urandom's system call and a UUID built, per
    connection), is made only if read: nothing under uvicorn reads it.

    Three objects fewer per open socket for the collector to walk: its
    extension lists are one shared empty tuple (no extension is negotiated
    on a connection opened so, and nothing adds one once open), and its
    parser is Protocol's frame parser itself, not ServerProtocol's, which
    only wraps it once the request is read.

    Assumes (tests/internals/test_uvicorn_upgrade.py pins it): websockets'
    __init__ sets no more than this does, to the same values (but `id`, and
    the extensions as a tuple); once open, websockets only reads the
    extensions (iterating them, to parse and write frames), and
    ServerProtocol's `parse()` adds nothing to Protocol's in state OPEN."""

    def __init__(self, max_size: int | None, logger: logging.Logger) -> None:  # not websockets': no UUID
        # Each attribute set as websockets' own sets it, not by __dict__ (which
        # makes every instance a dict of its own: 0.5 KiB more per socket).
        self.logger = logger
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.side = _SERVER
        self._state = _OPEN
        self.max_message_size = max_size
        self.max_fragment_size = None
        self.current_size = None
        self.expect_continuation_frame = False
        self.origin = None
        self.extensions = _NO_EXTENSIONS  # type: ignore[assignment]
        self.subprotocol = None
        self.close_rcvd = None
        self.close_sent = None
        self.close_rcvd_then_sent = None
        self.handshake_exc = None
        self.eof_sent = False
        self.reader = StreamReader()
        self.events = []
        self.writes = []
        self.parser = Protocol.parse(self)
        next(self.parser)
        self.parser_exc = None
        self.origins = None
        self.available_extensions = _NO_EXTENSIONS  # type: ignore[assignment]
        self.available_subprotocols = None

    @functools.cached_property
    def id(self) -> uuid.UUID:  # type: ignore[override]
        return uuid.uuid4()


def _whole_text(conn: Protocol, data: bytes) -> bytes | None:
    """The payload of `data` when it is one whole text message in one frame
    (final, masked, no reserved bit, a length of up to 64 KiB within the
    message limit) that websockets' frame parser, idle, would read just so;
    None: the parser reads it. A client's messages come so, and the parser's
    generators (at_eof, Frame.parse and read_exact's four, the Frame, its
    check, recv_frame, events_received, handle_events) are a tenth of an
    open's Python.

    Assumes (tests/internals/test_uvicorn_websocket.py compares the two on
    every kind of frame): in state OPEN, with no fragmented message under
    way (`current_size` None), no extension and nothing buffered, the
    parser waits at the top of its loop in `reader.at_eof()` (its
    `gi_yieldfrom`), and reads such a frame as a Frame(OP_TEXT, payload
    unmasked, fin) that `recv_frame` only appends to `events`, logging it
    when `debug`."""
    if len(data) < 6 or data[0] != 0x81:
        return None
    length = data[1] ^ 0x80  # the mask bit set, or over 127: not a masked frame
    if length < 126:
        start = 6
    elif length == 126 and len(data) >= 8:
        length = int.from_bytes(data[2:4])
        start = 8
    else:
        return None
    if len(data) != start + length or (conn.max_message_size is not None and length > conn.max_message_size):
        return None
    if conn._state is not _OPEN or conn.current_size is not None or conn.debug or conn.extensions:
        return None
    waiting = conn.parser.gi_yieldfrom  # type: ignore[attr-defined]  # a generator (typing.cast: a call)
    if conn.reader.buffer or waiting is None or waiting.gi_code is not _AT_EOF:
        return None
    return apply_mask(data[start:], data[start - 4 : start])


# The parser's wait between frames (the top of Protocol.parse's loop).
_AT_EOF = StreamReader.at_eof.__code__

# Immutable, so one for every OpenedServer (and not walked by the collector).
_NO_EXTENSIONS: tuple[()] = ()

_LOGGER = logging.getLogger("uvicorn.error")
# What uvicorn's __init__ starts a connection's state at (but its lists).
_FRESH: dict[str, object] = {
    "transport": None, "server": None, "client": None, "scheme": None,
    "handshake_initiated": False, "handshake_complete": False, "close_sent": False, "disconnected": False,
    "close_timer": None, "initial_response": None, "read_paused": False,
    "ping_timer": None, "pong_timer": None, "pending_ping_payload": None, "ping_sent_at": 0.0, "last_ping_rtt": 0.0,
    "curr_msg_data_type": "bytes",
}


# The one extension uvicorn's scope declares (an HTTP answer to a refused
# handshake), read only.
_EXTENSIONS: MappingProxyType[str, MappingProxyType[object, object]] = MappingProxyType(
    {"websocket.http.response": MappingProxyType({})}
)
# The last app state read_only was asked for, and its view (one server a process).
_STATE_VIEW: tuple[dict[str, Any], MappingProxyType[str, Any]] | None = None


def _read_only(app_state: dict[str, Any]) -> MappingProxyType[str, Any]:
    """A read-only view of the app's state, shared by its sockets."""
    global _STATE_VIEW
    if _STATE_VIEW is None or _STATE_VIEW[0] is not app_state:
        _STATE_VIEW = (app_state, MappingProxyType(app_state))
    return _STATE_VIEW[1]


@functools.lru_cache(maxsize=4)
def asgi_version(config: Config) -> Literal["2.0", "3.0"]:
    # A property of the config, computed again at each call (a few configs: the
    # server's, and in tests one per server started).
    return config.asgi_version


_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "


def upgrade_accept(method: str, http_version: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The Sec-WebSocket-Accept (RFC 6455 4.2.2) of a WebSocket upgrade
    request that websockets would accept as it is, httptools having parsed it
    (`Connection: upgrade` and `Upgrade: websocket` checked, its header names
    lowercased); None for any other, which uvicorn's own path answers (its
    refusal: a 400 naming the header at fault, 426 without an Upgrade; for
    one websockets cannot read, `_refuse_unparsed`'s 400 or 431).

    As websockets' ServerProtocol (without extensions, origins or
    subprotocols of its own): a GET in HTTP/1.1 with no body, one Upgrade
    header, one Sec-WebSocket-Key of 16 bytes in base64, one
    Sec-WebSocket-Version of 13, at most MAX_NUM_HEADERS headers and
    MAX_LINE_LENGTH bytes a line (as uvicorn writes it out, CRLF included)."""
    if (
        method != "GET" or http_version != "1.1" or not target.isascii()
        or len(headers) > MAX_NUM_HEADERS or len(target) + _REQUEST_LINE > MAX_LINE_LENGTH
    ):
        return None
    key = version = None
    upgrades = 0
    for name, value in headers:
        if len(name) + len(value) > _MAX_FIELD:
            return None
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"upgrade":
            upgrades += 1
        elif name in _BODY_HEADERS:
            return None
    if key is None or version != b"13" or upgrades != 1:
        return None
    # base64.b64decode(validate=True) and websockets' accept_key, in C: their
    # Python wrappers (and a decode and an encode) were four calls an open.
    try:
        if len(binascii.a2b_base64(key, strict_mode=True)) != 16:
            return None
    except binascii.Error:
        return None
    return binascii.b2a_base64(hashlib.sha1(key + _GUID).digest(), newline=False)


# RFC 6455's GUID, which a Sec-WebSocket-Accept hashes after the key.
_GUID = GUID.encode()
# A request line's bytes beyond its target ("GET ", " HTTP/1.1\r\n"); a header's name and
# value at most, in a line of MAX_LINE_LENGTH (": " and CRLF besides).
_REQUEST_LINE, _MAX_FIELD = 15, MAX_LINE_LENGTH - 4
# websockets takes no request body.
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


# RFC 6455 5.2: FIN and opcode 1 (text); a server does not mask. The
# headers of frames shorter than 126 bytes (a row's change, most of a
# feed's) made once: struct.pack was a third of the framing.
_SHORT_HEADERS = tuple(struct.pack("!BB", 0x81, length) for length in range(126))
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


# Read once: on Python 3.11 an enum's members are read through its
# metaclass's __getattr__ hook (some 860 instructions each), and every
# frame's write checks the state (twice for a burst's: hold and flush), as
# `_whole_text` does every message in; OpenedServer's at every open.
_OPEN = State.OPEN
_SERVER = Side.SERVER


def _text_frame_header(length: int) -> bytes:
    if length < 126:
        return _SHORT_HEADERS[length]
    if length < 1 << 16:
        return _pack_medium(0x81, 126, length)
    return _pack_long(0x81, 127, length)


def frame_writers(websocket: WebSocket) -> tuple[Callable[[bytes], bool] | None, Callable[[bytes], Awaitable[None]]]:
    """How broadcast frames reach a WebSocket (RESTSockets too): the direct
    write when the server allows it, and the plain ASGI send."""

    # Bound as a method: one object beside every member where a closure
    # made three (its function, cell and tuple). direct_write's, inline (a
    # call a subscribe).
    protocol = _direct_protocol(websocket)
    write = None if protocol is None else MethodType(_write_frame, protocol)
    return write, MethodType(_bounded_send, websocket)


async def _bounded_send(websocket: WebSocket, message: bytes) -> None:
    # Bounded like every other send: a client that stopped reading ends
    # its subscription (CLIENT_STALLED) instead of holding it forever.
    await bounded_send(websocket.send_text(message.decode()), websocket.state.settings.send_timeout_seconds)


def direct_write(websocket: WebSocket) -> Callable[[bytes], bool] | None:
    """A function writing one text message (UTF-8 JSON) as one whole frame
    straight to the connection's transport, without awaiting: True when
    written (or the connection is gone: nothing more to deliver), False when
    its write buffer is full. None: use the ASGI send.

    Assumes, of uvicorn's `websockets-sansio` protocol: Starlette's receive is
    its bound `receive` method; it keeps the websockets ServerProtocol as
    `conn` (no extension negotiated: per-message deflate is off, see
    cli.server_config), the transport as `transport`, an Event `writable`
    cleared while the transport is paused, and `disconnected`/`close_sent`;
    its own send writes each frame with one synchronous `transport.write`
    after awaiting `writable`, so our frames cannot interleave with its
    frames."""
    protocol = _direct_protocol(websocket)
    # Bound to the protocol as a method: the one object a socket keeps for
    # it (a closure made four: its function, tuple and cells; a partial two).
    return None if protocol is None else MethodType(_write_frame, protocol)


def open_write(websocket: WebSocket) -> Callable[[bytes], bool] | None:
    """direct_write for a sender that must hear of a lost connection: True
    when written, False when the connection is closed or its buffer full,
    for the ASGI send to take the message (it raises, or waits, as it does).
    None: use the ASGI send."""
    protocol = _direct_protocol(websocket)
    return None if protocol is None else MethodType(_write_open, protocol)


# The frames a burst holds at most: then written at once, not at the end of
# the turn. A turn that reads many rows (the hub takes what its LISTEN
# socket holds) keeps the sends going meanwhile, as with one read a turn
# (some 28 rows); held to the turn's end, a last arrival came later.
_BURST_FRAMES = 32


class Burst:
    """Direct writes held to the end of this turn of the loop, then written
    together, in order: one tight burst of sends, as a broadcast's writes of
    one change are, rather than sends spaced out by the work between them
    (a statement's rows, each parsed and rendered in turn), which cost the
    kernel more a send (docs/bench-ab-rows.md); `_BURST_FRAMES` at most,
    then written at once. Frames to one connection keep their order; a
    task woken in the same turn runs after the burst (call_soon's order),
    so it cannot overtake a frame held for it.

    Its checks read what websockets' `Protocol.state` property and the
    `writable` event's `is_set()` return, `conn._state` and `writable._value`
    (tests/internals/test_uvicorn_websocket.py pins both): on Python 3.11 a
    property or a method read is a Python call, twice a frame here."""

    def __init__(self) -> None:
        self._frames: list[tuple[WebSocketsSansIOProtocol, bytes]] = []
        # A flush is due at the end of this turn (one a turn, however many
        # times the frames were written at _BURST_FRAMES).
        self._due = False

    def writer(self, websocket: WebSocket) -> Callable[[bytes, bytes], Callable[[bytes], bool]] | None:
        """Given a frame's head and tail, direct_write of head + body + tail
        through the burst: the same answer now (True: it will be written, or
        the connection is gone; False: its write buffer is full), the frame
        written at the end of the turn if the connection is still open.
        None: use the ASGI send."""
        protocol = _direct_protocol(websocket)
        return None if protocol is None else functools.partial(self._framing, protocol)

    def _framing(self, protocol: WebSocketsSansIOProtocol, head: bytes, tail: bytes) -> Callable[[bytes], bool]:
        # A partial of the burst's method (five objects a row stream keeps, a
        # closure kept six), which finds the burst's list as it is now: _write swaps it.
        return functools.partial(self._hold, protocol, head, tail, len(head) + len(tail))

    def _hold(self, protocol: WebSocketsSansIOProtocol, head: bytes, tail: bytes, around: int, body: bytes) -> bool:
        # The checks inline, as _write_frame's: a call fewer per row event.
        if protocol.disconnected or protocol.close_sent or protocol.conn._state is not _OPEN:
            return True
        if not protocol.writable._value:  # type: ignore[attr-defined] # asyncio.Event's and LeanEvent's flag
            return False
        frames = self._frames
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._flush)
        # The frame made in one join (its short header from the table,
        # inline), not three concatenations of the body: a row event's every
        # instruction counts.
        length = around + len(body)
        header = _SHORT_HEADERS[length] if length < 126 else _text_frame_header(length)
        frames.append((protocol, b"".join((header, head, body, tail))))
        if len(frames) >= _BURST_FRAMES:
            self._write()
        return True

    def _flush(self) -> None:
        self._due = False
        self._write()

    def _write(self) -> None:
        frames, self._frames = self._frames, []
        for protocol, frame in frames:
            if protocol.disconnected or protocol.close_sent or protocol.conn._state is not _OPEN:
                continue
            try:
                protocol.transport.write(frame)
            except Exception:  # one connection's failure must not cost the others their frames
                _LOGGER.warning("a held frame could not be written", exc_info=True)


def _direct_protocol(websocket: WebSocket) -> WebSocketsSansIOProtocol | None:
    protocol = getattr(websocket._receive, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
        return None
    return protocol


def _write_frame(protocol: WebSocketsSansIOProtocol, message: bytes) -> bool:
    # direct_write's: a broadcast's write per member, its checks inline and
    # read as Burst's are (its docstring).
    if protocol.disconnected or protocol.close_sent or protocol.conn._state is not _OPEN:
        return True
    if not protocol.writable._value:  # type: ignore[attr-defined] # asyncio.Event's and LeanEvent's flag
        return False
    # A short frame's header from the table inline (as Burst._hold's): a
    # call fewer per member a change is written to.
    length = len(message)
    protocol.transport.write((_SHORT_HEADERS[length] if length < 126 else _text_frame_header(length)) + message)
    return True


def _write_open(protocol: WebSocketsSansIOProtocol, message: bytes) -> bool:
    # open_write's.
    closed = protocol.disconnected or protocol.close_sent or protocol.conn._state is not _OPEN
    if closed or not protocol.writable._value:  # type: ignore[attr-defined] # as _write_frame's
        return False
    length = len(message)
    protocol.transport.write((_SHORT_HEADERS[length] if length < 126 else _text_frame_header(length)) + message)
    return True

