"""The list root fields (`todos`, `todoList`) answered for compiled plans by
PostgreSQL writing the JSON of the lists (core/list_statements.py): the same
service data as their resolvers, with the rows never built in Python. A
selection this does not cover keeps the resolver."""

from __future__ import annotations

from typing import Any

import orjson

from graphql_todos.core.list_statements import COLUMNS, Constant, ItemShape, JsonLists, ListStatement
from graphql_todos.core.people import SERVICE
from graphql_todos.graphql.fast.plans import Direct, RootAnswer, Selected
from graphql_todos.graphql.schema import Context


def _item(fields: tuple[Selected, ...] | None) -> ItemShape | None:
    """A Todo selection as a JSON item: plain columns and __typename."""
    if fields is None:
        return None
    item: list[tuple[str, str | Constant]] = []
    for f in fields:
        if f.typename is not None:
            item.append((f.key, Constant(f.typename)))
        elif f.attribute in COLUMNS and f.fields is None:
            item.append((f.key, f.attribute))
        else:
            return None
    return tuple(item)


async def _read(context: Context, query: ListStatement, args: dict[str, Any]) -> JsonLists:
    """The lists of the page the arguments ask for, as the resolvers read it."""
    service = context.service
    page = service.page(args.get("first"), args.get("offset"))
    principal = context.principal or SERVICE
    return await service.lists_json(query, principal.viewer, args.get("completed"), page)


def _todos(selection: tuple[Selected, ...]) -> RootAnswer | None:
    item = _item(selection)
    if item is None:
        return None
    query = ListStatement((item,), position=False)

    async def answer(context: Context, args: dict[str, Any]) -> orjson.Fragment:
        lists = await _read(context, query, args)
        return orjson.Fragment(lists.texts[0])

    return answer


def _todo_list(selection: tuple[Selected, ...]) -> RootAnswer | None:
    # TodoList's fields: each `todos` selection is one list of the
    # statement, `cursor` its position, and __typename a constant.
    items: list[ItemShape] = []
    for f in selection:
        if f.attribute == "todos":
            item = _item(f.fields)
            if item is None:
                return None
            items.append(item)
        elif f.attribute != "cursor" and f.typename is None:
            return None
    query = ListStatement(tuple(items), position=any(f.attribute == "cursor" for f in selection))

    async def answer(context: Context, args: dict[str, Any]) -> dict[str, Any]:
        lists = await _read(context, query, args)
        texts = iter(lists.texts)
        out: dict[str, Any] = {}
        for f in selection:
            if f.attribute == "todos":
                out[f.key] = orjson.Fragment(next(texts))
            else:
                out[f.key] = f.typename if f.typename is not None else str(lists.position)
        return out

    return answer


# By field coordinate, for compile_operation.
DIRECT: dict[str, Direct] = {"Query.todos": _todos, "Query.todoList": _todo_list}
