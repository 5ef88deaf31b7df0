"""Content negotiation by the Accept header, as RFC 9110 (section 12.5.1)
has it: which of the media types a route can answer in the client prefers.

python-mimeparse parses each media range (quoted values, a missing or
invalid q taken as 1, Java's lone `*`); the rules it leaves out or bends are
here, each with a test (tests/edge/test_negotiation.py):

- No Accept header (or an empty one) accepts everything, as `*/*` does;
  several Accept lines are one list, and a comma inside a quoted value does
  not split it (a quoted value never closed runs to the end of the header). A range that does not parse is ignored,
  and so is one with more than MAX_PARAMETERS parameters.
- Types, subtypes and parameter names compare case-insensitively, and so do
  charset values; other parameter values compare exactly. Everything this
  app sends is UTF-8: every offer has charset=utf-8, so that
  `application/json; charset=utf-8` takes JSON.
- A range with parameters matches only a media type that has each of them
  (mimeparse's best_match would take `multipart/mixed;deferSpec=20220824`
  for any multipart/mixed).
- An offer's quality is the q of the most specific range that matches it;
  q=0 means not acceptable.
- The chosen offer has the highest quality; among equals, the one matched by
  the more specific range (`application/json, */*` names JSON: it wins), then
  the first in the server's order.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Awaitable, Iterable, Sequence
from typing import NamedTuple

import mimeparse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_todos.core import paths
from graphql_todos.core.errors import ErrorCode, RequestError
from graphql_todos.edge.error_handlers import header_text

# The media types the app answers in.
HTML = "text/html"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
JSON_TYPES = (GRAPHQL_RESPONSE_JSON, JSON)
EVENT_STREAM = "text/event-stream"
# The multipart subscription protocol's own type (graphql/multipart.py).
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'

# One element of the list: anything up to a comma outside a quoted string.
# A quoted string never closed runs to the end of the header (its closing
# quote, or a lone backslash, may be missing): one that failed to match
# had the rest of the header scanned again from each quote, quadratic in
# the header's length (19 s of the loop for 32 KB of `"\`).
_ELEMENT = re.compile(r'(?:[^,"]+|"(?:\\[\s\S]|[^"\\])*(?:"|\\?\Z))+')


class _MediaRange(NamedTuple):
    type: str
    subtype: str
    params: frozenset[tuple[str, str]]
    quality: float

    @property
    def specificity(self) -> tuple[int, int, int]:
        """`*/*` < `text/*` < `text/plain` < `text/plain;format=flowed`."""
        return (self.type != "*", self.subtype != "*", len(self.params))

    def matches(self, offer: _MediaRange) -> bool:
        return (
            self.type in ("*", offer.type)
            and self.subtype in ("*", offer.subtype)
            and self.params <= offer.params
        )


# A media range has a few parameters (q, a charset, a boundary); one with
# more is ignored, as one that does not parse. mimeparse splits them copying
# the rest of the range at each `;`, quadratic in their number: 64 KB of
# `;a` cost 210 ms of the loop a request (slowparse; the header is at most
# MAX_HEAD_BYTES). Semicolons in quoted values count too: no real range has 32.
MAX_PARAMETERS = 32


def _parse(element: str) -> _MediaRange | None:
    if element.count(";") > MAX_PARAMETERS:
        return None
    try:
        kind, subtype, params = mimeparse.parse_media_range(element.strip())
    except ValueError:  # mimeparse.MimeTypeParseException, and a float() that failed
        return None
    quality = float(params.pop("q"))
    pairs = frozenset((name, value.lower() if name == "charset" else value) for name, value in params.items())
    return _MediaRange(kind.strip().lower(), subtype.strip().lower(), pairs, quality)


@functools.lru_cache(maxsize=256)
def _ranges(accept: str | None) -> tuple[_MediaRange, ...]:
    elements = [element for element in _ELEMENT.findall(accept or "") if element.strip()]
    if not elements:  # no Accept, or one with no element: nothing is refused
        return (_MediaRange("*", "*", frozenset(), 1.0),)
    return tuple(parsed for element in elements if (parsed := _parse(element)) is not None)


@functools.lru_cache(maxsize=64)
def _offer(offer: str) -> _MediaRange:
    parsed = _parse(offer)
    assert parsed is not None, offer
    return parsed._replace(params=parsed.params | {("charset", "utf-8")})


def _best_range(ranges: tuple[_MediaRange, ...], offer: str) -> _MediaRange | None:
    """The most specific range that matches the offer (the one whose q counts)."""
    parsed = _offer(offer)
    matching = [r for r in ranges if r.matches(parsed)]
    return max(matching, key=lambda r: r.specificity, default=None)


def accept_header(headers: Headers) -> str | None:
    """Every Accept line of a request as one list; None when it sent none."""
    return raw_accept(headers.raw)


def raw_accept(raw: list[tuple[bytes, bytes]]) -> str | None:
    """Every Accept line of raw header pairs (names in lower case, as uvicorn
    and Starlette's Headers keep them) as one list, as Headers.getlist reads
    them; None when there is none. Joined as bytes and decoded once (latin-1
    maps byte to character): 0.2 us for five headers, where getlist's
    decode of each line took 0.35 and a map/compress chain in C 0.5."""
    lines = [value for name, value in raw if name == b"accept"]
    return b", ".join(lines).decode("latin-1") if lines else None


@functools.lru_cache(maxsize=1024)
def choose(accept: str | None, offers: tuple[str, ...]) -> str | None:
    """The offer the client prefers (offers in the server's order of
    preference), or None when none is acceptable."""
    ranges = _ranges(accept)
    best: tuple[float, tuple[int, int, int], int] | None = None
    chosen = None
    for order, offer in enumerate(offers):
        matched = _best_range(ranges, offer)
        if matched is None or matched.quality <= 0:
            continue
        rank = (matched.quality, matched.specificity, -order)
        if best is None or rank > best:
            best, chosen = rank, offer
    return chosen


@functools.lru_cache(maxsize=1024)
def names(accept: str | None, offer: str) -> bool:
    """Whether the client asks for this type by name (not only through a
    wildcard such as `*/*`), and accepts it."""
    matched = _best_range(_ranges(accept), offer)
    return matched is not None and matched.quality > 0 and matched.specificity[1] == 1


def json_only(accept: str | None) -> None:
    """A GET of a URL that answers JSON alone (it has no event stream):
    RequestError NOT_ACCEPTABLE when the client takes no JSON."""
    if choose(accept, (JSON,)) is None:
        raise RequestError(
            ErrorCode.NOT_ACCEPTABLE,
            f"Accept: {header_text(accept or '')} does not take {JSON}{in_utf8(accept, (JSON,))}: this URL answers only JSON",
        )


def in_utf8(accept: str | None, offers: Sequence[str]) -> str:
    """What a 406's message adds when the client named one of the (JSON)
    offers, but in a charset other than UTF-8, the one JSON has (RFC 8259
    section 8.1): that offer is refused (RFC 9110 section 12.5.1 lets a
    server honour the header so), not sent in a charset the client did not
    ask for; "" when it named none so."""
    named = sorted({
        value for r in _ranges(accept) for offer in offers
        if r.quality > 0 and (r.type, r.subtype) == _offer(offer)[:2]
        for name, value in r.params if name == "charset" and value != "utf-8"
    })
    if not named:
        return ""
    return f" (it asks for JSON in charset {', '.join(named)}: JSON is UTF-8 alone, RFC 8259 section 8.1)"


class JsonOnly:
    """A route's middleware (`Route(middleware=...)`): its GET and HEAD,
    which answer JSON alone, refused by json_only before the endpoint runs;
    rest/routing.py gives it to every such route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: what it lets through is the endpoint's own (no frame of its own).
        if scope["method"] in _READS:
            json_only(raw_accept(scope["headers"]))
        return self.app(scope, receive, send)


_READS = frozenset({"GET", "HEAD"})


def prefers_html(accept: str | None) -> bool:
    """A browser asking for a page (GraphiQL), not for a GraphQL response."""
    return choose(accept, (HTML, *JSON_TYPES, EVENT_STREAM)) == HTML


# What a response tells caches (RFC 9111): which request headers chose it
# (RFC 9110 section 12.5.5, Vary) and whether it may be kept at all. CORS
# adds Origin to every Vary itself (edge/guard.py's layers); the README
# (Caching) says why each answer gets what it gets.
class Caching(NamedTuple):
    """A kind of answer's Vary names (joined to any it has) and Cache-Control
    (`forced`: its directives put on whatever the answer says, as no-store
    must be; else the answer's own, if it has one, stands)."""

    vary: tuple[bytes, ...]
    cache_control: bytes
    forced: bool


# Who is asking, and in what media type, choose every answer behind the
# credential: none is kept by any cache, shared or the browser's.
PRIVATE = Caching((b"Accept", b"Authorization", b"Cookie"), b"no-store", forced=True)
# An event stream resumes from Last-Event-ID besides.
STREAM = Caching((*PRIVATE.vary, b"Last-Event-ID"), b"no-store, no-transform", forced=True)
# GraphiQL's page (public, chosen by Accept on /graphql), the web client's
# page and service worker: kept, but asked again each time (a new release
# names new bundles).
PAGE = Caching((b"Accept",), b"no-cache", forced=False)
STATIC = Caching((), b"no-cache", forced=False)
# The bundles under /assets/ are named for their content: one name is always the same bytes.
IMMUTABLE = Caching((), b"public, max-age=31536000, immutable", forced=False)
# The health check says how the process is now.
LIVE = Caching((), b"no-store", forced=True)

_NAME_OF = operator.itemgetter(0)


@functools.lru_cache(maxsize=256)
def _values(caching: Caching, vary: bytes | None, cache_control: bytes | None) -> tuple[bytes | None, bytes]:
    """The Vary (None: none needed) and Cache-Control values for an answer
    that had these (None: none)."""
    have = [] if vary is None else [token.strip() for token in vary.split(b",") if token.strip()]
    known = {token.lower() for token in have}
    joined = have + [token for token in caching.vary if token.lower() not in known]
    directives = [] if cache_control is None else [d.strip() for d in cache_control.split(b",") if d.strip()]
    if cache_control is None:
        control = caching.cache_control
    elif caching.forced:
        present = {d.lower() for d in directives}
        control = b", ".join(directives + [d.strip() for d in caching.cache_control.split(b",") if d.strip().lower() not in present])
    else:
        control = cache_control
    return (b", ".join(joined) if joined else None), control


def stamped(headers: Iterable[tuple[bytes, bytes]], caching: Caching) -> list[tuple[bytes, bytes]]:
    """The response headers with caching's Vary and Cache-Control, each
    name once (several lines of one are one list: RFC 9110 section 5.3)."""
    headers = list(headers)
    names = list(map(bytes.lower, map(_NAME_OF, headers)))
    varies, controls = names.count(b"vary"), names.count(b"cache-control")
    if not varies and not controls:  # most answers (GraphQL's, the router's): both made once
        headers += _fresh(caching)
        return headers
    if varies > 1 or controls > 1:
        headers, names = _joined(headers, names)
    vary_at = names.index(b"vary") if varies else -1
    control_at = names.index(b"cache-control") if controls else -1
    vary, control = _values(
        caching, headers[vary_at][1] if varies else None, headers[control_at][1] if controls else None
    )
    if vary_at >= 0:
        headers[vary_at] = (b"vary", vary or b"")
    elif vary is not None:
        headers.append((b"vary", vary))
    if control_at >= 0:
        headers[control_at] = (b"cache-control", control)
    else:
        headers.append((b"cache-control", control))
    return headers


@functools.lru_cache(maxsize=16)
def _fresh(caching: Caching) -> tuple[tuple[bytes, bytes], ...]:
    """caching's headers, for an answer that has neither."""
    vary, control = _values(caching, None, None)
    varies = ((b"vary", vary),) if vary is not None else ()
    return (*varies, (b"cache-control", control))


def fresh_headers(caching: Caching) -> dict[str, str]:
    """caching's headers for an answer that has neither, as Starlette's
    responses take them (an answer made before any layer runs)."""
    return {name.decode(): value.decode() for name, value in _fresh(caching)}


def _joined(headers: list[tuple[bytes, bytes]], names: list[bytes]) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Every Vary line as one, and every Cache-Control line, each where its first was."""
    kept: list[tuple[bytes, bytes]] = []
    at: dict[bytes, int] = {}
    for name, pair in zip(names, headers, strict=True):
        if name not in (b"vary", b"cache-control"):
            kept.append(pair)
        elif name in at:
            kept[at[name]] = (name, kept[at[name]][1] + b", " + pair[1])
        else:
            at[name] = len(kept)
            kept.append((name, pair[1]))
    return kept, list(map(bytes.lower, map(_NAME_OF, kept)))


def caching_of(path: str, status: int, headers: Sequence[tuple[bytes, bytes]]) -> Caching:
    """What the answer (its status and headers) to a GET or HEAD of `path` tells caches."""
    if path.startswith(_ASSETS):
        return IMMUTABLE if status in (200, 206, 304) else LIVE
    if path in _STATIC:
        return STATIC
    if path == _HEALTH:
        return LIVE
    if path == paths.GRAPHQL and _content_type(headers).startswith(b"text/html"):
        return PAGE
    return PRIVATE


_ASSETS = "/assets/"
_STATIC = frozenset({"/", paths.SERVICE_WORKER})
_HEALTH = "/healthz"


class Cached:
    """ASGI middleware, inside the response cache's front door (whose kept
    replies then carry what it adds): every answer to a GET or HEAD, the
    stack's refusals and errors included, told what caching_of says. Other
    methods' answers are kept by no cache (RFC 9111 section 3: a POST's only
    with explicit freshness, which none has); GraphQL's, which negotiate,
    say so themselves (graphql/http.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: the app's own, one frame fewer a request.
        if scope["type"] != "http" or scope["method"] not in _READS:
            return self.app(scope, receive, send)
        path: str = scope["path"]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                caching = caching_of(path, message["status"], headers)
                message = {**message, "headers": stamped(headers, caching)}
            await send(message)

        return self.app(scope, receive, sending)


def _content_type(headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value
    return b""
