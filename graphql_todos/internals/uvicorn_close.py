"""How a connection ends: never waiting forever on a peer that stopped reading, and ending
every live stream when the server shuts down.

A closed asyncio (or uvloop) transport waits until its unsent data has drained: for a client that
stopped reading, forever, holding the socket and megabytes of kernel buffer. So every connection's
transport is a BoundedClose, reset once its data has not moved for a while. On SIGTERM uvicorn
calls `shutdown()` on each open connection long before the app's lifespan ends; the first one
closes the hub's subscriptions, so each stream finishes with its proper end and clients resume by
cursor."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
from typing import Any, Protocol

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
    is reset. Everything else is the transport's own, asyncio.Transport's
    every method handed on (no `__getattr__`: a class with one has every
    attribute read, found or not, go through Python's slower hook, some 190
    instructions more a read (callgrind), a dozen reads an open)."""

    __slots__ = ("_closing", "_loop", "_seconds", "_transport", "write")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self._transport = transport
        self._loop = loop
        self._seconds = seconds
        self._closing = False
        # The hot path, bound once (broadcast frames are written with it).
        self.write = transport.write

    # The transport's methods, spelled out (not bound in slots as `write`
    # is: four objects more per connection for the collector to walk).

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def writelines(self, list_of_data: Any) -> None:
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

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


class Streams(Protocol):
    """What the app keeps in its state as "hub" (live/hub.py's Hub)."""

    def close_subscriptions(self) -> None: ...


def end_streams(app_state: dict[str, Any]) -> None:
    """End every live stream now (the app's state tells how)."""
    # Assumes: uvicorn hands each protocol the lifespan state as `app_state`
    # (the dict app.lifespan yields, with the hub in it once started).
    hub: Streams | None = app_state.get("hub")
    if hub is not None:
        hub.close_subscriptions()
