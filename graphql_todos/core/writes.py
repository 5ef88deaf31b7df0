"""SQL for writes to todos: each mutation one statement, acting for a person
(people.md section 5), unnumbered or numbered (offline.md section 1), and the
journal positions its commit told of. Small functions taking a connection;
nothing here commits or validates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Self

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.errors import Diagnostic

from graphql_todos.core.database import StatementConnection, statement_rows
from graphql_todos.core.errors import DatabaseUnavailable, TodoExists
from graphql_todos.core.models import Todo
from graphql_todos.core.mutations import Key
from graphql_todos.core.repository import TODO_COLUMNS
from graphql_todos.core.verdicts import key_params
from graphql_todos.internals.psycopg import Prepared, in_one_transaction

_RETURNING = "RETURNING " + ", ".join(f"todos.{column}" for column in TODO_COLUMNS.split(", "))


@dataclass(frozen=True, slots=True)
class _Journal:
    """What the journal mode adds to every statement (docs/design/journal-decoding.md,
    "The write path"). Trigger: the journal trigger, at commit, judges the
    right again and writes the entry, marked with app.mutation. Decoded: the
    sequencer journals the commit later, so the statement itself holds the
    actor's member row FOR SHARE (a removal or a demotion, an UPDATE no-key
    lock would let by, waits for this commit and lands after its entry),
    having locked its list FOR KEY SHARE first (the order a list's deletion
    takes them in, its row and then its members': the other order, the
    planner's choice before, deadlocked a deletion with its members' writes),
    holds the changed rows' list FOR KEY SHARE (a share, which takes it FOR
    UPDATE, orders against the write; an INSERT's foreign key takes it
    already), sends the key as a transactional logical message the sequencer
    puts in each entry, and returns the writer's xid, whose position the
    hub will hear (core/cursors.py)."""

    key: str
    share: str
    list_lock: str
    decoded: bool


_TRIGGER = _Journal("set_config('app.mutation', %(key)s, true)", "", "", False)
_DECODED = _Journal(
    "pg_logical_emit_message(true, 'graphql_todos', %(key)s)",
    " AND EXISTS (SELECT FROM lists l WHERE l.id = m.list_id FOR KEY SHARE) FOR SHARE",
    " AND EXISTS (SELECT FROM lists l WHERE l.id = todos.list_id FOR KEY SHARE)",
    True,
)
# An update that leaves a row as it was is not journaled (the trigger's WHEN
# clause; the sequencer compares the decoded old and new rows), so its
# writer must not wait for an entry. todos_touch (001) sets updated_time to
# the transaction's now() exactly when the title or completed changes. (A
# no-op after a change by a transaction that started in the same
# microsecond reads as a change: its reply ends in JournalLate. Exact would
# be RETURNING old.*, PostgreSQL 18 only.)
_KEPT = "{row}.updated_time <> now()"


def _xid(journal: _Journal, row: str, kept: str | None) -> str:
    """The writer's xid as a last column (decoded), NULL for a row `kept` as it was."""
    if not journal.decoded:
        return ""
    xid = "pg_current_xact_id()::text"
    return f", {xid if kept is None else f'CASE WHEN NOT {kept.format(row=row)} THEN {xid} END'} AS xid"

# Writes act for a person: the statement sets app.person_id (read by the
# lists' journal triggers), and keeps only rows of lists the person may
# edit. With no actor (the service token, psql's way) nothing is checked.
# Unnumbered, the setting is a subquery the statement joins (volatile: run
# once, before any row changes), so the statement still starts as the app's
# own; numbered, a CTE that also sends the mutation's key (_numbered).
_ACTING = "(SELECT set_config('app.person_id', coalesce(%(actor)s::text, ''), true)) AS acting"


def _may_edit(journal: _Journal, list_id: str) -> str:
    """The actor may edit `list_id` (an SQL expression)."""
    return f"""(%(actor)s::uuid IS NULL OR EXISTS (
    SELECT FROM list_members m WHERE m.list_id = {list_id} AND m.person_id = %(actor)s::uuid AND m.role <> 'viewer'{journal.share}))"""


def _editable(journal: _Journal) -> str:
    """The row is one the actor may edit, its list held as the mode needs."""
    return _may_edit(journal, "todos.list_id") + journal.list_lock


# Rows of the lists the actor may edit (or of `list` alone), and of `ids`
# alone when named: the rows a client saw, so an edit queued offline and
# sent later changes exactly those (docs/design/offline.md, section 3).
def _in_lists(journal: _Journal) -> str:
    return f"""{_LISTS_FIRST}{_ACTORS_LISTS}{_editable(journal)} AND (%(list)s::uuid IS NULL OR todos.list_id = %(list)s::uuid)
AND (%(ids)s::uuid[] IS NULL OR todos.id = ANY(%(ids)s::uuid[]))"""


# The rows of the lists the actor may edit, read by todos_list_order: the
# member check below is per row, so without this the statement read the
# whole table and (decoded) checked a member row for each of its rows
# (30,555 buffers with 10,000 others' todos, 120,751 with 40,000; now the
# same at both: tests/test_review21_list_wide_scale.py). The array is read
# once (an initplan) in the statement's snapshot, as the check reads it.
_ACTORS_LISTS = """(%(actor)s::uuid IS NULL OR todos.list_id = ANY(ARRAY(
    SELECT list_id FROM list_members WHERE person_id = %(actor)s::uuid AND role <> 'viewer')))
AND """


# A statement over several lists (none named) takes the actor's lists FOR
# KEY SHARE in id order before any row, as a person's deletion takes them
# FOR UPDATE (sql/021, and in trigger mode those they own, sql/022). Taken
# by its scan of todos, as it met them (decoded) or not at all (trigger:
# the deletion's cascade deletes the todos list by list), the deletion
# could hold the first it reached and wait for one the statement held
# (40P01; tests/test_db_locks.py). An uncorrelated condition, so checked
# once before the scan (a one-time filter), and not at all with a list
# named or no actor (the service token's statement takes them unordered).
_LISTS_FIRST = """(%(list)s::uuid IS NOT NULL OR %(actor)s::uuid IS NULL OR (SELECT count(*) FROM (
    SELECT FROM lists WHERE id IN (
        SELECT list_id FROM list_members WHERE person_id = %(actor)s::uuid AND role <> 'viewer')
    ORDER BY id FOR KEY SHARE) held) >= 0)
AND """


# Each change, reading the acting person from `acting` (the subquery or the CTE).
# No list named: the actor's default list, or local's for the service. The
# trigger judges an insert's right at commit; decoded, the statement does
# (the service checked a named list's role before, as in trigger mode).
def _insert(journal: _Journal, acting: str) -> str:
    target = "coalesce(%(list)s::uuid, (SELECT id FROM lists WHERE owner_id = %(owner)s::uuid AND is_default))"
    source = f"""{target}
FROM {acting}""" if not journal.decoded else f"""target.id
FROM {acting}, (SELECT {target} AS id) target
WHERE {_may_edit(journal, "target.id")}"""
    return f"""INSERT INTO todos (id, title, completed, list_id)
SELECT coalesce(%(id)s, gen_random_uuid()), %(title)s, %(completed)s,
       {source}
{_RETURNING}"""


def _update(journal: _Journal, acting: str) -> str:
    return f"""UPDATE todos SET title = coalesce(%(title)s, title), completed = coalesce(%(completed)s, completed)
FROM {acting} WHERE id = %(id)s AND {_editable(journal)}
{_RETURNING}"""


def _delete(journal: _Journal, acting: str) -> str:
    return f"DELETE FROM todos USING {acting} WHERE id = %(id)s AND {_editable(journal)}\n{_RETURNING}"


def _set_all(journal: _Journal, acting: str) -> str:
    return f"""UPDATE todos SET completed = %(completed)s FROM {acting}
WHERE completed IS DISTINCT FROM %(completed)s AND {_in_lists(journal)}
{_RETURNING}"""


def _delete_completed(journal: _Journal, acting: str) -> str:
    return f"DELETE FROM todos USING {acting} WHERE completed AND {_in_lists(journal)}\n{_RETURNING}"


# ORDER BY inside the CTE is not guaranteed to survive RETURNING; sort after.
# A data-modifying CTE runs to completion whatever the LIMIT reads of it:
# every row changes, the first `limit` come back.
def _many(change: str) -> str:
    return f"WITH changed AS (\n{change}\n)\nSELECT * FROM changed ORDER BY created_time, id LIMIT %(limit)s"


# A numbered mutation: the change (reading `acting`, so the key and the
# person are set before its rows are written) and its verdict in one
# statement, so they commit or roll back together; the key marks the
# journal entries the change makes (set transaction-locally for the
# trigger, a transactional message for the sequencer). A key used before
# meets the primary key (a concurrent duplicate waits for the first to
# commit) and the whole statement rolls back. The rows come back as the
# journal holds them (to_jsonb), so a retry answers from the same text; as
# text, which orjson reads in a fifth of the time psycopg's jsonb loader
# (the standard library's json) takes. `single`: the verdict is written
# only when the change found its row (one verdict per row of a change of
# one row or none), else the service records a rejection; with no order to
# keep, and no aggregate for the verdict: 40% of what numbering added to the
# statement (docs/bench-ab-writes.md). Decoded, a change that journals
# nothing (of many rows, none; of one, `kept` as it was) is settled in the
# statement (its rows and where the journal stands): a verdict with neither
# is then one whose entries will come, which a retry and retention rely on
# (core/verdicts.py). Trigger mode, the key is looked up first (`keyed`,
# in the statement's snapshot): a key recorded before changes nothing, sets
# nothing and records nothing, and the statement answers one row whose
# first column, `known`, says so; else `known` is false, and the rows are
# the change's (one row with a NULL todo when it changed none). So a retry
# in a batch (core/write_batch.py) is no error that rolls the batch back;
# only a duplicate committing meanwhile (not in the snapshot) still meets
# the primary key.
def _numbered(journal: _Journal, change: str, single: bool, kept: str | None, hidden: str | None = None) -> str:
    """`hidden`: a column the change returns for `kept` alone, left out of the row."""
    row = "to_jsonb(changed)" if hidden is None else f"(to_jsonb(changed) - '{hidden}')"
    verdict = "%(principal)s, %(client)s, %(seq)s, %(fingerprint)s, 'applied'"
    columns = "principal, client_id, seq, fingerprint, verdict"
    newest = "(SELECT coalesce(max(position), 0) FROM todo_changes)"
    if single and journal.decoded and kept is not None:
        unchanged = kept.format(row="changed")
        recorded, order = f"""({columns}, result, position)
    SELECT {verdict}, CASE WHEN {unchanged} THEN jsonb_build_array({row}) END,
           CASE WHEN {unchanged} THEN {newest} END FROM changed""", ""
    elif single:
        recorded, order = f"({columns}) SELECT {verdict} FROM changed", ""
    elif not journal.decoded:
        recorded, order = f"({columns}) SELECT {verdict} FROM acting", " ORDER BY created_time, id LIMIT %(limit)s"
    else:
        recorded, order = (
            f"""({columns}, result, position)
    SELECT {verdict}, '[]'::jsonb, {newest} WHERE NOT EXISTS (SELECT FROM changed)
    UNION ALL SELECT {verdict}, NULL, NULL WHERE EXISTS (SELECT FROM changed)""",
            " ORDER BY created_time, id LIMIT %(limit)s",
        )
    acting = f"""SELECT {journal.key},
                       set_config('app.person_id', coalesce(%(actor)s::text, ''), true)"""
    if journal.decoded:
        return f"""
WITH acting AS ({acting}),
changed AS ({change}),
recorded AS (INSERT INTO mutations {recorded})
SELECT {row}::text AS todo{_xid(journal, "changed", kept)} FROM changed{order}
"""
    return f"""
WITH keyed AS (SELECT EXISTS (SELECT FROM mutations
                              WHERE (principal, client_id, seq) = (%(principal)s, %(client)s, %(seq)s)) AS known),
acting AS ({acting} FROM keyed WHERE NOT known),
changed AS ({change}),
recorded AS (INSERT INTO mutations {recorded})
SELECT keyed.known, {row}::text AS todo FROM keyed LEFT JOIN changed ON true{order}
"""


@dataclass(frozen=True, slots=True)
class Write:
    """A mutation's statement, unnumbered (rows as columns) and numbered
    (_numbered); `single`: it names one row by id."""

    plain: str
    numbered: str
    single: bool


def _write(journal: _Journal, change: Any, single: bool, kept: str | None = None) -> Write:
    """`kept`: the change may leave a row as it was (_KEPT)."""
    plain = change(journal, _ACTING) + _xid(journal, "todos", kept)
    return Write(plain if single else _many(plain), _numbered(journal, change(journal, "acting"), single, kept), single)


@dataclass(frozen=True, slots=True)
class Statements:
    """One journal mode's writes; `decoded`: their rows end with the writer's
    xid, and their entries' positions come later (core/cursors.py)."""

    insert: Write
    update: Write
    delete: Write
    set_all_completed: Write
    delete_completed: Write
    move: Write
    decoded: bool


# A move into another list (moveTodo's rights: editor or owner of both),
# with a title and a state given with it (REST's PATCH and PUT with
# list_id): one statement, so a numbered one's verdict covers the move too
# and its retry moves nothing. Decoded, a move into the list the row is in
# changes nothing and is not journaled: `kept` reads the row's list as it
# was (`was`), locked as the UPDATE will lock it (a move committed meanwhile
# is seen); the numbered statement returns it as a last column, left out of
# the row (_numbered's `hidden`).
_WAS = "was"


def _move(journal: _Journal, acting: str) -> str:
    """The move's UPDATE, reading the acting person from `acting`."""
    was = f", (SELECT list_id AS {_WAS} FROM todos WHERE id = %(id)s FOR NO KEY UPDATE) old" if journal.decoded else ""
    return f"""UPDATE todos SET list_id = %(list)s,
    title = coalesce(%(title)s, title), completed = coalesce(%(completed)s, completed)
FROM {acting}{was} WHERE id = %(id)s AND {_editable(journal)} AND {_may_edit(journal, "%(list)s")}
{_RETURNING}"""


def _move_write(journal: _Journal) -> Write:
    """The move's Write; decoded, its `kept` reads `was` from the plain
    statement's FROM (`old`), and from the numbered one's returned row."""
    if not journal.decoded:
        return _write(journal, _move, True)
    kept = f"({_KEPT} AND {{row}}.list_id = {{was}})"
    plain = _move(journal, _ACTING) + _xid(journal, "todos", kept.format(row="{row}", was=f"old.{_WAS}"))
    numbered = _numbered(
        journal, f"{_move(journal, 'acting')}, old.{_WAS}", True, kept.format(row="{row}", was=f"{{row}}.{_WAS}"), _WAS
    )
    return Write(plain, numbered, True)


def _statements(journal: _Journal) -> Statements:
    return Statements(
        _write(journal, _insert, True), _write(journal, _update, True, _KEPT), _write(journal, _delete, True),
        _write(journal, _set_all, False), _write(journal, _delete_completed, False), _move_write(journal), journal.decoded,
    )


TRIGGER = _statements(_TRIGGER)
DECODED = _statements(_DECODED)


def statements(journal: str) -> Statements:
    """The writes of a journal mode (Settings.journal): the one place it is decided."""
    return DECODED if journal == "decoded" else TRIGGER


# Why a write found no row: the row's list and the actor's role in it
# (NULL: no such row, or not a member: NOT_FOUND; a viewer: FORBIDDEN).
SELECT_ROLE = "SELECT role FROM list_members WHERE list_id = %(list)s AND person_id = %(person)s"
SELECT_ROLE_OF_TODO = """
SELECT m.role FROM todos t JOIN list_members m ON m.list_id = t.list_id AND m.person_id = %(actor)s
WHERE t.id = %(id)s
"""


async def role_in_list(conn: AsyncConnection[Any], list_id: uuid.UUID, person: uuid.UUID) -> str | None:
    """The person's role in the list (None: not a member, or no such list)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ROLE, {"list": list_id, "person": person})
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def role_of_todo(conn: AsyncConnection[Any], todo_id: uuid.UUID, actor: uuid.UUID) -> str | None:
    """The actor's role in the list of the row (None: it sees no such row)."""
    async with conn.cursor() as cur:
        await cur.execute(SELECT_ROLE_OF_TODO, {"id": todo_id, "actor": actor})
        row = await cur.fetchone()
    return None if row is None else str(row[0])


# The journal trigger's NOTICE at commit (sql/006_mutations.sql, 007_lists.sql).
CURSOR_SQLSTATE = "01GT0"
_CURSOR_PREFIX = "graphql-todos cursor "


class CursorNotices:
    """The highest position the journal trigger named, by NOTICE, while one
    statement ran on a connection (None: it journaled nothing): psycopg
    calls the handler as each NOTICE arrives, before execute() returns.
    A class, not a generator's context manager: it is entered on every write."""

    __slots__ = ("conn", "position")

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn
        self.position: int | None = None

    def __enter__(self) -> Self:
        self.conn.add_notice_handler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.remove_notice_handler(self)

    def __call__(self, diagnostic: Diagnostic) -> None:
        message = diagnostic.message_primary or ""
        if diagnostic.sqlstate == CURSOR_SQLSTATE and message.startswith(_CURSOR_PREFIX):
            position = int(message.removeprefix(_CURSOR_PREFIX))
            if self.position is None or position > self.position:
                self.position = position


class _TakenId:
    """A create naming an id a todo has: TodoExists, not a database error."""

    __slots__ = ("params",)

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, psycopg.errors.UniqueViolation) and exc.diag.constraint_name == "todos_pkey":
            raise TodoExists(self.params["id"]) from None


def _todo(values: Any) -> Todo:
    """A row as a Todo, by position: RETURNING names the columns in the
    order of Todo's fields (a test checks), so no statement's column names
    are read (psycopg's class_row reads them on every execute)."""
    return Todo(*values)


# What a write's statement tells of its entries: the newest one's position
# (trigger mode: the journal trigger's NOTICE), the writer's xid (decoded:
# the hub hears the position later, core/cursors.py), or None (no entry).
Mark = int | str | None


async def write(
    conn: AsyncConnection[Any], statement: str, params: dict[str, Any], decoded: bool = False
) -> tuple[list[Todo], Mark]:
    """An unnumbered mutation (a Statements' plain statement, or its move):
    its rows, and its Mark; `decoded`: the statement is of Statements.decoded."""
    if decoded:
        with _TakenId(params):
            rows = await statement_rows(conn, statement, params, tuple)
        return [Todo(*row[:-1]) for row in rows], (rows[0][-1] if rows else None)
    with CursorNotices(conn) as notices, _TakenId(params):
        todos = await statement_rows(conn, statement, params, _todo)
    return todos, notices.position


# Writes that share one transaction (core/write_batch.py, trigger mode).
# The commit-order lock (sql/002) is taken first, before any row is locked,
# as a lone write takes it only at its commit: a batch holds it from there
# to its commit, so no other transaction's entries fall between its
# statements, and a later statement's `max(position)` less the one before
# it are that statement's entries. The journal triggers fire at the end of
# each statement (IMMEDIATE), so each reads the app.person_id its own
# statement set, and a numbered one's app.mutation: a plain statement after
# a numbered one resets that first (_UNKEYED), or it would inherit the key
# (app.journal_todos only gathers lists marked for todos, which a batch of
# todo writes never marks for members). While the batch holds the
# lock, a statement that waits for a row lock waits for a transaction that
# will itself wait for the lock at its commit (every todo write takes it):
# a deadlock PostgreSQL would find only after deadlock_timeout (1 s), and
# then perhaps by ending the other writer. lock_timeout ends the batch
# instead, at once: it is rolled back and its writes run alone.
COMMIT_ORDER_LOCK = 7305202417
_TOGETHER = (
    "SET CONSTRAINTS todos_journal_insert_delete, todos_journal_update IMMEDIATE",
    f"SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK})",
)
# After the lock, not with it (lock_timeout would bound the wait for it),
# so its snapshot holds every entry committed before: where the journal
# stands as the batch starts (its last column), kept for _ENTRIES. No
# cursor NOTICE: the positions are read here.
_TOGETHER_SET = """SELECT set_config('lock_timeout', %(wait)s, true), set_config('app.cursor_notice', 'off', true),
       set_config('app.batch_base', (SELECT coalesce(max(position), 0) FROM todo_changes)::text, true)"""
_UNKEYED = "SELECT set_config('app.mutation', '', true)"
# Under the lock, right after a statement: its newest entry, or (it
# journaled none) where the journal stands, as journal_newest tells a lone write.
_NEWEST = "SELECT coalesce(max(position), 0) FROM todo_changes"
# The batch's entries, in statement order, read once after its last statement.
_ENTRIES = """SELECT array_agg(position ORDER BY position), array_agg(todo_id ORDER BY position)
FROM todo_changes WHERE position > current_setting('app.batch_base')::bigint"""
# A row lock waited for this long while holding the commit-order lock ends the batch.
TOGETHER_LOCK_WAIT = "20ms"


def _numbered_params(params: dict[str, Any], key: Key) -> dict[str, Any]:
    """A numbered statement's parameters: the write's, its key's, and the key's text."""
    return {**params, **key_params(key), "key": key.text}


# Together and Written are made for every write of a batch and never
# changed after: not frozen, whose __init__ sets each field through
# object.__setattr__ (a call each), twice the bytecodes of a slot's store
# (docs/bench-ab-writes.md, seventeenth sitting).
@dataclass(slots=True)
class Together:
    """One write of a batch: its statement (a Write's plain one, or, with the
    key's parameters, its numbered one), its parameters, and its Write's `single`."""

    statement: str
    params: dict[str, Any]
    single: bool
    numbered: bool = False

    @classmethod
    def of(cls, statement: Write, params: dict[str, Any], key: Key | None) -> Together:
        """A write of `statement`, numbered by `key` unless None."""
        if key is None:
            return cls(statement.plain, params, statement.single)
        return cls(statement.numbered, _numbered_params(params, key), statement.single, True)


@dataclass(slots=True)
class Written:
    """A write of a batch, committed: its rows (Todos; numbered, as the
    journal holds them) and its cursor (numbered, None when it journaled
    nothing: it changed nothing, and verdicts.settle_unchanged keeps its
    answer). `known`: a numbered write whose key was recorded before; it
    changed nothing, and its answer is its record's."""

    rows: list[Any]
    position: int | None
    known: bool = False


async def write_together(conn: StatementConnection, batch: list[Together]) -> list[Written]:
    """Statements (trigger mode) in one transaction, sent in one pipeline
    and committed once: each one's rows and its cursor. Each statement a
    Prepared of the connection's, in one pipeline with no cursor
    (internals/psycopg.in_one_transaction). A failure raises what psycopg
    raised, the transaction rolled back."""
    # Writes of one row each, no row named twice: each has at most one entry,
    # of its row, so one read of the batch's entries tells each its own.
    # Else (a list-wide write, a row named twice) each statement is followed
    # by a read of the newest position.
    named = [write.params["id"] for write in batch if write.params["id"] is not None]
    once = all(map(_SINGLE, batch)) and len(set(named)) == len(named)
    prepared = conn.prepared
    steps: list[tuple[Prepared, dict[str, Any] | None]] = [(prepared(statement), None) for statement in _TOGETHER]
    steps.append((prepared(_TOGETHER_SET), {"wait": TOGETHER_LOCK_WAIT}))
    base = len(steps) - 1
    newest = prepared(_NEWEST)
    # Each write's step, and its newest position's (not `once`).
    at: list[tuple[Together, Prepared, int, int | None]] = []
    keyed = False
    for write in batch:
        if keyed and not write.numbered:
            steps.append((prepared(_UNKEYED), None))
        keyed = write.numbered
        statement = prepared(write.statement)
        steps.append((statement, write.params))
        if not once:
            steps.append((newest, None))
        at.append((write, statement, len(steps) - (1 if once else 2), None if once else len(steps) - 1))
    if once:
        steps.append((prepared(_ENTRIES), None))
    results = await in_one_transaction(conn, steps)
    try:
        read = [
            (
                write,
                statement.loaded(results[step], tuple if write.numbered else _todo),
                None if mark is None else newest.loaded(results[mark], tuple)[0][0],
            )
            for write, statement, step, mark in at
        ]
        return _answers(
            int(steps[base][0].loaded(results[base], tuple)[0][-1]),
            read,
            steps[-1][0].loaded(results[-1], tuple)[0] if once else None,
        )
    except psycopg.Error as exc:
        raise _unread() from exc


def _unread() -> DatabaseUnavailable:
    # Committed: a caller that took this for a rollback would write again.
    return DatabaseUnavailable("a committed batch's answers could not be read")


def _answers(newest: int, steps: list[tuple[Together, list[Any], int | None]], entries: Any) -> list[Written]:
    """Each write's rows and cursor, from a batch's results read
    (write_together): each write's rows (a numbered one's as tuples), the
    newest position after it (None: one read of `entries`, the batch's
    positions and their todos' ids), and `newest` where the journal stood
    as the batch started."""
    # Keyed by each id's 128 bits: a UUID's own __hash__ is a Python call.
    journaled: dict[int, int] = {}
    if entries is not None:
        positions, ids = entries
        journaled = dict(zip(map(_BITS, ids or ()), positions or (), strict=True))
    done = []
    for write, found, mark in steps:
        if write.numbered:
            numbered = _numbered_rows(found)
            if numbered is None:
                done.append(Written([], None, known=True))
                continue
            found = numbered
        # None: it changed nothing (an update to the same values, or no row).
        if mark is not None:
            position = None if mark == newest else mark
        elif found:
            position = journaled.get((uuid.UUID(found[0]["id"]) if write.numbered else found[0].id).int)
        else:
            position = None
        newest = newest if position is None else position
        # Plain: then where the journal stood after the writes before it, as
        # journal_newest tells a lone write.
        done.append(Written(found, position if write.numbered else newest))
    return done


_BITS = attrgetter("int")
# Read in C, not by a generator resumed for each write of a batch.
_SINGLE = attrgetter("single")


def _numbered_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]] | None:
    """A numbered statement's rows (trigger mode: `known`, the row's text) as
    the journal holds them; None: its key was recorded before."""
    if rows and rows[0][0]:
        return None
    return [orjson.loads(row[1]) for row in rows if row[1] is not None]


async def write_numbered(
    conn: AsyncConnection[Any], statement: Write, params: dict[str, Any], key: Key, decoded: bool = False
) -> tuple[list[dict[str, Any]], Mark] | None:
    """A numbered mutation and its verdict: its rows (as the journal holds
    them) and its Mark; None when the key was used before (nothing changed)."""
    with CursorNotices(conn) as notices, _TakenId(params):
        try:
            rows = await statement_rows(conn, statement.numbered, _numbered_params(params, key), tuple)
        except psycopg.errors.UniqueViolation as exc:
            # A duplicate that committed after the statement's snapshot was taken.
            if exc.diag.constraint_name != "mutations_pkey":
                raise
            return None
    if decoded:
        return [orjson.loads(row[0]) for row in rows], (rows[0][1] if rows else None)
    found = _numbered_rows(rows)
    return None if found is None else (found, notices.position)
