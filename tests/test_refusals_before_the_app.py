"""What the server answers before the app sees a request (uvicorn's httptools
protocol, the only one `serve` runs: internals/uvicorn_http.py; websockets'
handshake, internals/uvicorn_websocket.py), provoked from outside over raw
sockets on a real server, on every operation of the OpenAPI document and
every WebSocket route: the Error shape in JSON with the status the document
gives, the connection closed after it. And every answer the GET/HEAD layer
(negotiation.Cached) does not see says, as its answers do, that no cache may
keep it: refusals and answers to changes (edge/guard.py `headed`), the Host
check's."""

from __future__ import annotations

import json
import socket
import time

import pytest
from jsonschema import Draft202012Validator

from graphql_todos.core import paths
from graphql_todos.edge.negotiation import PRIVATE
from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES
from graphql_todos.internals.uvicorn_websocket import REFUSAL_VARY
from graphql_todos.rest.openapi import DOCUMENT
from tests.helpers import Server
from tests.rest import test_openapi_refusals as refusals
from tests.rest.test_openapi_refusals import MAX_BODY, OPERATIONS, Answer, _answer, _described, _head
from tests.test_auth_matrix import SOCKET_ROUTES, _table

# Its module's fixtures: a server as its walk's (accounts, MAX_BODY, REQUEST_SECONDS), its caller and URLs.
server, ann, bearer, urls = refusals.server, refusals.ann, refusals.bearer, refusals.urls

ERROR = {**DOCUMENT["components"]["schemas"]["Error"], "components": DOCUMENT["components"]}

# A request line or header HTTP/1.1 does not allow, each put in a request
# that is otherwise sound (where: "line" replaces the request line's method,
# "header" adds the header line).
MALFORMED = {
    "a DEL in a cookie": ("header", b"Cookie: todos_session=a\x7f"),
    "a NUL in a header's value": ("header", b"X-Note: a\x00b"),
    "a NUL in a header's name": ("header", b"X-No\x00te: a"),
    "a control byte in a header's name": ("header", b"X-No\x01te: a"),
    "a space before the colon": ("header", b"X-Note : a"),
    "a folded header line (obs-fold)": ("header", b"X-Note: a\r\n b"),
    "Content-Length with Transfer-Encoding": ("header", b"Content-Length: 1\r\nTransfer-Encoding: chunked"),
    "two different Content-Lengths": ("header", b"Content-Length: 1\r\nContent-Length: 2"),
    "a Content-Length that is no number": ("header", b"Content-Length: 1x"),
    "a Transfer-Encoding that is not chunked last": ("header", b"Transfer-Encoding: chunked, gzip"),
    "a method with a bad byte": ("line", b"G@T"),
}
VERSIONS = ("HTTP/1.2", "HTTP/2.0", "HTTP/3.0", "HTTP/0.9")


def _exchange(server: Server, request: bytes) -> tuple[Answer, bytes]:
    """The answer to `request`, and what the connection sent after it (b"": closed)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = _answer(sock)
        sock.settimeout(5)
        rest = b""
        while data := sock.recv(65536):
            rest += data
        return answer, rest


def _malformed(server: Server, method: str, url: str, where: str, part: bytes) -> bytes:
    head = _head(server, method, url)
    if where == "line":
        return part + head[len(method) :]
    return head[:-2] + part + b"\r\n\r\n"


def _an_error(answer: Answer, status: int, code: str, where: str) -> None:
    """A refusal before the app: the Error shape in JSON, kept by no cache, the connection closed."""
    assert answer.status == status, (where, answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json", (where, answer.headers)
    assert answer.headers["connection"] == "close", (where, answer.headers)
    body = json.loads(answer.body)
    assert [e.message for e in Draft202012Validator(ERROR).iter_errors(body)] == [], (where, body)
    assert body["error"]["code"] == code, (where, body)
    # Its caching headers as the app's refusals': kept by none, varying alike.
    _unkept(answer, where)


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_request_http_cannot_read_is_refused_as_described(
    server: Server, urls: dict[str, str], path: str, method: str, kind: str
) -> None:
    answer, rest = _exchange(server, _malformed(server, method, urls[path], *MALFORMED[kind]))
    _an_error(answer, 400, "BAD_REQUEST", kind)
    assert json.loads(answer.body)["error"]["message"].startswith("invalid HTTP request: "), answer.body
    _described(path, method, answer)
    assert rest == b"", (kind, rest)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_request_in_another_http_version_is_refused_as_described(
    server: Server, urls: dict[str, str], path: str, method: str, version: str
) -> None:
    request = _head(server, method, urls[path]).replace(b"HTTP/1.1", version.encode(), 1)
    answer, rest = _exchange(server, request)
    _an_error(answer, 505, "HTTP_VERSION_NOT_SUPPORTED", version)
    _described(path, method, answer)
    assert rest == b"", (version, rest)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_head_over_the_limit_says_so_in_json(server: Server, urls: dict[str, str], path: str, method: str) -> None:
    answer, _ = _exchange(server, _head(server, method, urls[path], ("X-Big", "x" * MAX_HEAD_BYTES)))
    _an_error(answer, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", path)
    _described(path, method, answer)


def test_the_first_request_on_a_connection_is_answered_before_a_malformed_second(server: Server) -> None:
    """Pipelined: the sound request's answer, then the refusal of the one after it."""
    sound = _head(server, "get", "/healthz").replace(b"Connection: close\r\n", b"")
    bad = _malformed(server, "get", "/healthz", *MALFORMED["a DEL in a cookie"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(sound)
        assert _answer(sock).status == 200
        sock.sendall(bad)
        _an_error(_answer(sock), 400, "BAD_REQUEST", "second")


# The WebSocket routes: the GraphQL socket and the RESTSockets.
SOCKETS = sorted({paths.GRAPHQL, *SOCKET_ROUTES})
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
# A handshake websockets refuses, and how: each upgrade is one httptools reads
# (Upgrade: websocket, Connection: Upgrade), so uvicorn hands it over.
HANDSHAKES = {
    "no Sec-WebSocket-Key": (400, (("Sec-WebSocket-Version", "13"),)),
    "a key that is not 16 bytes": (400, (("Sec-WebSocket-Key", "c2hvcnQ="), ("Sec-WebSocket-Version", "13"))),
    "a key that is not base64": (400, (("Sec-WebSocket-Key", "not base64!"), ("Sec-WebSocket-Version", "13"))),
    "version 8": (400, (("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "8"))),
    "no version": (400, (("Sec-WebSocket-Key", KEY),)),
    "two Upgrade headers": (426, (("Upgrade", "websocket"), ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13"))),
    "a body": (400, (("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13"), ("Content-Length", "2"))),
}


def _upgrade(server: Server, url: str, method: str, version: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    head = _head(server, method, url, ("Upgrade", "websocket"), *headers).replace(b"Connection: close", b"Connection: Upgrade")
    return head.replace(b"HTTP/1.1", version.encode(), 1)


def test_the_sockets_walked_are_every_websocket_route(server: Server) -> None:
    assert {path for kind, path, _ in _table(server.app.routes) if kind == "websocket"} == SOCKET_ROUTES


@pytest.mark.parametrize("kind", HANDSHAKES)
@pytest.mark.parametrize("path", SOCKETS)
def test_a_handshake_websockets_refuses_is_refused_in_json(server: Server, urls: dict[str, str], path: str, kind: str) -> None:
    status, headers = HANDSHAKES[kind]
    answer, rest = _exchange(server, _upgrade(server, urls.get(path, path), "GET", "HTTP/1.1", headers))
    _an_error(answer, status, {400: "BAD_REQUEST", 426: "UPGRADE_REQUIRED"}[status], kind)
    if status == 426:
        assert answer.headers["upgrade"] == "websocket"
    assert rest == b"" or kind == "a body", (kind, rest)


@pytest.mark.parametrize("path", SOCKETS)
def test_a_handshake_websockets_cannot_read_is_refused_in_json(server: Server, urls: dict[str, str], path: str) -> None:
    """A POST: websockets reads no request but a GET (`_refuse_unparsed`)."""
    headers = (("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13"))
    answer, rest = _exchange(server, _upgrade(server, urls.get(path, path), "POST", "HTTP/1.1", headers))
    _an_error(answer, 400, "BAD_REQUEST", path)
    assert "invalid WebSocket handshake" in json.loads(answer.body)["error"]["message"]
    assert rest == b""


def _unkept(answer: Answer, where: object, origin: bool = False) -> None:
    vary = {token.strip().lower() for token in answer.headers.get("vary", "").split(",")}
    wanted = {name.decode().lower() for name in PRIVATE.vary} | ({"origin"} if origin else set())
    assert wanted <= vary, (where, answer.status, answer.headers)
    assert "no-store" in answer.headers.get("cache-control", ""), (where, answer.status, answer.headers)


def _ask(server: Server, method: str, url: str, *headers: tuple[str, str], body: bytes = b"") -> Answer:
    head = _head(server, method, url, *headers, ("Content-Length", str(len(body))))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        return _answer(sock)


CHANGES = [(path, method) for path, method in OPERATIONS if method not in ("get", "head", "options")]


@pytest.mark.parametrize(("path", "method"), CHANGES)
def test_a_change_refused_at_the_door_is_kept_by_no_cache(
    server: Server, urls: dict[str, str], ann: object, path: str, method: str
) -> None:
    """Without a credential (401), with the cookie from elsewhere (403), with
    a body over the limit (413): the guard's refusals, each way in (the
    write door's and the stack's), say what chose them and that none keeps them."""
    nobody = _ask(server, method, urls[path])
    _unkept(nobody, (path, method, "nobody"), origin=True)
    cookie = "; ".join(f"{name}={value}" for name, value in ann.http.cookies.items())  # type: ignore[attr-defined]
    foreign = _ask(server, method, urls[path], ("Cookie", cookie), ("Origin", "http://evil.example"))
    _unkept(foreign, (path, method, "foreign"))
    big = _head(server, method, urls[path], ("Content-Length", str(MAX_BODY + 1)))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(big)
        _unkept(_answer(sock), (path, method, "too big"), origin=True)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/todos/", b'{"title": "kept by none"}'),
        ("POST", "/graphql", b'{"query": "mutation { toggleAll(completed: false) { id } }"}'),
        ("POST", "/api/lists/", b'{"name": "kept by none"}'),
    ],
)
def test_a_changes_answer_is_kept_by_no_cache(server: Server, bearer: str, method: str, url: str, body: bytes) -> None:
    """A write by the write door (REST's todo, a GraphQL mutation) and one by the stack (a list)."""
    answer = _ask(server, method, url, ("Authorization", bearer), ("Content-Type", "application/json"), body=body)
    assert answer.status in (200, 201), (url, answer.status, answer.body)
    _unkept(answer, url, origin=True)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_the_host_checks_refusals_are_kept_by_no_cache(server: Server, method: str) -> None:
    other = _head(server, method, "/api/todos/").replace(f"Host: 127.0.0.1:{server.port}".encode(), b"Host: evil.example")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(other)
        answer = _answer(sock)
    assert answer.status == 421
    _unkept(answer, method)
    two = _ask(server, method, "/api/todos/", ("Host", "127.0.0.1"))
    assert two.status == 400
    _unkept(two, method)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_a_request_without_host_is_refused_in_http_1_1_alone(server: Server, method: str) -> None:
    """RFC 9112 section 3.2: an HTTP/1.1 request without Host is a 400; HTTP/1.0 has none to send."""
    head = _head(server, method, "/healthz").replace(f"Host: 127.0.0.1:{server.port}\r\n".encode(), b"")
    assert b"Host:" not in head
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = _answer(sock)
    assert answer.status == 400, answer.body
    _unkept(answer, method)
    if method != "HEAD":
        assert json.loads(answer.body)["error"] == {"code": "BAD_REQUEST", "message": "an HTTP/1.1 request must have a Host header"}
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1))
        # Past the Host check: the health check's answer, or the guard's to a change without a credential.
        assert _answer(sock).status == (401 if method == "POST" else 200)


SOUND_HANDSHAKE = (("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13"))


@pytest.mark.parametrize("path", SOCKETS)
def test_a_handshake_in_http_1_0_is_refused_in_json(server: Server, bearer: str, urls: dict[str, str], path: str) -> None:
    """RFC 6455 4.1: HTTP/1.1 or higher. uvicorn hands websockets an upgrade
    written as HTTP/1.1 whatever it was: an HTTP/1.0 one was upgraded."""
    handshake = (*SOUND_HANDSHAKE, ("Authorization", bearer), ("Sec-WebSocket-Protocol", "graphql-transport-ws"))
    answer, rest = _exchange(server, _upgrade(server, urls.get(path, path), "GET", "HTTP/1.0", handshake))
    _an_error(answer, 400, "BAD_REQUEST", path)
    assert "HTTP/1.1" in json.loads(answer.body)["error"]["message"], answer.body
    assert rest == b""


@pytest.mark.parametrize("credential", ["none", "bearer"])
@pytest.mark.parametrize("path", ["/nope", "/api/nope/", "/api/todos/x/y/", "/assets/app.js", "/healthz", "/graphql/"])
def test_a_handshake_to_a_path_no_socket_is_served_at_is_refused_before_the_upgrade(
    server: Server, bearer: str, path: str, credential: str
) -> None:
    """As the HTTP request would be (404, the Error shape), with or without
    a credential: not upgraded (101) only to be closed, nor uvicorn's bare 403."""
    handshake = (*SOUND_HANDSHAKE, *((("Authorization", bearer),) if credential == "bearer" else ()))
    answer, rest = _exchange(server, _upgrade(server, path, "GET", "HTTP/1.1", handshake))
    assert answer.status == 404, (path, credential, answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json", answer.headers
    body = json.loads(answer.body)
    assert [e.message for e in Draft202012Validator(ERROR).iter_errors(body)] == [], body
    assert body["error"]["code"] == "NOT_FOUND", body
    _unkept(answer, path)
    assert rest == b""


@pytest.mark.parametrize("path", SOCKETS)
def test_a_handshake_to_a_socket_route_is_still_upgraded(server: Server, bearer: str, urls: dict[str, str], path: str) -> None:
    handshake = (*SOUND_HANDSHAKE, ("Authorization", bearer), ("Sec-WebSocket-Protocol", "graphql-transport-ws"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_upgrade(server, urls.get(path, path), "GET", "HTTP/1.1", handshake))
        assert _answer(sock).status == 101, path


# Refused requests pipelined behind sound ones: the head at fault, the refusal's code.
PIPELINED_REFUSALS = {
    "a NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: a\x00b\r\n\r\n", 400, "BAD_REQUEST"),
    "HTTP/2.0": (b"GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
}


@pytest.mark.parametrize("kind", PIPELINED_REFUSALS)
@pytest.mark.parametrize("before", [1, 3])
def test_a_refused_request_pipelined_behind_sound_ones_is_answered_after_them(
    server: Server, bearer: str, kind: str, before: int
) -> None:
    """Sent at once: every sound request's answer, in order, then the
    refusal. uvicorn wrote the refusal at once and closed: the answers
    before it were lost, a write's too (its todo made, its answer never
    sent), and the refusal read as the first request's."""
    bad, status, code = PIPELINED_REFUSALS[kind]
    title = f"pipelined {kind} {before}"
    body = json.dumps({"title": title}).encode()
    write = _head(server, "post", "/api/todos/", ("Authorization", bearer), ("Content-Type", "application/json"),
                  ("Content-Length", str(len(body)))).replace(b"Connection: close\r\n", b"") + body
    read = _head(server, "get", "/healthz").replace(b"Connection: close\r\n", b"")
    answers = _answers(server, write + read * (before - 1) + bad, before + 1)
    assert (answers[0].status, json.loads(answers[0].body)["title"]) == (201, title), answers[0].body
    assert [answer.status for answer in answers[1:-1]] == [200] * (before - 1)
    _an_error(answers[-1], status, code, kind)


def _answers(server: Server, request: bytes, count: int) -> list[Answer]:
    """`request`'s bytes sent at once: `count` answers, each by its
    Content-Length, all the connection sent before it closed."""
    raw = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        while data := sock.recv(65536):
            raw += data
    found = []
    for _ in range(count):
        head, _, raw = raw.partition(b"\r\n\r\n")
        answer = Answer(head + b"\r\n\r\n")
        length = int(answer.headers["content-length"])
        answer.body, raw = raw[:length], raw[length:]
        found.append(answer)
    assert raw == b"", raw
    return found


def test_a_target_uvicorn_cannot_parse_is_refused_by_name(server: Server) -> None:
    """CONNECT's authority form (host:port): uvicorn's parse of the target
    fails in httptools' callback, whose error said only "User callback error"."""
    request = f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    answer, rest = _exchange(server, request)
    _an_error(answer, 400, "BAD_REQUEST", "CONNECT")
    assert json.loads(answer.body)["error"]["message"] == f"invalid HTTP request: invalid url b'127.0.0.1:{server.port}'"
    assert rest == b""


def test_a_head_pipelined_behind_an_event_stream_is_not_read_past_the_limit(server: Server, bearer: str) -> None:
    """The stream is answered for ever, so the 431 waits for its end; but the
    head is read no further: it grew in memory without bound (10 MB read
    and kept in a second)."""
    stream = _head(server, "get", "/api/feed/", ("Authorization", bearer), ("Accept", "text/event-stream"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(stream.replace(b"Connection: close\r\n", b""))
        assert _answer(sock).status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        line = b"X-Big: " + b"x" * 65536 + b"\r\n"
        sock.settimeout(3)
        sent = 0
        with pytest.raises(TimeoutError):  # the server stopped reading: the buffers filled
            for _ in range(1024):  # 64 MiB: more than the two ends' buffers hold
                sock.sendall(line)
                sent += len(line)
        assert sent < 32 * 2**20, sent


def _pipelined_upgrade(server: Server, bearer: str, path: str, version: str = "HTTP/1.1") -> bytes:
    """A read of the database (answered after the upgrade behind it is read), then an upgrade to `path`."""
    read = _head(server, "get", "/api/todos/", ("Authorization", bearer)).replace(b"Connection: close\r\n", b"")
    return read + _upgrade(server, path, "GET", version, (*SOUND_HANDSHAKE, ("Authorization", bearer)))


@pytest.mark.parametrize(
    ("path", "version", "status"), [("/nope", "HTTP/1.1", 404), ("/api/feed/", "HTTP/1.0", 400)]
)
def test_a_handshake_refused_behind_a_request_is_answered_after_it(
    server: Server, bearer: str, path: str, version: str, status: int
) -> None:
    """uvicorn upgraded at once: the refusal was written and the connection
    closed before the request's answer, which was lost."""
    answers = _answers(server, _pipelined_upgrade(server, bearer, path, version), 2)
    assert answers[0].status == 200, answers[0].body
    assert answers[1].status == status, answers[1].body


def test_a_websocket_upgraded_behind_a_request_outlives_the_connections_timers(server: Server, bearer: str) -> None:
    """The request's answer, then the 101; and the socket answers a ping
    after REQUEST_SECONDS. The HTTP connection, upgraded already, armed its
    wait for a next head as the answer completed, and closed the WebSocket
    at its deadline."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_pipelined_upgrade(server, bearer, "/api/feed/"))
        raw = b""
        while raw.count(b"\r\n\r\n") < 2:
            data = sock.recv(65536)
            assert data, raw
            raw += data
        answer, _, rest = raw.partition(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 "), raw
        assert rest[int(Answer(answer + b"\r\n\r\n").headers["content-length"]):].startswith(b"HTTP/1.1 101 "), raw
        time.sleep(refusals.REQUEST_SECONDS * 3)
        sock.sendall(bytes([0x89, 0x80]) + b"mask")  # a masked ping, no payload
        assert sock.recv(2) == bytes([0x8A, 0x00])  # its pong


def test_http_2s_preface_is_refused_as_its_version(server: Server) -> None:
    """A client speaking HTTP/2 from the start (h2c prior knowledge), as one
    naming HTTP/2.0 in a request line is: 505, not a 400 "Pause on PRI/Upgrade"."""
    answer, rest = _exchange(server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    _an_error(answer, 505, "HTTP_VERSION_NOT_SUPPORTED", "preface")
    assert json.loads(answer.body)["error"]["message"].endswith("not HTTP/2.0"), answer.body
    assert rest == b""


UPGRADE = b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"


def _swapped(old: bytes, new: bytes) -> object:
    return lambda head: head.replace(old, new, 1)


def _added(line: bytes) -> object:
    return lambda head: head[:-2] + line + b"\r\n"


def _to(path: bytes, *then: object) -> object:
    def made(head: bytes) -> bytes:
        head = head.replace(b" /healthz ", b" " + path + b" ", 1)
        for change in then:
            head = change(head)  # type: ignore[operator]
        return head

    return made


# Each refusal made before the app (and before the route), asked by HEAD:
# how it changes a sound, signed HEAD /healthz, and its status.
HEAD_REFUSALS = {
    "a NUL in a header": (_added(b"X-Note: a\x00b\r\n"), 400),
    "a chunked body that is not": (_added(b"Transfer-Encoding: chunked\r\n\r\nzz"), 400),
    "HTTP/2.0": (_swapped(b" HTTP/1.1", b" HTTP/2.0"), 505),
    "a head over the limit": (_added(b"X-Big: " + b"x" * MAX_HEAD_BYTES + b"\r\n"), 431),
    "two Host headers": (_added(b"Host: 127.0.0.1\r\n"), 400),
    "no Host": (lambda head: b"".join(line for line in head.splitlines(keepends=True) if not line.startswith(b"Host:")), 400),
    "a Host not ours": (lambda head: head.replace(b"Host: 127.0.0.1", b"Host: evil.example", 1), 421),
    "a path not served": (_to(b"/nope"), 404),
    "a method not allowed": (_to(paths.GRAPHQL.encode()), 405),
    "no credential": (_to(b"/api/todos/", lambda head: b"".join(
        line for line in head.splitlines(keepends=True) if not line.startswith(b"Authorization:"))), 401),
    "a body over the limit": (_added(f"Content-Length: {MAX_BODY + 1}\r\n".encode()), 413),
    "a handshake to a socket": (_to(b"/api/feed/", _added(UPGRADE)), 400),
    "a handshake to no socket": (_to(b"/nope", _added(UPGRADE)), 400),
    "a handshake in HTTP/1.0": (_to(b"/api/feed/", _swapped(b" HTTP/1.1", b" HTTP/1.0"), _added(UPGRADE)), 400),
}


@pytest.mark.parametrize("kind", HEAD_REFUSALS)
def test_a_refusal_to_head_has_no_content(server: Server, bearer: str, kind: str) -> None:
    """RFC 9110 9.3.2: the GET's headers (its Content-Length too), no
    content. A GET follows on the connection: answered next where the
    refusal keeps the connection, so no stray byte was taken for its
    answer; nothing at all where it closes."""
    made, status = HEAD_REFUSALS[kind]
    sound = _head(server, "head", "/healthz", ("Authorization", bearer)).replace(b"Connection: close\r\n", b"")
    then = _head(server, "get", "/healthz")
    raw = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(made(sound) + then)  # type: ignore[operator]
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    answer = Answer(head + b"\r\n\r\n")
    assert answer.status == status, (kind, raw)
    assert answer.headers["content-type"] == "application/json", (kind, answer.headers)
    assert int(answer.headers["content-length"]) > 0, (kind, answer.headers)
    if answer.headers.get("connection") == "close":
        assert rest == b"", (kind, rest)
    else:
        assert rest.startswith(b"HTTP/1.1 200 "), (kind, rest)
        assert Answer(rest).body == b'{"status":"ok"}', (kind, rest)


@pytest.mark.parametrize("kind", ["a method with a bad byte", "a NUL in a header's value"])
def test_a_refusal_read_behind_a_head_is_not_taken_for_its(server: Server, kind: str) -> None:
    """The parser still names the last request's method while the next's is
    cut short: a GET refused behind a HEAD has its content."""
    first = _head(server, "head", "/healthz").replace(b"Connection: close\r\n", b"")
    raw = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(first + _malformed(server, "get", "/healthz", *MALFORMED[kind]))
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert Answer(head + b"\r\n\r\n").status == 200, raw
    _an_error(Answer(rest), 400, "BAD_REQUEST", kind)


@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("body", [b"", b'{"title": "counted"}'])
def test_a_head_begun_in_the_read_of_the_one_before_counts_from_its_first_byte(
    server: Server, bearer: str, body: bytes, after: bool
) -> None:
    """One read: a whole request (a GET; a POST and its body), then a head
    over the limit: its 431 after the first's answer; or (`after`) that
    head's first 40 KB, the rest once the first is answered. The bytes of
    the second head in that read were not counted, nor, once the first was
    answered, the ones before: it stood below the limit, waiting until
    REQUEST_SECONDS closed the connection."""
    method = "post" if body else "get"
    first = _head(server, method, "/api/todos/", ("Authorization", bearer), ("Content-Type", "application/json"),
                  ("Content-Length", str(len(body)))).replace(b"Connection: close\r\n", b"") + body
    second = _head(server, "get", "/healthz")[:-2] + b"X-Big: " + b"x" * MAX_HEAD_BYTES
    split = 40_000 if after else len(second)
    raw = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(first + second[:split])
        if after:
            assert _answer(sock).status == (201 if body else 200)
            sock.sendall(second[split:])
        while data := sock.recv(65536):
            raw += data
    if not after:
        head, _, raw = raw.partition(b"\r\n\r\n")
        answer = Answer(head + b"\r\n\r\n")
        assert answer.status == (201 if body else 200), raw
        raw = raw[int(answer.headers["content-length"]):]
    assert raw, "closed at REQUEST_SECONDS, not refused"
    _an_error(Answer(raw), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", method)


def test_refusals_before_the_app_vary_as_the_apps_own() -> None:
    """uvicorn_http's and websockets' refusals (internals, which may not import edge/) name PRIVATE's Vary."""
    assert REFUSAL_VARY == b", ".join(PRIVATE.vary)
