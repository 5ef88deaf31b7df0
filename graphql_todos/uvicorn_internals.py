"""Every place the app relies on uvicorn's internals to shut down well.

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

import functools
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode
from websockets.protocol import State

from . import metrics
from .hub import Hub
from .security import TimedHttpToolsProtocol

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
    shutdown. Assumes: uvicorn's `shutdown()` lets a response in progress
    run on (it only turns keep-alive off)."""

    def shutdown(self) -> None:
        _end_streams(self.app_state)
        super().shutdown()


def http_protocol(request_seconds: float) -> Callable[..., Any]:
    """uvicorn's `http=`: a partial of a module-level class, which --workers
    can pickle to each worker."""
    return functools.partial(HttpProtocol, request_seconds=request_seconds)
