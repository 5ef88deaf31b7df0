"""The rules of todos, shared by every transport.

Each public coroutine validates its input, runs one statement on a pooled
autocommit connection (a statement is its own transaction, and costs one
round trip) and raises a DomainError for anything the client got wrong.
A write in trigger mode shares its transaction with the writes waiting
beside it (write_batch.py), still one statement of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core import metrics, repository, verdicts, writes
from graphql_todos.core.cursors import Cursors, journaled_position
from graphql_todos.core.database import connection, left
from graphql_todos.core.errors import (
    BadUserInput,
    DatabaseUnavailable,
    DomainError,
    ErrorCode,
    Forbidden,
    IdempotencyKeyReused,
    ListTooLarge,
    NotFound,
    PersonGone,
    Rejected,
)
from graphql_todos.core.journal import Gathered
from graphql_todos.core.list_statements import JsonLists, ListStatement
from graphql_todos.core.models import LOCAL_ID, WHOLE, Page, Snapshot, Todo, TodoState, VerdictRow, Viewer
from graphql_todos.core.mutations import Key, Receipt, Verdict, parse_client
from graphql_todos.core.read_cursors import ReadCursors
from graphql_todos.core.settings import Settings
from graphql_todos.core.write_batch import WriteBatches

MAX_TITLE_LENGTH = 512
# Rows read for watchers, by (person, id) asked for, and the journal position they reflect.
Rows = tuple[dict[tuple[uuid.UUID | None, uuid.UUID], Todo], int]
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


# A UUID as str() spells it, in either case: exactly the ids parse_id takes
# (tests/rest/test_resources.py compares the two).
USUAL_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def todo_key(value: str) -> uuid.UUID:
    """parse_id(value), found for an id in its usual spelling by USUAL_ID and
    its 128 bits: not parsed by UUID's hex branch and spelled again to check
    it (some 80 bytecodes a write)."""
    if type(value) is str and USUAL_ID.fullmatch(value) is not None:
        return uuid.UUID(int=int(value.replace("-", ""), 16))
    return parse_id(value)


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


def _fields(title: str | None, completed: bool | None) -> dict[str, Any]:
    """An update's fields (a move's too), its title checked; None leaves one as it is."""
    return {"title": None if title is None else clean_title(title), "completed": completed}


class TodoService:
    """Every method that names a todo takes its id as the client spelled it
    and raises NotFound when there is no such row."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        max_list_rows: int = Settings.max_list_rows,
        journal: str = Settings.journal,
        journal_timeout_seconds: float = Settings.database_timeout_seconds,
    ) -> None:
        """`journal`: Settings.journal; decoded, a write's reply waits up to
        `journal_timeout_seconds` for its entry, which the hub hears of
        (`cursors`, handed to the process's Hub)."""
        self.pool = pool
        self.max_list_rows = max_list_rows
        # Rows read as their watchers start: one statement for the rows of
        # every watcher (of any viewer) starting while the last read was
        # under way, where one a turn per viewer made a round trip each
        # (a page of `todo(id)` subscriptions opening together). A caller
        # joins a read yet to start, never one under way, so its row is read
        # after it asked (after its watcher registered with the hub).
        self._snapshots: Gathered[tuple[uuid.UUID | None, uuid.UUID], Rows] = Gathered(self._read_rows)
        self.writes = writes.statements(journal)
        self.cursors = Cursors(journal_timeout_seconds) if self.writes.decoded else None
        # Decoded, a read's cursor is settled after it (core/read_cursors.py).
        self.read_cursors = ReadCursors(pool, journal_timeout_seconds) if self.writes.decoded else None
        # Trigger mode: plain writes share transactions (core/write_batch.py).
        self.batches = None if self.writes.decoded else WriteBatches(pool)

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
            todos, position, taken = await repository.snapshot(
                conn, viewer, completed, limit, offset, self.writes.decoded
            )
        return Snapshot(todos, await self._read_cursor(position, taken))

    async def _read_cursor(self, position: int, taken: str | None) -> int:
        """A read's cursor: its position, or (decoded, `taken` its snapshot)
        the one that covers every commit it saw (core/read_cursors.py)."""
        if taken is None:
            return position
        assert self.read_cursors is not None
        return await self.read_cursors.cursor(position, taken)

    async def lists_json(
        self, query: ListStatement, viewer: Viewer, completed: bool | None = None, page: Page = WHOLE
    ) -> JsonLists:
        """The page of the list as JSON text, in each of the query's shapes,
        and the journal position it reflects; ListTooLarge as list_todos."""
        async with connection(self.pool) as conn:
            lists = await query.run(conn, completed, self._limit(page), page.offset, viewer, self.writes.decoded)
        self._check_page(lists.rows, page)
        if lists.taken is not None:
            assert lists.position is not None
            return dataclasses.replace(lists, position=await self._read_cursor(lists.position, lists.taken))
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
        key = todo_key(todo_id)
        async with connection(self.pool) as conn:
            return _found(key, await repository.get_todo(conn, viewer, key))

    async def todo_snapshot(self, viewer: Viewer, key: uuid.UUID) -> TodoState:
        """One row as a watcher starts from (todo None when absent) and the
        journal position it reflects; the caller has parsed the id already.
        The rows of the watchers starting together come from one statement
        (_snapshots)."""
        asked = (viewer.person, key)
        todos, position = await self._snapshots.ask(asked)
        return TodoState(None, todos.get(asked), position)

    async def _read_rows(self, asked: set[tuple[uuid.UUID | None, uuid.UUID]]) -> Rows:
        async with connection(self.pool) as conn:
            todos, position, taken = await repository.todo_snapshots(conn, asked, self.writes.decoded)
        # Settled once for every watcher the read was for.
        return todos, await self._read_cursor(position, taken)

    async def create_todo(
        self,
        title: str,
        completed: bool = False,
        receipt: Receipt | None = None,
        todo_id: str | None = None,
        *,
        actor: uuid.UUID | None = None,
        list_id: str | None = None,
    ) -> Todo:
        """A new row in `list_id`, else the actor's default list (people.md
        section 5); `actor` None is the service principal (no role check);
        `todo_id` names it (TodoExists when taken), else the database does."""
        return (await self._write(receipt, self.writes.insert, None, lambda: {
            "title": clean_title(title), "completed": completed, "id": None if todo_id is None else parse_id(todo_id),
        }, actor, list_id))[0]

    async def update_todo(
        self,
        todo_id: str,
        title: str | None = None,
        completed: bool | None = None,
        receipt: Receipt | None = None,
        *,
        actor: uuid.UUID | None = None,
    ) -> Todo:
        return (await self._write(receipt, self.writes.update, todo_id, functools.partial(_fields, title, completed), actor))[0]

    async def move_todo(
        self, todo_id: str, list_id: str, title: str | None = None, completed: bool | None = None, *,
        actor: uuid.UUID | None = None, receipt: Receipt | None = None, list_field: str = "listId",
    ) -> Todo:
        """Into another list: editor or owner of both; a title and a state
        given change in the same statement. The receipt gets its cursor; a
        numbered one (its key) is applied once, move included, as _write's.
        `list_field`: what the caller calls list_id (a malformed one's message names it)."""
        if receipt is not None and receipt.key is not None:
            return (await self._write(
                receipt, self.writes.move, todo_id, functools.partial(_fields, title, completed), actor, list_id, list_field
            ))[0]
        key, target = todo_key(todo_id), parse_id(list_id, list_field)
        params = {"id": key, "list": target, "actor": actor, **_fields(title, completed)}
        floor = self.floor()
        async with connection(self.pool) as conn, _refused(target, "list"):
            moved, mark = await writes.write(conn, self.writes.move.plain, params, self.writes.decoded)
            if not moved and actor is not None:
                # Its own list first: a row the caller cannot see is not found.
                _check_role(await writes.role_of_todo(conn, key, actor), key, "todo")
                _check_role(await writes.role_in_list(conn, target, actor), target, "list")
            found = _found(key, moved[0] if moved else None)
            mark = await self.mark_of(conn, mark)
        await self.settle(receipt, mark, floor)
        return found

    def floor(self) -> int:
        """Taken before a write (decoded): every entry after it is of a commit after it was heard."""
        return 0 if self.cursors is None else self.cursors.through

    @staticmethod
    async def mark_of(conn: AsyncConnection[Any], mark: writes.Mark) -> int | str:
        """A committed write's Mark, or (it journaled nothing) where the journal
        stands, read on its connection: a position the stream has reached."""
        return (await repository.journal_newest(conn))[0] if mark is None else mark

    async def settle(self, receipt: Receipt | None, mark: int | str, floor: int) -> None:
        """An unnumbered write's receipt: its cursor, once journaled (decoded:
        `mark` its xid, waited for holding no connection)."""
        if receipt is not None:
            receipt.settle(Verdict.APPLIED, await self._journaled(mark, floor) if isinstance(mark, str) else mark)

    async def delete_todo(self, todo_id: str, receipt: Receipt | None = None, *, actor: uuid.UUID | None = None) -> Todo:
        return (await self._write(receipt, self.writes.delete, todo_id, dict, actor))[0]

    async def toggle_all(
        self, completed: bool, receipt: Receipt | None = None, *, actor: uuid.UUID | None = None,
        list_id: str | None = None, ids: Sequence[str] | None = None,
    ) -> list[Todo]:
        """Changes every row the actor may edit (of `list_id`, of `ids`);
        returns the first MAX_LIST_ROWS it changed, in list order."""
        return await self._write(
            receipt, self.writes.set_all_completed, None,
            lambda: {"completed": completed, "ids": self._ids(ids)}, actor, list_id,
        )

    async def clear_completed(
        self, receipt: Receipt | None = None, *, actor: uuid.UUID | None = None, list_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Todo]:
        """Deletes every completed row the actor may edit (of `list_id`, of
        `ids`); returns the first MAX_LIST_ROWS, in list order."""
        return await self._write(
            receipt, self.writes.delete_completed, None, lambda: {"ids": self._ids(ids)}, actor, list_id
        )

    def _ids(self, ids: Sequence[str] | None) -> list[uuid.UUID] | None:
        """A list-wide edit's `ids` (None: every row): well-formed, at most
        as many as a list shows. Rows gone or out of sight are skipped, not
        refused: an edit queued offline names what its client saw then."""
        if ids is None:
            return None
        if len(ids) > self.max_list_rows:
            raise BadUserInput("ids", f"names {len(ids)} todos, more than a list shows ({self.max_list_rows})")
        return [parse_id(value, "ids") for value in ids]

    def _write(
        self,
        receipt: Receipt | None,
        statement: writes.Write,
        todo_id: str | None,
        params: Callable[[], dict[str, Any]],
        actor: uuid.UUID | None,
        list_id: str | None = None,
        list_field: str = "listId",
    ) -> Awaitable[list[Todo]]:
        """Run a mutation (one statement; in a batch's transaction in trigger
        mode, else its own) for `actor`;
        the receipt gets its verdict and cursor. A numbered one (the
        receipt's key) is applied once: a retry is answered from its record,
        and a refusal is recorded as its rejection (docs/design/offline.md,
        section 1). The way's coroutine, which every caller awaits at once:
        not one of its own around it, made and resumed at every write."""
        receipt = Receipt() if receipt is None else receipt
        key = None
        try:
            key = None if todo_id is None else todo_key(todo_id)
            target = None if list_id is None else parse_id(list_id, list_field)
            values = {
                "id": key, **params(), "limit": self.max_list_rows,
                "actor": actor, "list": target, "owner": actor or LOCAL_ID,
            }
        except BadUserInput as refused:
            if receipt.key is None:
                raise
            return self._reject(receipt, receipt.key, refused, statement, key)
        if self.batches is not None:
            return self._write_batched(receipt, statement, values, key, target, actor)
        return self._write_alone(receipt, statement, values, key, target, actor)

    async def _write_batched(
        self, receipt: Receipt, statement: writes.Write, values: dict[str, Any],
        key: uuid.UUID | None, target: uuid.UUID | None, actor: uuid.UUID | None,
    ) -> list[Todo]:
        """A write in trigger mode, in a batch with those waiting beside it;
        alone if its batch is rolled back (write_batch). Numbered: a retry
        is answered from its record, a refusal recorded as its rejection."""
        assert self.batches is not None
        numbered = receipt.key
        # The request's one deadline (time.monotonic()): its role check's
        # wait, its batch's and a rerun's together end within the pool's
        # timeout, not one each (docs/reliability.md, section 2).
        deadline = time.monotonic() + self.pool.timeout
        try:
            if target is not None and actor is not None:
                async with connection(self.pool, left(deadline)) as conn:
                    _check_role(await writes.role_in_list(conn, target, actor), target, "list")
            written = await self.batches.write(writes.Together.of(statement, values, numbered), deadline)
            if written is not None and not written.known:
                if numbered is None:
                    receipt.settle(Verdict.APPLIED, written.position)  # type: ignore[arg-type] # unnumbered: always one
                if statement.single and not written.rows:
                    async with connection(self.pool, left(deadline)) as conn:
                        raise await _refusal(conn, key, actor, target)
        except DatabaseUnavailable:
            raise  # no verdict on the mutation: it is sent again
        except DomainError as refused:
            if numbered is None:
                raise
            return await self._reject(receipt, numbered, refused, statement, key, deadline)
        if written is None:
            return await self._write_alone(receipt, statement, values, key, target, actor, deadline)
        if numbered is None:
            return written.rows
        if written.known:
            return await self._settled(receipt, numbered, statement, key)
        return await self._applied(receipt, numbered, statement, key, written.rows, written.position)

    async def _write_alone(
        self, receipt: Receipt, statement: writes.Write, values: dict[str, Any],
        key: uuid.UUID | None, target: uuid.UUID | None, actor: uuid.UUID | None, deadline: float | None = None,
    ) -> list[Todo]:
        """A write in a transaction of its own (its statement's); `deadline`:
        its request's, when it waited already (a batch rolled back)."""
        decoded = self.writes.decoded
        # Decoded: every entry after this position is of a commit after it was heard.
        floor = 0 if self.cursors is None else self.cursors.through
        try:
            async with (
                connection(self.pool, left(deadline)) as conn,
                # A list named (a create's, a move's) is what a foreign key finds gone.
                _refused(*((key, "todo") if key and target is None else (target, "list")), actor),
            ):
                if target is not None and actor is not None:
                    _check_role(await writes.role_in_list(conn, target, actor), target, "list")
                if receipt.key is None:
                    todos, mark = await writes.write(conn, statement.plain, values, decoded)
                    if mark is None:
                        mark = (await repository.journal_newest(conn))[0]
                    if isinstance(mark, int):
                        receipt.settle(Verdict.APPLIED, mark)
                    if statement.single and not todos:
                        raise await _refusal(conn, key, actor, target)
                    if isinstance(mark, int):
                        return todos
                else:
                    written = await writes.write_numbered(conn, statement, values, receipt.key, decoded)
                    if written is not None and statement.single and not written[0]:
                        raise await _refusal(conn, key, actor, target)
        except DatabaseUnavailable:
            raise  # no verdict on the mutation (a statement timeout, say): it is sent again
        except DomainError as refused:
            if receipt.key is None:
                raise
            return await self._reject(receipt, receipt.key, refused, statement, key, deadline)
        # Decoded, the connection is back in the pool: the wait for the entry holds none.
        if receipt.key is None:
            receipt.settle(Verdict.APPLIED, await self._journaled(mark, floor))  # type: ignore[arg-type] # the xid
            return todos
        if written is None:
            return await self._settled(receipt, receipt.key, statement, key)
        rows, mark = written
        position = await self._journaled(mark, floor) if isinstance(mark, str) else mark
        return await self._applied(receipt, receipt.key, statement, key, rows, position)

    async def _applied(
        self, receipt: Receipt, numbered: Key, statement: writes.Write, todo_id: uuid.UUID | None,
        rows: list[dict[str, Any]], position: int | None,
    ) -> list[Todo]:
        """A numbered mutation applied: its rows, its cursor settled (None:
        it journaled nothing, its rows and cursor kept with its verdict)."""
        if position is None:
            async with connection(self.pool) as conn:
                position = await verdicts.settle_unchanged(conn, numbered, rows)
            if position is None:
                return await self._settled(receipt, numbered, statement, todo_id)
        receipt.settle(Verdict.APPLIED, position)
        return [Todo.from_json(row) for row in rows]

    async def _journaled(self, xid: str, floor: int) -> int:
        """The position of the last entry of the write `xid`, after `floor` (decoded)."""
        assert self.cursors is not None

        async def read() -> int | None:
            async with connection(self.pool) as conn:
                return await journaled_position(conn, xid, floor)

        return await self.cursors.position(xid, read)

    async def _reject(
        self, receipt: Receipt, numbered: Key, refused: DomainError, statement: writes.Write | None,
        todo_id: uuid.UUID | None, deadline: float | None = None,
    ) -> list[Todo]:
        """Record a numbered mutation's rejection and raise it as recorded; a
        key recorded before (a retry whose change now finds nothing to
        change, say) is answered from its record instead. `deadline`: its
        request's, when it waited already (a role check)."""
        async with connection(self.pool, left(deadline)) as conn:
            recorded = await verdicts.record_rejection(conn, numbered, refused.code.name, refused.message, todo_id)
        if recorded is None:
            return await self._settled(receipt, numbered, statement, todo_id)
        position, row = recorded
        receipt.settle(Verdict.REJECTED, position)
        raise Rejected(refused.code, refused.message, row) from refused

    async def _settled(
        self, receipt: Receipt, numbered: Key, statement: writes.Write | None, todo_id: uuid.UUID | None
    ) -> list[Todo]:
        """A retry's answer, from the key's record (IdempotencyKeyReused for
        another request under it); a rejection is raised again."""
        async with connection(self.pool) as conn:
            record = await verdicts.settled(conn, numbered)
            if record is not None and record.position is None and self.cursors is None:
                # Applied, changed nothing, and not settled yet: its first
                # reply is still on its way, or was lost with its process.
                await verdicts.settle_unchanged(conn, numbered, None, todo_id)
                record = await verdicts.settled(conn, numbered)
        if record is not None and record.position is None and self.cursors is not None:
            # Decoded: applied, and its entries not journaled yet (one that
            # changed nothing is settled by its statement, writes._numbered):
            # they will come, as its mutations row proves.
            record = (await self.cursors.until(lambda: self._entries_of(numbered)))[0]
        if record is None or record.position is None:
            # Pruned meanwhile: a key is remembered for MUTATIONS_KEEP_SECONDS.
            raise DatabaseUnavailable("the mutation's record changed while it was read; send it again")
        if record.fingerprint != numbered.fingerprint:
            raise IdempotencyKeyReused(numbered.client, numbered.seq)
        if record.rejection is not None:
            receipt.settle(Verdict.REJECTED, record.position)
            rejection = record.rejection
            raise Rejected(ErrorCode[rejection["code"]], rejection["message"], rejection.get("row"))
        receipt.settle(Verdict.APPLIED, record.position)
        todos = sorted((Todo.from_json(row) for row in record.rows), key=Todo.sort_key)
        if statement is not None and statement.single and not todos:
            raise NotFound(todo_id)  # type: ignore[arg-type] # the row is gone since
        return todos[: self.max_list_rows]

    async def _entries_of(self, numbered: Key) -> tuple[verdicts.Settled | None] | None:
        """The key's record once its entries are journaled (or it is gone); None: not yet."""
        async with connection(self.pool) as conn:
            record = await verdicts.settled(conn, numbered)
        return None if record is not None and record.position is None else (record,)

    async def verdicts(self, principal: uuid.UUID, client: str, after: str, field: str = "client") -> list[VerdictRow]:
        """A client's verdicts after sequence number `after` (at most MAX_LIST_ROWS)."""
        client_id = parse_client(client, field)
        if not (after.isascii() and after.isdigit() and len(after) <= 19):
            raise BadUserInput("after", f"must be a sequence number, not {after!r}")

        async def read() -> list[dict[str, Any]] | None:
            async with connection(self.pool) as conn:
                rows = await verdicts.verdicts(conn, principal, client_id, int(after), self.max_list_rows)
            # Decoded: an applied verdict whose entries are not journaled yet has no cursor yet.
            return rows if all(row["position"] is not None for row in rows) else None

        rows = await read() if self.cursors is None else await self.cursors.until(read)
        return [VerdictRow.of(row) for row in rows]  # type: ignore[union-attr] # trigger mode: every verdict has its cursor


async def _refusal(
    conn: AsyncConnection[Any], key: uuid.UUID | None, actor: uuid.UUID | None, target: uuid.UUID | None
) -> DomainError:
    """Why a write that names a row found none: a viewer of its list may not
    change it (FORBIDDEN), anyone else finds no such row. A create finds
    none (decoded: its statement judges the right) when the actor lost the
    right to the list `target` after the service checked it; with no list
    named, the actor's own default list, which nothing takes from them but
    their going."""
    if key is None:
        return Forbidden("may no longer change this list") if target is not None else person_gone(actor)
    if actor is not None:
        role = await writes.role_of_todo(conn, key, actor)
        if role == "viewer":
            return Forbidden("a viewer may not change this todo")
    return NotFound(key)


def _check_role(role: str | None, key: uuid.UUID, kind: str) -> None:
    """Refuse a write where the actor's `role` is none (NOT_FOUND) or viewer (FORBIDDEN)."""
    if role is None:
        raise NotFound(key, kind)
    if role == "viewer":
        raise Forbidden(f"a viewer may not change this {kind}")


@contextlib.asynccontextmanager
async def _refused(key: uuid.UUID | None, kind: str = "todo", actor: uuid.UUID | None = None) -> AsyncIterator[None]:
    """A write the journal trigger refused at its commit (the actor lost the
    right in a transaction that committed first: people.md section 2)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege:
        raise Forbidden(f"may no longer change this {kind}") from None
    except psycopg.errors.ForeignKeyViolation:
        if key is None:
            # A create with no list named: the default list it read went
            # with its owner before the row was checked against it.
            raise person_gone(actor) from None
        # A list named by a service-principal write that does not exist.
        raise NotFound(key, kind) from None
    except psycopg.errors.NotNullViolation as exc:
        # A create with no list named found no default list: its owner
        # (the actor; local, for the service) is gone.
        if exc.diag.column_name != "list_id":
            raise
        raise person_gone(actor) from None


def person_gone(person: uuid.UUID | None) -> DomainError:
    """Why a request acting for `person` (None: the service, whose todos
    with no list are local's) found them gone from the database, deleted by
    hand after its credential was checked: that credential names no one."""
    if person is None or person == LOCAL_ID:
        return Forbidden(
            "local, who owns what open mode and the service token make with no list named,"
            " is no longer in the database (deleted by hand)"
        )
    return PersonGone(person)


@contextlib.asynccontextmanager
async def made_for(person: uuid.UUID) -> AsyncIterator[None]:
    """Around a statement that makes a row of `person`'s (a list, a
    session, a token): its foreign key finding them gone is person_gone."""
    try:
        yield
    except psycopg.errors.ForeignKeyViolation:
        raise person_gone(person) from None


def _found(key: uuid.UUID, todo: Todo | None) -> Todo:
    if todo is None:
        raise NotFound(key)
    return todo
