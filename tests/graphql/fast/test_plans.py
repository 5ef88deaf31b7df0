"""Compiled plans answer exactly as Strawberry and graphql-core do: random
documents over our schema and random rows, run both ways on a real database."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import orjson
import pytest
import strawberry
from graphql import (
    GraphQLBoolean,
    GraphQLID,
    GraphQLString,
    OperationDefinitionNode,
    get_introspection_query,
    parse,
)
from graphql.execution.executor import Executor
from graphql.pyutils import Path
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from strawberry.http import process_result
from strawberry.types.graphql import OperationType

from graphql_todos.core.database import GatedPool
from graphql_todos.core.journal import Journal
from graphql_todos.core.service import TodoService
from graphql_todos.core.settings import Settings
from graphql_todos.edge.response_cache import ResponseCache
from graphql_todos.graphql.fast import path as fast_path
from graphql_todos.graphql.fast.completion import leaf
from graphql_todos.graphql.fast.path import FastPath
from graphql_todos.graphql.fast.plans import CompiledOperation, compile_operation
from graphql_todos.graphql.intake import Intake, Operation, coerce
from graphql_todos.graphql.schema import Context, TodoSchema, build_schema
from graphql_todos.live.hub import Hub
from graphql_todos.live.streams import LiveLists
from tests.gql import TODO_FIELDS, create, data
from tests.helpers import Server

IDS = [str(uuid.UUID(int=n)) for n in range(1, 5)]
# Below len(IDS): whole lists over it, pages and the mutations' results at it, are all drawn.
MAX_LIST_ROWS = 3
MISSING = str(uuid.UUID(int=99))
BASE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")
RESET = [
    "DELETE FROM todos",
    "DELETE FROM todo_changes",
    "SELECT setval('todo_changes_position', 1, false)",
]


@dataclass
class Runner:
    """Both execution paths over one pool, on a loop of the test's own."""

    loop: asyncio.AbstractEventLoop
    pool: AsyncConnectionPool
    schema: TodoSchema
    fast: FastPath
    context: Context

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def seed(self, rows: list[Row]) -> None:
        # RESET rewrites the journal from position 1 with other rows, which
        # no live journal does: no cached answer may outlive it.
        self.fast.cache = ResponseCache[bytes](self.fast.cache.size)
        async with self.pool.connection() as conn:
            for sql in RESET:
                await conn.execute(sql)  # type: ignore[arg-type]
            created = BASE
            for n, (title, completed, microseconds, id_, tied) in enumerate(rows):
                # Some times have microseconds, some not: isoformat differs.
                # A row tied with the one before it has its very created_time:
                # lists order them by id.
                if not tied:
                    created = BASE + timedelta(seconds=n, microseconds=microseconds)
                await conn.execute(
                    "INSERT INTO todos (id, title, completed, created_time, updated_time)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (id_, title, completed, created, created + timedelta(hours=n)),
                )

    async def state(self) -> list[tuple[str, bool]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT title, completed FROM todos ORDER BY created_time, id")
            return [(title, completed) for title, completed in await cursor.fetchall()]

    async def slow(self, query: str, variables: dict[str, Any], name: str | None) -> bytes:
        # What TodoGraphQL's Strawberry view does with a POST.
        result = await self.schema.execute(
            query,
            variables,
            self.context,
            operation_name=name,
            allowed_operation_types=OperationType.from_http("POST"),
        )
        return orjson.dumps(process_result(result))


@pytest.fixture
def runner(db_dsn: str) -> Iterator[Runner]:
    loop = asyncio.new_event_loop()
    # As the app's pool: each operation is one statement.
    pool = GatedPool(db_dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True})
    loop.run_until_complete(pool.open(wait=True))
    service, journal = TodoService(pool, MAX_LIST_ROWS), Journal(pool)
    hub = Hub(db_dsn, journal, Settings(database_url=db_dsn))
    context = Context(service, journal, hub, LiveLists(service, hub))
    schema = build_schema(execution_cache_size=16)
    # A small response cache: equal answers also prove its hits exact.
    yield Runner(loop, pool, schema, FastPath(Intake(schema), ResponseCache[bytes](16)), context)
    loop.run_until_complete(pool.close())
    loop.close()


@dataclass
class Document:
    """A document being drawn: its variables and fragments."""

    variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fragments: dict[str, str] = field(default_factory=dict)
    # Fragment names are the document's, not one operation's.
    prefix: str = "F"

    def variable(self, type_: str, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = (type_, value)
        return f"${name}"


ABSENT = object()


def _mostly(draw: st.DrawFn, good: list[Any], bad: list[Any]) -> Any:
    """A good value, or now and then one that fails coercion: a request
    with any bad variable goes back to Strawberry, so keep them rare."""
    return draw(st.sampled_from(bad if draw(st.integers(0, 9)) == 0 else good))


def _condition(draw: st.DrawFn, doc: Document) -> str:
    kind = draw(st.sampled_from(["", "", "", "literal", "variable", "nullable"]))
    directive = draw(st.sampled_from(["skip", "include"]))
    if kind == "literal":
        return f" @{directive}(if: {draw(st.sampled_from(['true', 'false']))})"
    if kind == "variable":
        return f" @{directive}(if: {doc.variable('Boolean!', draw(st.booleans()))})"
    if kind == "nullable":
        value = _mostly(draw, [True, False, ABSENT], [None])
        return f" @{directive}(if: {doc.variable('Boolean = true', value)})"
    return ""


def _todo_selection(draw: st.DrawFn, doc: Document, depth: int = 0) -> str:
    parts = []
    kinds = ["field", "field", "field", "inline", "spread"] if depth < 2 else ["field"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        if kind == "field":
            name = draw(st.sampled_from(["id", "title", "completed", "createdTime", "updatedTime", "__typename"]))
            # An alias always names the same field: no conflicting merges.
            alias = draw(st.sampled_from(["", f"{name.strip('_')}1: ", f"{name.strip('_')}2: "]))
            parts.append(f"{alias}{name}{_condition(draw, doc)}")
        elif kind == "inline":
            on = draw(st.sampled_from(["... on Todo", "..."]))
            parts.append(f"{on}{_condition(draw, doc)} {{ {_todo_selection(draw, doc, depth + 1)} }}")
        else:
            name = f"{doc.prefix}{len(doc.fragments)}"
            doc.fragments[name] = ""  # reserve the name before drawing the body
            doc.fragments[name] = _todo_selection(draw, doc, depth + 1)
            parts.append(f"...{name}{_condition(draw, doc)}")
    return " ".join(parts)


def _todo_list_selection(draw: st.DrawFn, doc: Document) -> str:
    parts = []
    for n in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cursor", "todos", "__typename"]))
        inner = f" {{ {_todo_selection(draw, doc)} }}" if kind == "todos" else ""
        parts.append(f"l{n}: {kind}{_condition(draw, doc)}{inner}")
    return " ".join(parts)


def _id(draw: st.DrawFn, doc: Document) -> str:
    good = draw(st.sampled_from([*IDS, MISSING, "nope", IDS[0].upper(), f"{{{IDS[1]}}}"]))
    if draw(st.booleans()):
        return orjson.dumps(good).decode()
    return doc.variable("ID!", _mostly(draw, [good, 123], [True]))


def _completed(draw: st.DrawFn, doc: Document, required: bool) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(["true", "false"] if required else ["true", "false", "null"]))
    values = [True, False] if required else [True, False, None, ABSENT]
    return doc.variable("Boolean!" if required else "Boolean", _mostly(draw, values, ["yes"]))


def _int(draw: st.DrawFn, doc: Document, values: list[Any]) -> str:
    value = draw(st.sampled_from(values))
    if draw(st.booleans()):
        return orjson.dumps(value).decode()
    return doc.variable("Int", _mostly(draw, [value, ABSENT], ["1"]))


def _list_args(draw: st.DrawFn, doc: Document) -> str:
    """completed, and a page: sizes within, at and over the runner's
    MAX_LIST_ROWS (or none), offsets inside and past the rows, negative ones."""
    args = []
    if draw(st.booleans()):
        args.append(f"completed: {_completed(draw, doc, False)}")
    if draw(st.booleans()):
        args.append(f"first: {_int(draw, doc, [None, 0, 1, MAX_LIST_ROWS, MAX_LIST_ROWS + 1, -1])}")
    if draw(st.booleans()):
        args.append(f"offset: {_int(draw, doc, [None, 0, 1, 3, len(IDS) + 1, -1])}")
    return f"({', '.join(args)})" if args else ""


def _input(draw: st.DrawFn, doc: Document, create: bool) -> str:
    title = draw(st.sampled_from(["walk", "  buy milk ", "   ", ABSENT] if not create else ["walk", " a ", "  "]))
    completed = draw(st.sampled_from([True, False, None, ABSENT]))
    if draw(st.booleans()):
        value = {k: v for k, v in {"title": title, "completed": completed}.items() if v is not ABSENT}
        if create and _mostly(draw, [False], [True]):
            value.pop("title")  # a coercion error
        return doc.variable("CreateTodoInput!" if create else "UpdateTodoInput!", value)
    fields = []
    if title is not ABSENT:
        fields.append(f"title: {orjson.dumps(title).decode()}")
    if completed is not ABSENT:
        fields.append(f"completed: {orjson.dumps(completed).decode()}")
    return "{" + ", ".join(fields) + "}"


def _root_field(draw: st.DrawFn, doc: Document, mutation: bool) -> str:
    if mutation:
        name = draw(st.sampled_from(["createTodo", "updateTodo", "deleteTodo", "toggleAll", "clearCompleted", "__typename"]))
    else:
        name = draw(st.sampled_from(["todos", "todo", "todoList", "__typename"]))
    args = {
        "todos": lambda: _list_args(draw, doc),
        "todoList": lambda: _list_args(draw, doc),
        "todo": lambda: f"(id: {_id(draw, doc)})",
        "createTodo": lambda: f"(input: {_input(draw, doc, True)})",
        "updateTodo": lambda: f"(id: {_id(draw, doc)}, input: {_input(draw, doc, False)})",
        "deleteTodo": lambda: f"(id: {_id(draw, doc)})",
        "toggleAll": lambda: f"(completed: {_completed(draw, doc, True)})",
        "clearCompleted": lambda: "",
        "__typename": lambda: "",
    }[name]()
    if name == "__typename":
        return f"{name}{_condition(draw, doc)}"
    selection = _todo_list_selection(draw, doc) if name == "todoList" else _todo_selection(draw, doc)
    return f"{name}{args}{_condition(draw, doc)} {{ {selection} }}"


def _operation(draw: st.DrawFn, doc: Document, name: str | None) -> str:
    mutation = draw(st.booleans())
    roots = [f"r{n}: {_root_field(draw, doc, mutation)}" for n in range(draw(st.integers(1, 3)))]
    declared = ", ".join(f"${variable}: {type_}" for variable, (type_, _) in doc.variables.items())
    header = ("mutation" if mutation else "query") + (f" {name}" if name else "")
    header += f"({declared})" if declared else ""
    return f"{header} {{ {' '.join(roots)} }}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any], str | None]:
    """One operation, named or not; or a document of two named ones, the one
    to run named by the request."""
    choices: list[list[str | None]] = [[None], ["Op"], ["A", "B"]]
    names = draw(st.sampled_from(choices))
    docs = [Document(prefix=f"F{name or ''}") for name in names]
    operations = [_operation(draw, doc, name) for doc, name in zip(docs, names, strict=True)]
    fragments = " ".join(f"fragment {n} on Todo {{ {body} }}" for doc in docs for n, body in doc.fragments.items())
    query = f"{' '.join(operations)} {fragments}"
    chosen = draw(st.integers(0, len(names) - 1))
    variables = {n: v for n, (_, v) in docs[chosen].variables.items() if v is not ABSENT}
    name = names[chosen]
    return query, variables, name if len(names) > 1 or draw(st.booleans()) else None


def _errors_sorted(body: bytes) -> bytes:
    """The body, its errors sorted: root fields of a query run concurrently,
    and their errors come in the order they fail, which GraphQL leaves open.
    When a non-null root fails (data null), graphql-core reports only the
    first failure in time, whichever root that was: then only what failed
    is compared, not where. The rest stays bytes, compared as written."""
    data, sep, errors = body.rpartition(b',"errors":')
    if not sep:
        return body
    parsed = orjson.loads(errors[:-1])
    if data == b'{"data":null':
        parsed = [{k: v for k, v in e.items() if k not in ("locations", "path")} for e in parsed]
    return data + sep + orjson.dumps(sorted(parsed, key=orjson.dumps)) + b"}"


def _normalized(body: bytes) -> Any:
    """The response with the ids and times the database made (new rows,
    updated times) replaced by their order of appearance."""
    seen: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value not in IDS and (ISO_TIME.match(value) or _is_uuid(value)):
            return seen.setdefault(value, f"<made {len(seen)}>")
        return value

    return walk(orjson.loads(body))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# Titles with whatever PostgreSQL text holds (no NUL, no lone surrogates,
# not only spaces): lists are written as JSON by PostgreSQL on the fast path.
TITLES = st.one_of(
    st.sampled_from(["a", "b", " c ", '"q"', "back\\slash\\", "😀 e\u0301", "\t\n\x01\x1f\x7f", "\u2028\ufeff"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=12).filter(
        lambda title: title.strip(" ") != ""
    ),
)
# (title, completed, microseconds, id, tied with the row before): ids in any
# order, so that a tie in created_time is broken by id, not by insertion.
Row = tuple[str, bool, int, str, bool]
ROWS = st.permutations(IDS).flatmap(
    lambda ids: st.lists(
        st.tuples(TITLES, st.booleans(), st.sampled_from([0, 1, 250_000, 999_999]), st.just(""), st.booleans()),
        max_size=len(IDS),
    ).map(lambda rows: [(t, c, us, ids[n], tied) for n, (t, c, us, _, tied) in enumerate(rows)])
)
# The share of drawn requests the fast path must answer (about 55% do; the rest go back to
# Strawberry: variables that fail coercion, a null @skip/@include condition).
FAST_AT_LEAST = 0.4


def test_compiled_plans_answer_as_strawberry_does(runner: Runner) -> None:
    taken: list[bool] = []

    @settings(max_examples=150, deadline=None)
    # A bad id in nullable todo(id:) nulls that field only; in a mutation, the
    # failing non-null field nulls the data and the ones after it never run.
    @example(rows=[("a", False, 0, IDS[0], False)], request=('{ a: todo(id: "nope") { id } b: todos { id } }', {}, None))
    @example(
        rows=[("a", True, 0, IDS[0], False)],
        request=(
            "mutation { a: createTodo(input: {title: \"x\"}) { title } b: deleteTodo(id: \"nope\") { id }"
            + " c: createTodo(input: {title: \"y\"}) { title } }",
            {},
            None,
        ),
    )
    # Equal created_time: the lists order by id, whatever the insertion order.
    @example(
        rows=[("a", False, 0, IDS[2], False), ("b", False, 0, IDS[0], True), ("c", True, 0, IDS[1], True)],
        request=("query A { todos { title } } query B { todoList(first: 2, offset: 1) { todos { title } } }", {}, "B"),
    )
    @given(rows=ROWS, request=requests())
    def answers(rows: list[Row], request: tuple[str, dict[str, Any], str | None]) -> None:
        query, variables, name = request
        runner.run(runner.seed(rows))
        slow = runner.run(runner.slow(query, variables, name))
        slow_state = runner.run(runner.state())
        runner.run(runner.seed(rows))
        fast = runner.run(runner.fast.execute(query, variables, name, runner.context))
        # Every drawn document compiles; only variables that fail coercion or a
        # null @skip/@include condition send a request back.
        operation = runner.fast.intake.operation(query, name)
        compiled = fast_path.compiled(operation) if isinstance(operation, Operation) else operation
        assert isinstance(compiled, CompiledOperation)
        coerced = coerce(compiled.schema, compiled.operation, variables)
        plan = None if coerced is None else compiled.plan(coerced)
        event("fast path" if fast is not None else "back to Strawberry")
        taken.append(fast is not None)
        if fast is None:
            assert plan is None
            return
        assert plan is not None
        # The lists are PostgreSQL's JSON whatever their selection.
        assert all(root.direct for root in plan.fields if root.nodes[0].name.value in ("todos", "todoList"))
        # The mutations' resolvers are called without Strawberry's wrapper (root_calls.ROOT_CALLS).
        assert all(root.call for root in plan.fields if plan.serial and root.typename is None)
        if plan.serial:
            # Mutations make ids and times: compare them by order of appearance.
            assert _normalized(fast.body) == _normalized(slow)
        else:
            assert _errors_sorted(fast.body) == _errors_sorted(slow)
        assert runner.run(runner.state()) == slow_state

    answers()
    assert sum(taken) >= FAST_AT_LEAST * len(taken), f"{sum(taken)} of {len(taken)} took the fast path"


def test_queries_and_mutations_over_http_take_the_fast_path(client: httpx.Client, server: Server) -> None:
    fast = server.fast_path()
    before = fast.executions
    todo = create(client, "a")
    assert data(client, f"{{ todos {{ {TODO_FIELDS} }} }}") == {"todos": [todo]}
    query = "query($id: ID!) { todo(id: $id) { title } }"
    over_get = client.get("/graphql", params={"query": query, "variables": orjson.dumps({"id": todo["id"]}).decode()})
    assert over_get.json() == {"data": {"todo": {"title": "a"}}}
    assert fast.executions == before + 3


def test_what_plans_do_not_cover_goes_to_strawberry(client: httpx.Client, server: Server) -> None:
    fast = server.fast_path()
    before = fast.executions
    introspection = data(client, get_introspection_query())
    assert introspection["__schema"]["queryType"]["name"] == "Query"
    mutation_over_get = client.get("/graphql", params={"query": "mutation { clearCompleted { id } }"})
    assert mutation_over_get.status_code == 405  # the view refuses it before any path
    bad_variables = client.get("/graphql", params={"query": "{ todos { id } }", "variables": ""})
    assert bad_variables.status_code == 400
    extended = client.post("/graphql", json={"query": "{ todos { id } }", "extensions": {"x": 1}})
    assert extended.json() == {"data": {"todos": []}}
    # Strawberry's own answers to what fails before execution.
    invalid = client.post("/graphql", json={"query": "{ todos { nope } }"}).json()
    assert invalid["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    subscription = {"query": "subscription { todoChanges { cursor } }"}
    refused = client.post("/graphql", json=subscription, headers={"accept": "application/json"})
    assert refused.status_code == 400
    assert fast.executions == before


REFUSED = [
    ("{ " + " ".join(f"a{i}: todos {{ id title }}" for i in range(2000)) + " }", None),  # MAX_TOKENS
    ("{ todos { id ", None),
    ("{ todos { nope } }", None),
    ("{ " + " ".join(f"a{i}: todos {{ id }}" for i in range(31)) + " }", None),  # MAX_ALIASES
    (
        "{ todos { ...F9 } } fragment F0 on Todo { id title completed createdTime updatedTime } "
        + " ".join(f"fragment F{n} on Todo {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 10)),
        None,
    ),  # MAX_FIELDS
    ("{ todos { id { a { b { c { d { e { f { g { h { i { j } } } } } } } } } } }", None),  # MAX_DEPTH
    ("query A { todos { id } } query B { nope }", "B"),
    ("query A { nope } query B { todos { id } }", None),
    ("{ todos { id } } query Q { nope }", "Nope"),
    ("mutation { nope }", None),
    ("subscription { nope }", None),
    ("", None),
]


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_refused_documents_are_answered_by_the_fast_path_as_by_strawberry(
    client: httpx.Client, server: Server, accept: str
) -> None:
    fast = server.fast_path()
    for query, name in REFUSED:
        for method in ("GET", "POST"):
            fields = {"query": query, **({"operationName": name} if name else {})}
            # A request with `extensions` always takes Strawberry's path.
            if method == "GET":
                ours = client.get("/graphql", params=fields, headers={"accept": accept})
                theirs = client.get("/graphql", params={**fields, "extensions": "{}"}, headers={"accept": accept})
            else:
                ours = client.post("/graphql", json=fields, headers={"accept": accept})
                theirs = client.post("/graphql", json={**fields, "extensions": {}}, headers={"accept": accept})
            seen = (query[:40], name, method)
            assert ours.status_code == theirs.status_code, seen
            assert ours.headers["content-type"] == theirs.headers["content-type"], seen
            assert ours.content == theirs.content, seen
    # One parse each: the fast path answered the document over the token
    # limit, and each other one that parses and names an operation the
    # method may run (8 documents both ways, the mutation over POST).
    before = fast.refusals
    body = client.post("/graphql", json={"query": REFUSED[0][0]}).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert fast.refusals == before + 1
    assert fast.refusals == 2 * 8 + 1 + 1


@settings(max_examples=200)
@given(
    value=st.one_of(
        st.tuples(st.just(GraphQLString), st.text()),
        st.tuples(st.just(GraphQLBoolean), st.booleans()),
        st.tuples(st.sampled_from([GraphQLID, GraphQLString]), st.one_of(st.text(), st.uuids())),
    )
)
def test_leaves_are_written_as_graphql_core_serializes_them(value: tuple[Any, Any]) -> None:
    type_, raw = value
    written = orjson.dumps(leaf(type_, "T.f")(raw, Path(None, "f", "T"), []))
    assert written == orjson.dumps(Executor.complete_leaf_value(type_, raw))


@strawberry.type
class Computed:
    @strawberry.field
    def value(self) -> int:
        return 1


@strawberry.type
class ComputedQuery:
    @strawberry.field
    def computed(self) -> Computed:
        return Computed()


def test_fields_with_their_own_resolvers_below_the_root_are_left_to_strawberry() -> None:
    schema = strawberry.Schema(query=ComputedQuery)._schema
    document = parse("{ computed { value } }")
    compiled = compile_operation(schema, document, cast(OperationDefinitionNode, document.definitions[0]))
    assert compiled is not None
    variables = coerce(schema, compiled.operation, None)
    assert variables is not None
    assert compiled.plan(variables) is None
