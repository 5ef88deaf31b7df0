"""Odd but ordinary requests on every operation of a real server (a body
that never comes, a text body, {}, [], bad JSON, chunked, an Accept of
none of its types, a malformed Idempotency-Key; with a token and without):
each answer's status is one its operation lists (schema/openapi.json). And
odd session cookies (escapes, NUL, non-ASCII, duplicates, no '=', 3,000
backslashes) are refused with a 401, never a 500."""

from __future__ import annotations

from graphql_todos.rest.openapi import DOCUMENT
from tests.helpers import Server
from tests.rest import test_openapi_refusals as refusals
from tests.rest.test_openapi_refusals import OPERATIONS, Answer, _exchange, _head

# The refusals test's real server (AUTH=accounts), ann, her token and URLs.
server, ann, bearer, urls = refusals.server, refusals.ann, refusals.bearer, refusals.urls

PROBES: dict[str, tuple[tuple[tuple[str, str], ...], bytes]] = {
    "body never comes": ((("Content-Length", "5"), ("Content-Type", "application/json")), b""),
    "text body": ((("Content-Length", "5"), ("Content-Type", "text/plain")), b"hello"),
    "empty json": ((("Content-Length", "2"), ("Content-Type", "application/json")), b"{}"),
    "bad json": ((("Content-Length", "2"), ("Content-Type", "application/json")), b"{x"),
    "json list": ((("Content-Length", "2"), ("Content-Type", "application/json")), b"[]"),
    "accept html": ((("Accept", "text/html"),), b""),
    "accept none": ((("Accept", "application/xml;q=0"),), b""),
    "chunked": ((("Transfer-Encoding", "chunked"), ("Content-Type", "application/json")), b"2\r\n{}\r\n0\r\n\r\n"),
    "idempotency bad": ((("Idempotency-Key", "!"),), b""),
}


def test_every_status_is_listed(server: Server, bearer: str, urls: dict[str, str]) -> None:
    missing = []
    for path, method in OPERATIONS:
        for name, (headers, body) in PROBES.items():
            for credential in (("Authorization", bearer), ("X-None", "1")):
                head = _head(server, method, urls[path], credential, *headers)
                answer: Answer = _exchange(server, head, body)
                if str(answer.status) not in DOCUMENT["paths"][path][method]["responses"]:
                    missing.append((method.upper(), path, name, credential[0], answer.status, answer.body[:120]))
    assert not missing, missing[:10]


COOKIES = [
    'todos_session="\\000abc"', "todos_session=\\000", 'todos_session="\\377\\377"', "todos_session", "todos_session=",
    'todos_session=""', 'todos_session="', "todos_session=a; todos_session=b", "=todos_session", "todos_session=\xe9\xff",
    'todos_session="a\\"b"', "todos_session=" + "a" * 4000, 'todos_session="' + "\\" * 3000 + '"', ";;;;=;=;",
    'todos_session="\\400"', "todos_session=%00", "todos_session=\t x \t",
]


def test_odd_cookies_are_refused_cleanly(server: Server) -> None:
    seen: list[tuple[str, str, str, int, bytes]] = []
    for cookie in COOKIES:
        for method, path in (("GET", "/api/todos/"), ("GET", "/api/auth/me"), ("POST", "/api/auth/sign-out")):
            head = _head(server, method, path, ("Cookie", cookie), ("Origin", server.url))
            answer = _exchange(server, head.replace(b"\xc3\xa9\xc3\xbf", b"\xe9\xff"))
            seen.append((method, path, cookie[:40], answer.status, answer.body[:100]))
    assert all(status in (401, 204) for *_, status, _ in seen), seen
