"""What the refusals made before the app runs (internals/uvicorn_http.py's
`_refuse_unparsed` and `refusal`, uvicorn_websocket.py's JsonRefusals) assume
of uvicorn, httptools and websockets."""

from __future__ import annotations

import http
import inspect
import json

import httptools
import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

from graphql_todos.internals.uvicorn_http import H2_PREFACE, HEAD_HANDSHAKE, VERSIONS, refusal
from graphql_todos.internals.uvicorn_websocket import JsonRefusals, OpenedServer

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def test_uvicorn_answers_every_parser_error_by_its_400_and_closes() -> None:
    """What HttpProtocol.data_received replaces: uvicorn's answer to any
    HttpParserError is send_400_response, which writes once and closes."""
    received = inspect.getsource(HttpToolsProtocol.data_received)
    assert "except httptools.HttpParserError:" in received
    assert "self.send_400_response(msg)" in received
    sent = inspect.getsource(HttpToolsProtocol.send_400_response)
    assert sent.count("self.transport.write(") == 1
    assert sent.rstrip().endswith("self.transport.close()")


class _Callbacks:
    def __init__(self, raising: Exception | None = None) -> None:
        self.raising = raising
        self.versions: list[str] = []

    def on_headers_complete(self) -> None:
        if self.raising is not None:
            raise self.raising


@pytest.mark.parametrize("version", ["2.0", "0.9"])
def test_httptools_parses_versions_we_do_not_speak(version: str) -> None:
    """Why on_headers_complete looks at the version: httptools takes these."""
    parser = httptools.HttpRequestParser(_Callbacks())
    parser.feed_data(f"GET / HTTP/{version}\r\nHost: a\r\n\r\n".encode())
    assert parser.get_http_version() == version
    assert version not in VERSIONS


def test_httptools_refuses_other_versions_by_this_message() -> None:
    parser = httptools.HttpRequestParser(_Callbacks())
    with pytest.raises(httptools.HttpParserError) as raised:
        parser.feed_data(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
    assert str(raised.value) == "Invalid HTTP version"


def test_httptools_refuses_http_2s_preface_by_this_message() -> None:
    parser = httptools.HttpRequestParser(_Callbacks())
    with pytest.raises(httptools.HttpParserError) as raised:
        parser.feed_data(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert str(raised.value) == H2_PREFACE


def test_httptools_raises_a_callbacks_exception_as_the_context_of_its_own() -> None:
    mine = ValueError("2.0")
    parser = httptools.HttpRequestParser(_Callbacks(mine))
    with pytest.raises(httptools.HttpParserCallbackError) as raised:
        parser.feed_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert raised.value.__context__ is mine


def test_a_refusal_is_the_error_shape_and_closes() -> None:
    answer = refusal([(b"server", b"uvicorn")], http.HTTPStatus.BAD_REQUEST, "invalid HTTP request: x")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\nserver: uvicorn\r\n")
    assert b"\r\ncontent-type: application/json\r\n" in head and b"\r\nconnection: close\r\n" in head
    assert f"\r\ncontent-length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": {"code": "BAD_REQUEST", "message": "invalid HTTP request: x"}}


def test_a_refusal_to_head_has_the_gets_headers_and_no_content() -> None:
    """RFC 9110 9.3.2: its Content-Length the GET's, and nothing after the head."""
    get = refusal([], http.HTTPStatus.BAD_REQUEST, "invalid HTTP request: x")
    head = refusal([], http.HTTPStatus.BAD_REQUEST, "invalid HTTP request: x", to_head=True)
    assert head == get.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"


class _Order:
    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_message_begin(self) -> None:
        self.seen.append("begin")

    def on_url(self, url: bytes) -> None:
        self.seen.append(url)


def test_httptools_begins_a_message_before_its_method_and_hands_a_target_at_each_reads_end() -> None:
    """What HttpProtocol._asked_head reads: a target begun means the
    method is read; a method cut short leaves the last request's."""
    order = _Order()
    parser = httptools.HttpRequestParser(order)
    parser.feed_data(b"HEAD /a HTTP/1.1\r\nHost: a\r\n\r\nGE")
    assert order.seen == ["begin", b"/a", "begin"]
    assert parser.get_method() == b"HEAD"
    parser.feed_data(b"T /b")
    assert order.seen[-1] == b"/b"
    assert parser.get_method() == b"GET"


def test_websockets_refuses_a_handshake_by_head_in_these_words() -> None:
    """HttpProtocol refuses one itself (HEAD_HANDSHAKE), as websockets would but with no content."""
    conn = JsonRefusals()
    conn.receive_data(b"HEAD /graphql HTTP/1.1\r\nHost: a\r\n\r\n")
    assert conn.handshake_exc is not None
    assert f"invalid WebSocket handshake: {conn.handshake_exc.__cause__}" == HEAD_HANDSHAKE


def _handshake(**headers: str) -> Request:
    return Request("/graphql", Headers({"Host": "a", **headers}))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}, 400),
        ({"Connection": "Upgrade", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}, 426),
        ({"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "8"}, 400),
    ],
)
def test_websockets_refuses_a_handshake_by_reject_and_sends_its_body(headers: dict[str, str], status: int) -> None:
    """JsonRefusals replaces `reject`: websockets' accept() makes each
    refusal with it (426 adding Upgrade after), and sends its body as it is."""
    conn = JsonRefusals(extensions=[])
    response = conn.accept(_handshake(**headers))
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Connection"] == "close"
    body = json.loads(response.body)
    assert body["error"]["code"] == http.HTTPStatus(status).name
    assert body["error"]["message"].startswith("Failed to open a WebSocket connection:")
    if status == 426:
        assert response.headers["Upgrade"] == "websocket"
    conn.send_response(response)
    assert b"".join(conn.data_to_send()).endswith(response.body)


def test_uvicorns_own_refusals_of_a_handshake_are_made_by_reject() -> None:
    """Its 500 (the app failed before accepting) and 403 (the app closed before accepting)."""
    assert "self.conn.reject(500," in inspect.getsource(WebSocketsSansIOProtocol.send_500_response)
    assert "self.conn.reject(HTTPStatus.FORBIDDEN," in inspect.getsource(WebSocketsSansIOProtocol.send)


def test_an_empty_reason_is_the_status_phrase() -> None:
    response = OpenedServer(None, __import__("logging").getLogger("x")).reject(http.HTTPStatus.FORBIDDEN, "")
    assert json.loads(response.body) == {"error": {"code": "FORBIDDEN", "message": "Forbidden"}}


def test_json_refusals_keep_no_state_of_their_own() -> None:
    """Why a ServerProtocol uvicorn made may become one by its class (per-message deflate's path)."""
    assert set(vars(JsonRefusals)) <= {"__module__", "__qualname__", "__doc__", "reject", "__firstlineno__", "__static_attributes__"}
    assert issubclass(JsonRefusals, ServerProtocol)


def test_uvicorn_answers_pipelined_requests_in_order_and_marks_a_whole_body() -> None:
    """What HttpProtocol's refusals and upgrades behind unanswered requests
    (`_refuse`'s `behind`, `_upgrade_waits`) assume: uvicorn makes a cycle
    per request whose head is read (`self.cycle` the last, its `scope` the
    request's scope), queues one read while another is answered
    (`pipeline`), starts the next as an answer completes or else arms its
    keep-alive timer (which closes the transport); a cycle's `more_body`
    stays true until its request's body is whole."""
    headers = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "self.cycle = RequestResponseCycle(\n            scope=self.scope," in headers
    assert "self.pipeline.appendleft((self.cycle, app))" in headers
    complete = inspect.getsource(HttpToolsProtocol.on_response_complete)
    assert "cycle, app = self.pipeline.pop()" in complete
    assert "self.timeout_keep_alive_task = self.loop.call_later(" in complete
    assert "self.cycle.more_body = False" in inspect.getsource(HttpToolsProtocol.on_message_complete)
    assert "self.scope = {" in inspect.getsource(HttpToolsProtocol.on_message_begin)
    assert "self.cycle.body += body" in inspect.getsource(HttpToolsProtocol.on_body)
    assert "self.more_body = True" in inspect.getsource(RequestResponseCycle.__init__)
