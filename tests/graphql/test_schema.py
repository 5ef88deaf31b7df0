"""The committed SDL is the live schema, and tools can rebuild it from
introspection over HTTP."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any, cast

import httpx
from graphql import build_client_schema, build_schema, get_introspection_query, print_schema
from graphql.utilities import lexicographic_sort_schema

from graphql_todos.core.mutations import Receipt
from graphql_todos.core.settings import Settings
from graphql_todos.graphql.schema import Context
from graphql_todos.graphql.schema import build_schema as build_live_schema
from tests.gql import data
from tests.helpers import ROOT

SDL = ROOT / "schema" / "schema.graphql"
OPENAPI = SDL.with_name("openapi.json")


def test_committed_sdl_matches_the_live_schema() -> None:
    assert SDL.read_text() == build_live_schema(Settings().execution_cache_size).as_str() + "\n", "run `make schema` and commit"


def test_committed_openapi_matches_the_code() -> None:
    # `make schema` writes it; a REST change shows in review as a diff here.
    # A process of its own: schemathesis adds keys to the document it loads.
    exported = subprocess.run(
        [sys.executable, "-m", "graphql_todos.cli", "export-schema", "--openapi"],
        capture_output=True, text=True, check=True,
    )
    assert exported.stdout == OPENAPI.read_text()


def test_client_schema_from_introspection_over_http_equals_the_sdl(client: httpx.Client) -> None:
    introspection = data(client, get_introspection_query(descriptions=True))
    from_http = lexicographic_sort_schema(build_client_schema(introspection))
    from_file = lexicographic_sort_schema(build_schema(SDL.read_text()))
    assert print_schema(from_http) == print_schema(from_file)


def test_contract_names_are_present() -> None:
    schema = build_schema(SDL.read_text())
    fields = {
        name: set(schema.get_type(name).fields)  # type: ignore[union-attr]
        for name in ("Todo", "TodoChange", "TodoList", "Query", "Mutation", "Subscription", "MutationVerdict")
    }
    assert fields == {
        "Todo": {"id", "title", "completed", "createdTime", "updatedTime", "listId"},
        "TodoChange": {"op", "todo", "cursor", "removed"},
        "TodoList": {"todos", "cursor"},
        "Query": {"todos", "todo", "todoList", "lists", "list", "mutationVerdicts", "me", "sessions", "accessTokens"},
        "Mutation": {
            "createTodo", "updateTodo", "deleteTodo", "toggleAll", "clearCompleted", "moveTodo",
            "createList", "renameList", "deleteList", "shareList", "setMemberRole", "removeMember", "leaveList",
            "createAccessToken", "revokeAccessToken", "revokeSession",
        },
        "Subscription": {"todoChanges", "todo", "todos", "feed"},
        "MutationVerdict": {"seq", "verdict", "cursor", "code", "message", "todo"},
    }
    assert set(schema.get_type("ChangeOp").values) == {"CREATED", "UPDATED", "DELETED"}  # type: ignore[union-attr]
    assert set(schema.get_type("Verdict").values) == {"APPLIED", "REJECTED"}  # type: ignore[union-attr]


def test_a_context_with_a_receipt_keeps_every_other_field() -> None:
    # with_receipt spells dataclasses.replace out: a field added to Context must be added there.
    fields = [f.name for f in dataclasses.fields(Context)]
    context = Context(*(cast(Any, object()) for _ in fields))
    receipt = Receipt()
    changed = context.with_receipt(receipt)
    assert changed.receipt is receipt
    assert all(getattr(changed, name) is getattr(context, name) for name in fields if name != "receipt")
