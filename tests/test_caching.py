"""What every answer tells caches (edge/negotiation.py, Caching), tried from
outside on a real server: the route table of tests/test_auth_matrix.py
(which test_the_matrix_covers_the_whole_app holds to the app's own), every
GET and HEAD of each route (its 405s too: a 405 is cacheable by default,
RFC 9110 section 15.5.6), with no token, a wrong one and the right one, and
every way of sending GraphQL over HTTP. A route added to the app cannot
skip the headers: the matrix must list it, and this walks the matrix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graphql_todos.edge.negotiation import IMMUTABLE, LIVE, PAGE, PRIVATE, STATIC, STREAM, Caching
from tests.helpers import BEARER, TOKEN, WEB_DIST, Server, serving
from tests.test_auth_matrix import AUTHS, BODIES, HTTP_ROUTES, HTTP_WAYS, PUBLIC, QUERY, SSE, _table, _url

READS = ("GET", "HEAD")
ORIGIN = "Origin"
# What each public read is told (every other answer to a read is PRIVATE's).
PUBLIC_CACHING: dict[str, Caching] = {
    "/healthz": LIVE,
    "/": STATIC,
    "/sw.js": STATIC,
    "/assets/{path}": IMMUTABLE,
}
# Accept headers a read may come with: each answer, whatever its status, says what chose it.
ACCEPTS: dict[str, dict[str, str]] = {
    "none": {},
    "JSON": {"Accept": "application/json"},
    "an event stream": SSE,
    "HTML": {"Accept": "text/html"},
    "JSON in latin-1": {"Accept": "application/json;charset=latin-1"},
}


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    assert (WEB_DIST / "index.html").exists(), "the route table includes the web client: make web"
    with serving(module_db_dsn, token=TOKEN) as srv:
        httpx.post(srv.url + "/api/todos/", json={"title": "seen"}, headers=BEARER).raise_for_status()
        yield srv


@pytest.fixture(scope="module")
def todo_id(server: Server) -> str:
    return str(httpx.get(server.url + "/api/todos/", headers=BEARER).json()[0]["id"])


def _tokens(response: httpx.Response, name: str) -> set[str]:
    """A list header's members, every line of it, in lower case."""
    return {token.strip().lower() for line in response.headers.get_list(name) for token in line.split(",") if token.strip()}


def _told(response: httpx.Response, caching: Caching, where: str) -> None:
    """The answer carries caching's Vary names (and CORS's Origin) and its Cache-Control directives."""
    assert len(response.headers.get_list("cache-control")) == 1, where
    assert len(response.headers.get_list("vary")) == 1, where
    vary = _tokens(response, "vary")
    assert {token.decode().lower() for token in caching.vary} | {ORIGIN.lower()} <= vary, (where, vary)
    directives = _tokens(response, "cache-control")
    assert {d.strip().decode() for d in caching.cache_control.split(b",")} <= directives, (where, directives)
    if caching.forced:
        assert "public" not in directives, where


def _caching(path: str, response: httpx.Response) -> Caching:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return STREAM
    if path == "/graphql" and response.headers.get("content-type", "").startswith("text/html"):
        return PAGE
    caching = PUBLIC_CACHING.get(path, PRIVATE)
    # A bundle that is not there is not kept for a year.
    return LIVE if caching is IMMUTABLE and response.status_code not in (200, 304) else caching


def _read(server: Server, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    """The answer's head (a stream's too: it is left at once)."""
    with httpx.stream(method, server.url + url, headers=headers, timeout=10, **kwargs) as response:
        return response


def test_the_walk_covers_the_whole_route_table(server: Server) -> None:
    assert {path for kind, path, _ in _table(server.app.routes) if kind == "http"} == set(HTTP_ROUTES)


@pytest.mark.parametrize("auth", list(AUTHS))
@pytest.mark.parametrize("path", list(HTTP_ROUTES))
def test_every_read_of_every_route_says_what_chose_it_and_who_may_keep_it(
    server: Server, todo_id: str, path: str, auth: str
) -> None:
    for method in READS:
        url = _url(server, path, method, todo_id)
        for accept, headers in ACCEPTS.items():
            kwargs = BODIES.get((path, method), {})
            response = _read(server, method, url, {**headers, **AUTHS[auth]}, **kwargs)
            where = f"{method} {url} {auth} taking {accept}: {response.status_code}"
            if (path, method) not in PUBLIC and auth != "right":
                assert response.status_code == 401, where
            _told(response, _caching(path, response), where)
            if (path, method) not in PUBLIC:
                assert "no-store" in _tokens(response, "cache-control"), where


@pytest.mark.parametrize("way", list(HTTP_WAYS))
def test_every_way_of_graphql_over_http_says_so_whatever_the_method(server: Server, todo_id: str, way: str) -> None:
    method, path, kwargs, _ = HTTP_WAYS[way]
    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", {})
    response = _read(server, method, path.replace("{id}", todo_id), {**headers, **BEARER}, **kwargs)
    _told(response, _caching(path.split("?")[0], response), f"{way}: {response.status_code}")
    assert "no-store" in _tokens(response, "cache-control")


ACCEPT_VARIANTS = {
    "GraphQL over HTTP": "application/graphql-response+json",
    "legacy JSON": "application/json",
    "anything": "*/*",
}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_graphqls_media_types_vary_by_accept(server: Server, method: str) -> None:
    kinds = set()
    for accept in ACCEPT_VARIANTS.values():
        arguments: dict[str, Any] = {"params": {"query": QUERY}} if method == "GET" else {"json": {"query": QUERY}}
        response = httpx.request(method, server.url + "/graphql", headers={"Accept": accept, **BEARER}, **arguments)
        assert response.status_code == 200
        kinds.add(response.headers["content-type"].split(";")[0])
        _told(response, PRIVATE, accept)
    assert kinds == {"application/graphql-response+json", "application/json"}


def test_a_kept_reply_is_told_as_the_first_answer(server: Server) -> None:
    """The front door's replies (graphql/fast/front.py) carry the headers the
    stack gave the answer they keep: a hit says the same."""
    hits = server.state("response_replies").hits
    for url, params in (("/graphql", {"query": QUERY}), ("/api/todos/", {})):
        first, second = (httpx.get(server.url + url, params=params, headers=BEARER) for _ in range(2))
        assert first.headers.get_list("vary") == second.headers.get_list("vary")
        assert first.headers.get_list("cache-control") == second.headers.get_list("cache-control") == ["no-store"]
        _told(second, PRIVATE, url)
    assert server.state("response_replies").hits >= hits + 2


def test_the_graphiql_page_may_be_kept_but_not_given_for_json(server: Server) -> None:
    page = httpx.get(server.url + "/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    _told(page, PAGE, "page")
    assert "no-store" not in _tokens(page, "cache-control")
    # The same URL asked for JSON is not the page: Vary: Accept keeps a cache from mixing them.
    json_answer = httpx.get(server.url + "/graphql", headers={"Accept": "application/json", **BEARER})
    assert json_answer.headers["content-type"].startswith("application/json")
    _told(json_answer, PRIVATE, "json")


def test_a_bundle_is_kept_and_revalidated_by_its_etag(server: Server) -> None:
    index = httpx.get(server.url + "/")
    _told(index, STATIC, "/")
    bundle = index.text.split('src="', 1)[1].split('"', 1)[0]
    first = httpx.get(server.url + bundle)
    _told(first, IMMUTABLE, bundle)
    again = httpx.get(server.url + bundle, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    _told(again, IMMUTABLE, bundle)
    missing = httpx.get(server.url + "/assets/not-there-0000.js")
    assert missing.status_code == 404
    _told(missing, LIVE, "a missing bundle")


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/todos/", "application/json;charset=latin-1"),
        ("/api/openapi.json", "application/json; charset=ISO-8859-1"),
        ("/graphql?query={todos{id}}", "application/graphql-response+json;charset=latin-1, application/json;charset=latin-1"),
    ],
)
def test_json_in_another_charset_is_refused_saying_why(server: Server, path: str, accept: str) -> None:
    """JSON is UTF-8 alone (RFC 8259 section 8.1): asked for in latin-1, it is
    406 (RFC 9110 section 12.5.1), and the message says which charset."""
    response = httpx.get(server.url + path, headers={"Accept": accept, **BEARER})
    assert response.status_code == 406
    assert "RFC 8259" in response.text and "charset latin-1" in response.text.lower().replace("iso-8859-1", "latin-1")
    _told(response, PRIVATE, path)
    # In UTF-8 (or with no charset) it is answered.
    utf8 = accept.replace("latin-1", "utf-8").replace("ISO-8859-1", "UTF-8")
    assert httpx.get(server.url + path, headers={"Accept": utf8, **BEARER}).status_code == 200


def test_a_stream_says_it_resumes_by_last_event_id(server: Server) -> None:
    response = _read(server, "GET", "/api/todos/?after=0", {**SSE, **BEARER})
    assert response.status_code == 200
    _told(response, STREAM, "stream")
    assert "last-event-id" in _tokens(response, "vary")
    head = httpx.head(server.url + "/api/todos/?after=0", headers={**SSE, **BEARER})
    assert head.headers.get_list("vary") == response.headers.get_list("vary")
    assert head.headers.get_list("cache-control") == response.headers.get_list("cache-control")


def test_a_multipart_subscription_says_so(server: Server) -> None:
    body = {"query": 'subscription { todoChanges(after: "0") { cursor } }'}
    accept = {"Accept": "multipart/mixed;subscriptionSpec=1.0,application/json"}
    for method, arguments in (("POST", {"json": body}), ("GET", {"params": {"query": body["query"]}})):
        response = _read(server, method, "/graphql", {**accept, **BEARER}, **arguments)
        assert response.headers["content-type"].startswith("multipart/mixed"), method
        _told(response, STREAM, method)
