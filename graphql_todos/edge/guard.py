"""What keeps strangers out and bad input harmless, in front of every route:
the Host check, the credentials (edge/access.py) and the cookie's Origin
check, the WebSocket origin check, the security
headers, and the limits on request bodies, request time, sockets per client
and GraphQL documents. docs/security.md gives the threat model each answers."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import Awaitable, Sequence
from operator import countOf, itemgetter
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from graphql_todos.core import metrics, paths
from graphql_todos.core.errors import DomainError, ErrorCode, RequestError
from graphql_todos.core.people import OPEN
from graphql_todos.core.setting_values import is_ip_literal
from graphql_todos.core.settings import Settings
from graphql_todos.edge.access import PRINCIPAL, Access, authorization, first_values
from graphql_todos.edge.error_handlers import close_reason, error_body, header_text
from graphql_todos.edge.negotiation import PRIVATE, accept_header, fresh_headers, prefers_html, stamped
from graphql_todos.edge.shared_counts import SharedCounts
from graphql_todos.internals.uvicorn_http import arrived, arrived_whole

# What a browser may load without a token: the health check, and the web
# client's pages and bundles (and GraphiQL's page: graphiql_page).
_PUBLIC_PATHS = ("/", "/healthz", paths.SERVICE_WORKER)
_PUBLIC_PREFIX = "/assets/"
# Methods a cookie-authenticated request may use from any origin: they change nothing.
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# GraphiQL's page, and every GraphQL transport. (Its WebSocket takes the
# token in connection_init, and checks it itself: graphql/view.py.)

# The pages load only their own bundles and talk only to their own origin.
# The tightest each works with (tests/test_web.py records violations): the
# TodoMVC page needs data: images (its checkboxes) and its service worker
# (/sw.js, which keeps the page for offline reloads); GraphiQL also needs inline
# styles and data: fonts (Monaco makes both), and its Monaco workers come from /assets/.
_POLICY = (
    "default-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CONTENT_SECURITY_POLICY = _POLICY + "; style-src 'self'; worker-src 'self'"
GRAPHIQL_CONTENT_SECURITY_POLICY = (
    _POLICY + "; style-src 'self' 'unsafe-inline'; font-src 'self' data:; worker-src 'self'"
)
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
# The answer to a request that broke a limit: nothing more will be read of it.
_CLOSE = {"Connection": "close"}
# Set by a front door that read the whole body through Guard.bounded and
# replays it (graphql/fast/front.py), or that found a REST write's declared
# body come whole within the limit (write_door.py), or by the guard when it
# finds so: within the bounds, and whole, so the guard behind it has nothing
# left to bound (a second bound armed a timer per message for nothing). On a
# REST route (front.py replays /graphql's only) uvicorn's own receive() then
# answers at once with the body's one message (rest/resources.py _body), or
# that the client left.
BODY_READ = "graphql_todos.body_read"


# Names of this machine that no DNS answer can lend another site: allowed
# whatever HOST is (Django's defaults for a local server).
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
# HOST values that bind every address: no name to add.
_ANY_ADDRESS = frozenset({"0.0.0.0", "::"})


class Hosts:
    """The host names this server answers to (docs/security.md, DNS
    rebinding): a page that points its own name at this address sends that
    name as Host, so a Host that is none of ours is a request meant for
    another site. Loopback names always; any IP address when HOST is not
    loopback (a name is needed to rebind, so a Host that is an address was
    not rebound), and the name HOST binds to; ALLOWED_HOSTS besides."""

    def __init__(self, settings: Settings) -> None:
        listed = set(settings.allowed_hosts)
        bound = settings.host.lower()
        self.any = "*" in listed
        self.addresses = not _loopback(bound)
        self.names = _LOOPBACK_NAMES | {h for h in listed if not h.startswith(".")}
        if self.addresses and bound not in _ANY_ADDRESS:
            self.names |= {f"[{bound}]" if ":" in bound else bound}
        self.domains = tuple(h for h in listed if h.startswith("."))

    def allows(self, host: str | None) -> bool:
        """Whether a Host header (None: the request had none) is one of ours.
        A request without Host is no browser's, so no rebinding page's."""
        if host is None or self.any:
            return True
        name = _hostname(host)
        return (
            name in self.names
            or (self.addresses and is_ip_literal(name))
            or any(name == domain[1:] or name.endswith(domain) for domain in self.domains)
        )


def exposure(settings: Settings) -> str | None:
    """What to warn of at start: anyone who reaches this address may use it
    (AUTH=open without TODOS_TOKEN, bound beyond loopback)."""
    if settings.auth != "open" or settings.bearer_token is not None or _loopback(settings.host.lower()):
        return None
    return (
        f"HOST={settings.host} with AUTH=open and no TODOS_TOKEN: anyone who reaches this address"
        " may read and change every todo (set TODOS_TOKEN, or AUTH=accounts)"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(host: str) -> str:
    """A Host header's name, without its port: lower case, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host.partition("]")[0] + "]"
    else:
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            name = host
    return name.rstrip(".")


_KEPT_VERDICTS = 64


class HostCheck:
    """ASGI middleware, outermost: a request or WebSocket handshake for a
    Host that is not one of ours (Hosts) gets 421 before anything else runs,
    the two front doors (graphql/fast/front.py, graphql/socket.py) included;
    one with two Host lines gets 400, as RFC 9112 section 3.2 requires (the
    layers behind could each read a different one), as does an HTTP/1.1
    request with none."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = Hosts(settings)
        # Each Host header's verdict, as sent: a client sends the same one
        # on every request. Bounded: Hosts nobody sends twice are judged afresh.
        self._verdicts: dict[bytes | None, bool] = {}

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: what it lets through is the next layer's own
        # coroutine, so this layer adds no frame to an open socket's stack.
        if scope["type"] in ("http", "websocket"):
            # Counted in C: a Python loop to a second Host would walk every line.
            if countOf(map(_name, scope["headers"]), b"host") > 1:
                return refused(scope, receive, send, ErrorCode.BAD_REQUEST, "a request must have one Host header, not several")
            raw = None
            for name, value in scope["headers"]:
                if name == b"host":
                    raw = value
                    break
            if raw is None and scope.get("http_version") != "1.0":
                # RFC 9112 section 3.2: HTTP/1.1 requires one (1.0 predates it).
                return refused(scope, receive, send, ErrorCode.BAD_REQUEST, "an HTTP/1.1 request must have a Host header")
            allowed = self._verdicts.get(raw)
            if allowed is None:
                allowed = self.hosts.allows(None if raw is None else raw.decode("latin-1"))
                if len(self._verdicts) < _KEPT_VERDICTS:
                    self._verdicts[raw] = allowed
            if not allowed:
                host = _hostname("" if raw is None else header_text(raw))
                message = f"this server does not answer to the host {host[:100]!r}: add it to ALLOWED_HOSTS"
                return refused(scope, receive, send, ErrorCode.MISDIRECTED_REQUEST, message)
        return self.app(scope, receive, send)


async def refused(scope: Scope, receive: Receive, send: Send, code: ErrorCode, message: str) -> None:
    """The answer to a request or WebSocket handshake refused before any layer
    ran (the Host check's, edge/socket_routes.py's)."""
    # Outermost: no layer behind tells caches of it (negotiation.PRIVATE's headers).
    response = JSONResponse(error_body(code, message), status_code=code.http_status, headers=_UNKEPT_HEADERS)
    if scope["type"] == "websocket":
        await WebSocket(scope, receive, send).send_denial_response(response)
    else:
        await response(scope, receive, send)


_UNKEPT_HEADERS = fresh_headers(PRIVATE)


def origin_allowed(headers: Headers, allowed: tuple[str, ...]) -> bool:
    """A WebSocket handshake's Origin is the server's own (the Host it was
    asked for) or listed. Without Origin it is no browser, so it carries no
    ambient credentials a foreign page could abuse.

    Read as Headers.get reads them (each name's first value), found in C:
    get's Python `__getitem__` walked the pairs, and raised and caught a
    KeyError for the Origin a client that is no browser does not send (every
    socket a server opens for itself)."""
    values = first_values(headers.raw)
    raw = values.get(b"origin")
    if raw is None:
        return True
    origin = raw.decode("latin-1").lower()
    if origin.rstrip("/") in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # no URL (a bracket left open: "Invalid IPv6 URL"), so no origin of ours
        return False
    return netloc == values.get(b"host", b"").decode("latin-1").lower()


def graphiql_page(scope: Scope, headers: Headers) -> bool:
    """The one request to /graphql that needs no token: a browser's GET of
    GraphiQL's page. It carries nothing a GraphQL transport could run (no
    query string at all: no document, hash, variables or operation name) and
    prefers HTML. The view answers exactly this request with the page,
    before any transport sees it (graphql/view.py): what is public is decided
    by what the request will do, not by what it lacks."""
    if scope["method"] != "GET" or scope["path"] != paths.GRAPHQL or scope["query_string"]:
        return False
    return prefers_html(accept_header(headers))


def declared_length(raw: Sequence[tuple[bytes, bytes]]) -> str:
    """The first Content-Length ("" for none), as Headers.get reads it, but
    found in C: get's Python loop over the pairs was some 60 bytecodes a REST write."""
    return first_values(raw).get(b"content-length", b"").decode("latin-1")


def _public(scope: Scope) -> bool:
    path: str = scope["path"]
    method: str = scope["method"]
    if method in ("GET", "HEAD") and (path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIX)):
        return True
    if method == "POST" and path in paths.SIGN_IN:
        return True
    # Headers made only for a GET, the one method graphiql_page takes.
    return method == "GET" and graphiql_page(scope, Headers(scope=scope))


class Guard:
    """ASGI middleware: security headers on every answer; the token on every
    route but the public ones; bodies over MAX_BODY_BYTES or slower than
    REQUEST_SECONDS refused; WebSockets from foreign origins, without the
    token or over MAX_SOCKETS_PER_CLIENT refused before any data."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        access: Access,
        sockets: SocketGate,
        vary_origin: bool = False,
        headed_behind: bool = False,
    ) -> None:
        self.app = app
        self.settings = settings
        self.access = access
        self.sockets = sockets
        # Stands for the CORS layer too, to requests without Origin (without_origin).
        self.vary_origin = vary_origin
        # The app behind puts the security headers on its answers itself
        # (`headed`, in its own send wrapper: the write door's); this layer
        # on its own refusals only.
        self.headed_behind = headed_behind

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine (as HostCheck): the layer's own coroutine, one frame fewer a request.
        if scope["type"] == "http":
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = send
        if not self.headed_behind:
            send = _with_headers(send, scope, self.vary_origin)
        # No Headers made for a request that needs none (open mode's, a write's).
        if not _public(scope):
            refusal = await self.admit(scope)
            if refusal is not None:
                return await refusal(scope, receive, self._own(scope, outer, send))
        # A body the front door read, or found whole: its declared size checked there.
        if scope.get(BODY_READ):
            return await self.app(scope, receive, send)
        length = declared_length(scope["headers"])
        if self.too_big(length):
            metrics.refused("body_size")
            response = JSONResponse(
                error_body(ErrorCode.PAYLOAD_TOO_LARGE, self._too_large),
                status_code=ErrorCode.PAYLOAD_TOO_LARGE.http_status,
                headers=_CLOSE,
            )
            return await response(scope, receive, self._own(scope, outer, send))
        # A declared body that has come whole is within both bounds, as the
        # front door takes one (uvicorn hands over no more than a request's
        # Content-Length): uvicorn's receive() as it is, no wrapper (80
        # bytecodes a REST write), and marked so: a REST handler reads it in one step.
        if length.isdigit() and arrived_whole(receive):
            scope[BODY_READ] = True
            return await self.app(scope, receive, send)
        await self.app(scope, self.bounded(receive), send)

    def _own(self, scope: Scope, outer: Send, send: Send) -> Send:
        """The send of the guard's own answer (`outer` the layer's, `send` the
        app's): with the guard's headers, whoever puts them on the app's."""
        return _with_headers(outer, scope, self.vary_origin) if self.headed_behind else send

    async def admit(self, scope: Scope) -> Response | None:
        """Leave the request's principal in scope[PRINCIPAL], or answer why not:
        401 without a valid credential, 403 for a write signed in by cookie
        that does not come from our own origin (CSRF)."""
        refusal = self.access.refusal
        if self.access.accounts:
            try:
                principal = await self.access.authenticate(scope, Headers(scope=scope))
            except DomainError as exc:  # DATABASE_UNAVAILABLE: the lookup failed
                if exc.code is not ErrorCode.UNAUTHENTICATED:
                    return JSONResponse(error_body(exc.code, exc.message), status_code=exc.code.http_status)
                # Refused with a reason of its own (core.people.NotForJwts): as any refusal.
                principal, refusal = None, exc.message
        else:  # as before accounts: no lookup
            principal = OPEN if self.access.allows(authorization(scope["headers"])) else None
        if principal is None:
            return JSONResponse(
                error_body(ErrorCode.UNAUTHENTICATED, refusal, self.access.refusal_details),
                status_code=ErrorCode.UNAUTHENTICATED.http_status,
                headers={"WWW-Authenticate": 'Bearer realm="graphql-todos"'},
            )
        if (
            principal.session_id is not None
            and scope["method"] not in _SAFE_METHODS
            and not ("origin" in (headers := Headers(scope=scope)) and origin_allowed(headers, self.settings.allowed_origins))
        ):
            code = ErrorCode.FORBIDDEN
            message = "a change signed in by cookie must come from this app's own origin (its Origin header)"
            return JSONResponse(error_body(code, message), status_code=code.http_status)
        scope[PRINCIPAL] = principal
        return None

    def declared_too_big(self, headers: Headers) -> bool:
        """A Content-Length over the limit: refused before any of it is read."""
        return self.too_big(declared_length(headers.raw))

    def too_big(self, length: str) -> bool:
        """A Content-Length value ("" for none) over the limit."""
        return length.isdigit() and int(length) > self.settings.max_body_bytes

    @property
    def _too_large(self) -> str:
        return f"the body is over {self.settings.max_body_bytes} bytes"

    def bounded(self, receive: Receive) -> Receive:
        """receive(), refusing a body over the size limit (chunked bodies have no
        Content-Length) or one that takes too long: a RequestError, which
        error_handlers answers like any other. Once the body is whole, receive()
        is left alone: a streamed answer waits on it for the client to leave."""
        deadline = asyncio.get_running_loop().time() + self.settings.request_seconds
        received = 0
        whole = False

        async def bounded() -> Message:
            nonlocal received, whole
            if whole:
                return await receive()
            try:
                # A body that has arrived is taken with no timer armed (a
                # timer per message was 3% of a write's instructions, some of
                # it the loop's, which keeps each cancelled timer in its heap a while).
                message = await (receive() if arrived(receive) else _by(deadline, receive))
            except TimeoutError:
                metrics.refused("body_timeout")
                raise RequestError(
                    ErrorCode.REQUEST_TIMEOUT,
                    f"the body did not arrive within {self.settings.request_seconds} s",
                    headers=_CLOSE,
                )
            received += len(message.get("body", b""))
            if received > self.settings.max_body_bytes:
                metrics.refused("body_size")
                raise RequestError(ErrorCode.PAYLOAD_TOO_LARGE, self._too_large, headers=_CLOSE)
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return bounded

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        if not await self.sockets.admit(websocket):
            return
        try:
            # (The GraphQL socket never comes here: graphql/socket.py admits
            # it, and it checks the token at connection_init.)
            token = websocket.query_params.get("token")
            offered = None if token is None else "Bearer " + token
            code, reason = ErrorCode.UNAUTHENTICATED, self.access.refusal
            try:
                principal = await self.access.authenticate(scope, websocket.headers, offered)
            except DomainError as exc:  # DATABASE_UNAVAILABLE: the lookup failed
                principal, code, reason = None, exc.code, exc.message
            if principal is None:
                # Accepted only to say why: a refused handshake carries no close code.
                await websocket.accept()
                return await websocket.close(code.close_code, close_reason(reason))
            scope[PRINCIPAL] = principal
            await self.app(scope, receive, send)
        finally:
            self.sockets.leave(websocket)


async def _by(deadline: float, receive: Receive) -> Message:
    """receive()'s message, or TimeoutError at `deadline` (the loop's clock):
    asyncio's timeout, not anyio's cancel scope, the same bound for less CPU."""
    async with asyncio.timeout_at(deadline):
        return await receive()


class SocketGate:
    """Every WebSocket's handshake checks: its Origin, and the sockets its
    client address holds (MAX_SOCKETS_PER_CLIENT). One per app, shared by
    Guard and the GraphQL socket front (graphql/socket.py), so both count
    the same sockets; with `shared` (serve --workers N), the other workers'
    count too."""

    def __init__(self, settings: Settings, shared: SharedCounts | None = None) -> None:
        self.settings = settings
        self.shared = shared
        self._sockets: Counter[str] = Counter()

    async def admit(self, websocket: WebSocket) -> bool:
        """Count the socket in (then `leave` it when it ends), or refuse its
        handshake with the reason and say False."""
        if not origin_allowed(websocket.headers, self.settings.allowed_origins):
            await _deny(websocket, ErrorCode.FORBIDDEN, "this origin may not open WebSockets here")
            return False
        client = _client_host(websocket)
        if not self._count_in(client):
            metrics.refused("sockets_per_client")
            await _deny(websocket, ErrorCode.TOO_MANY_REQUESTS, "too many WebSockets from this address")
            return False
        return True

    def _count_in(self, client: str) -> bool:
        limit = self.settings.max_sockets_per_client
        if self.shared is None:
            if self._sockets[client] >= limit:
                return False
        elif not self.shared.take(self.shared.bucket(client), limit):  # the address's bucket, all workers
            return False
        self._sockets[client] += 1
        return True

    def leave(self, websocket: WebSocket) -> None:
        client = _client_host(websocket)
        self._sockets[client] -= 1
        if not self._sockets[client]:
            del self._sockets[client]
        if self.shared is not None:
            self.shared.give(self.shared.bucket(client), self.settings.max_sockets_per_client)


def _client_host(websocket: WebSocket) -> str:
    """Starlette's `websocket.client.host` ("" for none), read from the
    scope: its `client` makes an Address (two calls) at each read."""
    client = websocket.scope.get("client")
    return client[0] if client else ""


async def _deny(websocket: WebSocket, code: ErrorCode, message: str) -> None:
    """Refuse the handshake with code's HTTP status, before the upgrade, kept
    by no cache as every other refusal of a handshake is (`refused`'s)."""
    response = JSONResponse(error_body(code, message), status_code=code.http_status, headers=_UNKEPT_HEADERS)
    await websocket.send_denial_response(response)


def _with_headers(send: Send, scope: Scope, vary_origin: bool = False) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = headed(message, scope, vary_origin)
        await send(message)

    return sending


def headed(start: Message, scope: Scope, vary_origin: bool = False) -> Message:
    """A response's start message to the request of `scope` with the guard's
    headers: the security headers, the page's policy on HTML (GraphiQL's on
    its path), (`vary_origin`) CORS's Vary, and on the answer to any method
    but GET and HEAD (negotiation.Cached's) without a Cache-Control of its
    own, negotiation.PRIVATE's Vary and Cache-Control: a refusal or a
    change's answer is kept by no cache."""
    headers = list(start.get("headers", ()))
    media_type = _media_type(headers)
    headers += _HEADERS
    if media_type.startswith(b"text/html"):
        policy = GRAPHIQL_CONTENT_SECURITY_POLICY if scope["path"] == paths.GRAPHQL else CONTENT_SECURITY_POLICY
        headers.append((b"content-security-policy", policy.encode()))
    found = dict(headers)
    unkept = b"cache-control" not in found and scope["method"] not in _READS
    if vary_origin:
        _vary_origin(headers, found, unkept)
    elif unkept:
        headers = stamped(headers, PRIVATE)
    return {**start, "headers": headers}


def _media_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The first Content-Type's value (names in any case), b"" for none: the
    names lowered and searched in C, not by a Python loop over the pairs."""
    try:
        return headers[list(map(bytes.lower, map(_name, headers))).index(b"content-type")][1]
    except ValueError:
        return b""


_name = itemgetter(0)
_READS = ("GET", "HEAD")


def _vary_origin(headers: list[tuple[bytes, bytes]], found: dict[bytes, bytes], unkept: bool) -> None:
    """What CORSMiddleware.send does to the answer to a request without
    Origin: "Origin" joined to the Vary values, into the first Vary header,
    the others dropped (MutableHeaders.__setitem__), or a Vary appended;
    and to an `unkept` answer (`headed`), negotiation.PRIVATE's too, joined
    before Origin. `found`: the headers as a dict, to look names up in C."""
    if b"vary" not in found:  # the common case
        headers += _UNKEPT_ORIGIN if unkept else _ORIGIN  # each made once
        return
    if unkept:
        headers[:] = stamped(headers, PRIVATE)
    _join_origin(headers)


def _join_origin(headers: list[tuple[bytes, bytes]]) -> None:
    names = list(map(_name, headers))
    if names.count(b"vary") == 1:  # every GraphQL answer's (negotiation.PRIVATE's): found in C
        one = names.index(b"vary")
        headers[one] = (b"vary", headers[one][1] + b", Origin")
        return
    at = [i for i, name in enumerate(names) if name == b"vary"]
    value = b", ".join([*(headers[i][1] for i in at), b"Origin"])
    for i in reversed(at[1:]):
        del headers[i]
    if at:
        headers[at[0]] = (b"vary", value)
    else:
        headers.append((b"vary", value))


def _unkept_origin() -> tuple[tuple[bytes, bytes], ...]:
    """negotiation.PRIVATE's headers with CORS's Origin, as _vary_origin joins them."""
    headers = stamped((), PRIVATE)
    _join_origin(headers)
    return tuple(headers)


_ORIGIN = ((b"vary", b"Origin"),)
_UNKEPT_ORIGIN = _unkept_origin()


def stacked(app: ASGIApp, layers: Sequence[Middleware]) -> ASGIApp:
    """`app` inside `layers`, outermost first, as Starlette builds its own
    stack: for a front door that runs some layers without Starlette's."""
    for cls, args, kwargs in reversed(layers):
        app = cls(app, *args, **kwargs)
    return app


def without_origin(
    app: ASGIApp, settings: Settings, access: Access, sockets: SocketGate, headed_behind: bool = False
) -> ASGIApp:
    """middleware()'s layers around `app`, as they answer a request without an
    Origin header: CORSMiddleware then only adds Origin to the answer's Vary
    (a preflight, which it answers itself, has an Origin), so the Guard does
    that in its own pass over the headers, one layer fewer (4% of a write's
    instructions: the layer's Headers, MutableHeaders and send wrapper)."""
    return Guard(app, settings, access, sockets, vary_origin=True, headed_behind=headed_behind)


def middleware(settings: Settings, access: Access, sockets: SocketGate, headed_behind: bool = False) -> list[Middleware]:
    """Outermost first: CORS answers preflights (which carry no token) itself.
    `headed_behind`: Guard's (the app behind puts the guard's headers on)."""
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        ),
        Middleware(Guard, settings=settings, access=access, sockets=sockets, headed_behind=headed_behind),
    ]

