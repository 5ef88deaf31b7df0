"""Property-based tests: the REST routes against their own OpenAPI document.

Every operation gets bounded, derandomized examples, valid and invalid, then
sequences follow the document's links (create, then read, change, delete that
row); each response must not be a 5xx and must match the document.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import schemathesis
from hypothesis import HealthCheck, settings

from graphql_todos.core.models import LOCAL_LIST_ID
from graphql_todos.rest.openapi import DOCUMENT
from tests.helpers import Server

# Loaded from the document itself rather than from the server, because
# schemathesis.pytest.from_fixture does not run under pytest 9.2.
# Less the feed: it is only a stream, which schemathesis would read to its end,
# never reached (tests/test_lists_live.py and the auth matrices test it).
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/api/feed/")

BOUNDED = settings(max_examples=30, derandomize=True, database=None, deadline=None)


@schema.parametrize()
# One server per operation is enough: each example is a request to it.
@settings(BOUNDED, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_rest_routes_conform_to_openapi(case: schemathesis.Case, server: Server) -> None:
    _own_key(case)
    _a_list_that_is_there(case)
    case.call_and_validate(base_url=server.url)


def _own_key(case: schemathesis.Case) -> None:
    """A valid Idempotency-Key, once used, numbers that one request: another
    request under it is 422 IDEMPOTENCY_KEY_REUSED by design. Each example
    gets a key of its own. Malformed keys are not sent: schemathesis counts
    a header value its pattern refuses as valid data, and expects it taken.
    tests/test_mutations_once.py sends both kinds."""
    if case.headers is not None and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f'"{uuid.uuid4()}:1"'


def _a_list_that_is_there(case: schemathesis.Case) -> None:
    """A move names a list by id, and a drawn one is no list: refused by
    design (422 NOT_FOUND, which schemathesis counts as valid data refused;
    tests/test_lists_contract.py sends such ids). Each example moves into
    local's default list, which is there, so the move itself is fuzzed."""
    if isinstance(case.body, dict) and "list_id" in case.body:
        case.body["list_id"] = str(LOCAL_LIST_ID)


def test_rest_sequences_conform_to_openapi(server: Server) -> None:
    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Links follow ids from earlier responses, lists included: every
            # sequence starts from an empty table so a replay sees the same.
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM todos")

        def before_call(self, case: schemathesis.Case) -> None:
            _own_key(case)
            _a_list_that_is_there(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": server.url}

    Sequences.run(settings=settings(BOUNDED, stateful_step_count=6))
