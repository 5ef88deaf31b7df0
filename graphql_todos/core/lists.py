"""Lists and their members (docs/design/people.md sections 1 and 5): who may
see a list is who is a member of it, the owner among them. Each write is one
statement on an autocommit connection; the journal triggers (007_lists.sql)
record it in commit order, with each new or former member's arrivals or
removals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.database import connection, statement_rows
from graphql_todos.core.errors import BadUserInput, DomainError, ErrorCode, Forbidden, NotFound
from graphql_todos.core.models import Page, Todo
from graphql_todos.core.mutations import Receipt
from graphql_todos.core.people import NotAPerson, Person, Principal, clean_username
from graphql_todos.core.service import TodoService, made_for, parse_id, person_gone
from graphql_todos.core.writes import CursorNotices

MAX_LIST_NAME = 200
ROLES = ("owner", "editor", "viewer")


@dataclass(frozen=True, slots=True)
class TodoList:
    """A list as one member sees it: `role` is that member's."""

    id: uuid.UUID
    name: str
    is_default: bool
    role: str
    created_time: datetime
    updated_time: datetime


@dataclass(frozen=True, slots=True)
class Member:
    list_id: uuid.UUID
    person: Person
    role: str


@dataclass(frozen=True, slots=True)
class ListAndMembers(TodoList):
    """A list and its members read in one statement: one snapshot, so a list
    deleted (or a member changed) between reading the list and its members
    cannot make them disagree."""

    members_seen: tuple[Member, ...]


class AlreadyMember(DomainError):
    code = ErrorCode.CONFLICT

    def __init__(self, username: str) -> None:
        super().__init__(f"{username!r} is already a member of this list")
        self.username = username


class NoSuchPerson(DomainError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, what: str) -> None:
        super().__init__(f"no person {what}")


_LIST_COLUMNS = "l.id, l.name, l.is_default, m.role, l.created_time, l.updated_time"
SELECT_LISTS = f"""
SELECT {_LIST_COLUMNS} FROM list_members m JOIN lists l ON l.id = m.list_id
WHERE m.person_id = %(person)s ORDER BY l.created_time, l.id
"""
# The members of list `l`, the owner first, then by username, as [person id, username, role] each.
_MEMBERS_COLUMN = """(
    SELECT coalesce(json_agg(json_build_array(o.person_id, p.username, o.role)
                             ORDER BY (o.role = 'owner') DESC, p.username), '[]')
    FROM list_members o JOIN people p ON p.id = o.person_id WHERE o.list_id = l.id
)"""
SELECT_LISTS_AND_MEMBERS = f"""
SELECT {_LIST_COLUMNS}, {_MEMBERS_COLUMN} FROM list_members m JOIN lists l ON l.id = m.list_id
WHERE m.person_id = %(person)s AND (%(list)s::uuid IS NULL OR l.id = %(list)s) ORDER BY l.created_time, l.id
"""
SELECT_LIST = f"""
SELECT {_LIST_COLUMNS} FROM list_members m JOIN lists l ON l.id = m.list_id
WHERE m.person_id = %(person)s AND l.id = %(list)s
"""
INSERT_LIST = """
WITH made AS (
    INSERT INTO lists (owner_id, name) VALUES (%(person)s, %(name)s) RETURNING *
), owner AS (
    INSERT INTO list_members (list_id, person_id, role) SELECT id, %(person)s, 'owner' FROM made
)
SELECT id, name, is_default, 'owner' AS role, created_time, updated_time, pg_current_xact_id()::text FROM made
"""
RENAME_LIST = f"""
WITH renamed AS (
    UPDATE lists SET name = %(name)s, updated_time = now() WHERE id = %(list)s
      AND EXISTS (SELECT FROM list_members WHERE list_id = %(list)s AND person_id = %(person)s AND role <> 'viewer')
    RETURNING *
)
SELECT {_LIST_COLUMNS}, {_MEMBERS_COLUMN}, pg_current_xact_id()::text
FROM renamed l JOIN list_members m ON m.list_id = l.id AND m.person_id = %(person)s
"""
DELETE_LIST = """DELETE FROM lists WHERE id = %(list)s AND owner_id = %(person)s AND NOT is_default
RETURNING pg_current_xact_id()::text"""
_INSERT_MEMBER = """
INSERT INTO list_members (list_id, person_id, role)
SELECT %(list)s, id, %(role)s FROM people WHERE username = %(username)s{list_first}
ON CONFLICT DO NOTHING
RETURNING person_id, pg_current_xact_id()::text
"""
UPDATE_MEMBER = """
UPDATE list_members SET role = %(role)s
WHERE list_id = %(list)s AND person_id = %(member)s AND role <> 'owner' AND role <> %(role)s
RETURNING person_id, pg_current_xact_id()::text
"""
_DELETE_MEMBER = """
DELETE FROM list_members WHERE list_id = %(list)s AND person_id = %(member)s AND role <> 'owner'{list_first}
RETURNING person_id, role, pg_current_xact_id()::text
"""
# A share and a removal, by journal mode (decoded: True). Decoded, their
# commit takes the journal's lock (members_journal, sql/007) and then the
# list's row FOR UPDATE (sql/011's journal_stage_expand: the arrivals or
# removals are read under it); a member's todo write locks the list FOR KEY
# SHARE and then its member row (core/writes.py). Had a removal deleted the
# row first, a writer holding the list and waiting on that row, and the
# commit waiting on the writer for the list, deadlocked; had a share held
# the list only FOR KEY SHARE (its foreign key), two shares' commits each
# held the journal's lock or the list the other waited for. So the statement
# takes the list first, as a list's deletion does, and FOR UPDATE, as its
# commit will (no upgrade to wait for there): the others wait for it holding
# nothing. The share's lock filters nothing: a list gone meets the foreign
# key, as before. Trigger mode's commit locks no list, nor its writes a
# member's row.
_LIST_HELD = "(SELECT true FROM lists WHERE id = %(list)s FOR UPDATE)"
INSERT_MEMBER = {
    False: _INSERT_MEMBER.format(list_first=""),
    True: _INSERT_MEMBER.format(list_first=f"\n  AND {_LIST_HELD} IS NOT FALSE"),
}
DELETE_MEMBER = {
    False: _DELETE_MEMBER.format(list_first=""),
    True: _DELETE_MEMBER.format(list_first=f"\n  AND EXISTS {_LIST_HELD}"),
}
SELECT_PERSON = "SELECT id, username FROM people WHERE username = %(username)s"
PERSON_KEPT = "SELECT EXISTS (SELECT FROM people WHERE id = %(person)s)"


def clean_list_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadUserInput("name", "must be a string, not blank")
    name = value.strip()
    if len(name) > MAX_LIST_NAME or "\x00" in name:
        raise BadUserInput("name", f"must be at most {MAX_LIST_NAME} characters, with no NUL")
    return name


def clean_role(value: object, owner: bool = False) -> str:
    """A role one may give a member (not owner: one owner per list)."""
    allowed = ROLES if owner else ROLES[1:]
    if not isinstance(value, str) or value.lower() not in allowed:
        raise BadUserInput("role", f"must be one of {', '.join(allowed)}")
    return value.lower()


class Lists:
    """The caller's lists and their members; every method takes the
    principal (the service token is no person: FORBIDDEN). Each write
    settles its receipt's cursor as a todo write does (`service`: the
    journal's mode and the wait for a decoded entry)."""

    def __init__(self, pool: AsyncConnectionPool, service: TodoService) -> None:
        self.pool = pool
        self.service = service

    async def _write(
        self, conn: psycopg.AsyncConnection[Any], statement: str, params: dict[str, Any]
    ) -> tuple[list[tuple[Any, ...]], int | str]:
        """A write's rows, less their last column (the writer's xid), and its
        Mark: trigger mode the journal trigger's NOTICE, decoded the xid
        (mark_of: none, where the journal stands). A deadlock's victim runs
        once more, as a todo write does (statement_rows): the app's own
        statements take a list's row before its members' (DELETE_MEMBER,
        INSERT_MEMBER), but a transaction that takes them the other way
        (psql's) can close a deadlock with them."""
        with CursorNotices(conn) as notices:
            rows = await statement_rows(conn, statement, params, tuple)
        mark = (rows[0][-1] if rows else None) if self.service.writes.decoded else notices.position
        return [row[:-1] for row in rows], await TodoService.mark_of(conn, mark)


    async def lists(self, principal: Principal) -> list[TodoList]:
        person = _person(principal)
        async with connection(self.pool) as conn, conn.cursor(row_factory=class_row(TodoList)) as cur:
            await cur.execute(SELECT_LISTS, {"person": person.id})
            return await cur.fetchall()

    async def lists_and_members(self, principal: Principal, list_id: str | None = None) -> list[ListAndMembers]:
        """The caller's lists (or the one of `list_id`, if theirs) with their
        members, in one statement: read apart, a list deleted between the
        two reads made its members NOT_FOUND, and GraphQL's whole `lists`
        an error."""
        person, key = _person(principal), None if list_id is None else parse_id(list_id)
        async with connection(self.pool) as conn:
            return await _lists_and_members(conn, person, key)

    async def get(self, principal: Principal, list_id: str) -> TodoList:
        """The list, if the caller is a member (else NOT_FOUND)."""
        person, key = _person(principal), parse_id(list_id)
        async with connection(self.pool) as conn:
            return await _visible(conn, person, key)

    async def todos(self, principal: Principal, list_id: str, completed: bool | None, page: Page) -> list[Todo]:
        """A page of the list's todos, if the caller is a member (else
        NOT_FOUND). Their read is the membership's too (SELECT_LIST_TODOS):
        rows are of a list the caller sees, and only none asks whether the
        list is there at all. Asked before the read, a list deleted between
        the two was no todos (200 [] over REST)."""
        _person(principal)
        todos = await self.service.list_todos(principal.viewer, completed, page, parse_id(list_id))
        if not todos:
            await self.get(principal, list_id)
        return todos

    async def create(self, principal: Principal, name: object, receipt: Receipt | None = None) -> ListAndMembers:
        """The list made, with its one member, the caller as owner (read
        after, its members were NOT_FOUND if the list went meanwhile)."""
        person, clean, floor = _person(principal), clean_list_name(name), self.service.floor()
        async with connection(self.pool) as conn, made_for(person.id):
            rows, mark = await self._write(conn, INSERT_LIST, {"person": person.id, "name": clean})
        await self.service.settle(receipt, mark, floor)
        made = TodoList(*rows[0])
        return ListAndMembers(
            made.id, made.name, made.is_default, made.role, made.created_time, made.updated_time,
            (Member(made.id, person, "owner"),),
        )

    async def rename(
        self, principal: Principal, list_id: str, name: object, receipt: Receipt | None = None
    ) -> ListAndMembers:
        """Owner or editor; the list renamed, with its members read by the same statement."""
        person, key, clean = _person(principal), parse_id(list_id), clean_list_name(name)
        floor = self.service.floor()
        async with connection(self.pool) as conn:
            rows, mark = await self._write(conn, RENAME_LIST, {"person": person.id, "list": key, "name": clean})
            if not rows:
                seen = await _visible(conn, person, key)
                raise Forbidden(f"a {seen.role} may not rename this list")
        await self.service.settle(receipt, mark, floor)
        return _list_and_members(rows[0])

    async def delete(self, principal: Principal, list_id: str, receipt: Receipt | None = None) -> ListAndMembers:
        """Owner only; a default list stays. Its todos and members go with it."""
        person, key, floor = _person(principal), parse_id(list_id), self.service.floor()
        async with connection(self.pool) as conn:
            # With its members as they were: read after, they are none (NOT_FOUND).
            seen = await _visible_with_members(conn, person, key)
            rows, mark = await self._write(conn, DELETE_LIST, {"person": person.id, "list": key})
            if not rows:
                raise Forbidden("the default list cannot be deleted" if seen.is_default else "only the owner may delete a list")
        await self.service.settle(receipt, mark, floor)
        return seen

    async def members(self, principal: Principal, list_id: str) -> list[Member]:
        """The list's members, read with the list (NOT_FOUND if not the
        caller's): read apart, a list deleted between was no members at all."""
        person, key = _person(principal), parse_id(list_id)
        async with connection(self.pool) as conn:
            return list((await _visible_with_members(conn, person, key)).members_seen)

    async def share(
        self, principal: Principal, list_id: str, username: object, role: object, receipt: Receipt | None = None
    ) -> Member:
        """Owner only: add a member by username (unknown: NOT_FOUND; a member already: CONFLICT)."""
        person, key = _person(principal), parse_id(list_id)
        name, clean, floor = clean_username(username), clean_role(role), self.service.floor()
        async with connection(self.pool) as conn:
            await _owned(conn, person, key)
            try:
                rows, mark = await self._write(
                    conn, INSERT_MEMBER[self.service.writes.decoded], {"list": key, "username": name, "role": clean}
                )
            except psycopg.errors.ForeignKeyViolation:
                # Deleted (by hand, or the list by its owner) after they were
                # read: the sharer (her list went with her), the person named
                # (as a name no one has), or the list.
                kept = await (await conn.execute(PERSON_KEPT, {"person": person.id})).fetchone()
                if kept != (True,):
                    raise person_gone(person.id) from None
                await _person_named(conn, name)
                raise NotFound(key, "list") from None
            if not rows:
                await _person_named(conn, name)
                raise AlreadyMember(name)
        await self.service.settle(receipt, mark, floor)
        # As the write made it: read after, a list deleted meanwhile was no such member.
        return Member(key, Person(rows[0][0], name), clean)

    async def set_role(
        self, principal: Principal, list_id: str, person_id: str, role: object, receipt: Receipt | None = None
    ) -> Member:
        """Owner only; the owner's own row cannot change. The same role again changes nothing."""
        person, key, member = _person(principal), parse_id(list_id, "listId"), parse_id(person_id, "personId")
        clean, floor = clean_role(role), self.service.floor()
        async with connection(self.pool) as conn:
            # The member as the list had it: read after the write, a list
            # deleted meanwhile was no such member, a role changed or not.
            found = _member_in((await _owned(conn, person, key)).members_seen, member)
            rows, mark = await self._write(conn, UPDATE_MEMBER, {"list": key, "member": member, "role": clean})
            if rows:
                found = Member(key, found.person, clean)
            elif found.role == "owner":
                raise Forbidden(f"the owner's role cannot change (asked: {found.person.username})")
            elif found.role != clean:
                # Gone meanwhile (the list: NOT_FOUND; the member), or changed.
                found = _member_in((await _visible_with_members(conn, person, key)).members_seen, member)
        await self.service.settle(receipt, mark, floor)
        return found

    async def remove(
        self, principal: Principal, list_id: str, person_id: str, receipt: Receipt | None = None
    ) -> Member:
        """Owner only, or oneself (leave); the owner's row stays."""
        person, key, member = _person(principal), parse_id(list_id, "listId"), parse_id(person_id, "personId")
        floor = self.service.floor()
        async with connection(self.pool) as conn:
            # The list with its members: read apart, a list deleted between was no such member.
            seen = await (_visible_with_members if member == person.id else _owned)(conn, person, key)
            found = _member_in(seen.members_seen, member)
            rows, mark = await self._write(
                conn, DELETE_MEMBER[self.service.writes.decoded], {"list": key, "member": member}
            )
            if not rows and found.role == "owner":
                raise Forbidden("the owner cannot leave or be removed: delete the list instead")
            if not rows:
                # Gone meanwhile: the list (NOT_FOUND), or the member.
                await _visible(conn, person, key)
                raise NoSuchPerson(f"with id {member} in this list")
        await self.service.settle(receipt, mark, floor)
        return found

    async def leave(self, principal: Principal, list_id: str, receipt: Receipt | None = None) -> ListAndMembers:
        """Any member but the owner. The list as it was, with its members:
        read after, the caller sees it no more (NOT_FOUND)."""
        person, key = _person(principal), parse_id(list_id)
        async with connection(self.pool) as conn:
            seen = await _visible_with_members(conn, person, key)
        await self.remove(principal, list_id, str(person.id), receipt)
        return seen


def _person(principal: Principal) -> Person:
    if principal.person is None:
        raise NotAPerson
    return principal.person


async def _visible(conn: psycopg.AsyncConnection[Any], person: Person, key: uuid.UUID) -> TodoList:
    async with conn.cursor(row_factory=class_row(TodoList)) as cur:
        await cur.execute(SELECT_LIST, {"person": person.id, "list": key})
        seen = await cur.fetchone()
    if seen is None:
        raise NotFound(key, "list")
    return seen


async def _lists_and_members(
    conn: psycopg.AsyncConnection[Any], person: Person, key: uuid.UUID | None
) -> list[ListAndMembers]:
    """The person's lists (or the one of `key`, if theirs) with their members (Lists.lists_and_members)."""
    cur = await conn.execute(SELECT_LISTS_AND_MEMBERS, {"person": person.id, "list": key})
    return [_list_and_members(row) for row in await cur.fetchall()]


async def _visible_with_members(conn: psycopg.AsyncConnection[Any], person: Person, key: uuid.UUID) -> ListAndMembers:
    """The list with its members, if the person is one (else NOT_FOUND)."""
    found = await _lists_and_members(conn, person, key)
    if not found:
        raise NotFound(key, "list")
    return found[0]


def _list_and_members(row: tuple[Any, ...]) -> ListAndMembers:
    """A row of _LIST_COLUMNS and _MEMBERS_COLUMN."""
    found, name, is_default, role, created, updated, members = row
    return ListAndMembers(found, name, is_default, role, created, updated, tuple(
        Member(found, Person(uuid.UUID(pid), username), member_role) for pid, username, member_role in members
    ))


async def _owned(conn: psycopg.AsyncConnection[Any], person: Person, key: uuid.UUID) -> ListAndMembers:
    seen = await _visible_with_members(conn, person, key)
    if seen.role != "owner":
        raise Forbidden("only the owner may change the members")
    return seen


def _member_in(members: Iterable[Member], member: uuid.UUID) -> Member:
    for found in members:
        if found.person.id == member:
            return found
    raise NoSuchPerson(f"with id {member} in this list")


async def _person_named(conn: psycopg.AsyncConnection[Any], username: str) -> Person:
    cur = await conn.execute(SELECT_PERSON, {"username": username})
    row = await cur.fetchone()
    if row is None:
        raise NoSuchPerson(f"named {username!r}")
    return Person(row[0], row[1])
