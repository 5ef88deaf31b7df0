"""A REST URL with no event stream refuses a client that takes only one
(406 NOT_ACCEPTABLE, edge/negotiation.json_only), and answers JSON to one
that takes JSON, anything, or says nothing; the URLs that have a stream
(/api/todos/, /api/todos/<id>/, /api/feed/) keep it. Every GET route of the
app's own table, so a new one is tried as it comes; the OpenAPI document
lists each one's 406 (rest/routing.py: the document's media types decide)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graphql_todos.edge.error_handlers import EXCEPTION_HANDLERS
from graphql_todos.edge.negotiation import raw_accept
from graphql_todos.internals.starlette_endpoint import Endpoint
from graphql_todos.rest.openapi import DOCUMENT
from graphql_todos.rest.openapi_parts import NOT_JSON
from graphql_todos.rest.routing import negotiated
from tests.helpers import Server, serving
from tests.test_auth_matrix import _table
from tests.test_lists import Caller

SSE = "text/event-stream"
STREAMS = {"/api/todos/", "/api/todos/{id}/", "/api/feed/"}


@pytest.fixture(scope="module")
def accounts(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, auth="accounts") as srv:
        yield srv


@pytest.fixture(scope="module")
def ann(accounts: Server) -> Caller:
    return Caller(accounts, "ann")


def _gets(server: Server) -> list[str]:
    return sorted(path for kind, path, methods in _table(server.app.routes) if path.startswith("/api/") and "GET" in methods)


def _url(path: str, ann: Caller, todo: str) -> str:
    list_id = ann.http.get("/api/lists/").json()[0]["id"]
    ids = {"{id}": todo if path.startswith("/api/todos/") else list_id, "{person_id}": ann.id, "{client}": str(uuid.uuid4())}
    for name, value in ids.items():
        path = path.replace(name, value)
    return path


def test_a_url_without_a_stream_refuses_a_client_that_takes_only_one(accounts: Server, ann: Caller) -> None:
    todo = ann.http.post("/api/todos/", json={"title": "a"}).json()["id"]
    paths = _gets(accounts)
    assert "/api/lists/" in paths and "/api/auth/me" in paths and "/api/tokens/" in paths
    for path in paths:
        url = _url(path, ann, todo)
        if path in STREAMS:
            head = ann.http.head(url, headers={"Accept": SSE})
            assert (head.status_code, head.headers["content-type"]) == (200, SSE), path
            continue
        for method in ("GET", "HEAD"):
            refused = ann.http.request(method, url, headers={"Accept": SSE})
            assert refused.status_code == 406, (method, path, refused.text)
        body = ann.http.get(url, headers={"Accept": SSE}).json()
        assert body == {"error": {"code": "NOT_ACCEPTABLE", "message": f"Accept: {SSE} does not take application/json: this URL answers only JSON"}}
        for accept in (None, "*/*", "application/json", f"{SSE}, application/json;q=0.1"):
            answered = ann.http.get(url, headers={} if accept is None else {"Accept": accept})
            assert (answered.status_code, answered.headers["content-type"]) == (200, "application/json"), (path, accept)


def test_the_document_lists_the_406_of_each_get(accounts: Server) -> None:
    for path in _gets(accounts):
        if path not in DOCUMENT["paths"]:
            assert path == "/api/openapi.json"  # itself: not an operation of the document
            continue
        refused = DOCUMENT["paths"][path]["get"]["responses"]["406"]
        assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, path
        assert (refused["description"] == NOT_JSON) == (path not in STREAMS), path


async def _answer(request: Request) -> Response:
    return JSONResponse({"method": request.method})


class _Resource(Endpoint):
    async def get(self, request: Request) -> Response:
        return await _answer(request)

    async def post(self, request: Request) -> Response:
        return await _answer(request)


def test_a_get_a_table_adds_answers_only_json_unless_its_operation_streams() -> None:
    """A function's GET and an endpoint class's, which the document leaves
    out, refuse a client that takes only a stream; the class's POST does
    not; a path whose operation streams is left to its endpoint."""
    table = negotiated([Route("/new/", _answer), Route("/resource/", _Resource), Route("/todos/", _Resource)])
    app = Starlette(routes=table, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]

    async def ask(method: str, path: str, accept: list[str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://localhost") as client:
            return await client.request(method, path, headers=[("Accept", line) for line in accept])

    def answered(method: str, path: str, *accept: str) -> object:
        response = asyncio.run(ask(method, path, list(accept or [SSE])))
        return response.status_code if response.status_code != 200 else response.json()

    for path in ("/new/", "/resource/"):
        assert answered("GET", path) == answered("HEAD", path) == 406, path
        assert answered("GET", path, "application/json") == {"method": "GET"}
        # Two Accept lines are one list.
        assert answered("GET", path, SSE, "application/json;q=0.1") == {"method": "GET"}
    assert answered("POST", "/resource/") == {"method": "POST"}
    assert answered("GET", "/todos/") == {"method": "GET"}


@pytest.mark.parametrize("lines", [[], [""], ["application/json"], [SSE, "application/json;q=0.1"], ['text/x;p="\xe9, a", */*']])
def test_raw_accept_reads_the_lines_as_headers_do(lines: list[str]) -> None:
    raw = [(b"host", b"localhost"), *((b"accept", line.encode("latin-1")) for line in lines), (b"user-agent", b"x")]
    lines = Headers(raw=raw).getlist("accept")
    assert raw_accept(raw) == (", ".join(lines) if lines else None)
