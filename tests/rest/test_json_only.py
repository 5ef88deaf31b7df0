"""A REST URL with no event stream refuses a client that takes only one
(406 NOT_ACCEPTABLE, edge/negotiation.json_only), and answers JSON to one
that takes JSON, anything, or says nothing; the URLs that have a stream
(/api/todos/, /api/todos/<id>/, /api/feed/) keep it. Every GET route of the
app's own table, so a new one is tried as it comes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
