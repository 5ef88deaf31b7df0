"""REST for lists and their members (docs/design/people.md section 9): the
same rules as GraphQL's list mutations, through core.lists."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.lists import Lists, Member, TodoList
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.service import TodoService, parse_id
from graphql_todos.edge.access import principal_of
from graphql_todos.internals.starlette_endpoint import Endpoint
from graphql_todos.rest.params import in_url, list_params
from graphql_todos.rest.resources import json_body, named_receipt_headers, settled, todo_receipt
from graphql_todos.rest.routing import negotiated

_NAME: dict[str, tuple[type, str]] = {"name": (str, "a string")}
_SHARE: dict[str, tuple[type, str]] = {"username": (str, "a string"), "role": (str, "a string")}
_ROLE: dict[str, tuple[type, str]] = {"role": (str, "a string")}


def list_json(found: TodoList) -> dict[str, Any]:
    return {
        "id": str(found.id),
        "name": found.name,
        "is_default": found.is_default,
        "role": found.role,
        "created_time": found.created_time.isoformat(),
        "updated_time": found.updated_time.isoformat(),
    }


def member_json(member: Member) -> dict[str, Any]:
    return {"person": {"id": str(member.person.id), "username": member.person.username}, "role": member.role}


def _json(content: Any, status_code: int = 200, receipt: Receipt | None = None) -> Response:
    headers = None if receipt is None else named_receipt_headers(receipt)
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


def _lists(request: Request) -> Lists:
    # Lifespan state, copied into every request's scope by Starlette.
    lists: Lists = request.state.lists
    return lists


def _path(request: Request, name: str = "id") -> str:
    """An id from the URL, checked first: a malformed one is 400, as for todos."""
    value: str = request.path_params[name]
    try:
        parse_id(value, name)
    except BadUserInput as exc:
        raise in_url(exc) from None
    return value


class ListCollection(Endpoint):
    async def get(self, request: Request) -> Response:
        return _json([list_json(found) for found in await _lists(request).lists(principal_of(request.scope))])

    async def post(self, request: Request) -> Response:
        body = await json_body(request, ("name",), _NAME)
        receipt = Receipt()
        made = await _lists(request).create(principal_of(request.scope), body["name"], receipt)
        return _json(list_json(made), 201, receipt)


class ListItem(Endpoint):
    async def get(self, request: Request) -> Response:
        found = await _lists(request).get(principal_of(request.scope), _path(request))
        return _json(list_json(found))

    async def patch(self, request: Request) -> Response:
        body = await json_body(request, ("name",), _NAME)
        receipt = Receipt()
        renamed = await _lists(request).rename(principal_of(request.scope), _path(request), body["name"], receipt)
        return _json(list_json(renamed), receipt=receipt)

    async def delete(self, request: Request) -> Response:
        receipt = Receipt()
        await _lists(request).delete(principal_of(request.scope), _path(request), receipt)
        return Response(status_code=204, headers=named_receipt_headers(receipt))


class MemberCollection(Endpoint):
    async def get(self, request: Request) -> Response:
        members = await _lists(request).members(principal_of(request.scope), _path(request))
        return _json([member_json(member) for member in members])

    async def post(self, request: Request) -> Response:
        body = await json_body(request, ("username", "role"), _SHARE)
        receipt = Receipt()
        member = await _lists(request).share(
            principal_of(request.scope), _path(request), body["username"], body["role"], receipt
        )
        return _json(member_json(member), 201, receipt)


class MemberItem(Endpoint):
    async def patch(self, request: Request) -> Response:
        body = await json_body(request, ("role",), _ROLE)
        receipt = Receipt()
        member = await _lists(request).set_role(
            principal_of(request.scope), _path(request), _path(request, "person_id"), body["role"], receipt
        )
        return _json(member_json(member), receipt=receipt)

    async def delete(self, request: Request) -> Response:
        """Yourself: leave the list."""
        receipt = Receipt()
        await _lists(request).remove(principal_of(request.scope), _path(request), _path(request, "person_id"), receipt)
        return Response(status_code=204, headers=named_receipt_headers(receipt))


class ListTodos(Endpoint):
    """One list's todos, as /api/todos/ writes them (a list the caller is no
    member of: 404)."""

    async def get(self, request: Request) -> Response:
        completed, page = list_params(request)
        return _json(await _lists(request).todos(principal_of(request.scope), _path(request), completed, page))

    async def post(self, request: Request) -> Response:
        """A new todo in the list (editor or owner), numbered by an
        Idempotency-Key as POST /api/todos/ is, with its Journal-Cursor."""
        principal = principal_of(request.scope)
        list_id = _path(request)
        body = await json_body(request, ("title",))
        receipt = todo_receipt(request, body)
        if receipt.key is None:
            # (A numbered one is answered from its record, the list gone or not:
            # its write refuses a list the caller is no member of, as createTodo's.)
            list_id = str((await _lists(request).get(principal, list_id)).id)
        todo = await settled(receipt, _service(request).create_todo(
            body["title"], body.get("completed", False), receipt, actor=principal.actor, list_id=list_id
        ))
        location = request.app.url_path_for("todo", id=str(todo.id))
        headers = {"Location": location, **named_receipt_headers(receipt)}
        return Response(orjson.dumps(todo), 201, headers, media_type="application/json")


def _service(request: Request) -> TodoService:
    service: TodoService = request.state.service
    return service


# Under /api (app.py mounts them, with resources.routes).
routes: list[BaseRoute] = negotiated([
    Route("/lists/", ListCollection),
    Route("/lists/{id}/", ListItem),
    Route("/lists/{id}/members/", MemberCollection),
    Route("/lists/{id}/members/{person_id}/", MemberItem),
    Route("/lists/{id}/todos/", ListTodos),
])
