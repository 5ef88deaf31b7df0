"""The response cache's front door (graphql/fast/front.py) answers as the whole
app does, for GraphQL and the REST list: each request below is sent, as raw bytes, twice to a server with
the cache (the second time answered by the front door when it may) and once
to one without it, and the three answers must be equal, byte for byte but for
the Date header. Refusals are the stack's own."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest

from tests.helpers import BEARER, TOKEN, Server, raw_exchange, serving, wait_until
from tests.pgserver import database_backup

ORIGIN = "https://app.example"
# The guarded fixture's limits, and an origin allowed to read.
SETTINGS: dict[str, Any] = {
    "token": TOKEN, "max_body_bytes": 1000, "request_seconds": 1.0, "allowed_origins": (ORIGIN,),
}
LIST = json.dumps({"query": "{ todos { id title completed } }"}).encode()
GET_LIST = "GET /graphql?" + urlencode({"query": "{ todos { id title completed } }"})
REST_LIST = "GET /api/todos/"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def pair(db_dsn: str) -> Iterator[tuple[Server, Server]]:
    """(with the cache, without it), on one database with one todo."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
    with serving(db_dsn, **SETTINGS) as cached, serving(db_dsn, response_cache_size=0, **SETTINGS) as plain:
        yield cached, plain


def _exchange(server: Server, body: bytes, headers: dict[str, str], chunks: list[bytes] | None = None,
              pause: float = 0.0, target: str = "POST /graphql") -> bytes:
    lines = [f"{name}: {value}" for name, value in {"Host": "127.0.0.1", **headers, "Connection": "close"}.items()]
    if chunks is None:
        lines.append(f"Content-Length: {len(body)}")
        chunks = [body]
    head = (f"{target} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines) + "\r\n").encode()
    answer = raw_exchange(server, head, chunks, pause)
    # The one header that differs from one answer to the next.
    return re.sub(rb"\r\ndate: [^\r]*", b"", answer)


def _hits(server: Server) -> int:
    return int(server.state("response_replies").hits)


def _same_answers(pair: tuple[Server, Server], body: bytes, headers: dict[str, str], **sending: Any) -> bytes:
    cached, plain = pair
    first = _exchange(cached, body, headers, **sending)
    again = _exchange(cached, body, headers, **sending)
    assert again == first
    assert _exchange(plain, body, headers, **sending) == first
    return first


@pytest.mark.parametrize(
    "headers",
    [
        {**JSON, **BEARER},
        {**JSON, **BEARER, "Origin": ORIGIN},
        {**JSON, **BEARER, "Origin": "https://evil.example"},
        {**JSON, **BEARER, "Accept": "application/graphql-response+json"},
        {**JSON, **BEARER, "Accept": "application/json"},
    ],
    ids=["plain", "allowed origin", "foreign origin", "graphql-response+json", "json"],
)
def test_a_repeated_query_gets_the_apps_own_answer(pair: tuple[Server, Server], headers: dict[str, str]) -> None:
    hits = _hits(pair[0])
    answer = _same_answers(pair, LIST, headers)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"title":"a"' in answer
    assert _hits(pair[0]) == hits + 1
    if headers.get("Origin") == ORIGIN:
        assert f"access-control-allow-origin: {ORIGIN}".encode() in answer


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (LIST, JSON, 401),
        (LIST, {**JSON, "Authorization": "Bearer wrong"}, 401),
        (LIST + b" " * 1000, {**JSON, **BEARER}, 413),
        (b'{"query": ', {**JSON, **BEARER}, 400),
        (json.dumps({"query": "{ nope }"}).encode(), {**JSON, **BEARER}, 200),
        (json.dumps({"query": "{ nope }"}).encode(), {**JSON, **BEARER, "Accept": "application/graphql-response+json"}, 400),
        (LIST, {**BEARER, "Content-Type": "text/plain"}, 400),
    ],
    ids=["no token", "wrong token", "body too big", "bad JSON", "invalid document", "invalid, graphql-response", "not JSON"],
)
def test_refusals_are_the_stacks_own(pair: tuple[Server, Server], body: bytes, headers: dict[str, str], status: int) -> None:
    hits = _hits(pair[0])
    assert _same_answers(pair, body, headers).startswith(f"HTTP/1.1 {status} ".encode())
    assert _hits(pair[0]) == hits


@pytest.mark.parametrize(
    ("headers", "status", "hit"),
    [({**BEARER}, 200, True), ({**BEARER, "Origin": ORIGIN}, 200, True), ({}, 401, False)],
    ids=["token", "allowed origin", "no token"],
)
def test_a_query_over_get_too(pair: tuple[Server, Server], headers: dict[str, str], status: int, hit: bool) -> None:
    hits = _hits(pair[0])
    answer = _same_answers(pair, b"", headers, target=GET_LIST)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert _hits(pair[0]) == hits + hit


@pytest.mark.parametrize(
    ("target", "headers", "status", "hit"),
    [
        (REST_LIST, BEARER, 200, True),
        (REST_LIST, {**BEARER, "Origin": ORIGIN}, 200, True),
        (REST_LIST + "?completed=false&limit=10", BEARER, 200, True),
        (REST_LIST, {**BEARER, "Accept": "application/json, text/event-stream;q=0.5"}, 200, True),
        (REST_LIST + "?completed=maybe", BEARER, 400, False),
        (REST_LIST, {**BEARER, "Accept": "text/html"}, 406, False),
        (REST_LIST, {}, 401, False),
    ],
    ids=["token", "allowed origin", "a page", "JSON first", "bad parameter", "not acceptable", "no token"],
)
def test_the_rest_list_too(pair: tuple[Server, Server], target: str, headers: dict[str, str], status: int, hit: bool) -> None:
    hits = _hits(pair[0])
    answer = _same_answers(pair, b"", headers, target=target)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert _hits(pair[0]) == hits + hit
    if status == 200:
        assert b'"title":"a"' in answer


def test_a_document_named_by_its_hash_is_looked_up_every_time(pair: tuple[Server, Server]) -> None:
    query = "{ todos { id title completed } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}
    _exchange(pair[0], json.dumps({"query": query, "extensions": extensions}).encode(), {**JSON, **BEARER})
    _exchange(pair[1], json.dumps({"query": query, "extensions": extensions}).encode(), {**JSON, **BEARER})
    hits = _hits(pair[0])
    answer = _same_answers(pair, json.dumps({"extensions": extensions}).encode(), {**JSON, **BEARER})
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"title":"a"' in answer
    assert _hits(pair[0]) == hits


def test_a_slow_body_is_refused_as_the_stack_refuses_it(pair: tuple[Server, Server]) -> None:
    headers = {**JSON, **BEARER, "Content-Length": str(len(LIST))}
    answer = _same_answers(pair, LIST, headers, chunks=[LIST[:10], LIST[10:]], pause=1.5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"REQUEST_TIMEOUT" in answer


def test_a_chunked_body_is_left_to_the_stack(pair: tuple[Server, Server]) -> None:
    hits = _hits(pair[0])
    chunked = [f"{len(LIST):x}\r\n".encode() + LIST + b"\r\n0\r\n\r\n"]
    answer = _same_answers(pair, LIST, {**JSON, **BEARER, "Transfer-Encoding": "chunked"}, chunks=chunked)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert _hits(pair[0]) == hits


def test_a_hit_reflects_every_change_committed_before_it(pair: tuple[Server, Server]) -> None:
    cached, _ = pair
    with httpx.Client(base_url=cached.url, headers=BEARER) as client:
        assert client.post("/graphql", content=LIST, headers=JSON).json()["data"]["todos"][0]["title"] == "a"
        hits = _hits(cached)
        with psycopg.connect(cached.dsn, autocommit=True) as conn:
            conn.execute("UPDATE todos SET title = 'b'")
        assert client.post("/graphql", content=LIST, headers=JSON).json()["data"]["todos"][0]["title"] == "b"
        assert _hits(cached) == hits
        assert client.post("/graphql", content=LIST, headers=JSON).json()["data"]["todos"][0]["title"] == "b"
        assert _hits(cached) == hits + 1


def _timed(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", headers=BEARER).text
    found = re.search(r'graphql_todos_http_request_seconds_count\{method="POST",route="/graphql"\} ([\d.e+]+)', text)
    return float(found.group(1)) if found else 0.0


def test_a_hit_is_timed_like_any_request(pair: tuple[Server, Server]) -> None:
    cached, _ = pair
    _exchange(cached, LIST, {**JSON, **BEARER})
    before, hits = _timed(cached), _hits(cached)
    _exchange(cached, LIST, {**JSON, **BEARER})
    assert _hits(cached) == hits + 1
    assert _timed(cached) == before + 1


def test_a_restored_database_written_as_many_times_is_not_answered_from_the_front(
    admin_dsn: str, db_dsn: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (title) VALUES ('a')")
    with database_backup(admin_dsn, db_dsn) as restore, serving(db_dsn, **SETTINGS) as cached:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            conn.execute("UPDATE todos SET title = 'b'")
        for _ in range(2):  # read, then answered by the front door
            assert _exchange(cached, LIST, {**JSON, **BEARER}).endswith(b'"title":"b","completed":false}]}}')
        hits = _hits(cached)
        restore()
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            # As many writes as the restore undid: the journal stands at the
            # position the reply was kept at.
            conn.execute("UPDATE todos SET title = 'c'")
        answer = wait_until(lambda: _unless_unavailable(_exchange(cached, LIST, {**JSON, **BEARER})), timeout=30)
        assert answer.endswith(b'"title":"c","completed":false}]}}')
        assert _hits(cached) == hits


def _unless_unavailable(answer: bytes) -> bytes | None:
    # The restore cut the app's connections: its first requests may get 503.
    return None if answer.startswith(b"HTTP/1.1 503 ") else answer
