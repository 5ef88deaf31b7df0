"""Content negotiation: the rules of RFC 9110 (section 12.5.1) that
negotiation.py adds to python-mimeparse, and what every popular client gets,
as it comes, from /graphql and REST."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import mimeparse
import pytest
from playwright.sync_api import BrowserContext
from starlette.datastructures import Headers

from graphql_todos.edge.negotiation import MULTIPART, accept_header, choose, names
from tests.helpers import Server, wait_until
from tests.js_clients import node
from tests.test_web import browser, context  # noqa: F401 - fixtures

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
SSE = "text/event-stream"
HTML = "text/html"
MIXED = "multipart/mixed"


@pytest.mark.parametrize(
    ("accept", "offers", "chosen"),
    [
        # The highest q wins, whatever the order of the list.
        ("text/event-stream;q=0.5, application/json", (SSE, JSON), JSON),
        ("application/json;q=0.5, text/event-stream", (JSON, SSE), SSE),
        # q=0: not acceptable, even where a wildcard would take it.
        ("application/json, text/event-stream;q=0", (SSE, JSON), JSON),
        ("*/*, text/event-stream;q=0", (SSE,), None),
        ("text/event-stream;q=0", (SSE, JSON), None),
        # The most specific range gives the q: text/event-stream's, not text/*'s.
        ("text/*;q=0.1, text/event-stream;q=0.9, */*;q=0.5", (JSON, SSE), SSE),
        ("text/*, text/event-stream;q=0.2, */*;q=0.5", (SSE, JSON), JSON),
        # Equal q: the offer named beats one taken by a wildcard...
        ("application/json, */*", (SSE, JSON), JSON),
        ("text/*, application/json", (SSE, JSON), JSON),
        # ...then the server's order.
        ("*/*", (SSE, JSON), SSE),
        ("application/json, text/event-stream", (SSE, JSON), SSE),
        # A range with parameters matches only a type that has them all.
        ("multipart/mixed;deferSpec=20220824, application/json;q=0.9", (MULTIPART, JSON), JSON),
        ('multipart/mixed;subscriptionSpec="1.0"', (JSON, MULTIPART), MULTIPART),
        ("multipart/mixed;subscriptionSpec=2.0", (MULTIPART,), None),
        ("multipart/mixed", (JSON, MULTIPART), MULTIPART),
        # Case: types and parameter names ignore it, and charset values.
        ("Application/JSON", (SSE, JSON), JSON),
        ("multipart/mixed;SubscriptionSpec=1.0", (MULTIPART,), MULTIPART),
        ("multipart/mixed;boundary=GraphQL", (MULTIPART,), None),
        # Everything sent is UTF-8.
        ("application/json; charset=UTF-8", (JSON,), JSON),
        ("application/json; charset=iso-8859-1", (JSON,), None),
        # A comma inside a quoted value is not a separator.
        ('multipart/mixed;boundary="a,graphql", application/json;q=0.1', (MULTIPART, JSON), JSON),
        # No Accept, or an empty one, takes anything; a range that does not
        # parse is ignored, and one that is all that was sent takes nothing.
        (None, (SSE, JSON), SSE),
        ("", (SSE, JSON), SSE),
        (" , ", (SSE, JSON), SSE),
        ("nonsense, application/json", (SSE, JSON), JSON),
        ("nonsense", (SSE, JSON), None),
        # mimeparse reads a q it cannot parse, or one out of range, as 1.
        ("application/json;q=high, text/event-stream;q=0.5", (SSE, JSON), JSON),
        ("application/json;q=7, text/event-stream;q=0.5", (SSE, JSON), JSON),
        # Java's URLConnection sends a lone `*`.
        ("*; q=.2", (JSON,), JSON),
    ],
)
def test_negotiation_follows_rfc_9110(accept: str | None, offers: tuple[str, ...], chosen: str | None) -> None:
    assert choose(accept, offers) == chosen


def test_mimeparse_alone_bends_the_rules_negotiation_adds() -> None:
    # Why the wrapper: a range's parameters do not keep it from matching,
    # and types are compared as written.
    assert mimeparse.best_match([MULTIPART], "multipart/mixed;deferSpec=20220824") == MULTIPART
    assert mimeparse.best_match([JSON], "Application/JSON") == ""
    assert mimeparse.quality(JSON, "application/json;q=0.5, */*") == 0.5


def test_several_accept_lines_are_one_list() -> None:
    headers = Headers(raw=[(b"accept", b"application/json;q=0.1"), (b"accept", b"text/event-stream")])
    assert choose(accept_header(headers), (JSON, SSE)) == SSE
    assert accept_header(Headers(raw=[])) is None


def test_a_type_is_named_only_without_wildcards() -> None:
    assert names("application/graphql-response+json, */*", GRAPHQL_JSON)
    assert not names("*/*", GRAPHQL_JSON)
    assert not names("application/*", GRAPHQL_JSON)
    assert not names("application/graphql-response+json;q=0, */*", GRAPHQL_JSON)


class Expected(NamedTuple):
    """What a client's Accept gets (None: 406): a query or mutation and a
    subscription over POST /graphql, GET /api/todos/ and /api/todos/{id}/, and
    GET /graphql with no query (GraphiQL, to a browser)."""

    query: str | None
    subscription: str | None
    rest: str | None
    page: str | None


URQL = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
APOLLO = "application/graphql-response+json,application/json;q=0.9"
# Chromium's navigation (content/common/content_constants_internal.cc,
# kFrameAcceptHeaderValue, as Debian's Chromium 156 sends it: with JPEG XL,
# and the signed-exchange type it adds).
CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
LEGACY = Expected(JSON, SSE, JSON, HTML)
GRAPHQL_RESPONSE = Expected(GRAPHQL_JSON, GRAPHQL_JSON, JSON, GRAPHQL_JSON)
STREAMS = Expected(SSE, SSE, SSE, SSE)

# Each client's default Accept (None: it sends none), where it comes from,
# and what it gets.
CLIENTS: dict[str, tuple[str | None, Expected]] = {
    # @urql/core 6 (packages/core/src/internal/fetchOptions.ts) for a query or
    # a mutation: a subscription goes over the exchange's graphql-ws here.
    "urql": (URQL, Expected(GRAPHQL_JSON, SSE, JSON, GRAPHQL_JSON)),
    # The same file, for a subscription over fetch (fetchSubscriptions: true).
    "urql-fetch-subscriptions": ("text/event-stream, multipart/mixed", STREAMS),
    # Apollo Client 4 HttpLink (src/link/http/selectHttpOptionsAndBody.ts,
    # fallbackHttpConfig): a subscription over it is refused in JSON...
    "apollo": (APOLLO, GRAPHQL_RESPONSE),
    # ...as it adds multipart first for a subscription (src/link/http/BaseHttpLink.ts).
    "apollo-multipart": (
        "multipart/mixed;boundary=graphql;subscriptionSpec=1.0," + APOLLO,
        Expected(GRAPHQL_JSON, MIXED, JSON, GRAPHQL_JSON),
    ),
    # graphql-request 7 (graffle-js/graffle: src/legacy/helpers/runRequest.ts,
    # src/lib/http.ts).
    "graphql-request": ("application/graphql-response+json, application/json", GRAPHQL_RESPONSE),
    # graphql-sse 2 (enisdenjo/graphql-sse: src/client.ts).
    "graphql-sse": ("text/event-stream", STREAMS),
    # The browser's EventSource (HTML Living Standard, the EventSource constructor).
    "eventsource": ("text/event-stream", STREAMS),
    # fetch() given no Accept (Fetch Standard, "fetch", step 12): Relay's
    # examples set only Content-Type (facebook/relay:
    # website/docs/getting-started/quick-start.md, fetchGraphQL).
    "fetch": ("*/*", LEGACY),
    # curl (lib/http.c: "Accept: */*" unless given one).
    "curl": ("*/*", LEGACY),
    # A client that sends no Accept at all (Python's urllib).
    "no accept": (None, LEGACY),
    "chromium navigation": (CHROMIUM, LEGACY),
    # Firefox (modules/libpref/init/StaticPrefList.yaml, network.http.accept).
    "firefox navigation": ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", LEGACY),
    # This app's own web client (web/src/api.ts).
    "web client": (JSON, Expected(JSON, JSON, JSON, JSON)),
    "json, no stream": ("application/json, text/event-stream;q=0", Expected(JSON, JSON, JSON, JSON)),
    "html only": ("text/html", Expected(None, None, None, HTML)),
}


@pytest.fixture
def bare(server: Server) -> Iterator[httpx.Client]:
    """A client that sends only the headers given (httpx adds Accept: */*)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        del client.headers["accept"]
        yield client


def _media_type(client: httpx.Client, method: str, url: str, headers: dict[str, str], **body: object) -> str | None:
    """The media type of the answer (None: 406), its headers only: a stream
    is left at once."""
    with client.stream(method, url, headers=headers, **body) as response:  # type: ignore[arg-type]
        if response.status_code != 406:
            return response.headers["content-type"].split(";")[0]
        assert response.headers["content-type"] == JSON
        answer = response.read()
    refusal: dict[str, Any] = httpx.Response(406, content=answer).json()
    error = refusal["error"] if "error" in refusal else refusal["errors"][0]["extensions"]
    assert error["code"] == "NOT_ACCEPTABLE", refusal
    return None


def _answers(client: httpx.Client, accept: str | None, todo_id: str) -> Expected:
    headers = {} if accept is None else {"accept": accept}
    query = {"query": "{ todos { id } }"}
    subscription = {"query": "subscription { todoChanges { cursor } }"}
    rest = {_media_type(client, "GET", url, headers) for url in ("/api/todos/", f"/api/todos/{todo_id}/")}
    assert len(rest) == 1, rest  # the collection and an item alike
    return Expected(
        _media_type(client, "POST", "/graphql", headers, json=query),
        _media_type(client, "POST", "/graphql", headers, json=subscription),
        rest.pop(),
        _media_type(client, "GET", "/graphql", headers),
    )


def test_every_client_as_it_comes_gets_the_media_type_it_expects(bare: httpx.Client) -> None:
    todo_id = bare.post("/api/todos/", json={"title": "negotiated"}).json()["id"]
    got = {name: _answers(bare, accept, todo_id) for name, (accept, _) in CLIENTS.items()}
    assert got == {name: expected for name, (_, expected) in CLIENTS.items()}


class _Recorder(http.server.ThreadingHTTPServer):
    """Records the Accept header of each request by its path."""

    def __init__(self) -> None:
        self.accepts: dict[str, str | None] = {}
        super().__init__(("127.0.0.1", 0), _Recording)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Recording(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def _answer(self) -> None:
        self.server.accepts.setdefault(self.path.split("?")[0].strip("/"), self.headers.get("accept"))
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b'{"data":null}'
        self.send_response(200)
        self.send_header("content-type", JSON)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    recording = _Recorder()
    thread = threading.Thread(target=recording.serve_forever, daemon=True)
    thread.start()
    yield recording
    recording.shutdown()
    recording.server_close()


def test_the_npm_clients_send_the_accept_headers_of_the_table(recorder: _Recorder) -> None:
    node("accept_headers.mjs", recorder.url)
    sent = ("urql", "urql-fetch-subscriptions", "apollo", "apollo-multipart", "graphql-request", "graphql-sse", "fetch")
    assert recorder.accepts == {name: CLIENTS[name][0] for name in sent}


def test_chromium_sends_the_accept_headers_of_the_table(
    recorder: _Recorder, context: BrowserContext  # noqa: F811 - the fixture
) -> None:
    page = context.new_page()
    page.goto(recorder.url + "/chromium-navigation")
    page.evaluate("() => { new EventSource('/eventsource'); return fetch('/fetch'); }")
    wait_until(lambda: "eventsource" in recorder.accepts)
    asked = ("chromium-navigation", "eventsource", "fetch")  # not the favicon
    assert {path: recorder.accepts[path] for path in asked} == {
        "chromium-navigation": CHROMIUM,
        "eventsource": CLIENTS["eventsource"][0],
        "fetch": CLIENTS["fetch"][0],
    }


def test_urql_with_its_defaults_runs_beside_apollo_client(server: Server) -> None:
    [result] = node("urql_beside_apollo.mjs", server.url + "/graphql", server.ws_url + "/graphql")
    titles = ["from urql", "from apollo"]
    assert result == {"seen": {"urql": titles, "apollo": titles}, "lists": {"urql": titles, "apollo": titles}}


def test_a_stream_accepted_below_json_is_not_chosen(bare: httpx.Client) -> None:
    # The bug this negotiation fixed: any mention of text/event-stream streamed.
    headers = {"accept": "application/json, text/event-stream;q=0.5"}
    assert bare.get("/api/todos/", headers=headers).json() == []
    answer = bare.post("/graphql", json={"query": "{ todos { id } }"}, headers=headers)
    assert answer.json() == {"data": {"todos": []}}
