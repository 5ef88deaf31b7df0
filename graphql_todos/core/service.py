"""The rules of todos, shared by every transport.

Each public coroutine validates its input, runs one statement on a pooled
autocommit connection (a statement is its own transaction, and costs one
round trip) and raises a DomainError for anything the client got wrong.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core import metrics, repository
from graphql_todos.core.database import connection
from graphql_todos.core.errors import BadUserInput, Forbidden, ListTooLarge, NotFound
from graphql_todos.core.list_statements import JsonLists, ListStatement
from graphql_todos.core.models import WHOLE, Page, Snapshot, Todo, TodoState, Viewer
from graphql_todos.core.settings import Settings

MAX_TITLE_LENGTH = 512
# GraphQL's Int: the largest offset any transport takes.
MAX_OFFSET = 2**31 - 1


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """Ids are UUIDs in their usual spelling only (not "{...}" or "urn:uuid:"),
    so one todo has one URL."""
    try:
        key = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        key = None
    if key is None or str(key) != value.lower():
        raise BadUserInput(field, f"is malformed: {value!r}")
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

    def __init__(self, pool: AsyncConnectionPool, max_list_rows: int = Settings.max_list_rows) -> None:
        self.pool = pool
        self.max_list_rows = max_list_rows

    def page(
        self, size: int | None, offset: int | None, names: tuple[str, str] = ("first", "offset")
    ) -> Page:
        """A page of a list, as a client asked for it; `names` are what the
        transport calls the size and the offset, for the error."""
        if size is not None and not 0 <= size <= self.max_list_rows:
            if size > self.max_list_rows:
                metrics.refused("list_rows")
            raise BadUserInput(names[0], f"must be from 0 to {self.max_list_rows} (MAX_LIST_ROWS)")
        if offset is not None and not 0 <= offset <= MAX_OFFSET:
            raise BadUserInput(names[1], f"must be from 0 to {MAX_OFFSET}")
        return Page(size, offset or 0)

    async def list_todos(
        self, viewer: Viewer, completed: bool | None = None, page: Page = WHOLE, list_id: uuid.UUID | None = None
    ) -> list[Todo]:
        """The page of the (filtered) list, of one list or of every list the
        viewer sees; ListTooLarge for a whole list over MAX_LIST_ROWS."""
        async with connection(self.pool) as conn:
            todos = await repository.list_todos(conn, viewer, completed, self._limit(page), page.offset, list_id)
        self._check_page(len(todos), page)
        return todos

    async def snapshot(self, viewer: Viewer, completed: bool | None = None, page: Page = WHOLE) -> Snapshot:
        """The page of the list and the journal position it reflects."""
        snapshot = await self._snapshot(viewer, completed, self._limit(page), page.offset)
        self._check_page(len(snapshot.todos), page)
        return snapshot

    async def live_snapshot(self, viewer: Viewer, completed: bool | None) -> Snapshot:
        """The whole list for a live view, or MAX_LIST_ROWS + 1 of its rows
        when it is longer (enough to know it is over the cap)."""
        return await self._snapshot(viewer, completed, self._limit(WHOLE), 0)

    async def _snapshot(self, viewer: Viewer, completed: bool | None, limit: int, offset: int) -> Snapshot:
        async with connection(self.pool) as conn:
            todos, position = await repository.snapshot(conn, viewer, completed, limit, offset)
        return Snapshot(todos, position)

    async def lists_json(
        self, query: ListStatement, viewer: Viewer, completed: bool | None = None, page: Page = WHOLE
    ) -> JsonLists:
        """The page of the list as JSON text, in each of the query's shapes,
        and the journal position it reflects; ListTooLarge as list_todos."""
        async with connection(self.pool) as conn:
            lists = await query.run(conn, completed, self._limit(page), page.offset, viewer)
        self._check_page(lists.rows, page)
        return lists

    def _limit(self, page: Page) -> int:
        # One row past the cap tells a whole list that is over it.
        return self.max_list_rows + 1 if page.size is None else page.size

    def _check_page(self, rows: int, page: Page) -> None:
        # A page has its size checked already (page); a whole list is
        # checked by the rows read, one past the cap at most (_limit).
        if page.size is None:
            self.check_whole(rows)

    def check_whole(self, rows: int) -> None:
        """Raise ListTooLarge for a list of `rows` to be sent whole, over MAX_LIST_ROWS."""
        if rows > self.max_list_rows:
            metrics.refused("list_rows")
            raise ListTooLarge(self.max_list_rows)

    async def get_todo(self, viewer: Viewer, todo_id: str) -> Todo:
        key = parse_id(todo_id)
        async with connection(self.pool) as conn:
            return _found(key, await repository.get_todo(conn, viewer, key))

    async def todo_snapshot(self, viewer: Viewer, key: uuid.UUID) -> TodoState:
        """One row as a watcher starts from (todo None when absent) and the
        journal position it reflects; the caller has parsed the id already."""
        async with connection(self.pool) as conn:
            todo, position = await repository.todo_snapshot(conn, viewer, key)
        return TodoState(None, todo, position)

    async def create_todo(
        self, title: str, completed: bool = False, *, actor: uuid.UUID | None = None, list_id: str | None = None
    ) -> Todo:
        """A new row in `list_id`, else the actor's default list (people.md
        section 5); `actor` None is the service principal (no role check)."""
        clean = clean_title(title)
        key = None if list_id is None else parse_id(list_id, "listId")
        async with connection(self.pool) as conn, _refused(key, "list"):
            if key is not None and actor is not None:
                role = await repository.role_in_list(conn, key, actor)
                _check_role(role, key, "list")
            return await repository.insert_todo(conn, clean, completed, actor, key)

    async def update_todo(
        self, todo_id: str, title: str | None = None, completed: bool | None = None, *, actor: uuid.UUID | None = None
    ) -> Todo:
        key = parse_id(todo_id)
        clean = None if title is None else clean_title(title)
        async with connection(self.pool) as conn, _refused(key):
            return await self._found(conn, key, actor, await repository.update_todo(conn, key, clean, completed, actor))

    async def move_todo(self, todo_id: str, list_id: str, *, actor: uuid.UUID | None = None) -> Todo:
        """Into another list: editor or owner of both."""
        key, target = parse_id(todo_id), parse_id(list_id, "listId")
        async with connection(self.pool) as conn, _refused(target, "list"):
            moved = await repository.move_todo(conn, key, target, actor)
            if moved is None and actor is not None:
                # Its own list first: a row the caller cannot see is not found.
                _check_role(await repository.role_of_todo(conn, key, actor), key, "todo")
                _check_role(await repository.role_in_list(conn, target, actor), target, "list")
            return _found(key, moved)

    async def delete_todo(self, todo_id: str, *, actor: uuid.UUID | None = None) -> Todo:
        key = parse_id(todo_id)
        async with connection(self.pool) as conn, _refused(key):
            return await self._found(conn, key, actor, await repository.delete_todo(conn, key, actor))

    async def toggle_all(
        self, completed: bool, *, actor: uuid.UUID | None = None, list_id: str | None = None
    ) -> list[Todo]:
        """Changes every row the actor may edit (of `list_id`); returns the
        first MAX_LIST_ROWS it changed, in list order."""
        key = None if list_id is None else parse_id(list_id, "listId")
        async with connection(self.pool) as conn, _refused(key, "list"):
            return await repository.set_all_completed(conn, completed, self.max_list_rows, actor, key)

    async def clear_completed(self, *, actor: uuid.UUID | None = None, list_id: str | None = None) -> list[Todo]:
        """Deletes every completed row the actor may edit (of `list_id`);
        returns the first MAX_LIST_ROWS, in list order."""
        key = None if list_id is None else parse_id(list_id, "listId")
        async with connection(self.pool) as conn, _refused(key, "list"):
            return await repository.delete_completed(conn, self.max_list_rows, actor, key)

    @staticmethod
    async def _found(
        conn: AsyncConnection[Any], key: uuid.UUID, actor: uuid.UUID | None, todo: Todo | None
    ) -> Todo:
        """The row a write returned; or why there was none: a viewer of its
        list is FORBIDDEN, anyone else finds no such row."""
        if todo is not None:
            return todo
        if actor is not None:
            _check_role(await repository.role_of_todo(conn, key, actor), key, "todo")
        raise NotFound(key)


def _check_role(role: str | None, key: uuid.UUID, kind: str) -> None:
    """Refuse a write where the actor's `role` is none (NOT_FOUND) or viewer (FORBIDDEN)."""
    if role is None:
        raise NotFound(key, kind)
    if role == "viewer":
        raise Forbidden(f"a viewer may not change this {kind}")


@contextlib.asynccontextmanager
async def _refused(key: uuid.UUID | None, kind: str = "todo") -> AsyncIterator[None]:
    """A write the journal trigger refused at its commit (the actor lost the
    right in a transaction that committed first: people.md section 2)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden(f"may no longer change this {kind}") from None
    except psycopg.errors.ForeignKeyViolation:
        # A list named by a service-principal write that does not exist.
        raise NotFound(key, kind) from None


def _found(key: uuid.UUID, todo: Todo | None) -> Todo:
    if todo is None:
        raise NotFound(key)
    return todo
