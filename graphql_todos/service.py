"""The rules of todos, shared by every transport.

Each public coroutine validates its input, runs one transaction on a pooled
connection and raises a DomainError for anything the client got wrong.
"""

from __future__ import annotations

import uuid

from psycopg_pool import AsyncConnectionPool

from . import repository
from .errors import BadUserInput, NotFound
from .models import Change, Snapshot, Todo

MAX_TITLE_LENGTH = 512


def parse_id(value: str) -> uuid.UUID:
    """Ids are UUIDs in their usual spelling only (not "{...}" or "urn:uuid:"),
    so one todo has one URL."""
    try:
        key = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        key = None
    if key is None or str(key) != value.lower():
        raise BadUserInput(f"malformed id: {value!r}")
    return key


def parse_cursor(value: str) -> int:
    """Cursors are decimal journal positions; "0" is the very beginning."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19):
        raise BadUserInput(f"unknown cursor: {value!r}")
    return int(value)


def clean_title(value: str) -> str:
    title = value.strip()
    if not title:
        raise BadUserInput("title must not be blank")
    if len(title) > MAX_TITLE_LENGTH:
        raise BadUserInput(f"title must be at most {MAX_TITLE_LENGTH} characters")
    # PostgreSQL text holds neither NUL nor lone surrogates: refuse them here
    # rather than failing in the driver.
    if "\x00" in title:
        raise BadUserInput("title must not contain NUL characters")
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput("title must be valid Unicode text") from None
    return title


class TodoService:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def list_todos(self, completed: bool | None = None) -> list[Todo]:
        async with self.pool.connection() as conn:
            return await repository.list_todos(conn, completed)

    async def snapshot(self, completed: bool | None = None) -> Snapshot:
        """The list and the journal position it reflects, from one snapshot."""
        async with self.pool.connection() as conn:
            await repository.begin_snapshot(conn)
            todos = await repository.list_todos(conn, completed)
            position = await repository.journal_position(conn)
        return Snapshot(todos, position)

    async def get_todo(self, todo_id: str) -> Todo | None:
        key = parse_id(todo_id)
        async with self.pool.connection() as conn:
            return await repository.get_todo(conn, key)

    async def todo_snapshot(self, key: uuid.UUID) -> tuple[Todo | None, int]:
        """One row (None when absent) and the journal position it reflects;
        the caller has parsed the id already (see streams.todo_states)."""
        async with self.pool.connection() as conn:
            await repository.begin_snapshot(conn)
            todo = await repository.get_todo(conn, key)
            position = await repository.journal_position(conn)
        return todo, position

    async def create_todo(self, title: str, completed: bool = False) -> Todo:
        clean = clean_title(title)
        async with self.pool.connection() as conn:
            return await repository.insert_todo(conn, clean, completed)

    async def update_todo(
        self, todo_id: str, title: str | None = None, completed: bool | None = None
    ) -> Todo:
        key = parse_id(todo_id)
        clean = None if title is None else clean_title(title)
        async with self.pool.connection() as conn:
            todo = await repository.update_todo(conn, key, clean, completed)
        if todo is None:
            raise NotFound(f"no todo with id {todo_id}")
        return todo

    async def delete_todo(self, todo_id: str) -> Todo:
        key = parse_id(todo_id)
        async with self.pool.connection() as conn:
            todo = await repository.delete_todo(conn, key)
        if todo is None:
            raise NotFound(f"no todo with id {todo_id}")
        return todo

    async def toggle_all(self, completed: bool) -> list[Todo]:
        async with self.pool.connection() as conn:
            return await repository.set_all_completed(conn, completed)

    async def clear_completed(self) -> list[Todo]:
        async with self.pool.connection() as conn:
            return await repository.delete_completed(conn)

    async def check_cursor(self, cursor: str) -> int:
        """The position a client cursor names, refusing one not yet written."""
        position = parse_cursor(cursor)
        if position > await self.journal_position():
            raise BadUserInput(f"unknown cursor: {cursor!r}")
        return position

    async def journal_position(self) -> int:
        async with self.pool.connection() as conn:
            return await repository.journal_position(conn)

    async def changes_between(self, after: int, upto: int, limit: int = 500) -> list[Change]:
        async with self.pool.connection() as conn:
            return await repository.changes_between(conn, after, upto, limit)

    async def ping(self) -> None:
        async with self.pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
