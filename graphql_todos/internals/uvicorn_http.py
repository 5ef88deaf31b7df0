"""uvicorn's HTTP protocol, made to bound a request head's size and time, end streams on
shutdown, send a response's head with its body, let a connection go when the app gives up
on a send, hand a WebSocket upgrade over as parsed, judge an absolute-form target by its
authority, refuse HEAD without content, and check a response header's name or value
once, not at every response (CleanHeaders)."""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import re
import types
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from operator import is_not, itemgetter
from typing import Any, cast

import httptools
from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.utils import get_local_addr, get_remote_addr
from uvicorn.server import ServerState

from graphql_todos.core import metrics
from graphql_todos.internals.uvicorn_close import CLOSE_SECONDS, BoundedClose, close_seconds, end_streams
from graphql_todos.internals.uvicorn_websocket import (
    REFUSAL_VARY,
    WebSocketProtocol,
    asgi_version,
    error_json,
    upgrade_accept,
)

# What uvicorn writes, before a response, to a client that asked for it.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Far more than any browser sends; httptools itself takes heads of any size.
MAX_HEAD_BYTES = 65536
HEAD_TOO_LARGE = f"the request head is over {MAX_HEAD_BYTES} bytes"
# The HTTP versions a request may name; httptools parses 0.9 and 2.0 as well (a 505).
VERSIONS = ("1.0", "1.1")


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with twelve changes.

    - A connection whose request head has not arrived within REQUEST_SECONDS
      is closed, and one whose head is over MAX_HEAD_BYTES gets 431. Assumes
      (tests/edge/test_guard.py pins it): uvicorn times out only idle keep-alive
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
      then writes nothing.
    - A sound WebSocket upgrade reaches our WebSocketProtocol as httptools
      parsed it (`open_upgraded`), not serialized again for websockets to
      parse. Assumes: `handle_websocket_upgrade` is called once the upgrade's
      head is parsed (`url`, `headers` as the scope's, and `scope` with its
      `method` and `http_version`), makes the protocol with the three
      keyword arguments below, gives it the transport (with the `server`,
      `client` and `scheme` its own `connection_made` found), the request,
      then the transport to it; with per-message deflate configured, or an unsound
      upgrade, it does so itself.
    - No access line is made where the access logger drops it (LOG_LEVEL
      above info): uvicorn quotes the path again for each response's line
      before the logger looks at its level. Assumes: uvicorn sets
      `access_log` once per connection (in `__init__`) and gives it to each
      request cycle, which builds the line only when it is true.
    - A connection is set up with less work (`_lean_init`, `connection_made`,
      its flow control a LeanFlow: every WebSocket opened pays for one), each
      read parsed by uvicorn's `data_received` inline (its steps pinned by
      tests/internals/test_uvicorn_http.py), and a request's Upgrade looked
      for once (`_should_upgrade`). Assumes (tests/internals/
      test_uvicorn_http.py pins it): uvicorn's `__init__` and
      `connection_made` set no more than ours do, to values ours match; it
      asks `_should_upgrade` only once a request's head is complete, whose
      headers are a list of that request's own (`on_message_begin`).
    - A request refused, or a WebSocket upgrade, read behind requests not
      yet answered waits for their answers (`_refuse`'s `behind`,
      `_upgrade_waits`), and a head read behind one whose body is whole
      counts toward MAX_HEAD_BYTES from its first byte (`_count_begun`:
      that read's too; a head read whole in that read is measured by
      `_measure_head`), while a body still arriving after its request was
      answered (uvicorn drops it) is not taken for a head. Assumes (tests/internals/
      test_uvicorn_refusals.py pins it): `self.cycle` is the last request
      read (its `scope` that request's, `on_message_begin` making the next
      one's, its `body` what `on_body` added), `pipeline` the ones read while
      another is answered, `on_response_complete` starts the next or arms
      the keep-alive timer, and a cycle's `more_body` is true until its
      request's body is whole.
    - A refusal to a request asked by HEAD has the GET's headers and no
      content (`refusal`, the method from `_asked_head`), a HEAD handshake
      refused there too, in websockets' words.
    - A target in absolute form is judged by its authority, its Host lines
      rewritten to it and the target made origin-form (`_absolute_target`,
      RFC 9112 3.2.2); one with userinfo or a scheme other than http(s) is
      refused (InvalidTarget).
    - Each request's cycle is a LeanCycle, made by uvicorn's own
      `on_headers_complete` (`_uvicorns_headers_complete`). Assumes: it
      makes the cycle by the name RequestResponseCycle in its module."""

    # While a head is awaited: when it must have arrived. The loop's HeadWatch
    # checks it: not a timer made and cancelled per connection.
    _head_deadline: float | None = None
    _watch: HeadWatch | None = None
    _head_bytes = 0
    _head_tail = b""
    _answered = False
    # The refusal of a request pipelined behind others, written once they are answered.
    _refusal: bytes | None = None
    # A WebSocket upgrade read behind requests not yet answered, made once they are.
    _upgrade_waits = False
    # The headers _should_upgrade last looked at (a request's own list), and its answer.
    _upgrade_of: list[tuple[bytes, bytes]] | None = None
    _upgrade = False
    # close_seconds of the app's state, asked once (connection_made): an
    # upgraded connection's close timeout too.
    _close_seconds = CLOSE_SECONDS

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None, *, request_seconds: float,
    ) -> None:
        if config.loaded:
            self._lean_init(config, server_state, app_state, _loop)
        else:
            super().__init__(config, server_state, app_state, _loop)
        self.request_seconds = request_seconds
        self.access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)

    def _lean_init(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        """uvicorn's __init__ for a loaded config, without what it looks up
        again per connection: its two loggers (`logging.getLogger` takes
        logging's lock) and the config's ASGI version (a property building a
        dict). tests/internals/test_uvicorn_http.py checks it sets what
        uvicorn's sets, to the same values."""
        self.__dict__.update(_FRESH)
        self.config = config
        self.app = config.loaded_app
        self.loop = loop or asyncio.get_event_loop()
        self.logger = _LOGGER
        self.access_logger = _ACCESS_LOGGER
        self.access_log = _ACCESS_LOGGER.hasHandlers()
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.ws_protocol_class = config.ws_protocol_class
        self.root_path = config.root_path
        self.asgi_version = asgi_version(config)
        self.limit_concurrency = config.limit_concurrency
        self.app_state = app_state
        self.timeout_keep_alive = config.timeout_keep_alive
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.pipeline = deque()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        # Still reading a head (awaited, or pipelined behind a request whose
        # body is whole, still being answered: an event stream's for ever,
        # and httptools takes heads of any size, so a pipelined head grew
        # without bound): count it up to its blank line (which may straddle
        # two reads), not the body that may follow, nor one still coming for
        # a request answered before it was whole (on_response_complete armed
        # the watch: its deadline bounds that body, which is no head). Such a
        # request's `more_body` stays true (uvicorn's on_message_complete):
        # a head begun after it has a scope of its own.
        if cycle is None or not cycle.more_body or cycle.scope is not self.scope:
            end = (self._head_tail + data).find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_tail = data[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._disarm()
                self._refuse_too_large(behind=cycle is not None and self._unanswered(cycle), unread=data)
                return
        # uvicorn's data_received, inline (its call and its
        # `_unset_keepalive_if_required`'s, every read), an upgrade's
        # question answered from `_should_upgrade`'s memory of this head.
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.logger.warning(INVALID_HTTP_REQUEST)
            self._refuse_unparsed(exc)
        except httptools.HttpParserUpgrade:
            if self._upgrade if self._upgrade_of is self.headers else self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        else:
            last = self.cycle
            # A head begun, not whole, none of it counted: begun in this read,
            # behind a request that ended in it (a head's count stops at its
            # blank line, and a body is not counted).
            if last is not None and last.scope is not self.scope and not self._head_bytes:
                self._count_begun(data)

    def _count_begun(self, data: bytes) -> None:
        """The bytes of the head begun in `data`, a read that ended the
        request before it (the last cycle), counted toward MAX_HEAD_BYTES:
        what follows the last blank line, or what is not that request's
        body, whichever is fewer (a head has no blank line before it is
        whole). The first counts the head's bytes and maybe a body's tail,
        the second the head's and maybe the head before it, less any body
        the app had not taken before this read (a bound, and no body taken
        for a head: no request's upload refused as one)."""
        last = self.cycle
        found = data.rfind(b"\r\n\r\n")
        # A request answered before its body was whole takes no more of it
        # (uvicorn's on_body): what this read held of it is not in `body`,
        # so the head's bound is what the parser has of it (its whole lines).
        taken = (
            len(data) - len(last.body) if not last.response_complete
            else self._parsed_head_size()
        )
        self._head_bytes = min(len(data) - (found + 4 if found >= 0 else 0), taken)
        self._head_tail = data[-3:]
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_too_large(behind=self._unanswered(last))

    def _refuse_too_large(self, behind: bool, unread: bytes = b"") -> None:
        """The 431 of a head counted over MAX_HEAD_BYTES as it was read (`_refuse`'s arguments)."""
        metrics.refused("head_size")
        self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, HEAD_TOO_LARGE, behind=behind, unread=unread)

    def _refuse_unparsed(self, exc: httptools.HttpParserError) -> None:
        """uvicorn's send_400_response for a request httptools refused, in
        JSON: 505 for an HTTP version other than VERSIONS, else 400 naming
        what httptools found (an invalid request line, a control byte in a
        header, Content-Length with Transfer-Encoding...). Assumes
        (tests/internals/test_uvicorn_refusals.py pins it): uvicorn answers
        every HttpParserError by send_400_response, whose answer is all the
        connection gets (the transport closed after), and httptools raises
        HttpParserCallbackError, the callback's exception its __context__,
        for one a callback raised (on_headers_complete's UnsupportedVersion)."""
        self._disarm()
        cause = exc.__context__
        version = str(cause) if isinstance(cause, UnsupportedVersion) else "2.0" if str(exc) == H2_PREFACE else None
        if isinstance(cause, HeadTooLarge):
            status = http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            message = HEAD_TOO_LARGE
        elif version is not None or str(exc) == "Invalid HTTP version":
            status = http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED
            message = f"this server speaks HTTP/{' and HTTP/'.join(VERSIONS)}" + (f", not HTTP/{version}" if version else "")
        else:
            status = http.HTTPStatus.BAD_REQUEST
            # A callback's refusal (uvicorn's of a target it cannot parse, as
            # CONNECT's host:port) named by its own words, not httptools'
            # "User callback error".
            found = cause if isinstance(exc, httptools.HttpParserCallbackError) and cause is not None else exc
            message = f"invalid HTTP request: {found}"
        # A new request's head (not the body of the one `cycle` answers).
        cycle = self.cycle
        self._refuse(status, message, behind=cycle is not None and cycle.scope is not self.scope and self._unanswered(cycle))

    def _refuse(self, status: http.HTTPStatus, message: str, behind: bool = False, unread: bytes = b"") -> None:
        """`refusal`'s answer written, the connection closed after it; for a
        request `behind` others not yet answered, once they are
        (on_response_complete), nothing more read meanwhile. (uvicorn wrote
        its 400 at once: the earlier answers were lost, cut off by the
        close, a write's too, and the refusal read as the first request's.)
        `unread`: the read not parsed yet where the refused head may begin."""
        answer = refusal(self.server_state.default_headers, status, message, self._asked_head(unread))
        if behind:
            self._refusal = answer
            self.transport.pause_reading()
        elif not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _asked_head(self, unread: bytes) -> bool:
        """The request refused was asked by HEAD, as far as it was read. No
        head begun since the last whole one (the scope's, with its method):
        the refused one's begins in `unread` (a read not parsed yet), else
        it is that one. A head begun: the parser's method once its target
        has begun (a method cut short, the parser's is the last request's:
        on_message_begin emptied the target). Assumes
        (tests/internals/test_uvicorn_refusals.py pins it): httptools calls
        on_message_begin before it reads a method, and on_url with the
        target read so far at each read's end."""
        scope = self.scope
        if scope is None or "method" in scope:
            if unread:
                return unread.lstrip(b"\r\n").startswith(b"HEAD ")
            return scope is not None and scope["method"] == "HEAD"
        return bool(getattr(self, "url", b"")) and self.parser.get_method() == b"HEAD"

    def _unanswered(self, cycle: RequestResponseCycle) -> bool:
        """A request read is not answered yet: `cycle`'s, the last one read, or one pipelined before it."""
        return bool(self.pipeline) or not cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, on a BoundedClose (a WebSocket upgraded from here gets
        it too), its addresses those the transport has (`_addresses`)."""
        # Not cast(): a call at every connection.
        self._close_seconds = close_seconds(self.app_state)
        bounded: asyncio.Transport = BoundedClose(transport, self.loop, self._close_seconds)  # type: ignore[assignment]
        self.connections.add(self)
        self.transport = bounded
        self.flow = LeanFlow(bounded)
        self.server, self.client = _addresses(transport)
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%sHTTP connection made", prefix)
        self._arm()

    def _should_upgrade(self) -> bool:
        # uvicorn asks three times of an upgrade (its head complete, its
        # message complete, httptools stopping at it), each time walking the
        # headers and splitting Connection's: here once per request's headers.
        headers = self.headers
        if self._upgrade_of is not headers:
            self._upgrade_of, self._upgrade = headers, self._asks_websocket(headers)
        return self._upgrade

    def _asks_websocket(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """uvicorn's `_should_upgrade` (its `_get_upgrade`, the Connection
        header's tokens by a comprehension, and `_should_upgrade_to_ws`: four
        calls a request) in one: the last Upgrade is websocket, the last
        Connection has an `upgrade` token, and a WebSocket protocol is set
        (tests/internals/test_uvicorn_upgrade.py compares the two)."""
        connection = upgrade = None
        for name, value in headers:
            if name == b"connection":
                connection = value
            elif name == b"upgrade":
                upgrade = value
        return (
            upgrade is not None
            and upgrade.lower() == b"websocket"
            and connection is not None
            # Each token stripped as uvicorn strips it, by bytes.strip in C.
            and b"upgrade" in map(bytes.strip, connection.lower().split(b","))
            and self.ws_protocol_class is not None
        )

    def on_headers_complete(self) -> None:
        self._disarm()
        if not self._head_bytes:
            # Whole in the read that ended the request before it: none of it
            # counted (data_received's count stopped at that one's blank line).
            self._measure_head()
        # The next head pipelined is counted from its start (data_received).
        self._head_bytes, self._head_tail = 0, b""
        if self.parser.get_http_version() not in VERSIONS:
            raise UnsupportedVersion(self.parser.get_http_version())
        if self.url[0] != 47:  # not b"/": the absolute form (or OPTIONS' "*", CONNECT's host:port)
            self._absolute_target()
        earlier = self.cycle
        _uvicorns_headers_complete(self)
        cycle = self.cycle
        # An upgrade makes no cycle (the one there is an earlier request's).
        if cycle is not None and cycle is not earlier:
            cycle.flow = LettingGo(cycle, self.flow, self.transport)  # type: ignore[assignment]
            if self.scope["method"] != "HEAD":
                cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def _measure_head(self) -> None:
        """HeadTooLarge for a head over MAX_HEAD_BYTES by what the parser
        read of it (its target and header lines, less their spaces)."""
        if self._parsed_head_size() > MAX_HEAD_BYTES:
            metrics.refused("head_size")
            raise HeadTooLarge

    def _parsed_head_size(self) -> int:
        """What the parser read of the head so far: its target and whole
        header lines (each name, value and their ': ' and CRLF)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _absolute_target(self) -> None:
        """RFC 9112 3.2.2: a request whose target is in absolute form (`GET
        http://host:port/path`, as to a proxy) is one for the target's
        authority, whatever its Host says. Each Host line's value becomes
        that authority (their number kept: HostCheck refuses none, in
        HTTP/1.1, and several), so whatever reads Host (HostCheck, the
        Origin checks, the URLs Starlette builds, the reply cache's key)
        reads the authority; and the target its origin form, as uvicorn and
        an upgrade read it. Assumes (tests/internals/test_uvicorn_http.py
        pins it): uvicorn's on_headers_complete reads the target from `url`,
        and the scope's headers are `headers`, each name in lower case."""
        try:
            parsed = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:  # uvicorn's to refuse, by its words
            return
        host = parsed.host
        if host is None:  # "*"
            return
        if parsed.userinfo is not None:
            # RFC 9110 4.2.4: an error (it may mask the authority, as a phisher's).
            raise InvalidTarget("a target's authority has no userinfo (RFC 9110, 4.2.4)")
        if parsed.schema.lower() not in (b"http", b"https"):
            raise InvalidTarget(f"a target's scheme is http or https, not {parsed.schema.decode('latin-1')[:20]!r}")
        if b":" in host:  # an IPv6 address, bracketed in an authority
            host = b"[" + host + b"]"
        authority = host if parsed.port is None else host + b":" + str(parsed.port).encode()
        headers = self.headers
        hosts = [at for at, (name, _) in enumerate(headers) if name == b"host"]
        for at in hosts:
            headers[at] = (b"host", authority)
        if not hosts and self.parser.get_http_version() == "1.0":
            # HTTP/1.0 needs no Host: the target's authority is the request's,
            # judged as a Host line's would be. (HTTP/1.1 without one: a 400.)
            headers.append((b"host", authority))
        self.url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query is not None else b"")

    def handle_websocket_upgrade(self) -> None:
        cycle = self.cycle
        if cycle is not None and self._unanswered(cycle):
            # Pipelined behind requests not yet answered: made once they are
            # (on_response_complete), nothing more read meanwhile. uvicorn
            # upgraded at once, its 101 or refusal written among their
            # answers, or in their stead (closing the connection).
            self._upgrade_waits = True
            self.transport.pause_reading()
            return
        if self.scope["http_version"] != "1.1":
            # RFC 6455 4.1: a handshake is made in HTTP/1.1 or higher. uvicorn
            # hands websockets the request written as HTTP/1.1 whatever it
            # was, so websockets, which refuses any other version as a request
            # it cannot read (400), never saw an HTTP/1.0 one and upgraded it.
            # 400 as its refusal, and RFC 6455 4.2.1's for an invalid
            # handshake: 505 would say this server does not speak HTTP/1.0.
            return self._refuse(
                http.HTTPStatus.BAD_REQUEST,
                f"a WebSocket handshake is made in HTTP/1.1 (RFC 6455, 4.1), not HTTP/{self.scope['http_version']}",
            )
        # The head is in (on_headers_complete disarmed the watch, which
        # holds this protocol no longer: were it held for REQUEST_SECONDS,
        # its parser, flow control and scope would stay beside every socket
        # opened in that time, for the collector to walk); the WebSocket has
        # its own deadlines.
        accept = upgrade_accept(self.scope["method"], self.scope["http_version"], self.url, self.headers)
        if accept is None and self.scope["method"] == "HEAD":
            # websockets' refusal of any method but GET, made here: its answer
            # would carry a body, which the answer to HEAD has not.
            return self._refuse(http.HTTPStatus.BAD_REQUEST, HEAD_HANDSHAKE)
        protocol_class = self.ws_protocol_class
        if (
            accept is None
            or self.config.ws_per_message_deflate
            or not (isinstance(protocol_class, type) and issubclass(protocol_class, WebSocketProtocol))
        ):
            return super().handle_websocket_upgrade()
        self.connections.discard(self)
        # This loop, not asyncio.get_event_loop() (a getpid on Python 3.11).
        protocol = protocol_class(
            config=self.config, server_state=self.server_state, app_state=self.app_state, _loop=self.loop, opened=True,
            close_timeout=self._close_seconds,
        )
        protocol.connection_handed(self.transport, self.server, self.client, self.scheme == "https")
        protocol.open_upgraded(self.url, self.headers, accept)
        self.transport.set_protocol(protocol)
        # As connection_lost does, which an upgraded connection never calls
        # here: the parser holds this protocol's callbacks, a cycle that left
        # it (with its parser, flow control and their containers: 16 objects)
        # for the collector to find, at every open.
        self.parser = None  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self._answered = True
        if not self.pipeline and (self._refusal is not None or self._upgrade_waits):
            # The last request before a refused one, or an upgrade, is
            # answered: the refusal, or the upgrade (uvicorn's keep-alive
            # timer, armed here, would close the socket).
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            if self._refusal is not None:
                self.transport.write(self._refusal)
                self.transport.close()
                return
            self._upgrade_waits = False
            self.transport.resume_reading()
            return self.handle_websocket_upgrade()
        # A pipelined request waiting its turn has its head already.
        if not self.pipeline:
            self._arm()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        end_streams(self.app_state)
        super().shutdown()

    def _arm(self) -> None:
        # The count is left: on_headers_complete started it at the last head's
        # end, so what it holds is the next head's, read while this was answered.
        if self._watch is None:
            self._watch = head_watch(self.server_state, self.loop, self.request_seconds)
        self._head_deadline = self._watch.arm(self)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline = None
            self._watch.disarm(self)  # type: ignore[union-attr]

    def _expire(self) -> None:
        """The watch's: no head by the deadline."""
        self._head_deadline = None
        if not self.transport.is_closing():
            # A keep-alive connection that merely stays idle is not refused anything.
            if self._head_bytes or not self._answered:
                metrics.refused("head_timeout")
            self.transport.close()


class LeanFlow(FlowControl):
    """uvicorn's FlowControl, its writable event (an asyncio Event and its
    deque) made only when writing first pauses: every connection made one,
    and an upgraded one drops it unused (three calls an open: the flow's
    `__init__`, the Event's and its `set`). Until then writing was never
    paused, so `drain` has nothing to wait for.

    Assumes (tests/internals/test_uvicorn_http.py pins it): FlowControl
    reads its event in `drain`, `pause_writing` and `resume_writing` only,
    each as below, and `resume_writing` sets it only after a pause."""

    def __init__(self, transport: asyncio.Transport) -> None:  # not uvicorn's: no Event
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._is_writable_event: asyncio.Event | None = None  # type: ignore[assignment]

    async def drain(self) -> None:
        if self._is_writable_event is not None:
            await self._is_writable_event.wait()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            if self._is_writable_event is None:
                self._is_writable_event = asyncio.Event()
            self._is_writable_event.clear()


class HeadWatch:
    """The head deadlines of one server's connections (on one event loop),
    all `seconds` long: armed in time order, they fall due in that order, so one timer
    (at the earliest) and a dict in insertion order serve them all. A timer
    per connection, made and cancelled, was 3% of an upgrade's instructions
    (bench/upgrade.py)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self._waiting: dict[HttpProtocol, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, protocol: HttpProtocol) -> float:
        """`protocol` awaits a head from now on: its deadline."""
        waiting = self._waiting
        waiting.pop(protocol, None)  # armed again: to the end, in time order
        deadline = waiting[protocol] = self.loop.time() + self.seconds
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._expire)
        return deadline

    def disarm(self, protocol: HttpProtocol) -> None:
        """`protocol` awaits no head (held no longer: the timer, left as it
        is, finds the next deadline when it fires)."""
        self._waiting.pop(protocol, None)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        waiting = self._waiting
        try:
            while waiting:
                protocol, deadline = next(iter(waiting.items()))
                if deadline > now:  # (a timer may fire a little early)
                    break
                del waiting[protocol]
                protocol._expire()
        finally:
            if waiting and self._timer is None:
                self._timer = self.loop.call_at(next(iter(waiting.values())), self._expire)


# By server (one loop each): keyed by the loop, a watch (which holds the loop,
# and a timer that a closed loop never fires) would keep every loop alive.
_WATCHES: weakref.WeakKeyDictionary[ServerState, dict[float, HeadWatch]] = weakref.WeakKeyDictionary()


def head_watch(server: ServerState, loop: asyncio.AbstractEventLoop, seconds: float) -> HeadWatch:
    """The watch of `server`'s connections (on `loop`) whose heads must arrive within `seconds`."""
    # What the WeakKeyDictionary's `get` does, without its Python call at
    # every connection (tests/internals/test_uvicorn_keepalive.py pins it).
    watches = _WATCHES.data.get(weakref.ref(server))  # type: ignore[attr-defined]
    if watches is None:
        watches = _WATCHES[server] = {}
    found = watches.get(seconds)
    if found is None:
        found = watches[seconds] = HeadWatch(loop, seconds)
    return found


# httptools' error at HTTP/2's connection preface (PRI * HTTP/2.0: a client
# speaking HTTP/2 from the start, h2c "prior knowledge").
H2_PREFACE = "Pause on PRI/Upgrade"


# websockets' words for a handshake asked by HEAD (tests/internals/test_uvicorn_refusals.py pins them).
HEAD_HANDSHAKE = "invalid WebSocket handshake: unsupported HTTP method; expected GET; got HEAD"


class InvalidTarget(httptools.HttpParserInvalidURLError):
    """An absolute-form target this server refuses (on_headers_complete's,
    raised through httptools: a 400 by its words; the client's fault, as a
    parser's refusal is, for edge/logs.py)."""


class HeadTooLarge(httptools.HttpParserError):
    """A head over MAX_HEAD_BYTES found whole (on_headers_complete's,
    raised through httptools: a 431)."""


class UnsupportedVersion(Exception):
    """A request in an HTTP version httptools parses but this server does
    not speak (on_headers_complete's, raised through httptools)."""


def refusal(
    default_headers: list[tuple[bytes, bytes]], status: http.HTTPStatus, message: str, to_head: bool = False
) -> bytes:
    """A whole answer, before the app runs, in the app's Error shape (error_json):
    the server's default headers, the connection closed after it. `to_head`:
    a HEAD's, the GET's headers without the content (RFC 9110 9.3.2)."""
    body = error_json(status, message)
    head = [httptools_impl.STATUS_LINE[status.value]]
    for name, value in default_headers:
        head += (name, b": ", value, b"\r\n")
    head += (_REFUSAL_HEADERS, str(len(body)).encode(), b"\r\n\r\n", b"" if to_head else body)
    return b"".join(head)


# No cache keeps a refusal (RFC 9111: 400 is not heuristically cacheable, but
# a 505's or 431's reasons are the request's, so none is), and it varies as
# the app's refusals say theirs do (REFUSAL_VARY).
_REFUSAL_HEADERS = (
    b"content-type: application/json\r\ncache-control: no-store\r\nvary: " + REFUSAL_VARY
    + b"\r\nconnection: close\r\ncontent-length: "
)


_LOGGER = logging.getLogger("uvicorn.error")
# uvicorn's warning, and its 400's body, for a request httptools cannot parse
# (edge/logs.py lowers it to INFO for a client's fault).
INVALID_HTTP_REQUEST = "Invalid HTTP request received."
_ACCESS_LOGGER = logging.getLogger("uvicorn.access")
# What uvicorn's __init__ starts a connection's state at (but its deque).
_FRESH: dict[str, object] = {
    "timeout_keep_alive_task": None, "transport": None, "flow": None, "server": None, "client": None,
    "scheme": None, "scope": None, "headers": None, "expect_100_continue": False, "cycle": None,
}


def _addresses(transport: asyncio.BaseTransport) -> tuple[tuple[str, int | None] | None, tuple[str, int] | None]:
    """uvicorn's `get_local_addr` and `get_remote_addr` (the server's
    address and the client's), from the addresses the transport took as it
    was made: uvicorn asks its socket, which under uvloop is a new
    socket.socket on the descriptor at each ask (system calls, to learn its
    family and type, and the address's own)."""
    local = transport.get_extra_info("sockname")
    remote = transport.get_extra_info("peername")
    if local is None or remote is None:  # not taken (or lost): uvicorn's asks
        return get_local_addr(transport), get_remote_addr(transport)  # type: ignore[arg-type]
    if isinstance(local, tuple):
        server: tuple[str, int | None] | None = (str(local[0]), int(local[1]))
    else:
        server = (local, None) if isinstance(local, str) else None
    return server, (str(remote[0]), int(remote[1])) if isinstance(remote, tuple) else None


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


class CleanHeaders(dict[bytes, None]):
    """One of uvicorn's header patterns (a name's, a value's), whose `search`
    remembers the bytes it found clean: the same header again (our responses
    send the same few names and values, the same bytes objects, every time)
    is a dict lookup, not a regex search: the 14 searches of an answer's 7
    headers are 1% of a write's instructions. Only clean bytes are
    remembered, so a bad header is refused every time as uvicorn refuses it;
    at CLEAN_KEPT the memory starts again (a date a second, lengths).

    Assumes (tests/internals/test_uvicorn_http.py pins it): uvicorn's `send`
    checks each header of a response with `HEADER_RE.search(name)` and
    `HEADER_VALUE_RE.search(value)`, looked up in its module at every
    response, and refuses the header when either finds something."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        super().__init__()
        self.pattern = pattern
        # A found match or None, as the pattern's own search answers; a hit
        # runs no Python code.
        self.search = self.__getitem__

    def __missing__(self, raw: bytes) -> re.Match[bytes] | None:
        found = self.pattern.search(raw)
        if found is None:
            if len(self) >= CLEAN_KEPT:
                self.clear()
            self[raw] = None
        return found


CLEAN_KEPT = 1024


class HeadLines(dict[tuple[bytes, bytes], tuple[bytes, int | None] | None]):
    """A response header's line in a head as uvicorn's `send` writes it, and
    its Content-Length (None for another name), made once per distinct
    header (our responses send the same few, the same bytes objects, every
    time). None for a header `send` must look at itself: a name or value its
    patterns refuse, Connection, Transfer-Encoding, a length it cannot read.
    At CLEAN_KEPT the memory starts again (a date a second, lengths)."""

    def __missing__(self, header: tuple[bytes, bytes]) -> tuple[bytes, int | None] | None:
        if type(header) is not tuple or len(header) != 2:
            return None
        name, value = header
        # uvicorn's own patterns (CleanHeaders' would remember a header seen once: a Location).
        if _NAME_PATTERN.search(name) or _VALUE_PATTERN.search(value):
            return None
        name = name.lower()
        if name in (b"connection", b"transfer-encoding"):
            return None
        length = None
        if name == b"content-length":
            try:
                length = int(value.decode())
            except ValueError:
                return None
        if len(self) >= CLEAN_KEPT:
            self.clear()
        found = self[header] = (name + b": " + value + b"\r\n", length)
        return found


_HEAD_LINES = HeadLines()
_line = itemgetter(0)
_length = itemgetter(1)
_found = functools.partial(is_not, None)


class LeanCycle(RequestResponseCycle):
    """uvicorn's request cycle, whose `send` writes a usual response (no
    access line, headers HeadLines knows, a body within its Content-Length)
    without uvicorn's walk over each header: the head's lines joined as
    HeadLines made them. Anything else goes to uvicorn's `send`, which then
    finds the cycle as it would have left it. Half of a write's bytecodes in
    uvicorn were that `send`'s (tests/internals/test_uvicorn_http.py checks
    that both write the same bytes and leave the same state). Made as
    uvicorn's: a subclass with no state of its own (not a cycle's __class__
    changed after: its attributes would then be a dict's, four times slower
    to read everywhere)."""

    async def send(self, message: ASGISendEvent) -> None:
        if not (self.disconnected or self.access_log or self.flow.write_paused):
            if not self.response_started:
                if message["type"] == "http.response.start" and (head := self._head(message)) is not None:
                    self.transport.write(head)
                    return
            elif (
                self.chunked_encoding is False
                and not self.response_complete
                and message["type"] == "http.response.body"
                and self.scope["method"] != "HEAD"
            ):
                body = message.get("body", b"")
                more_body = message.get("more_body", False)
                left = self.expected_content_length - len(body)
                if left >= 0 and (more_body or not left):
                    self.expected_content_length = left
                    self.transport.write(body)
                    if not more_body:
                        self.response_complete = True
                        self.message_event.set()
                        if not self.keep_alive:
                            self.transport.close()
                        self.on_response()
                    return
        await super().send(message)

    def _head(self, message: Mapping[str, Any]) -> bytes | None:
        """A usual response's head, the cycle started as uvicorn's send
        starts it; None (nothing changed) for uvicorn's send to write."""
        status = httptools_impl.STATUS_LINE.get(message["status"])
        headers = self.default_headers + list(message.get("headers", []))
        try:
            lines = list(map(_HEAD_LINES.__getitem__, headers))
        except TypeError:  # a header not hashable (a list)
            return None
        if status is None or None in lines:
            return None
        self.response_started = True
        self.waiting_for_100_continue = False
        head = [status, *map(_line, lines)]  # type: ignore[arg-type]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        lengths: list[int] = list(filter(_found, map(_length, lines)))  # type: ignore[arg-type]
        if lengths:
            self.expected_content_length = lengths[0]
            self.chunked_encoding = False
        elif self.scope["method"] != "HEAD" and message["status"] not in (204, 304):
            self.chunked_encoding = True
            head.append(b"transfer-encoding: chunked\r\n")
        head.append(b"\r\n")
        return b"".join(head)


def arrived(receive: Callable[[], Any]) -> bool:
    """Whether `receive` is a LeanCycle's and would answer without waiting,
    as uvicorn's receive() does when its request is over (disconnected, or
    its response complete) or its message_event is set (the body, or its
    end, has come): it awaits nothing else. False for any other receive."""
    cycle = getattr(receive, "__self__", None)
    return type(cycle) is LeanCycle and (cycle.message_event.is_set() or cycle.disconnected or cycle.response_complete)


def arrived_whole(receive: Callable[[], Any]) -> bool:
    """Whether `receive` would answer without waiting with the last message
    of its request: as `arrived`, and the body has come to its end
    (uvicorn's on_message_complete: more_body False, the event set)."""
    cycle = getattr(receive, "__self__", None)
    return type(cycle) is LeanCycle and (
        (cycle.message_event.is_set() and not cycle.more_body) or cycle.disconnected or cycle.response_complete
    )


# uvicorn's on_headers_complete, its own code, making a LeanCycle where it
# makes a RequestResponseCycle (the names it reads in its module, but that one).
_uvicorns_headers_complete = types.FunctionType(
    HttpToolsProtocol.on_headers_complete.__code__,
    {**vars(httptools_impl), "RequestResponseCycle": LeanCycle},
)


def _check_headers_once() -> None:
    """uvicorn's header checks through CleanHeaders, in this process (as the
    door is imported: each of --workers too)."""
    for name in ("HEADER_RE", "HEADER_VALUE_RE"):
        pattern = getattr(httptools_impl, name)
        if not isinstance(pattern, CleanHeaders):
            setattr(httptools_impl, name, CleanHeaders(pattern))


_check_headers_once()
_NAME_PATTERN = cast(CleanHeaders, httptools_impl.HEADER_RE).pattern
_VALUE_PATTERN = cast(CleanHeaders, httptools_impl.HEADER_VALUE_RE).pattern


def http_protocol(request_seconds: float) -> Callable[..., Any]:
    """uvicorn's `http=`: a partial of a module-level class, which --workers
    can pickle to each worker."""
    return functools.partial(HttpProtocol, request_seconds=request_seconds)
