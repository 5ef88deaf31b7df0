"""A 405's Allow names only methods that work: on every HTTP route of the
app's table, a method it does not take (OPTIONS without CORS's headers) is
405 with Allow; where Allow names HEAD, HEAD answers as GET does, with no
body (RFC 9110 sections 9.3.2 and 10.2.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import Server, serving
from tests.test_auth_matrix import _table
from tests.test_lists import Caller

# A GET of /graphql needs a document.
QUERY = {"/graphql": {"query": "{ todos { id } }"}}


@pytest.fixture(scope="module")
def accounts(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, auth="accounts") as srv:
        yield srv


def _head(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[int, str | None, bytes]:
    answer = client.head(url, params=params)
    return answer.status_code, answer.headers.get("content-type"), answer.content


def _get(client: httpx.Client, url: str, params: dict[str, str]) -> tuple[int, str | None]:
    # Streamed: /api/feed/'s GET is an event stream, never ending.
    with client.stream("GET", url, params=params) as answer:
        return answer.status_code, answer.headers.get("content-type")


def test_a_405_allows_head_only_where_head_works(accounts: Server) -> None:
    ann = Caller(accounts, "ann")
    todo = ann.http.post("/api/todos/", json={"title": "a"}).json()["id"]
    list_id = ann.http.get("/api/lists/").json()[0]["id"]
    allowing_head = []
    for kind, path, _ in _table(accounts.app.routes):
        if kind != "http" or path == "/assets/{path}":  # (static files: Starlette's own, GET and HEAD)
            continue
        url = path.replace("{id}", todo if path.startswith("/api/todos/") else list_id)
        url = url.replace("{person_id}", ann.id).replace("{client}", str(uuid.uuid4()))
        refused = ann.http.options(url)
        assert refused.status_code == 405, (path, refused.text)
        allowed = {method.strip() for method in refused.headers["allow"].split(",")}
        if "HEAD" not in allowed:
            continue
        allowing_head.append(path)
        params = QUERY.get(path, {})
        status, media_type, body = _head(ann.http, url, params)
        assert (status, media_type, body) == (*_get(ann.http, url, params), b""), path
    assert "/api/lists/" in allowing_head and "/api/feed/" in allowing_head
