"""What Strawberry's ASGI view is given in place of its own: a JSON decoder with limits, a
WebSocket send bounded in time, a multipart transport with a valid Content-Type, and a
media type parser in time linear in the header it reads."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from email import utils as email_utils
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketState
from starlette.websockets import WebSocketDisconnected as SendAfterClose
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http import async_base_view, streaming, sync_base_view
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.streaming import MultipartSubscriptionTransport

from graphql_todos.core.bounded import bounded_send
from graphql_todos.core.errors import ClientStalled
from graphql_todos.internals.uvicorn_websocket import open_write

# Starlette's socket states, read once: on Python 3.11 an enum's member is
# read through its metaclass's __getattr__ hook (some 900 instructions a
# read, callgrind), and the receive loop reads one per message.
CONNECTED = WebSocketState.CONNECTED
DISCONNECTED = WebSocketState.DISCONNECTED


class JsonIntake:
    """For the view, which names its decoder `loads` (a staticmethod). Assumes: Strawberry's views
    decode every JSON text a client sends with `decode_json` (`parse_json` for HTTP bodies and GET
    variables and extensions, the WebSocket adapter's `iter_json` for each message of both
    protocols), and catch only json.JSONDecodeError from it (parse_json turns it into a 400;
    iter_json into a 4400 close, or, for the legacy protocol, ignores it): any other refusal goes
    past both to the view's caller."""

    loads: Callable[[str | bytes], object]

    def decode_json(self, data: str | bytes) -> object:
        return self.loads(data)


class BoundedSendAdapter(ASGIWebSocketAdapter):
    """Assumes: Strawberry's ASGI view sends every WebSocket message of both
    protocols through `websocket_adapter_class(...).send_json`, the view
    being `self.view` (ours has `send_timeout_seconds`); an exception there
    ends the operation, whose stream is then closed (unsubscribing it); it
    turns Starlette's WebSocketDisconnect into WebSocketDisconnected, which
    the handlers take as the client gone, but not Starlette's refusal to
    send after the socket's close.

    A message goes straight to an open connection's transport when it can
    take it now (uvicorn_websocket.open_write): no timer and no trip through
    Starlette's and uvicorn's sends for an acknowledgement, a pong or a
    `next`; the ASGI send, bounded, takes the others."""

    _closing: asyncio.Task[None] | None = None

    def __init__(self, view: Any, request: WebSocket, response: WebSocket) -> None:
        # What Strawberry's two `__init__`s set (the view, and the response
        # as `ws`), without their two calls an open
        # (tests/internals/test_strawberry_view.py compares them).
        self.view = view
        self.ws = response
        self._write = open_write(response)

    def write_encoded(self, encoded: bytes) -> bool:
        """send_json's write straight to the transport, of a message the
        caller encoded once as the view's `encode_json` does (an
        acknowledgement): True when written; False, send_json it."""
        return self._write is not None and self.ws.application_state is CONNECTED and self._write(encoded)

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self._write is not None and self.ws.application_state is CONNECTED:
            encoded = self.view.encode_json(message)
            if self._write(encoded.encode() if isinstance(encoded, str) else encoded):
                return
        seconds: float = self.view.send_timeout_seconds  # type: ignore[attr-defined]
        try:
            await bounded_send(super().send_json(message), seconds)
        except ClientStalled as stalled:
            self.close_stalled(stalled)
            raise WebSocketDisconnected from None
        except SendAfterClose:
            # The socket was closed (a stalled client, a refused init, a
            # shutdown) while an operation ran on: it ends as on a disconnect.
            raise WebSocketDisconnected from None

    def close_stalled(self, stalled: ClientStalled) -> None:
        # The close frame waits behind the full buffer too: send it from a
        # task of its own, so the operation ends (and unsubscribes) now. It
        # goes out if the client reads again, or dies with the connection
        # when uvicorn's ping gets no answer.
        if self._closing is None:
            self._closing = asyncio.create_task(self.close(stalled.code.close_code, stalled.message))


class MultipartSubscriptions(MultipartSubscriptionTransport):
    """Assumes: the view sends `headers` as the response's headers. Strawberry's
    Content-Type appends `,application/json` to the multipart type, which no
    parser reads as one media type; this one is valid (RFC 2046 parameters).

    The broadcast path (graphql/multipart.py) frames its parts with the same
    methods. Assumes: `encode_next(response, encode_json)` is
    `encode_multipart_data({"payload": response}, encode_json)`, which frames
    what `encode_json` returns; heartbeats and the end are
    `heartbeat_message(encode_json)` and `encode_complete()`, the first
    heartbeat sent at once when `send_initial_heartbeat`."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f'multipart/mixed; boundary="{self.separator}"; subscriptionSpec="1.0"'}

    def next_part(self, response: bytes) -> bytes:
        """encode_next's part for a response already encoded as JSON."""
        # str() hands the encoded text back as it is.
        return self.encode_multipart_data((b'{"payload":' + response + b"}").decode(), str).encode()

    def heartbeat_part(self) -> bytes:
        return self.heartbeat_message(_encode_json).encode()


def _encode_json(data: object) -> str:
    # As the view encodes (graphql.view.TodoGraphQL.encode_json).
    return orjson.dumps(data).decode()


def parse_content_type(content_type: str) -> tuple[str, dict[str, Any]]:
    """Strawberry's `parse_content_type` (email.message's `get_params` of the
    text as a Content-Type), in time linear in the text: email's
    `_parseparam` counts the quotes from a parameter's start again at each
    `;` inside quotes, and copies the rest of the text at each parameter
    (58 KB of `a="` and semicolons in a GraphQL POST's Content-Type held the
    loop 5 s; an Accept goes through it too). A parameter email cannot
    decode (an RFC 2231 continuation number of 5,000 digits, numbered and
    unnumbered pieces of one name) is no 500: the media type alone is
    answered. tests/internals/test_slowparse_strawberry_view.py compares the two."""
    params = [_param(text) for text in _parameters(content_type)]
    try:
        decoded = email_utils.decode_params(params)
    except (ValueError, TypeError):
        return params[0][0], {}
    mime_type = decoded.pop(0)[0]
    return mime_type, {name: _unquoted(value) for name, value in decoded}


# What email's _parseparam looks at: a quote (not after a backslash) and a semicolon.
_QUOTE_OR_SEMICOLON = re.compile(r'\\"|"|;')


def _parameters(text: str) -> list[str]:
    """email.message's `_parseparam`: `text` cut at each `;` outside quotes
    (one at a parameter's very start always cuts), each part's name lowered
    and its `=` unspaced, in one pass."""
    cuts = []
    start, quotes = 0, 0
    for found in _QUOTE_OR_SEMICOLON.finditer(text):
        mark = found[0]
        if mark == '"':
            quotes += 1
        elif mark == ";" and (found.start() == start or quotes % 2 == 0):
            cuts.append(text[start : found.start()])
            start, quotes = found.start() + 1, 0
    cuts.append(text[start:])
    return [_spaced(part) for part in cuts]


def _spaced(part: str) -> str:
    name, equals, value = part.partition("=")
    return (name.strip().lower() + "=" + value.strip() if equals else part).strip()


def _param(text: str) -> tuple[str, str]:
    # email.message's _get_params_preserve, of one parameter.
    name, equals, value = text.partition("=")
    return (name.strip(), value.strip()) if equals else (text.strip(), "")


def _unquoted(value: str | tuple[str | None, str | None, str]) -> str | tuple[str | None, str | None, str]:
    # email.message's _unquotevalue.
    if isinstance(value, tuple):
        return value[0], value[1], email_utils.unquote(value[2])
    return email_utils.unquote(value)


def _linear_media_types() -> None:
    """Strawberry's views and stream transports, which look `parse_content_type`
    up in their modules at each call, given this one (in each process)."""
    for module in (async_base_view, sync_base_view, streaming):
        module.parse_content_type = parse_content_type  # type: ignore[attr-defined]


_linear_media_types()
