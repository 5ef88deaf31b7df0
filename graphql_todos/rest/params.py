"""What a request says in its URL (ids, a list read's filter and page): a
malformed part is 400, where the same in a body is 422."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from graphql_todos.core.errors import BadUserInput, RequestError
from graphql_todos.core.models import Page
from graphql_todos.core.service import TodoService


def in_url(exc: BadUserInput) -> RequestError:
    # The request line itself is wrong: 400, where a body would get 422.
    return RequestError(exc.code, exc.message, status=400)


def list_params(request: Request) -> tuple[bool | None, Page]:
    """A list read's ?completed=, ?limit= and ?offset= (400 when malformed)."""
    service: TodoService = request.state.service
    completed = completed_filter(request)
    try:
        page = service.page(int_param(request, "limit"), int_param(request, "offset"), ("limit", "offset"))
    except BadUserInput as exc:
        raise in_url(exc) from None
    return completed, page


def completed_filter(request: Request) -> bool | None:
    value = request.query_params.get("completed")
    if value is None:
        return None
    if value not in ("true", "false"):
        raise in_url(BadUserInput("completed", f"must be true or false, not {value!r}"))
    return value == "true"


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    # int() would also take "+1", " 1" and "1_000"; and refuses over 4,300 digits.
    if not value.isascii() or not value.removeprefix("-").isdigit() or len(value) > 20:
        raise BadUserInput(name, f"must be an integer, not {value!r}")
    return int(value)


# A list read's filter and page: the change stream of the same URL carries every change.
_LIST_READ_ONLY = ("completed", "limit", "offset")


def no_list_read_params(connection: HTTPConnection) -> None:
    """Refuse a change stream asked for with a list read's ?completed=,
    ?limit= or ?offset=: it would carry every change all the same."""
    for name in _LIST_READ_ONLY:
        if name in connection.query_params:
            raise BadUserInput(
                name, "is a list read's: a change stream carries every change (a live list: subscription { todos })"
            )
