"""What internals/strawberry_view.py assumes of Strawberry's view."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import orjson
import pytest
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from graphql_todos.edge import json_intake
from graphql_todos.edge.json_intake import RefusedJson
from graphql_todos.graphql.schema import build_schema
from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.internals.strawberry_view import BoundedSendAdapter, JsonIntake, MultipartSubscriptions


def test_the_view_sends_a_stream_transports_headers() -> None:
    assert "headers=transport.headers" in inspect.getsource(AsyncBaseHTTPView._create_streaming_response)


def test_broadcast_multipart_parts_are_the_ones_strawberry_frames() -> None:
    transport = MultipartSubscriptions()
    response = {"data": {"todoChanges": {"op": "CREATED", "title": "\u00e9t\u00e9"}}}
    # As TodoGraphQL.encode_json encodes.
    def encode(data: object) -> str:
        return orjson.dumps(data).decode()

    assert transport.next_part(orjson.dumps(response)) == transport.encode_next(response, encode).encode()  # type: ignore[arg-type]
    assert transport.heartbeat_part() == transport.heartbeat_message(encode).encode()
    source = inspect.getsource(AsyncBaseHTTPView._stream_result)
    assert "transport.encode_complete()" in source
    assert "send_initial_heartbeat=transport.send_initial_heartbeat" in source
    assert "interval=transport.heartbeat_interval" in source


class _IntakeView(JsonIntake, GraphQL[None, None]):
    loads = staticmethod(json_intake.loads)


DEEP = "[" * 1025 + "]" * 1025


def test_strawberry_decodes_bodies_and_get_parameters_through_decode_json_and_lets_refusals_by() -> None:
    assert TodoGraphQL.decode_json is JsonIntake.decode_json
    view = _IntakeView(build_schema(execution_cache_size=16))
    with pytest.raises(RefusedJson):
        view.parse_json(DEEP.encode())  # a body: parse_http_body, parse_multipart_subscriptions
    for name in ("variables", "extensions"):
        with pytest.raises(RefusedJson):
            view.parse_query_params({"query": "{ todos { id } }", name: DEEP})  # type: ignore[arg-type]
    for parses_body in (AsyncBaseHTTPView.parse_http_body, AsyncBaseHTTPView.parse_multipart_subscriptions):
        assert "self.parse_json(await request.get_body())" in inspect.getsource(parses_body)


def test_strawberry_decodes_each_websocket_message_with_the_views_decode_json() -> None:
    # Both protocols' handlers read messages only through iter_json, which
    # catches json's own error alone: a RefusedJson ends the handler.
    source = inspect.getsource(ASGIWebSocketAdapter.iter_json)
    assert "yield self.view.decode_json(text)" in source
    assert "except JSONDecodeError as e:" in source
    assert "except Exception" not in source
    for handler in (BaseGraphQLTransportWSHandler, BaseGraphQLWSHandler):
        handle = inspect.getsource(handler.handle)
        assert "self.websocket.iter_json(" in handle and "except Exception" not in handle


def test_strawberrys_adapter_turns_only_websocket_disconnect_into_disconnected() -> None:
    send = inspect.getsource(ASGIWebSocketAdapter.send_json)
    assert "except WebSocketDisconnect as exc:" in send
    assert "raise WebSocketDisconnected from exc" in send
    assert send.count("except") == 1  # Starlette's send after close passes through


def test_strawberrys_view_hands_its_adapter_starlettes_websocket() -> None:
    # BoundedSendAdapter finds the connection to write to from `response`.
    assert "self.websocket_adapter_class(self, request, websocket_response)" in inspect.getsource(AsyncBaseHTTPView.run)
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)
    assert "encoded_data = self.view.encode_json(message)" in inspect.getsource(ASGIWebSocketAdapter.send_json)


def test_our_adapter_sets_what_strawberry_s_init_sets() -> None:
    view, websocket = object(), SimpleNamespace(_receive=None)
    theirs = BoundedSendAdapter.__new__(BoundedSendAdapter)
    ASGIWebSocketAdapter.__init__(theirs, view, websocket, websocket)  # type: ignore[arg-type]
    ours = vars(BoundedSendAdapter(view, websocket, websocket))  # type: ignore[arg-type]
    assert {name: ours[name] for name in vars(theirs)} == vars(theirs)
    assert set(ours) - set(vars(theirs)) == {"_write"}
