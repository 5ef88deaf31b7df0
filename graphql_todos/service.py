"""The rules of todos, shared by every transport.

Each public coroutine validates its input, runs one statement on a pooled
autocommit connection (a statement is its own transaction, and costs one
round trip) and raises a DomainError for anything the client got wrong.
"""

from __future__ import annotations

import uuid

from psycopg_pool import AsyncConnectionPool

from . import repository
from .database import connection
from .errors import BadUserInput, NotFound
from .models import Snapshot, Todo, TodoState
from .todo_json import Lists, ListsQuery

MAX_TITLE_LENGTH = 512


def parse_id(value: str) -> uuid.UUID:
    """Ids are UUIDs in their usual spelling only (not "{...}" or "urn:uuid:"),
    so one todo has one URL."""
    try:
        key = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        key = None
    if key is None or str(key) != value.lower():
        raise BadUserInput("id", f"is malformed: {value!r}")
    return key


def clean_title(value: str) -> str:
    title = value.strip()
    if not title:
        raise BadUserInput("title", "must not be blank")
    if len(title) > MAX_TITLE_LENGTH:
        raise BadUserInput("title", f"must be at most {MAX_TITLE_LENGTH} characters")
    # PostgreSQL text holds neither NUL nor lone surrogates: refuse them here
    # rather than failing in the driver.
    if "\x00" in title:
        raise BadUserInput("title", "must not contain NUL characters")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput("title", "must be valid Unicode text") from None
    return title


class TodoService:
    """Every method that names a todo takes its id as the client spelled it
    and raises NotFound when there is no such row."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def list_todos(self, completed: bool | None = None) -> list[Todo]:
        async with connection(self.pool) as conn:
            return await repository.list_todos(conn, completed)

    async def snapshot(self, completed: bool | None = None) -> Snapshot:
        """The list and the journal position it reflects."""
        async with connection(self.pool) as conn:
            todos, position = await repository.snapshot(conn, completed)
        return Snapshot(todos, position)

    async def lists_json(self, query: ListsQuery, completed: bool | None = None) -> Lists:
        """The list as JSON text, in each of the query's shapes, and the
        journal position it reflects."""
        async with connection(self.pool) as conn:
            return await query.run(conn, completed)

    async def get_todo(self, todo_id: str) -> Todo:
        key = parse_id(todo_id)
        async with connection(self.pool) as conn:
            return _found(key, await repository.get_todo(conn, key))

    async def todo_snapshot(self, key: uuid.UUID) -> TodoState:
        """One row as a watcher starts from (todo None when absent) and the
        journal position it reflects; the caller has parsed the id already."""
        async with connection(self.pool) as conn:
            todo, position = await repository.todo_snapshot(conn, key)
        return TodoState(None, todo, position)

    async def create_todo(self, title: str, completed: bool = False) -> Todo:
        clean = clean_title(title)
        async with connection(self.pool) as conn:
            return await repository.insert_todo(conn, clean, completed)

    async def update_todo(
        self, todo_id: str, title: str | None = None, completed: bool | None = None
    ) -> Todo:
        key = parse_id(todo_id)
        clean = None if title is None else clean_title(title)
        async with connection(self.pool) as conn:
            return _found(key, await repository.update_todo(conn, key, clean, completed))

    async def delete_todo(self, todo_id: str) -> Todo:
        key = parse_id(todo_id)
        async with connection(self.pool) as conn:
            return _found(key, await repository.delete_todo(conn, key))

    async def toggle_all(self, completed: bool) -> list[Todo]:
        async with connection(self.pool) as conn:
            return await repository.set_all_completed(conn, completed)

    async def clear_completed(self) -> list[Todo]:
        async with connection(self.pool) as conn:
            return await repository.delete_completed(conn)


def _found(key: uuid.UUID, todo: Todo | None) -> Todo:
    if todo is None:
        raise NotFound(key)
    return todo
