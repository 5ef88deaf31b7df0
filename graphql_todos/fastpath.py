"""The compiled fast path for GraphQL over HTTP.

`POST /graphql` with a JSON body, or `GET /graphql` with the query in its
parameters, naming a document we have compiled runs the plan and answers
with bytes written in one pass; every other request (and every document
that fails to parse, validate or compile) is left to Strawberry's view,
whose answers the plan reproduces.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from graphql import GraphQLError, OperationType, parse
from starlette.requests import Request
from starlette.responses import Response

from .compiled import CompiledOperation, coerce_variables, compile_operation, execute
from .graphql_internals import validation_errors
from .json_roots import DIRECT
from .response_cache import ResponseCache
from .schema import Context, TodoSchema

# Distinct (document, operation name) pairs kept, compiled or not.
CACHE_SIZE = 512
# A request we may take has these fields at most (Strawberry reads no
# others); one with "extensions" is left to Strawberry.
_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})
# Strawberry's view runs no mutation over GET, and no subscription over
# plain HTTP (TodoSchema.execute).
_OVER_GET = frozenset({OperationType.QUERY})
_OVER_POST = frozenset({OperationType.QUERY, OperationType.MUTATION})


class FastPath:
    def __init__(self, schema: TodoSchema, cache: ResponseCache) -> None:
        self.schema = schema
        self.cache = cache
        # None: parsed and valid, but the plan does not cover it.
        self.operations: OrderedDict[tuple[str, str | None], CompiledOperation | None] = OrderedDict()
        # Requests answered by a plan; read by tests and benchmarks.
        self.executions = 0

    async def respond(self, request: Request, context: Context) -> Response | None:
        """The response to a request the fast path takes, or None."""
        if request.method == "GET":
            fields = _query_params(request)
            operations = _OVER_GET
        elif request.method == "POST" and _is_plain_json(request):
            fields = _json_body(await request.body())
            operations = _OVER_POST
        else:
            return None
        if fields is None:
            return None
        query, variables, name = fields.get("query"), fields.get("variables"), fields.get("operationName")
        if type(query) is not str or type(variables) not in (dict, type(None)) or type(name) not in (str, type(None)):
            return None
        body = await self.execute(query, variables, name, context, operations)
        return None if body is None else Response(body, media_type="application/json")

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
        operations: frozenset[OperationType] = _OVER_POST,
    ) -> bytes | None:
        """The JSON response body Strawberry's view would send, or None when
        the plan does not cover this request."""
        compiled = self.compiled(query, operation_name)
        if compiled is None or compiled.operation.operation not in operations:
            return None
        coerced = coerce_variables(compiled, variables)
        plan = None if coerced is None else compiled.plan(coerced)
        if coerced is None or plan is None:
            return None

        async def run() -> tuple[bytes, bool]:
            data, errors = await execute(plan, compiled, coerced, context)
            self.executions += 1
            body: dict[str, Any] = {"data": data}
            if errors:
                body["errors"] = [error.formatted for error in self.schema.finish_errors(errors)]
            return orjson.dumps(body), not errors

        if compiled.operation.operation is not OperationType.QUERY:
            return (await run())[0]
        key = (query, operation_name, orjson.dumps(coerced, option=orjson.OPT_SORT_KEYS, default=str))
        return await self.cache.get_or_read(key, context.journal.position, run)

    def compiled(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        key = (query, operation_name)
        if key in self.operations:
            self.operations.move_to_end(key)
            return self.operations[key]
        persisted = self.schema.persisted
        if persisted is not None and not persisted.allows(query):
            return None  # Strawberry's execute refuses it with its code
        try:
            document = parse(query, max_tokens=self.schema.limits.max_tokens)
        except GraphQLError:
            return None
        # A document with errors (over the limits too) goes to Strawberry, which reports them.
        if validation_errors(self.schema, document, self.schema.limits.rules):
            return None
        compiled = compile_operation(self.schema._schema, document, operation_name, DIRECT)
        self.operations[key] = compiled
        if len(self.operations) > CACHE_SIZE:
            self.operations.popitem(last=False)
        return compiled



def _is_plain_json(request: Request) -> bool:
    headers = request.headers
    mime = headers.get("content-type", "").split(";", 1)[0].strip()
    # Strawberry streams a response when the client accepts multipart (or
    # event streams): those stay with it.
    accept = headers.get("accept", "").lower()
    return mime == "application/json" and "multipart" not in accept and "event-stream" not in accept


def _json_body(body: bytes) -> dict[str, Any] | None:
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
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
    if "variables" in fields:
        try:
            fields["variables"] = orjson.loads(fields["variables"])
        except orjson.JSONDecodeError:
            return None
    return fields
