"""What the front door refuses before any route (edge/guard.py,
internals/uvicorn_http.py, edge/error_handlers.py), provoked from outside on
a real server, on every operation of the OpenAPI document: each answer's
status is one its operation lists, and its body is what the document says
for that status (rest/openapi_parts.py FRONT_DOOR). Raw sockets: the
requests are ones no HTTP client library would send (two Host lines, a head
over the limit, a body that never comes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from jsonschema import Draft202012Validator
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES
from graphql_todos.rest.openapi import DOCUMENT
from graphql_todos.rest.openapi_parts import door_refusals
from tests.helpers import Serve, Server, serving, wait_until
from tests.test_auth_matrix import PUBLIC, _table
from tests.test_lists import PASSWORD, Caller

MAX_BODY = 512
REQUEST_SECONDS = 0.5
OPERATIONS = [
    (path, method) for path, item in DOCUMENT["paths"].items() for method in item if method != "parameters"
]


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(
        module_db_dsn, auth="accounts", max_body_bytes=MAX_BODY, request_seconds=REQUEST_SECONDS,
        database_timeout_seconds=0.5,
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def ann(server: Server) -> Caller:
    return Caller(server, "ann")


@pytest.fixture(scope="module")
def bearer(ann: Caller) -> str:
    made = ann.http.post("/api/tokens/", json={"name": "refusals"})
    assert made.status_code == 201, made.text
    return "Bearer " + made.json()["secret"]


@pytest.fixture(scope="module")
def urls(ann: Caller) -> dict[str, str]:
    """Each path of the document as a URL its route takes (ids of ann's own)."""
    todo = ann.http.post("/api/todos/", json={"title": "a"}).json()["id"]
    list_id = ann.http.get("/api/lists/").json()[0]["id"]
    ids = {"{person_id}": ann.id, "{client}": str(uuid.uuid4())}
    found = {}
    for path in DOCUMENT["paths"]:
        url = path.replace("{id}", todo if path.startswith("/api/todos/") else list_id)
        for name, value in ids.items():
            url = url.replace(name, value)
        found[path] = url.replace("{id}", str(uuid.uuid4()))
    return found


def _exchange(server: Server, head: bytes, body: bytes = b"") -> Answer:
    """Send a request's bytes; its answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        return _answer(sock)


def _answer(sock: socket.socket) -> Answer:
    """The answer's head, and its body by its Content-Length (an event stream's not at all)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        if not (data := sock.recv(65536)):
            break
        raw += data
    answer = Answer(raw)
    length = int(answer.headers.get("content-length", "0"))
    while len(answer.body) < length and (data := sock.recv(65536)):
        answer.body += data
    return answer


def _head(server: Server | Serve, method: str, url: str, *headers: tuple[str, str]) -> bytes:
    lines = [f"{method.upper()} {url} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _described(path: str, method: str, answer: Answer) -> None:
    """The answer is one the document gives the operation: its status
    listed, its body valid against that status's schema (none: empty)."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(answer.status) in responses, (method, path, answer.status, answer.body)
    response = responses[str(answer.status)]
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rpartition("/")[2]]
    if "content" not in response:
        assert answer.body == b"", (method, path, answer.body)
        return
    media = answer.headers["content-type"].partition(";")[0]
    assert media in response["content"], (method, path, media)
    if media == "application/json":
        schema = {**response["content"][media]["schema"], "components": DOCUMENT["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(json.loads(answer.body))]
        assert errors == [], (method, path, answer.body, errors)


def _refused(path: str, method: str, answer: Answer, status: int, code: str | None) -> None:
    assert answer.status == status, (method, path, answer.status, answer.body)
    if code is not None:
        assert json.loads(answer.body)["error"]["code"] == code, (method, path, answer.body)
    _described(path, method, answer)


def test_every_route_of_the_api_is_an_operation_here(server: Server) -> None:
    """The refusals below are tried on the document's operations: that is
    every REST route and method the app has, but the document itself."""
    routed = {
        (path, method.lower())
        for kind, path, methods in _table(server.app.routes)
        if kind == "http" and path.startswith("/api/") and path != "/api/openapi.json"
        for method in methods - {"HEAD"}
    }
    assert routed == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_request_for_another_host_or_with_two_is_refused_as_described(
    server: Server, urls: dict[str, str], path: str, method: str
) -> None:
    url = urls[path]
    other = _head(server, method, url).replace(f"Host: 127.0.0.1:{server.port}".encode(), b"Host: evil.example")
    _refused(path, method, _exchange(server, other), 421, "MISDIRECTED_REQUEST")
    two = _head(server, method, url, ("Host", "127.0.0.1"))
    _refused(path, method, _exchange(server, two), 400, "BAD_REQUEST")


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_head_over_the_limit_is_refused_as_described(
    server: Server, urls: dict[str, str], path: str, method: str
) -> None:
    head = _head(server, method, urls[path], ("X-Big", "x" * MAX_HEAD_BYTES))
    _refused(path, method, _exchange(server, head), 431, None)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_body_over_the_limit_is_refused_as_described(
    server: Server, urls: dict[str, str], bearer: str, path: str, method: str
) -> None:
    # Declared too big, and sent chunked past the limit.
    declared = _head(server, method, urls[path], ("Authorization", bearer), ("Content-Length", str(MAX_BODY + 1)))
    _refused(path, method, _exchange(server, declared), 413, "PAYLOAD_TOO_LARGE")
    if "requestBody" in DOCUMENT["paths"][path][method]:
        chunked = _head(
            server, method, urls[path], ("Authorization", bearer), ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        )
        chunk = b"%x\r\n%s\r\n" % (MAX_BODY + 1, b" " * (MAX_BODY + 1))
        _refused(path, method, _exchange(server, chunked, chunk + b"0\r\n\r\n"), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_a_body_that_does_not_come_is_refused_as_described(
    server: Server, urls: dict[str, str], bearer: str, path: str, method: str
) -> None:
    """Half a declared body, then nothing: the operations that read one
    answer 408 after REQUEST_SECONDS; the others answer as they would."""
    head = _head(
        server, method, urls[path], ("Authorization", bearer), ("Content-Type", "application/json"),
        ("Content-Length", "20"),
    )
    answer = _exchange(server, head, b'{"name": ')
    if "408" in door_refusals(path, method, DOCUMENT["paths"][path][method]):
        _refused(path, method, answer, 408, "REQUEST_TIMEOUT")
    else:
        assert answer.status != 408, (method, path)
        _described(path, method, answer)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_credential_and_a_cookie_change_from_elsewhere_are_refused_as_described(
    server: Server, urls: dict[str, str], ann: Caller, path: str, method: str
) -> None:
    operation = DOCUMENT["paths"][path][method]
    door = door_refusals(path, method, operation)
    nobody = _exchange(server, _head(server, method, urls[path], ("Content-Length", "0")))
    if "401" in door:
        _refused(path, method, nobody, 401, "UNAUTHENTICATED")
        assert nobody.headers["www-authenticate"].startswith("Bearer"), (method, path)
    else:
        _described(path, method, nobody)
    cookie = "; ".join(f"{name}={value}" for name, value in ann.http.cookies.items())
    foreign = _exchange(server, _head(server, method, urls[path], ("Cookie", cookie), ("Content-Length", "0")))
    if "403" in door and door["403"] == "ForeignOrigin":
        _refused(path, method, foreign, 403, "FORBIDDEN")
    else:
        _described(path, method, foreign)


def test_with_the_database_away_every_operation_is_refused_as_described(
    server: Server, urls: dict[str, str], bearer: str
) -> None:
    """The credential's lookup fails (accounts): 503 DATABASE_UNAVAILABLE,
    before any route; sign-up and sign-in, which take no credential, meet
    it in their handler. (SHUTTING_DOWN, the other 503, cuts a request
    still running when shutdown's time runs out: tests/test_cli.py.) Last
    in the file: the database comes back, the module's server is done with."""
    name = conninfo_to_dict(server.dsn)["dbname"]
    admin = make_conninfo(server.dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # type: ignore[arg-type]
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    try:
        # Until the credential's last lookup is CACHE_SECONDS old, it is trusted without one.
        me = _head(server, "get", "/api/auth/me", ("Authorization", bearer))
        wait_until(lambda: _exchange(server, me).status == 503, timeout=10)
        for path, method in OPERATIONS:
            body = json.dumps({"username": "ann", "password": PASSWORD}).encode() if (path, method.upper()) in PUBLIC else b""
            head = _head(
                server, method, urls[path], ("Authorization", bearer), ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            )
            _refused(path, method, _exchange(server, head, body), 503, "DATABASE_UNAVAILABLE")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")  # type: ignore[arg-type]
        wait_until(lambda: _exchange(server, _head(server, "get", "/healthz")).status == 200, timeout=20)


def test_a_request_still_running_when_shutdown_time_is_up_is_cut_as_described(db_dsn: str) -> None:
    """ShutdownCut, outermost around every route, cuts what still runs when
    SHUTDOWN_SECONDS are up (503 SHUTTING_DOWN). Two representatives, a body
    awaited on each of a request's two ways in: a REST write to a todo
    (graphql/fast/write_door.py) and any other route (the middleware stack);
    what is running when the time is up does not change the answer."""
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "SHUTDOWN_SECONDS": "1", "REQUEST_SECONDS": "60"}
    serve = Serve(env)
    try:
        waiting = {("/api/todos/", "post"): "/api/todos/", ("/api/lists/", "post"): "/api/lists/"}
        socks = {}
        for (path, method), url in waiting.items():
            sock = socks[path, method] = socket.create_connection(("127.0.0.1", serve.port), timeout=10)
            sock.sendall(_head(serve, method, url, ("Content-Type", "application/json"), ("Content-Length", "20")) + b"{")
        # Answered after both were taken in: they are running (connections are accepted in order).
        assert httpx.get(serve.url + "/healthz").status_code == 200
        serve.process.send_signal(signal.SIGTERM)
        for (path, method), sock in socks.items():
            with sock:
                _refused(path, method, _answer(sock), 503, "SHUTTING_DOWN")
        assert serve.process.wait(10) == 0
    finally:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait(10)
