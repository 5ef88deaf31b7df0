"""The front door (graphql/fast/front.py: a POST's Content-Type,
Content-Length and Accept read in one pass, its body parsed once and left in
the scope) and the guard behind it (edge/guard.py: no second size check for
a body the door read, Authorization read from a dict) attacked from outside,
over real sockets, on one server that requires the token.

The oracle for what a request's headers mean is Starlette's Headers, which
the stack reads them with: the first Authorization, Content-Type,
Content-Length and Origin count, every Accept line does. Each request sent
with a Content-Length (the door may take it) must get the answer the same
request gets sent chunked (the door leaves a chunked body to the stack), byte
for byte but the Date header; nothing may answer 5xx or log an error, and no
body over the limit may run."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from graphql_todos.graphql.persisted import sha256
from tests.helpers import BEARER, TOKEN, Server, errors_logged, raw_exchange, serving

ORIGIN = "https://app.example"
LIMIT = 1000
RIGHT = BEARER["Authorization"]
WRONG = "Bearer " + "x" * len(TOKEN)
TODO = "22222222-2222-4222-8222-222222222222"
UPDATE = f'mutation {{ updateTodo(id: "{TODO}", input: {{title: "same"}}) {{ id title }} }}'
CREATE = "mutation($t: String!) { createTodo(input: {title: $t}) { title } }"
QUERY = "{ todos { id } }"
_HASH = {"persistedQuery": {"version": 1, "sha256Hash": sha256(UPDATE)}}
JSON_TYPE = ("Content-Type", "application/json")
Headers = list[tuple[str, str]]


def _body(query: str, variables: dict[str, Any] | None = None, **extra: Any) -> bytes:
    return json.dumps({"query": query, "variables": variables, **extra}).encode()


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with psycopg.connect(module_db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO todos (id, title) VALUES (%s, 'same')", (TODO,))
    with serving(
        module_db_dsn, token=TOKEN, max_body_bytes=LIMIT, request_seconds=1.0, allowed_origins=(ORIGIN,)
    ) as srv:
        # The intake takes the mutations in: the write door takes none it has not.
        # (And the update's hash kept: a persisted query's.)
        for body in (_body(UPDATE), _body(CREATE, {"t": "warm"}), _body(UPDATE, extensions=_HASH)):
            answer = httpx.post(f"{srv.url}/graphql", content=body, headers={**BEARER, "Content-Type": "application/json"})
            assert answer.status_code == 200 and b'"errors"' not in answer.content, answer.text
        yield srv


@pytest.fixture
def logged(server: Server) -> Iterator[list[str]]:
    """What the server logs at ERROR during the test: nothing, or the test fails."""
    with errors_logged() as messages:
        yield messages
    assert messages == []


def _taken(server: Server) -> int:
    return int(server.app.state.writes.taken)


def _titled(server: Server, title: str) -> int:
    with psycopg.connect(server.dsn) as conn:
        row = conn.execute("SELECT count(*) FROM todos WHERE title = %s", (title,)).fetchone()
    assert row is not None
    return int(row[0])


def _head(target: str, headers: Headers, framing: Headers) -> bytes:
    lines = [("Host", "127.0.0.1"), *headers, *framing, ("Connection", "close")]
    return (f"{target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n").encode("latin-1")


def _exchange(server: Server, target: str, body: bytes, headers: Headers, chunked: bool) -> bytes:
    if chunked:
        framing, chunks = [("Transfer-Encoding", "chunked")], [f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"]
    else:
        framing, chunks = [("Content-Length", str(len(body)))], [body]
    return re.sub(rb"\r\ndate: [^\r]*", b"", raw_exchange(server, _head(target, headers, framing), chunks))


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def _same_answers(server: Server, target: str, body: bytes, headers: Headers) -> tuple[bytes, bool]:
    """The answer with a Content-Length, which the chunked one equals; and
    whether the write door took it."""
    stack = _exchange(server, target, body, headers, chunked=True)
    before = _taken(server)
    door = _exchange(server, target, body, headers, chunked=False)
    assert door == stack
    return door, _taken(server) > before


# --- Authorization sent twice: the first counts, on every way in ---------

# Each way a request reaches something that reads Authorization, and the
# status it answers with the token.
AUTH_WAYS: dict[str, tuple[str, bytes, Headers, bool, int]] = {
    "graphql mutation, write door": ("POST /graphql", _body(UPDATE), [JSON_TYPE], False, 200),
    "graphql mutation, stack": ("POST /graphql", _body(UPDATE), [JSON_TYPE], True, 200),
    "graphql query, front door": ("POST /graphql", _body(QUERY), [JSON_TYPE], False, 200),
    "graphql query, stack": ("POST /graphql", _body(QUERY), [JSON_TYPE], True, 200),
    # An extra key: the fast path declines, after the front door parsed the body.
    "graphql mutation, declined by the fast path": (
        "POST /graphql", _body(UPDATE, extra=1), [JSON_TYPE], False, 200,
    ),
    "graphql GET": ("GET /graphql?query=" + QUERY.replace(" ", "%20"), b"", [], False, 200),
    "graphql mutation, graphql-response+json": (
        "POST /graphql", _body(UPDATE), [JSON_TYPE, ("Accept", "application/graphql-response+json")], False, 200,
    ),
    "rest list": ("GET /api/todos/", b"", [], False, 200),
    "rest update, write door": (f"PATCH /api/todos/{TODO}/", b'{"title": "same"}', [JSON_TYPE], False, 200),
    "rest update, stack": (f"PATCH /api/todos/{TODO}/", b'{"title": "same"}', [JSON_TYPE], True, 200),
}
_A = "Authorization"
ORDERS: dict[str, tuple[Headers, int | None]] = {
    "wrong then right": ([(_A, WRONG), (_A, RIGHT)], 401),
    "right then wrong": ([(_A, RIGHT), (_A, WRONG)], None),
    "empty then right": ([(_A, ""), (_A, RIGHT)], 401),
    "right then empty": ([(_A, RIGHT), (_A, "")], None),
    # (Names come in lower case from the parser, whatever their case on the wire.)
    "wrong then right, names in two cases": ([("authorization", WRONG), ("AUTHORIZATION", RIGHT)], 401),
    "right then wrong, names in two cases": ([("AuThOrIzAtIoN", RIGHT), ("authorization", WRONG)], None),
}


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("way", list(AUTH_WAYS))
def test_of_two_authorizations_the_first_counts(server: Server, logged: list[str], way: str, order: str) -> None:
    target, body, headers, chunked, granted = AUTH_WAYS[way]
    values, status = ORDERS[order]
    sent = [*headers, *values]
    if target.startswith("GET"):
        answer = re.sub(rb"\r\ndate: [^\r]*", b"", raw_exchange(server, _head(target, sent, [])))
    else:
        answer = _exchange(server, target, body, sent, chunked)
    assert _status(answer) == (status or granted), answer[:300]
    # Twice: the second may be a reply the front door kept, given to the first's principal alone.
    again = re.sub(rb"\r\ndate: [^\r]*", b"", raw_exchange(server, _head(target, sent, [])) if not body else _exchange(server, target, body, sent, chunked))
    assert _status(again) == _status(answer)


SUBSCRIPTION = 'subscription { todoChanges(after: "0") { cursor } }'
# The streamed ways: a stream's answer is its status.
STREAMS: dict[str, tuple[str, str, bytes | None, str]] = {
    "graphql over SSE": ("POST", "/graphql", _body(SUBSCRIPTION), "text/event-stream"),
    "graphql multipart": ("POST", "/graphql", _body(SUBSCRIPTION), "multipart/mixed;subscriptionSpec=1.0,application/json"),
    "graphql over SSE, GET": ("GET", "/graphql?query=" + SUBSCRIPTION, None, "text/event-stream"),
    "rest list over SSE": ("GET", "/api/todos/?after=0", None, "text/event-stream"),
}


@pytest.mark.parametrize("order", ["wrong then right", "right then wrong"])
@pytest.mark.parametrize("way", list(STREAMS))
def test_a_stream_takes_the_first_authorization(server: Server, way: str, order: str) -> None:
    method, target, body, accept = STREAMS[way]
    values, status = ORDERS[order]
    headers = [*values, ("Accept", accept), JSON_TYPE]
    with (
        httpx.Client(base_url=server.url, timeout=10) as client,
        client.stream(method, target, headers=headers, content=body) as response,
    ):
        assert response.status_code == (status or 200)


@pytest.mark.parametrize("order", list(ORDERS))
def test_a_graphql_socket_takes_the_first_authorization(server: Server, order: str) -> None:
    values, status = ORDERS[order]
    with connect(
        server.ws_url + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers=values,
    ) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            said = json.loads(ws.recv(timeout=5))["type"]
        except ConnectionClosed as closed:
            said = f"closed {closed.rcvd.code if closed.rcvd else None}"
    assert said == ("closed 4401" if status == 401 else "connection_ack")


# --- Repeated and odd heads: the door answers as the stack ---------------

HEADS: dict[str, tuple[bytes, Headers, int, bool]] = {
    "json, then text": (_body(UPDATE), [JSON_TYPE, ("Content-Type", "text/plain")], 200, True),
    "text, then json": (_body(UPDATE), [("Content-Type", "text/plain"), JSON_TYPE], 400, False),
    "json with a charset": (_body(UPDATE), [("Content-Type", "application/json; charset=utf-8")], 200, True),
    "JSON in capitals": (_body(UPDATE), [("Content-Type", "APPLICATION/JSON")], 400, False),
    "two Accept lines, the first q=0": (
        _body(UPDATE), [JSON_TYPE, ("Accept", "application/graphql-response+json;q=0"), ("Accept", "application/json")],
        200, True,
    ),
    "two Accept lines, graphql-response+json second": (
        _body("mutation { nope }"),
        [JSON_TYPE, ("Accept", "application/json;q=0.5"), ("Accept", "application/graphql-response+json")],
        400, False,
    ),
    "Accept: nothing acceptable": (
        _body(UPDATE), [JSON_TYPE, ("Accept", "application/json;q=0, application/graphql-response+json;q=0")],
        406, False,
    ),
    "Accept: q=0 on one of two lines": (
        _body(UPDATE), [JSON_TYPE, ("Accept", "*/*"), ("Accept", "application/json;q=0")], 200, True,
    ),
    "Accept: invalid ranges only": (_body(UPDATE), [JSON_TYPE, ("Accept", "application/, ;;, =")], 406, False),
    "Accept: an invalid range, then json": (
        _body(UPDATE), [JSON_TYPE, ("Accept", "garbage"), ("Accept", "application/json")], 200, True,
    ),
    "Accept: a byte beyond ASCII": (_body(UPDATE), [JSON_TYPE, ("Accept", "\xe9")], 406, False),
    "Accept: empty": (_body(UPDATE), [JSON_TYPE, ("Accept", "")], 200, True),
    "Accept: q=nan": (_body(UPDATE), [JSON_TYPE, ("Accept", "application/json;q=nan")], 200, True),
    # One range, with a parameter JSON lacks: nothing acceptable.
    "Accept: a comma in a quoted value": (
        _body(UPDATE), [JSON_TYPE, ("Accept", 'application/json;x="a,text/event-stream"')], 406, False,
    ),
    "Origin allowed, then foreign": (
        _body(UPDATE), [JSON_TYPE, ("Origin", ORIGIN), ("Origin", "https://evil.example")], 200, True,
    ),
    "Origin foreign, then allowed": (
        _body(UPDATE), [JSON_TYPE, ("Origin", "https://evil.example"), ("Origin", ORIGIN)], 200, True,
    ),
    "variables a string: the fast path declines": (
        json.dumps({"query": CREATE, "variables": '{"t": "x"}'}).encode(), [JSON_TYPE], 400, True,
    ),
    "variables a list: the fast path declines": (
        json.dumps({"query": CREATE, "variables": ["x"]}).encode(), [JSON_TYPE], 400, True,
    ),
    "an extra key: the fast path declines": (_body(UPDATE, extra=1), [JSON_TYPE], 200, True),
    "a query": (_body(QUERY), [JSON_TYPE, ("Accept", "application/graphql-response+json")], 200, False),
    "names in capitals": (_body(UPDATE), [("CONTENT-TYPE", "application/json"), ("ACCEPT", "APPLICATION/JSON")], 200, True),
    "json with a latin-1 charset": (_body(UPDATE), [("Content-Type", "application/json; charset=iso-8859-1")], 200, True),
    "json with a space before the semicolon": (_body(UPDATE), [("Content-Type", "application/json ; x=y")], 200, True),
    "json, then a comma": (_body(UPDATE), [("Content-Type", "application/json, text/plain")], 200, False),
    "two queries in one body, the mutation last": (
        b'{"query": "' + QUERY.encode() + b'", "query": "' + UPDATE.replace('"', '\\"').encode() + b'"}',
        [JSON_TYPE], 200, True,
    ),
    "two queries in one body, the mutation first": (
        b'{"query": "' + UPDATE.replace('"', '\\"').encode() + b'", "query": "' + QUERY.encode() + b'"}',
        [JSON_TYPE], 200, False,
    ),
    "a byte order mark": (b"\xef\xbb\xbf" + _body(UPDATE), [JSON_TYPE], 400, False),
    "a body that is no object": (b"[" + _body(UPDATE) + b"]", [JSON_TYPE], 400, False),
    "operationName not a string": (_body(UPDATE, operationName=5), [JSON_TYPE], 400, False),
    "extensions null": (_body(UPDATE, extensions=None), [JSON_TYPE], 200, True),
    "extensions empty": (_body(UPDATE, extensions={}), [JSON_TYPE], 200, True),
    "extensions a list": (_body(UPDATE, extensions=[]), [JSON_TYPE], 400, False),
    "a persisted mutation's hash alone": (json.dumps({"extensions": _HASH}).encode(), [JSON_TYPE], 200, True),
    "a persisted mutation's hash and another document": (
        _body(QUERY, extensions=_HASH), [JSON_TYPE, ("Accept", "application/graphql-response+json")], 400, False,
    ),
}


@pytest.mark.parametrize("case", list(HEADS))
def test_a_repeated_or_odd_head_gets_the_stacks_answer(server: Server, logged: list[str], case: str) -> None:
    body, headers, status, taken = HEADS[case]
    answer, door = _same_answers(server, "POST /graphql", body, [*headers, ("Authorization", RIGHT)])
    assert (_status(answer), door) == (status, taken), answer[:400]
    if status == 200:
        assert b'"errors"' not in answer, answer[:400]


# --- Sizes: nothing over the limit runs ----------------------------------


def _create(title: str, pad: int = 0) -> bytes:
    return _body(CREATE, {"t": title}) + b" " * pad


def test_a_content_length_shorter_than_the_body_runs_only_what_it_declared(server: Server, logged: list[str]) -> None:
    body = _create("short-declared")
    head = _head("POST /graphql", [JSON_TYPE, ("Authorization", RIGHT)], [("Content-Length", "20")])
    answer = raw_exchange(server, head, [body])
    # The 20 bytes are no JSON: 400; the rest is no request: the parser's 400.
    assert _status(answer) == 400 and b"HTTP/1.1 5" not in answer, answer
    assert _titled(server, "short-declared") == 0


def test_a_content_length_longer_than_the_body_times_out(server: Server, logged: list[str]) -> None:
    body = _create("long-declared")
    head = _head("POST /graphql", [JSON_TYPE, ("Authorization", RIGHT)], [("Content-Length", str(len(body) + 10))])
    answer = raw_exchange(server, head, [body])
    assert _status(answer) == 408 and b"REQUEST_TIMEOUT" in answer, answer
    assert _titled(server, "long-declared") == 0


def test_a_body_begun_with_its_head_and_never_ended_times_out(server: Server, logged: list[str]) -> None:
    # Part of the body in the head's packet: the door finds some body come
    # but not its end, and reads the rest within the bounds.
    body = _create("begun-with-head")
    head = _head("POST /graphql", [JSON_TYPE, ("Authorization", RIGHT)], [("Content-Length", str(len(body)))])
    answer = raw_exchange(server, head + body[:-5])
    assert _status(answer) == 408 and b"REQUEST_TIMEOUT" in answer, answer
    assert _titled(server, "begun-with-head") == 0


@pytest.mark.parametrize("length", ["10", "1001"])
def test_chunked_with_a_content_length_is_bounded_by_what_arrives(server: Server, logged: list[str], length: str) -> None:
    # Both framings: the door must not trust the small Content-Length.
    body = _create("both-framings", pad=2 * LIMIT)
    head = _head(
        "POST /graphql", [JSON_TYPE, ("Authorization", RIGHT)], [("Content-Length", length), ("Transfer-Encoding", "chunked")]
    )
    answer = raw_exchange(server, head, [f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"])
    assert _status(answer) in (400, 413), answer[:300]
    assert _titled(server, "both-framings") == 0


@pytest.mark.parametrize("target", ["POST /graphql", "POST /api/todos/"])
@pytest.mark.parametrize(
    "lengths",
    [
        ["{n}", "{n}"], ["{n}", "1001"], ["1001", "{n}"], ["{n}", "x"], ["x", "{n}"],
        ["\u00b2\u00b9"], ["99999999999999999999999"], ["+{n}"], ["{n:#x}"],
    ],
    ids=[
        "twice the same", "small then big", "big then small", "then garbage", "garbage then",
        "superscript digits", "huge", "signed", "hex",
    ],
)
def test_an_odd_content_length_is_refused(server: Server, logged: list[str], target: str, lengths: list[str]) -> None:
    # (str.isdigit takes superscripts, int() does not.) The REST write
    # door, like the front door, takes a request by its first Content-Length
    # alone: uvicorn refuses a second before either sees it. The body is
    # whole and valid, and {n} its length: a door that took the request
    # would write the row.
    body = _create("odd-length") if target.endswith("/graphql") else b'{"title": "odd-length"}'
    declared = [("Content-Length", v.format(n=len(body))) for v in lengths]
    head = _head(target, [JSON_TYPE, ("Authorization", RIGHT)], declared)
    answer = raw_exchange(server, head, [body])
    assert _status(answer) in (400, 413), answer[:300]
    assert _titled(server, "odd-length") == 0


@pytest.mark.parametrize("path", ["/graphql", "/api/todos/"])
def test_a_chunked_body_over_the_limit_sent_slowly_is_refused(server: Server, logged: list[str], path: str) -> None:
    title = f"slow-{path}"
    body = _create(title, pad=LIMIT) if path == "/graphql" else json.dumps({"title": title}).encode() + b" " * LIMIT
    chunks = [body[i : i + 300] for i in range(0, len(body), 300)]
    head = _head(f"POST {path}", [JSON_TYPE, ("Authorization", RIGHT)], [("Transfer-Encoding", "chunked")])
    answer = raw_exchange(server, head, [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks] + [b"0\r\n\r\n"], pause=0.05)
    assert _status(answer) == 413 and b"PAYLOAD_TOO_LARGE" in answer, answer[:300]
    assert _titled(server, title) == 0


def test_a_body_at_the_limit_runs_and_one_byte_over_does_not(server: Server, logged: list[str]) -> None:
    # An update: the same answer each time (a create's cursor moves).
    at = _body(UPDATE)
    at += b" " * (LIMIT - len(at))
    answer, door = _same_answers(server, "POST /graphql", at, [JSON_TYPE, ("Authorization", RIGHT)])
    assert (_status(answer), door) == (200, True), answer[:300]
    over = _create("over-the-limit", pad=LIMIT - len(_create("over-the-limit")) + 1)
    answer, door = _same_answers(server, "POST /graphql", over, [JSON_TYPE, ("Authorization", RIGHT)])
    assert (_status(answer), door) == (413, False), answer[:300]
    assert _titled(server, "over-the-limit") == 0


# --- The hub's LISTEN read (internals/psycopg.payloads): nothing lost, order kept


def test_live_changes_with_large_non_ascii_rows_arrive_whole_and_in_order(server: Server) -> None:
    """Rows whose NOTIFYs are large and far from ASCII (512 characters of
    four UTF-8 bytes each), some 300 in one transaction and some in
    transactions of their own, read by the hub as its reads bring them (a
    notification split across socket reads included): each reaches a live
    stream once, whole, in commit and position order."""
    batch = [f"{i:03d}" + "\U0001f600\u00e9\u4e2d"[i % 3] * 509 for i in range(300)]
    singles = [f"single {i} \u00e9\u00e8\u00ea" for i in range(20)]
    with (
        httpx.Client(base_url=server.url, timeout=10, headers=BEARER) as client,
        client.stream("GET", "/api/todos/?after=0", headers={"Accept": "text/event-stream"}) as response,
        psycopg.connect(server.dsn, autocommit=True) as conn,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()

        def titles() -> Iterator[str]:
            for line in lines:
                if line.startswith("data:"):
                    yield json.loads(line[5:])["todo"]["title"]

        # Live once the marker, written after the stream opened, comes.
        conn.execute("INSERT INTO todos (title) VALUES ('marker')")
        read = titles()
        assert "marker" in read
        with conn.transaction():
            for title in batch:
                conn.execute("INSERT INTO todos (title) VALUES (%s)", (title,))
        for title in singles:
            conn.execute("INSERT INTO todos (title) VALUES (%s)", (title,))
        seen = [next(read) for _ in range(len(batch) + len(singles))]
    assert seen == batch + singles


# --- One connection, several requests; a client that leaves -----------------


def _request(target: str, body: bytes, headers: Headers, chunked: bool = False, close: bool = False) -> bytes:
    framing = [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(len(body)))]
    lines = [("Host", "127.0.0.1"), *headers, *framing, *([("Connection", "close")] if close else [])]
    head = (f"{target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in lines) + "\r\n").encode()
    return head + (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if chunked else body)


def test_pipelined_requests_are_each_answered_in_turn(server: Server, logged: list[str]) -> None:
    # Refusals of bodies the door read, and of one it did not, between grants.
    requests = [
        ([JSON_TYPE, ("Authorization", WRONG)], False, 401),
        ([JSON_TYPE, ("Authorization", RIGHT)], False, 200),
        ([JSON_TYPE, ("Authorization", WRONG)], True, 401),
        ([JSON_TYPE, ("Authorization", RIGHT), ("Authorization", WRONG)], True, 200),
        ([JSON_TYPE, ("Authorization", WRONG), ("Authorization", RIGHT)], False, 401),
        ([JSON_TYPE, ("Authorization", RIGHT)], False, 200),
    ]
    sent = b"".join(
        _request("POST /graphql", _body(UPDATE), headers, chunked, close=i == len(requests) - 1)
        for i, (headers, chunked, _) in enumerate(requests)
    )
    answer = raw_exchange(server, sent)
    statuses = [int(status) for status in re.findall(rb"HTTP/1.1 (\d{3}) ", answer)]
    assert statuses == [status for _, _, status in requests], answer[:2000]


@pytest.mark.parametrize("chunked", [False, True], ids=["with a length", "chunked"])
@pytest.mark.parametrize("target", ["POST /graphql", "POST /api/todos/"])
def test_a_client_that_leaves_mid_body_leaves_no_error(server: Server, logged: list[str], target: str, chunked: bool) -> None:
    body = _create("left") if "graphql" in target else b'{"title": "left"}'
    whole = _request(target, body, [JSON_TYPE, ("Authorization", RIGHT)], chunked)
    cut = whole[: len(whole) - len(body) // 2 - (12 if chunked else 0)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(cut)
        time.sleep(0.1)
    # A request after it is answered, and nothing was created or logged.
    answer = raw_exchange(server, _request("POST /graphql", _body(UPDATE), [JSON_TYPE, ("Authorization", RIGHT)], close=True))
    assert _status(answer) == 200
    assert _titled(server, "left") == 0


@pytest.mark.parametrize(
    ("target", "content_type"),
    [
        ("POST /graphql", "application/json"),
        ("POST /graphql", "text/plain"),
        ("POST /graphql", "application/json, text/plain"),
        ("POST /api/todos/", "application/json"),
        (f"PATCH /api/todos/{TODO}/", "application/json"),
    ],
)
def test_a_declared_size_over_the_limit_is_refused_before_any_body_on_every_way(
    server: Server, logged: list[str], target: str, content_type: str
) -> None:
    # No body sent: a 413 on the head alone, whichever door answers (a 408
    # after request_seconds would mean the size was left to the body's read).
    head = _head(target, [("Content-Type", content_type), ("Authorization", RIGHT)], [("Content-Length", "1001")])
    answer = raw_exchange(server, head)
    assert _status(answer) == 413 and b"PAYLOAD_TOO_LARGE" in answer, answer[:300]
