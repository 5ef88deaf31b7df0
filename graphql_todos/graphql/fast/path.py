"""The compiled fast path for GraphQL over HTTP.

`POST /graphql` with a JSON body, or `GET /graphql` with the query in its
parameters, naming a document we have compiled (sent in full, or by its
persisted-query hash alone) runs the plan and answers with bytes written in
one pass; a document the intake refuses (intake.py) is answered here as
Strawberry's view would, so that it costs one parse. Every other request is
left to Strawberry's view, whose answers the plan reproduces.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from graphql import GraphQLError, OperationType
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from graphql_todos.core.errors import DomainError
from graphql_todos.core.journal import Mark
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.people import SERVICE
from graphql_todos.edge import json_intake
from graphql_todos.edge.acting import key_scope
from graphql_todos.edge.json_intake import RefusedJson
from graphql_todos.edge.negotiation import JSON_TYPES, accept_header
from graphql_todos.edge.response_cache import READING, Reading, ResponseCache
from graphql_todos.graphql import numbering
from graphql_todos.graphql.fast.execution import execute
from graphql_todos.graphql.fast.plans import CompiledOperation, compile_operation
from graphql_todos.graphql.fast.roots import DIRECT
from graphql_todos.graphql.http import MediaTypes, media_types
from graphql_todos.graphql.intake import Intake, Operation, Refusal
from graphql_todos.graphql.root_calls import ROOT_CALLS
from graphql_todos.graphql.schema import Context, TodoSchema
from graphql_todos.internals.starlette_endpoint import JsonBytes
from graphql_todos.internals.strawberry import strawberry_operation

# A request we may take has these fields at most (Strawberry reads no
# others); its extensions, if any, are a persisted query's or a numbered
# mutation's key (graphql/numbering.py), and nothing else.
_REQUEST_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
_EXTENSION_KEYS = frozenset({"persistedQuery", "mutation"})
# Strawberry's view runs no mutation over GET, and no subscription over
# plain HTTP (TodoSchema.execute).
# (Tuples: `in` finds an enum member by identity, where a set calls Enum's
# __hash__, a Python function.)
_OVER_GET: tuple[OperationType, ...] = (OperationType.QUERY,)
_OVER_POST: tuple[OperationType, ...] = (OperationType.QUERY, OperationType.MUTATION)
# Where a front door that parsed a POST's JSON body leaves it (write_door.py):
# the fast path takes it from there rather than parsing the body again.
PARSED_BODY = "graphql_todos.parsed_body"


class ParsedBody(NamedTuple):
    """A mutation's POST as the write door found it (write_door.py): the
    view and the fast path take it from here rather than working it out again."""

    # The body's JSON object.
    fields: dict[str, Any]
    # The operation the intake took in for its document and operationName.
    operation: Operation
    # The media types negotiated from its Accept lines (front.py).
    media: MediaTypes


class FastAnswer(NamedTuple):
    """The response body Strawberry's view would send."""

    body: bytes
    # Nothing ran (the document was refused): GraphQL over HTTP's request error.
    request_error: bool = False
    # The mark whose response cache entry the body is.
    kept_at: Mark | None = None


def compiled(operation: Operation) -> CompiledOperation | None:
    """The operation's plan (made once per operation), or None: Strawberry's path runs it."""
    return operation.made(_compile)


def _compile(operation: Operation) -> CompiledOperation | None:
    return compile_operation(operation.schema, operation.document, operation.definition, DIRECT, ROOT_CALLS)


class FastPath:
    def __init__(self, intake: Intake, cache: ResponseCache[bytes]) -> None:
        self.intake = intake
        self.cache = cache
        # Requests answered by a plan, and documents refused here; read by
        # tests and benchmarks.
        self.executions = 0
        self.refusals = 0

    @property
    def schema(self) -> TodoSchema:
        return self.intake.schema

    async def respond(self, request: Request, context: Context) -> Response | None:
        """The response to a request the fast path takes, or None."""
        parsed: ParsedBody | None = request.scope.pop(PARSED_BODY, None)
        taken = None
        if parsed is not None:
            # The write door parsed it, having found it a plain JSON POST (front.py).
            fields, taken = _request_fields(parsed.fields), parsed.operation
            operations = _OVER_POST
        elif request.method == "GET":
            fields = _query_params(request)
            operations = _OVER_GET
        elif request.method == "POST" and is_plain_json(request.headers):
            fields = _json_body(await request.body())
            operations = _OVER_POST
        else:
            return None
        if fields is None:
            return None
        query, variables, name = fields.get("query"), fields.get("variables"), fields.get("operationName")
        extensions = fields.get("extensions")
        if "extensions" in fields:
            query = self._persisted(query, extensions)
        if type(query) is not str or type(variables) not in (dict, type(None)) or type(name) not in (str, type(None)):
            return None
        reading: Reading | None = request.scope.get(READING)
        answer = await self.execute(query, variables, name, context, operations, reading, extensions, taken)
        if answer is None:
            return None
        if answer.request_error:
            # Read by the view, as when Strawberry's path answers (view.TodoGraphQL.process_result).
            request.state.graphql_request_error = True
        # Not a document named by its hash: whether the store still knows
        # the hash is for each request to find out.
        if reading is not None and "extensions" not in fields:
            reading.kept_at, reading.kept_for = answer.kept_at, context.principal
        return JsonBytes(answer.body)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
        operations: tuple[OperationType, ...] = _OVER_POST,
        reading: Reading | None = None,
        extensions: dict[str, Any] | None = None,
        operation: Operation | None = None,
    ) -> FastAnswer | None:
        """The response Strawberry's view would send, or None when the fast
        path does not cover this request; `context`: the request's own (a
        mutation's receipt is put on it); `operation`: the intake's for
        (query, operation_name), when the caller has it already."""
        taken = self.intake.operation(query, operation_name) if operation is None else operation
        if isinstance(taken, Refusal):
            return self._refused(taken, operation_name, operations)
        compiled_operation = None if taken is None else compiled(taken)
        if taken is None or compiled_operation is None or compiled_operation.operation.operation not in operations:
            return None
        coerced = self.intake.variables(taken, variables)
        plan = None if coerced is None else compiled_operation.plan(coerced.values)
        if coerced is None or plan is None:
            return None
        try:
            key = None if not extensions else numbering.key(
                extensions, taken.definition, key_scope(context.principal), query, variables, operation_name
            )
        except DomainError as exc:
            return self._refused(Refusal(None, [GraphQLError(exc.message, original_error=exc)]), operation_name, operations)

        if compiled_operation.operation.operation is not OperationType.QUERY:
            # As Strawberry's path (TodoSchema.operation_context): a receipt of
            # its own, put on the request's context (the view's get_context
            # made it for this request alone), not on a copy made of it.
            receipt = context.receipt = Receipt(key)
            data, errors = await execute(plan, compiled_operation, coerced.values, context)
            return FastAnswer(self._rendered(data, errors, receipt))

        kept_at: Mark | None = None

        async def run() -> tuple[bytes, bool]:
            nonlocal kept_at
            data, errors = await execute(plan, compiled_operation, coerced.values, context)
            if errors:
                kept_at = None
            return self._rendered(data, errors), not errors

        async def position() -> Mark:
            nonlocal kept_at
            kept_at = await (context.journal.mark() if reading is None else reading.mark(context.journal))
            return kept_at

        # Keyed by whose answer it is too: each person's reads differ (people.md section 7).
        viewer = (context.principal or SERVICE).viewer
        body = await self.cache.get_or_read((query, operation_name, coerced.key, viewer), position, run)
        return FastAnswer(body, kept_at=kept_at)

    def _rendered(self, data: dict[str, Any] | None, errors: list[GraphQLError], receipt: Receipt | None = None) -> bytes:
        """An execution's response body, as Strawberry's view writes it."""
        self.executions += 1
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = [error.formatted for error in self.schema.finish_errors(errors)]
        if receipt is not None and (extra := numbering.reply_extensions(receipt)) is not None:
            body["extensions"] = extra
        return orjson.dumps(body)

    def _persisted(self, query: Any, extensions: Any) -> str | None:
        """The document to run: sent, or named by a persisted query (with the
        trusted-documents rules); None: Strawberry's path answers (an unknown
        or untrusted hash, a hash that does not match the document, other
        extensions)."""
        if type(extensions) is not dict or not extensions or not extensions.keys() <= _EXTENSION_KEYS or type(query) not in (str, type(None)):
            return None
        return self.schema.runnable(query, extensions)

    def _refused(
        self, refusal: Refusal, operation_name: str | None, operations: tuple[OperationType, ...]
    ) -> FastAnswer | None:
        """Strawberry's answer to a document it refuses; None where its view
        refuses the request first: between parsing and validating, it checks
        the operation's type against the method (none to check: it refuses it)."""
        if refusal.document is not None:
            operation = strawberry_operation(refusal.document, operation_name)
            if operation is None or operation.operation not in operations:
                return None
        self.refusals += 1
        errors = [error.formatted for error in self.schema.finish_errors(refusal.errors)]
        return FastAnswer(orjson.dumps({"errors": errors}), request_error=True)


def is_plain_json(headers: Headers) -> bool:
    """A POST the fast path reads: a JSON body, for a JSON answer."""
    return is_json_body(headers.get("content-type", "")) and answers_whole(headers)


def is_json_body(content_type: str) -> bool:
    """A Content-Type naming JSON, whatever its parameters."""
    return content_type.split(";", 1)[0].strip() == "application/json"


def answers_whole(headers: Headers) -> bool:
    """A query or mutation is answered in JSON, not streamed (the media type
    negotiated: http.media_types)."""
    return media_types(accept_header(headers)).operation in JSON_TYPES


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        fields = json_intake.loads(body)
    except RefusedJson:
        return None  # Strawberry's path refuses it through the same intake
    return _request_fields(fields)


def _request_fields(fields: Any) -> dict[str, Any] | None:
    # A list is a batch: Strawberry refuses it.
    if type(fields) is not dict or not fields.keys() <= _REQUEST_KEYS:
        return None
    return fields


def _query_params(request: Request) -> dict[str, Any] | None:
    params = request.query_params
    # A repeated parameter, or variables that are not a JSON object, get
    # Strawberry's own answer.
    if not params.keys() <= _REQUEST_KEYS or len(params.multi_items()) != len(params):
        return None
    fields: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        if name in fields:
            try:
                fields[name] = json_intake.loads(fields[name])
            except RefusedJson:
                return None
    return fields
