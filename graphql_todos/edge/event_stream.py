"""Server-Sent Events framing, shared by the GraphQL and REST streams: the
event encoding, the `Last-Event-ID` a reconnecting client sends, and a
response that sends a comment heartbeat when quiet and stops the stream
the moment the client leaves (which unsubscribes it from the hub). The
multipart subscription response is the same stream with other framing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

import anyio
import orjson
from anyio.streams.memory import MemoryObjectSendStream
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send

from graphql_todos.core.bounded import bounded_send
from graphql_todos.core.errors import ClientStalled, DomainError, ErrorCode, RequestError
from graphql_todos.edge.access import PRINCIPAL
from graphql_todos.edge.error_handlers import error_body, header_text
from graphql_todos.edge.negotiation import STREAM, accept_header, choose, in_utf8, stamped

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
# A stream must not be kept, compressed or buffered on its way (and, as
# every answer behind the credential, says what chose it: Vary).
HEADERS = stamped([(b"content-type", MEDIA_TYPE.encode()), (b"x-accel-buffering", b"no")], STREAM)
HEARTBEAT = b": keepalive\n\n"
# What a GET of a URL with an event stream answers in, in the server's order.
_REPRESENTATIONS = ("application/json", MEDIA_TYPE)

# Sends one chunk, waiting while the client is slow to take it.
SendChunk = Callable[[bytes], Awaitable[None]]
# Sends a stream's chunks itself (a broadcast member): returns when it ends.
Produce = Callable[[SendChunk], Awaitable[None]]


def prefers_event_stream(conn: HTTPConnection) -> bool:
    """Whether a GET that answers JSON or streams is to stream: RFC 9110
    negotiation (negotiation.py), JSON first when the client takes both
    alike; RequestError NOT_ACCEPTABLE when it takes neither."""
    return streams(conn.headers)


def streams(headers: Headers) -> bool:
    """prefers_event_stream() of a request's headers."""
    accept = accept_header(headers)
    chosen = choose(accept, _REPRESENTATIONS)
    if chosen is None:
        offered = ", ".join(_REPRESENTATIONS)
        raise RequestError(
            ErrorCode.NOT_ACCEPTABLE, f"Accept: {header_text(accept or '')} takes neither of {offered}{in_utf8(accept, _REPRESENTATIONS[:1])}"
        )
    return chosen == MEDIA_TYPE


def last_event_id(conn: HTTPConnection) -> str | None:
    """The id of the last event a reconnecting client received (an
    EventSource sends it by itself); None on a first connection."""
    value = conn.headers.get("last-event-id")
    return header_text(value) if value else None


def event(name: str, data: str | bytes, event_id: str | None = None) -> bytes:
    """One event. `data` is one line of JSON (JSON escapes its newlines)."""
    if isinstance(data, str):
        data = data.encode()
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


def resume_point(cursor: int) -> bytes:
    """A stream's opening: its starting cursor as an id with no data, which
    sets an EventSource's Last-Event-ID and dispatches no event (WHATWG
    HTML, "dispatch the event"). A stream from now cut before its first
    event then resumes where it started, not from a later now."""
    return b"id: %d\n\n" % cursor


def error_event(exc: DomainError) -> bytes:
    """A stream's failure: an `error` event whose data is the REST error body."""
    return event("error", orjson.dumps(error_body(exc.code, exc.message, exc.details())))


def revoked_event(reason: str) -> bytes:
    """A REST stream's end when its session or token is revoked."""
    return event("error", orjson.dumps(error_body(ErrorCode.UNAUTHENTICATED, reason)))


class EventStreamResponse:
    """Sends each encoded event as it comes and a heartbeat every `keepalive`
    seconds, and ends with the events (or when the client leaves: the events
    are closed at once, not at the next write; or when it takes nothing for
    `send_timeout` seconds; or, for a REST stream that fails, with an `error`
    event). The events are a generator, or a producer given the send (a
    broadcast member sends its frames itself)."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None] | Produce,
        keepalive: float,
        send_timeout: float,
        *,
        headers: Sequence[tuple[bytes, bytes]] = HEADERS,
        heartbeat: bytes = HEARTBEAT,
        opening: bytes = b"",
        revoked: Callable[[str], bytes] | None = None,
    ) -> None:
        self.events = events
        # The last frame of a stream whose session or token is revoked
        # (edge/revocation.py), given the reason; None: the stream is public.
        self.revoked = revoked
        self.keepalive = keepalive
        self.send_timeout = send_timeout
        self.headers = _stream_headers(tuple(headers))
        self.heartbeat = heartbeat
        # The first chunk, written with the head in one write, not through
        # the channel (some 900 bytecodes an open, bench.opening rest-sse):
        # a REST stream's resume point; multipart's first heartbeat (as
        # Strawberry's subscriptions open).
        self.opening = opening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        # Events and heartbeats meet in one channel, read by one writer: no
        # timeout ever cancels a read, which could drop an event in transit.
        chunks, received = anyio.create_memory_object_stream[bytes]()
        producing = anyio.CancelScope()
        why: list[str] = []

        def end(reason: str) -> None:
            why.append(reason)
            producing.cancel()

        release = _hold(scope, end) if self.revoked is not None else None
        # Closed once the producer is gone: a send of its into a closed
        # channel would fail it (a traceback) before its cancellation came.
        with received:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._cancel_on_disconnect, receive, tasks.cancel_scope)
                tasks.start_soon(self._produce_within, producing, chunks)
                try:
                    if self.opening:
                        await bounded_send(send(_more(self.opening)), self.send_timeout)
                    async for chunk in received:
                        # As on the WebSockets (SEND_TIMEOUT_SECONDS): a client
                        # that stopped reading is let go; it resumes by id.
                        # (bounded_send times out with asyncio: anyio's cancel
                        # scope cost about 15 us per event here.)
                        await bounded_send(send(_more(chunk)), self.send_timeout)
                    last = b"" if not why or self.revoked is None else self.revoked(why[0])
                    await send({"type": "http.response.body", "body": last, "more_body": False})
                except OSError:
                    pass  # the client left while we were writing
                except ClientStalled:
                    # The client's doing, not an error: internals.uvicorn_http.LettingGo
                    # ends the connection quietly.
                    logger.info("event stream %s: the client took nothing for %s s; ended", scope["path"], self.send_timeout)
                finally:
                    if release is not None:
                        release()
                tasks.cancel_scope.cancel()

    async def _produce_within(self, scope: anyio.CancelScope, chunks: MemoryObjectSendStream[bytes]) -> None:
        # Cancelled by a revocation: _produce closes the channel, the writer ends.
        with scope:
            await self._produce(chunks)

    async def _produce(self, chunks: MemoryObjectSendStream[bytes]) -> None:
        events = self.events
        closing = contextlib.nullcontext() if callable(events) else contextlib.aclosing(events)
        async with chunks, closing:
            # Heartbeats from a timer, not a task in a task group of their
            # own (some 2,000 bytecodes an open, bench.opening rest-sse).
            beat = _Heartbeats(chunks, self.heartbeat, self.keepalive)
            try:
                if callable(events):
                    await events(chunks.send)
                else:
                    async for chunk in events:
                        await chunks.send(chunk)
            except DomainError as exc:
                # A REST stream that fails once started (its row deleted as it
                # opened, its cursor pruned as it caught up) says so before
                # it ends; GraphQL streams send theirs as a GraphQL result.
                await chunks.send(error_event(exc))
            finally:
                beat.stop()

    @staticmethod
    async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


@functools.lru_cache(maxsize=16)
def _stream_headers(headers: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """A stream's headers (SSE's, multipart's) with STREAM's Vary and
    Cache-Control, made once per set."""
    return stamped(headers, STREAM)


def _more(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


class _Heartbeats:
    """A heartbeat into the channel every `keepalive` seconds until
    stopped. One that finds the writer not waiting for a chunk (it is
    writing one, or one waits for it: a send would wait) is skipped: the
    stream is not quiet then."""

    def __init__(self, chunks: MemoryObjectSendStream[bytes], heartbeat: bytes, keepalive: float) -> None:
        self.chunks = chunks
        self.heartbeat = heartbeat
        self.keepalive = keepalive
        self.loop = asyncio.get_running_loop()
        self.timer = self.loop.call_later(keepalive, self._beat)

    def _beat(self) -> None:
        with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError):
            self.chunks.send_nowait(self.heartbeat)
        self.timer = self.loop.call_later(self.keepalive, self._beat)

    def stop(self) -> None:
        self.timer.cancel()


def _hold(scope: Scope, end: Callable[[str], None]) -> Callable[[], None] | None:
    """Register the stream with the process's revocations under the
    request's principal (none on a route without one)."""
    principal = scope.get(PRINCIPAL)
    revocations = scope.get("state", {}).get("revocations")
    return None if revocations is None else revocations.hold(principal, end)
