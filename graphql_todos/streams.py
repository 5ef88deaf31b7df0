"""Live views of the todos, for every transport: a change feed that resumes
from a cursor, one watched row, and a live list. Each registers with the hub
before it reads its starting state, so no change can fall in between."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from .hub import Hub
from .models import Change, Op, Todo, TodoState
from .service import TodoService, parse_id


async def changes(
    service: TodoService, hub: Hub, after: str | None
) -> AsyncGenerator[Change, None]:
    """Every change after the cursor (from now when None), in commit order.
    The cursor is checked here, so a bad one fails before the feed starts."""
    start = None if after is None else await service.check_cursor(after)
    return _changes(hub, start)


async def _changes(hub: Hub, start: int | None) -> AsyncGenerator[Change, None]:
    async with hub.subscribe(after=start) as sub:
        async for change in sub:
            yield change


async def todo_states(
    service: TodoService, hub: Hub, todo_id: str
) -> AsyncGenerator[TodoState, None]:
    """The row now, then after each change; ends after it is deleted (or
    right away when it does not exist). A malformed id fails here."""
    return _todo_states(service, hub, parse_id(todo_id))


async def _todo_states(
    service: TodoService, hub: Hub, key: uuid.UUID
) -> AsyncGenerator[TodoState, None]:
    async with hub.subscribe(todo_id=key) as sub:
        todo, position = await service.todo_snapshot(str(key))
        sub.skip_through(position)
        yield TodoState(None, todo, position)
        if todo is None:
            return
        async for change in sub:
            deleted = change.op is Op.DELETED
            yield TodoState(change.op, None if deleted else change.todo, change.position)
            if deleted:
                return


async def live_list(
    service: TodoService, hub: Hub, completed: bool | None
) -> AsyncGenerator[list[Todo], None]:
    """The whole (filtered) list now, then again after each burst of changes
    that alters it. Kept up to date in memory: no query per change."""
    async with hub.subscribe() as sub:
        snapshot = await service.snapshot(completed)
        sub.skip_through(snapshot.position)
        rows: dict[uuid.UUID, Todo] = {t.id: t for t in snapshot.todos}
        current = snapshot.todos
        yield current
        async for batch in sub.batches():
            for change in batch:
                todo = change.todo
                if change.op is Op.DELETED or (completed is not None and todo.completed != completed):
                    rows.pop(todo.id, None)
                else:
                    rows[todo.id] = todo
            fresh = sorted(rows.values(), key=Todo.sort_key)
            if fresh != current:
                current = fresh
                yield current
