"""What internals/strawberry_transport_ws.py assumes of Strawberry's graphql-transport-ws
handler."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.schema.schema import Schema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.unset import UNSET
from websockets.exceptions import ConnectionClosed

from graphql_todos.graphql.view import TodoGraphQL
from graphql_todos.internals.strawberry_sockets import TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON, init_timer
from graphql_todos.internals.strawberry_transport_ws import (
    _ACK,
    DUPLICATE_ID_CODE,
    FORBIDDEN,
    INVALID_INIT_PAYLOAD,
    LIMIT_REACHED,
    NOT_JSON,
    NOT_TEXT,
    TOO_MANY_INITS,
    UNAUTHORIZED,
    UNPARSABLE,
    GatedTransportWs,
    _Operation,
)
from tests.gql import CHANGES, TransportWs, create
from tests.helpers import Server, wait_until


def test_transport_ws_cancels_an_operation_s_task_to_end_it_and_forgets_its_id_at_its_last_message() -> None:
    assert "operation.task.cancel()" in inspect.getsource(BaseGraphQLTransportWSHandler.cleanup_operation)
    assert list(inspect.signature(BaseGraphQLTransportWSHandler.run_operation).parameters) == ["self", "operation"]
    assert "self.handler.forget_id(self.id)" in inspect.getsource(Operation.send_operation_message)
    # GatedTransportWs.handle_subscribe makes it so, as Strawberry's did.
    assert list(inspect.signature(Operation).parameters) == ["handler", "id", "query", "variables", "operation_name"]
    assert "Operation(\n            self,\n            message[\"id\"],\n            message[\"payload\"][\"query\"]," in (
        inspect.getsource(BaseGraphQLTransportWSHandler.handle_subscribe)
    )


def test_transport_ws_cancels_and_awaits_whatever_task_an_operation_holds_when_it_ends() -> None:
    # A task-less broadcast member's operation gets its task only later.
    shutdown = inspect.getsource(BaseGraphQLTransportWSHandler.shutdown)
    assert "tasks = [op.task for op in self.operations.values() if op.task]" in shutdown
    assert shutdown.index("self.cleanup_operation(operation_id)") < shutdown.index("await task")
    assert "task.exception()" in inspect.getsource(BaseGraphQLTransportWSHandler._task_done)
    # Its run ends an exception itself, then raises it for `_task_done` (ours retrieves it).
    ends = _lines(
        BaseGraphQLTransportWSHandler.run_operation,
        "except Exception as error:",
        "await self.handle_task_exception(error)",
        '{"id": operation.id, "type": "complete"}',
        "self.operations.pop(operation.id, None)",
        "raise",
    )
    assert ends == sorted(ends)
    # The init timeout's close, as a task: cancelled and awaited at shutdown.
    assert "self.connection_init_timeout_task.cancel()" in shutdown
    assert "await self.connection_init_timeout_task" in shutdown


def _lines(function: object, *needles: str) -> list[int]:
    """Where each needle first occurs in the function's source (all must)."""
    source = inspect.getsource(function)  # type: ignore[arg-type]
    return [source.index(needle) for needle in needles]


def test_our_message_handling_answers_as_strawberry_s_in_its_order() -> None:
    """GatedTransportWs handles every message itself: Strawberry's answers
    and the order of its checks, found in its source."""
    base = BaseGraphQLTransportWSHandler
    dispatch = _lines(base.handle_message, 'f"Unknown message type: {message[\'type\']}"', "except KeyError:", f'"{UNPARSABLE}"')
    assert dispatch == sorted(dispatch)
    assert 'await self.send_message({"type": "pong"})' in inspect.getsource(base.handle_ping)
    assert inspect.getsource(base.handle_pong).rstrip().endswith("pass")
    assert "await self.cleanup_operation(operation_id=message[\"id\"])" in inspect.getsource(base.handle_complete)
    init = _lines(
        base.handle_connection_init,
        "if self.connection_timed_out:",
        'payload = message.get("payload", {})',
        f'code={INVALID_INIT_PAYLOAD[0]}, reason="{INVALID_INIT_PAYLOAD[1]}"',
        f'reason = "{TOO_MANY_INITS[1]}"',
        f"code={TOO_MANY_INITS[0]}",
        "self.connection_init_received = True",
        'self.context["connection_params"] = payload',
        "self.view.on_ws_connect(self.context)",
        f'code={FORBIDDEN[0]}, reason="{FORBIDDEN[1]}"',
        'self.send_message({"type": "connection_ack"})',
        '{"type": "connection_ack", "payload": connection_ack_payload}',
        "self.connection_acknowledged = True",
    )
    assert init == sorted(init)
    assert (TOO_MANY_INITS_CODE, TOO_MANY_INITS_REASON) == TOO_MANY_INITS  # as the legacy handler refuses
    subscribe = _lines(
        base.handle_subscribe,
        "if not self.connection_acknowledged:",
        f'code={UNAUTHORIZED[0]}, reason="{UNAUTHORIZED[1]}"',
        "if message[\"id\"] in self.operations:",
        'reason = f"Subscriber for {message[\'id\']} already exists"',
        f"code={DUPLICATE_ID_CODE}",
        "len(self.operations) >= self.max_subscriptions_per_connection",
        f'GraphQLError("{LIMIT_REACHED}")',
        '"type": "error"',
        "asyncio.create_task(self.run_operation(operation))",
        "operation.task.add_done_callback(self._task_done)",
        "self.operations[message[\"id\"]] = operation",
    )
    assert subscribe == sorted(subscribe)
    assert "extensions" not in inspect.getsource(base.handle_subscribe)
    assert "code=4400" in inspect.getsource(base.handle_invalid_message)
    assert "code=4408" in inspect.getsource(base.handle_connection_init_timeout)


def test_a_stopped_init_timer_is_let_go() -> None:
    # A cancelled handle keeps its copy of the context beside every open socket.
    async def scenario() -> tuple[bool, object]:
        handler = GatedTransportWs.__new__(GatedTransportWs)
        handler._init_timer = timer = init_timer(60, lambda: None)
        handler._stopinit_timer()
        return timer.cancelled(), handler._init_timer

    assert asyncio.run(scenario()) == (True, None)


def test_a_broadcast_member_keeps_no_task_and_completing_it_frees_its_id(server: Server, client: httpx.Client) -> None:
    def registered() -> list[Operation[Any, None]]:
        # The operations sockets hold now (those of ended sockets are garbage).
        return [
            o for o in gc.get_objects()
            if isinstance(o, Operation) and o.handler.operations.get(o.id) is o
        ]

    with TransportWs(server.ws_url) as ws:
        op_id = ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        # Joined with no task: its finished one is not kept beside the socket.
        assert [o.task for o in server.call(registered)] == [None]
        ws.complete(op_id)
        wait_until(lambda: server.subscriber_count() == 0)
        assert server.call(registered) == []
        # The id is free again (a registered one would close the socket 4409).
        ws.send({"id": op_id, "type": "subscribe", "payload": {"query": CHANGES}})
        wait_until(lambda: server.subscriber_count() == 1)
        create(client, "after")
        message = ws.recv()
        assert (message["id"], message["type"]) == (op_id, "next")


def test_our_receive_loop_reads_as_strawberrys_iter_json_and_answers_as_its_handle() -> None:
    # GatedTransportWs.handle reads the WebSocket itself, in place of these.
    handle = inspect.getsource(BaseGraphQLTransportWSHandler.handle)
    assert "async for message in self.websocket.iter_json():" in handle
    assert handle.index("NonTextMessageReceived") < handle.index(f'"{NOT_TEXT}"')
    assert handle.index("NonJsonMessageReceived") < handle.index(f'"{NOT_JSON}"')
    assert "except WebSocketDisconnected:" in handle and "await self.shutdown()" in handle
    iter_json = inspect.getsource(ASGIWebSocketAdapter.iter_json)
    assert "while self.ws.application_state != WebSocketState.DISCONNECTED:" in iter_json
    # receive_text: message["text"], a KeyError for bytes; a disconnect raised, and taken as the end.
    assert "text = await self.ws.receive_text()" in iter_json and "yield self.view.decode_json(text)" in iter_json
    assert "except JSONDecodeError" in iter_json and "except KeyError" in iter_json
    assert "except WebSocketDisconnect:" in iter_json
    # Starlette's receive once connected (the loop awaits its `_receive`).
    receive = inspect.getsource(WebSocket.receive)
    connected = receive[receive.index("elif self.client_state == WebSocketState.CONNECTED:") : receive.index("else:")]
    assert [line.strip() for line in connected.splitlines()[1:] if line.strip()] == [
        "message = await self._receive()",
        'message_type = message["type"]',
        'if message_type not in {"websocket.receive", "websocket.disconnect"}:',
        "raise RuntimeError(",
        'f\'Expected ASGI message "websocket.receive" or "websocket.disconnect", but got {message_type!r}\'',
        ")",
        'if message_type == "websocket.disconnect":',
        "self.client_state = WebSocketState.DISCONNECTED",
        "return message",
    ]


def test_the_receive_loop_ends_at_a_disconnect_leaving_the_client_state_as_starlettes_receive() -> None:
    async def run() -> WebSocketState:
        messages: list[dict[str, Any]] = [{"type": "websocket.receive", "text": '{"type":"pong"}'},
                                          {"type": "websocket.disconnect", "code": 1001}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: object) -> None:
            raise AssertionError(message)

        websocket = WebSocket({"type": "websocket", "path": "/graphql", "headers": []}, receive, send)
        websocket.client_state = websocket.application_state = WebSocketState.CONNECTED
        view = SimpleNamespace(loads=json.loads)  # a JsonIntake's decoder
        await GatedTransportWs(
            view=view, websocket=ASGIWebSocketAdapter(view, websocket, websocket),  # type: ignore[arg-type]
            context={}, root_value=None,
            schema=None, connection_init_wait_timeout=timedelta(seconds=5), max_subscriptions_per_connection=None,
        ).handle()
        assert messages == []
        return websocket.client_state

    assert asyncio.run(run()) is WebSocketState.DISCONNECTED


# Not JSON: the view's decoder refuses it with its own reason (JsonIntake), as
# it did under Strawberry's iter_json; NOT_JSON is for a decoder raising
# json's JSONDecodeError, as Strawberry's does.
@pytest.mark.parametrize(("frame", "reason"), [(b"\x00{}", NOT_TEXT), ("{", "malformed JSON: unexpected end of data")])
def test_a_message_not_text_or_not_json_closes_4400_with_a_reason(
    server: Server, frame: str | bytes, reason: str
) -> None:
    with TransportWs(server.ws_url) as ws:
        ws.ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    received = closed.value.rcvd
    assert received is not None and received.code == 4400 and received.reason.startswith(reason)


def test_an_open_socket_waits_in_no_iter_json(server: Server) -> None:
    # What `handle` spares every open socket: iter_json's generator.
    def generators() -> list[str]:
        gc.collect()
        return [o.ag_code.co_qualname for o in gc.get_objects() if type(o).__name__ == "async_generator"]

    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        assert ASGIWebSocketAdapter.iter_json.__qualname__ not in server.call(generators)


def test_an_open_socket_keeps_no_message_it_handled(server: Server) -> None:
    # The receive loop waits holding no message it read (the subscribe's
    # dicts, beside every open socket): of its locals, no dict at all.
    def held() -> list[list[str]]:
        return [
            [name for name, value in o.cr_frame.f_locals.items() if isinstance(value, dict) and gc.is_tracked(value)]
            for o in gc.get_objects()
            if type(o).__name__ == "coroutine" and o.cr_code is GatedTransportWs.handle.__code__ and o.cr_frame
        ]

    with TransportWs(server.ws_url) as ws:
        ws.subscribe(CHANGES)
        wait_until(lambda: server.subscriber_count() == 1)
        assert server.call(held) == [[]]


def test_our_handler_sets_what_strawberry_s_init_sets() -> None:
    async def made() -> tuple[dict[str, Any], dict[str, Any]]:
        view = SimpleNamespace()
        adapter = SimpleNamespace(ws=object())
        arguments: tuple[Any, ...] = (view, adapter, {}, None, None, timedelta(seconds=3), 7)
        theirs = GatedTransportWs.__new__(GatedTransportWs)
        BaseGraphQLTransportWSHandler.__init__(theirs, *arguments)  # type: ignore[arg-type]
        return vars(theirs), vars(GatedTransportWs(*arguments))  # type: ignore[arg-type]

    theirs, ours = asyncio.run(made())
    assert {name: ours[name] for name in theirs} == theirs
    assert set(ours) - set(theirs) == {"broadcasts", "socket", "loop"}
    assert ours["socket"] is ours["websocket"].ws
    # The socket is the adapter's `.ws`: the view's adapter is Strawberry's ASGI one.
    assert issubclass(TodoGraphQL.websocket_adapter_class, ASGIWebSocketAdapter)
    assert "self.ws = response" in inspect.getsource(ASGIWebSocketAdapter.__init__)


def test_on_ws_connect_is_asked_only_of_a_view_that_overrides_strawberry_s() -> None:
    assert asyncio.run(AsyncBaseHTTPView.on_ws_connect(None, None)) is UNSET  # type: ignore[arg-type]
    assert TodoGraphQL.on_ws_connect is AsyncBaseHTTPView.on_ws_connect  # ours is skipped

    class Answers(SimpleNamespace):
        async def connection_allowed(self, context: object, params: object) -> bool:
            return True

        def hold(self, context: object, end: object) -> Any:
            return lambda: None

    class Acknowledges(Answers, AsyncBaseHTTPView):  # type: ignore[misc]
        async def on_ws_connect(self, context: object) -> dict[str, object]:
            return {"hello": 1}

    class Default(Answers, AsyncBaseHTTPView):  # type: ignore[misc]
        pass

    class Rejects(Answers, AsyncBaseHTTPView):  # type: ignore[misc]
        async def on_ws_connect(self, context: object) -> dict[str, object]:
            raise ConnectionRejectionError

    async def answer(view: object) -> list[object]:
        said: list[object] = []

        async def send_json(message: object) -> None:
            said.append(message)

        async def close(code: int, reason: str) -> None:
            said.append((code, reason))

        # An acknowledgement not written now is sent as any other message.
        adapter = SimpleNamespace(ws=None, send_json=send_json, close=close, write_encoded=lambda encoded: False)
        handler = GatedTransportWs(view, adapter, {}, None, None, timedelta(seconds=3))  # type: ignore[arg-type]
        await handler.handle_message({"type": "connection_init"})
        return said

    assert asyncio.run(answer(Acknowledges())) == [{"type": "connection_ack", "payload": {"hello": 1}}]  # type: ignore[abstract]
    assert asyncio.run(answer(Rejects())) == [FORBIDDEN]  # type: ignore[abstract]
    assert asyncio.run(answer(Default())) == [{"type": "connection_ack"}]  # type: ignore[abstract]


def test_the_acknowledgement_is_written_as_the_view_encodes_it() -> None:
    assert _ACK == TodoGraphQL.encode_json(None, {"type": "connection_ack"}).encode()  # type: ignore[arg-type]


def test_a_subscribe_task_ends_an_exception_of_ours_as_strawberry_s_run_does(caplog: pytest.LogCaptureFixture) -> None:
    # No done callback retrieves it: the task ends with none, the failure
    # logged, the client told `complete`, the id free again.
    async def run() -> tuple[list[object], BaseException | None, dict[str, Any]]:
        said: list[object] = []

        async def send_json(message: object) -> None:
            said.append(message)

        async def take(*_: object) -> None:
            raise RuntimeError("the fan-out failed")

        view = SimpleNamespace(fanout=SimpleNamespace(take=take))
        adapter = SimpleNamespace(ws=None, send_json=send_json)
        handler = GatedTransportWs(view, adapter, {}, None, None, timedelta(seconds=3))  # type: ignore[arg-type]
        handler.connection_acknowledged = True
        await handler.handle_subscribe({"id": "1", "type": "subscribe", "payload": {"query": CHANGES}})
        task = handler.operations["1"].task
        assert task is not None
        await asyncio.wait([task])
        return said, task.exception(), handler.operations

    said, exception, operations = asyncio.run(run())
    assert (said, exception, operations) == ([{"id": "1", "type": "complete"}], None, {})
    assert "the fan-out failed" in caplog.text


def test_a_failed_subscribe_forgets_its_own_operation_not_one_that_took_its_id_since() -> None:
    # Its `complete` frees the id before it is sent; a subscribe read while
    # that send waits may take the id again: that operation stays.
    async def run() -> tuple[bool, list[object]]:
        said: list[object] = []
        sending = asyncio.Event()
        release = asyncio.Event()
        calls = 0

        async def send_json(message: object) -> None:
            said.append(message)
            sending.set()
            await release.wait()

        async def take(*_: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("the fan-out failed")
            await asyncio.Event().wait()  # the second runs on

        view = SimpleNamespace(fanout=SimpleNamespace(take=take))
        adapter = SimpleNamespace(ws=None, send_json=send_json)
        handler = GatedTransportWs(view, adapter, {}, None, None, timedelta(seconds=3))  # type: ignore[arg-type]
        handler.connection_acknowledged = True
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": CHANGES}}
        await handler.handle_subscribe(subscribe)
        failed = handler.operations["1"].task
        assert failed is not None
        await sending.wait()
        await handler.handle_subscribe(subscribe)
        second = handler.operations["1"]
        release.set()
        await asyncio.wait([failed])
        kept = handler.operations.get("1") is second
        await handler.shutdown()
        return kept, said

    kept, said = asyncio.run(run())
    assert (kept, said) == (True, [{"id": "1", "type": "complete"}])


def test_an_operation_keeps_its_opening_in_a_slot_and_strawberry_runs_it_in_its_own_task() -> None:
    """A socket's order (strawberry_sockets.in_order): each operation's
    opening in a slot of our Operation (Strawberry's `__init__`, no dict),
    `operations` in the order sent; a subscription Strawberry runs tells its
    start through a context variable set in the operation's task, so its
    stream must run in that task: its run awaits the stream, and the schema
    subscribes inline."""
    assert _Operation.__init__ is Operation.__init__
    operation = _Operation(None, "1", "{ a }", None, None)  # type: ignore[arg-type]
    assert not hasattr(operation, "__dict__")
    assert "self.operations: dict[str, Operation[Context, RootValue]] = {}" in inspect.getsource(
        BaseGraphQLTransportWSHandler.__init__
    )
    for runs in (BaseGraphQLTransportWSHandler.run_operation, BaseGraphQLTransportWSHandler._send_result_stream):
        assert "create_task" not in inspect.getsource(runs) and "ensure_future" not in inspect.getsource(runs)
    stream = inspect.getsource(Schema._stream)
    assert "create_task" not in stream and "await await_maybe(\n                        subscribe(" in stream
