"""Every place the app relies on uvicorn's internals: to shut down well,
and to send a response's head and body in one write (HttpProtocol).

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

These are the protocols `serve` gives uvicorn (cli.server_options), so each
worker of `serve --workers N` gets them too (uvicorn pickles its config).
tests/test_graphql_internals.py pins what each override assumes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode
from websockets.protocol import State

from . import metrics
from .hub import Hub
from .security import TimedHttpToolsProtocol

# What uvicorn writes, before a response, to a client that asked for it.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Service restart (RFC 6455 7.4.1, as IANA registers 1012).
RESTART_CODE = 1012
RESTART_REASON = "server restarting: resume from your cursor"


def _end_streams(app_state: dict[str, Any]) -> None:
    # Assumes: uvicorn hands each protocol the lifespan state as `app_state`
    # (the dict app.lifespan yields, with the hub in it once started).
    hub: Hub | None = app_state.get("hub")
    if hub is not None:
        hub.close_subscriptions()


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol, closing with a reason on
    shutdown and counting messages refused for their size.

    Assumes (tests/test_metrics.py pins it): a message over `ws_max_size`
    makes websockets close the connection with 1009, which uvicorn carries
    out in `handle_parser_exception`.

    On shutdown it assumes: its own `shutdown()` (for an open, handshaken connection) queues
    `websocket.disconnect` for the app, writes the close frame that
    `conn.send_close` makes, and closes the transport, leaving `close_sent`
    unset (so later sends of the app fail as on a lost connection); with
    `close_sent` set, or before the handshake, it has nothing to say."""

    def handle_parser_exception(self) -> None:
        if self.conn.close_sent is not None and self.conn.close_sent.code == CloseCode.MESSAGE_TOO_BIG:
            metrics.refused("frame_size")
        super().handle_parser_exception()

    def shutdown(self) -> None:
        _end_streams(self.app_state)
        if self.close_sent or self.disconnected or not self.handshake_complete or self.conn.state is not State.OPEN:
            return super().shutdown()
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": RESTART_CODE, "reason": RESTART_REASON})
        self.conn.send_close(RESTART_CODE, RESTART_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


class HttpProtocol(TimedHttpToolsProtocol):
    """Our HTTP protocol (security.py's head timeout), ending streams on
    shutdown, each response's head and first body write leaving together.
    Assumes: uvicorn's `shutdown()` lets a response in progress run on (it
    only turns keep-alive off); `on_headers_complete` makes the request's
    RequestResponseCycle, which writes to its `transport` with `write`,
    `close` and `is_closing` only: `100 Continue` as one write before the
    response starts, then the head as one write, then the body (every
    response but one to HEAD writes it, if only b"")."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade makes no cycle (the one there is an earlier request's).
        if cycle is not None and cycle.transport is self.transport and self.scope["method"] != "HEAD":
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def shutdown(self) -> None:
        _end_streams(self.app_state)
        super().shutdown()


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
