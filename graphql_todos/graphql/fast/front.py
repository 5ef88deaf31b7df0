"""The response cache's front door: a repeated read over HTTP (GraphQL's
`POST /graphql` and `GET /graphql?query=...`, REST's `GET /api/todos/`)
answered whole, in front of the middleware stack, with what the app sent for
the same request (every header, every byte of the query string and body) at
the mark the journal stands at now (core/journal.py states the rule).

A reply is kept only when the route answered with the response cache's
entry for that mark (the fast path: a query, no errors; the REST list: any
page it read), so a hit is exactly as fresh as the route's; what it saves is
the stack's layers, the body's parse and the building of the cache's key.
It takes only requests the stack handles the same way once the body is read
(a plain JSON POST within the size limit, a GET with a query string, the
REST list's GET for JSON, with a Host guard.HostCheck let through). A reply
(a 200) is kept with the principal the stack let in, and replayed only to a
request the process knows without a lookup to come from that principal
(Access.remembered: open mode's, the service token's, or a session's or
personal access token's the stack looked up within the last second and that
has not expired or been revoked since; docs/design/people.md, section 7).
Anyone else (a JWT, a credential not looked up lately, a revoked or expired
one, none) goes to the stack, which answers 401 or reads afresh. It reads a
POST's body through the guard's bounds, and asks the journal's mark only
when it holds a reply for the request: the request's `Reading`
(edge/response_cache.py) hands that mark to the route and brings back the
mark its answer was kept at, one query per request as before. On a miss the
stack gets the messages read replayed: it sees what it would have seen, a
slow body's refusal included.

Writes take a shorter way (write_door.py): a POST whose body runs a GraphQL
mutation, once read here, and REST's writes to todos go to their route
through the guard's layers alone. With no response cache (size 0) this door
keeps no replies and does only that.
"""

from __future__ import annotations

import operator
import time
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql_todos.core import metrics, paths
from graphql_todos.core.errors import RequestError
from graphql_todos.core.journal import Journal
from graphql_todos.core.people import Principal
from graphql_todos.core.settings import Settings
from graphql_todos.edge import event_stream
from graphql_todos.edge.access import Access
from graphql_todos.edge.guard import BODY_READ, Guard, SocketGate, first_values
from graphql_todos.edge.negotiation import JSON_TYPES, raw_accept
from graphql_todos.edge.response_cache import READING, Reading, ResponseCache
from graphql_todos.graphql.fast.path import answers_whole, is_json_body
from graphql_todos.graphql.fast.write_door import WriteDoor
from graphql_todos.graphql.http import media_types
from graphql_todos.internals.uvicorn_http import arrived_whole

_PATHS = (paths.GRAPHQL, paths.TODOS)
_NAME = operator.itemgetter(0)
_METHODS = ("GET", "POST")


class Reply(NamedTuple):
    """A response as the app sent it: one start and one body message."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    # Whom the stack let in: it is replayed to them alone.
    principal: Principal


class ResponseFront:
    """ASGI middleware, outermost but the Host check and the shutdown cut:
    answers a repeated read from the replies kept, sends a write the short
    way (WriteDoor), and hands everything else to the app unchanged."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        access: Access,
        sockets: SocketGate,
        replies: ResponseCache[Reply],
        writes: WriteDoor,
    ) -> None:
        self.app = app
        self.access = access
        # Only its checks of a request's head and body: the stack's own
        # Guard still answers every request this one does not.
        self.guard = Guard(app, settings, access, sockets)
        self.replies = replies
        self.writes = writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if (route := self.writes.rest_route(scope, receive)) is not None:
            return await self.writes(scope, receive, send, route)
        method: str = scope["method"]
        if scope["path"] not in _PATHS or method not in _METHODS:
            return await self.app(scope, receive, send)
        if method == "GET" and not self.replies.size:
            return await self.app(scope, receive, send)
        if method == "POST":
            # GraphQL's plain JSON POST with a declared size (the REST list
            # takes none; a chunked body is the stack's to bound): the three
            # headers that say so read in one pass, once the path is GraphQL's.
            if scope["path"] != paths.GRAPHQL:
                return await self.app(scope, receive, send)
            content_type, length, accept, origin = _post_head(scope["headers"])
            media = media_types(accept)
            if (
                not (is_json_body(content_type) and media.operation in JSON_TYPES and length.isdigit())
                or self.guard.too_big(length)
            ):
                return await self.app(scope, receive, send)
        elif not _takes_get(scope, headers := Headers(scope=scope)) or self.guard.declared_too_big(headers):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        scope[metrics.STARTED] = started
        body = b""  # the stack reads no body of a GET: neither does this
        if method == "POST":
            messages, failure = await _read(self.guard, receive)
            receive = _replay(messages, failure, receive)
            if failure is not None or messages[-1]["type"] != "http.request":
                # Too slow, or the client left: the stack answers as it would have.
                return await self.app(scope, receive, send)
            # One message, as uvicorn hands over a body that has arrived: no join.
            body = messages[0].get("body", b"") if len(messages) == 1 else b"".join(m.get("body", b"") for m in messages)
            scope[BODY_READ] = True
            if (route := self.writes.mutation_route(scope, body, media, origin)) is not None:
                return await self.writes(scope, receive, send, route)
            if not self.replies.size:
                return await self.app(scope, receive, send)
            headers = Headers(scope=scope)
        key = (method, scope["query_string"], tuple(scope["headers"]), body)
        reading = scope[READING] = Reading()
        # A request never kept (a mutation, a first read) asks no mark
        # here: the fast path asks it, where it always has. Nor does one
        # from a principal the process cannot name without a lookup.
        principal = self.access.remembered(scope, headers) if self.replies.holds(key) else None
        if principal is not None:
            journal: Journal = scope["state"]["journal"]
            try:
                mark = await journal.mark()
            except Exception as exc:  # noqa: BLE001 - the fast path raises it where it would have asked
                reading.asked = exc
                return await self.app(scope, receive, send)
            reading.asked = mark
            reply = self.replies.lookup(key, mark)
            if reply is not None and reply.principal == principal:
                answer = metrics.Answer(scope, started, send)
                try:
                    await answer.send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
                    await answer.send({"type": "http.response.body", "body": reply.body})
                finally:
                    answer.ended()
                return
        sent: list[Message] = []

        async def sending(message: Message) -> None:
            # A Reply holds a start and one body: a third message is a stream
            # (a subscription answered to a client that takes JSON for queries).
            if len(sent) < 3:
                sent.append(message)
            await send(message)

        await self.app(scope, receive, sending)
        kept_for = reading.kept_for
        if (
            reading.kept_at is not None
            and kept_for is not None
            and _whole(sent)
            and sent[0]["status"] == 200
            # Only what could be replayed: not a JWT's, nor a credential
            # revoked while it was read.
            and self.access.remembered(scope, headers) == kept_for
        ):
            start, whole = sent
            self.replies.keep(key, reading.kept_at, Reply(start["status"], tuple(start["headers"]), whole["body"], kept_for))


def _takes_get(scope: Scope, headers: Headers) -> bool:
    """A GET a route may answer from the cache, and the stack answers alike:
    GraphQL's with a query string, the REST list's for JSON (not its event
    stream)."""
    if scope["path"] == paths.TODOS:
        return _takes_json(headers)
    return bool(scope["query_string"]) and answers_whole(headers)


def _post_head(raw: Iterable[tuple[bytes, bytes]]) -> tuple[str, str, str | None, bool]:
    """The Content-Type and Content-Length ("" for none; the first of each),
    the Accept lines (negotiation.accept_header) and whether there is an
    Origin, of a request's headers, as starlette's Headers reads them
    (uvicorn's names come in lower case)."""
    pairs = list(raw)
    # All in C but for a request with more than one Accept line.
    first = first_values(pairs)
    if list(map(_NAME, pairs)).count(b"accept") > 1:
        accept = raw_accept(pairs)
    else:
        line = first.get(b"accept")
        accept = None if line is None else line.decode("latin-1")
    return (
        first.get(b"content-type", b"").decode("latin-1"), first.get(b"content-length", b"").decode("latin-1"), accept,
        b"origin" in first,
    )


def _takes_json(headers: Headers) -> bool:
    try:
        return not event_stream.streams(headers)
    except RequestError:  # it takes neither: the route's own 406
        return False


def _whole(sent: list[Message]) -> bool:
    """One start and one body: a response a Reply holds."""
    return len(sent) == 2 and sent[1]["type"] == "http.response.body" and not sent[1].get("more_body", False)


async def _read(guard: Guard, receive: Receive) -> tuple[list[Message], RequestError | None]:
    """The messages up to the body's end (or the client's leaving), or the
    refusal the guard's bounds raised on the way. A body that has come whole
    (uvicorn's usual, for a write) is taken as its one message, with no
    bounds: nothing to wait for, and within the declared size the caller
    checked (uvicorn hands over no more than a request's Content-Length)."""
    if arrived_whole(receive):
        return [await receive()], None
    receive = guard.bounded(receive)
    messages: list[Message] = []
    try:
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return messages, None
    except RequestError as error:
        return messages, error


def _replay(messages: list[Message], failure: RequestError | None, receive: Receive) -> Receive:
    """receive() for the stack: the messages already read, then the refusal
    that ended them (once), then the client's own."""
    pending = deque(messages)
    refusal = failure

    async def replayed() -> Message:
        nonlocal refusal
        if pending:
            return pending.popleft()
        if refusal is not None:
            raised, refusal = refusal, None
            raise raised
        return await receive()

    return replayed
