"""The leak scanner (issue 19, section 5): a wiretap per person on every
client the tests give that person (HTTP answers, heads and bodies, streamed
or not; WebSocket messages and close reasons), and a check that nothing a
person never could see appears in any byte they were sent.

What is secret is made of unique random tokens (titles, list names; ids are
random UUIDs), so a plain byte search is exact: a token found in a person's
bytes that is not among what that person may see is a leak, whatever the
framing. Tapped clients ask for no compression (`Accept-Encoding: identity`,
no permessage-deflate): the bytes searched are the bytes on the wire.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


def token(prefix: str) -> str:
    """A value no other can contain or be contained in (fixed length, random)."""
    return f"{prefix}{secrets.token_hex(8)}"


class Wiretap:
    """Every byte one person's clients received, kept per stream in arrival
    order (an HTTP body's chunks may split a token: they are searched joined)."""

    def __init__(self, person: str) -> None:
        self.person = person
        self._streams: dict[int, list[bytes]] = {}
        self._lock = threading.Lock()

    def record(self, data: bytes | str, stream: object = None) -> None:
        """Keep what one stream (an HTTP body, a socket; None: a piece on its own) received."""
        chunk = data.encode() if isinstance(data, str) else data
        with self._lock:
            key = id(stream) if stream is not None else -len(self._streams) - 1
            self._streams.setdefault(key, []).append(chunk)

    def received(self) -> bytes:
        with self._lock:
            return b"\x00".join(b"".join(chunks) for chunks in self._streams.values())

    def client(self, base_url: str, **kwargs: Any) -> httpx.Client:
        """An httpx client whose every answer (head and body) is recorded."""
        headers = {"accept-encoding": "identity", **kwargs.pop("headers", {})}
        return httpx.Client(base_url=base_url, transport=_TapTransport(self), headers=headers, **kwargs)

    def websocket(self, url: str, **kwargs: Any) -> TappedSocket:
        """A websockets (sync) connection whose every message is recorded."""
        return TappedSocket(connect(url, compression=None, open_timeout=10, **kwargs), self)


class TappedSocket:
    """A sync WebSocket connection that records what it receives."""

    def __init__(self, ws: ClientConnection, tap: Wiretap) -> None:
        self.ws = ws
        self.tap = tap

    def recv(self, timeout: float | None = None) -> str | bytes:
        try:
            message = self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            if closed.rcvd is not None:
                self.tap.record(closed.rcvd.reason)
            raise
        self.tap.record(message)
        return message

    def send(self, message: str) -> None:
        self.ws.send(message)

    def close(self) -> None:
        self.ws.close()


class _TapTransport(httpx.BaseTransport):
    def __init__(self, tap: Wiretap) -> None:
        self.tap = tap
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.tap.record(b"\r\n".join(k + b": " + v for k, v in response.headers.raw))
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code, headers=response.headers,
            stream=_TapStream(response.stream, self.tap), extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


class _TapStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, tap: Wiretap) -> None:
        self.inner = inner
        self.tap = tap

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.tap.record(chunk, self)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class Leaks:
    """One wiretap per person of a run."""

    def __init__(self) -> None:
        self.taps: dict[str, Wiretap] = {}

    def tap(self, person: str) -> Wiretap:
        return self.taps.setdefault(person, Wiretap(person))

    def found(self, secret: Iterable[str], allowed: Mapping[str, set[str]]) -> dict[str, list[str]]:
        """Per person, the secret tokens they were sent but may not see."""
        leaks: dict[str, list[str]] = {}
        for person, tap in self.taps.items():
            received = tap.received()
            hidden = sorted(set(secret) - allowed.get(person, set()))
            if seen := [value for value in hidden if value.encode() in received]:
                leaks[person] = seen
        return leaks

    def check(self, secret: Iterable[str], allowed: Mapping[str, set[str]]) -> None:
        """Fail, naming each person and what they were shown, if anyone saw what they may not."""
        leaks = self.found(secret, allowed)
        assert not leaks, f"sent to people who may not see it: {leaks}"
