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
import re
from collections.abc import Awaitable
from typing import NamedTuple

import mimeparse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

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
            ErrorCode.NOT_ACCEPTABLE, f"Accept: {header_text(accept or '')} does not take {JSON}: this URL answers only JSON"
        )


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
