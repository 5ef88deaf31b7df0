"""A notification read as the hub reads it (live/notifications.py) is the
entry the journal gives for its position: rows created, retitled, moved
between lists and deleted, the same rows and lists again and again (their
uuids are parsed once and remembered), and a list's and a member's entries."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import orjson
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from graphql_todos.core import repository
from graphql_todos.core.models import Chunk, Entry, RowEntry, Todo
from graphql_todos.live.notifications import UNREAD, _Remembered, journal_entries, notified, notified_for
from tests.core.test_lists_journal import _person


def _exact(entry: Entry) -> tuple[Any, ...]:
    # Every field (a RowEntry's own __init__ sets each, or this fails) but
    # the legacy Changes made later and the snapshot a RowEntry was read from.
    return tuple(getattr(entry, field.name) for field in dataclasses.fields(Entry) if field.name not in ("legacy", "row"))


def _fields(entry: Entry) -> tuple[Any, ...]:
    # The NOTIFY leaves out a detail's nulls (jsonb_strip_nulls), which read as absent alike.
    detail = None if entry.detail is None else {k: v for k, v in entry.detail.items() if v is not None}
    return (*_exact(entry)[:7], detail, *_exact(entry)[8:])


# The journal's entries as its columns hold them: what the notifications
# and the hub's read-back (repository.notified_changes) must agree with.
# How far it was pruned comes back with every row (and alone, with no row,
# when nothing follows `after`).
COLUMNS = """
SELECT p.through, c.* FROM todo_changes_pruned p LEFT JOIN LATERAL (
    SELECT position, op, todo_id, todo, list_before, list_after, person_id, detail, before, changed_at
    FROM todo_changes
    WHERE position > %(after)s AND position <= %(upto)s
    ORDER BY position
    LIMIT %(limit)s
) c ON true
ORDER BY c.position
"""


async def _columns(conn: psycopg.AsyncConnection[Any], after: int, upto: int, limit: int) -> tuple[Chunk, int]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(COLUMNS, {"after": after, "upto": upto, "limit": limit})
        rows = await cur.fetchall()
    entries = [
        Entry(
            int(r["position"]), r["op"], r["todo_id"], None if r["todo"] is None else Todo.from_json(r["todo"]),
            r["list_before"], r["list_after"], r["person_id"], r["detail"],
            None if r["before"] is None else Todo.from_json(r["before"]), r["changed_at"],
        )
        for r in rows
        if r["position"] is not None
    ]
    last = entries[-1].position if entries else after
    return Chunk(entries, last, len(entries) == limit), int(rows[0]["through"])


async def _journal(dsn: str) -> list[Entry]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        chunk, _ = await _columns(conn, 0, 2**63 - 1, 1000)
    return chunk.entries


def test_a_notification_reads_as_its_journal_entries(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        listener.execute("LISTEN todo_changes")
        _, ann_list = _person(writer, "ann")  # list_created, member_added
        _, bob_list = _person(writer, "bob")
        writer.execute("INSERT INTO todos (title, list_id) SELECT 't' || i, %s FROM generate_series(1, 3) i", (ann_list,))
        for round_ in range(3):
            writer.execute("UPDATE todos SET title = %s, completed = NOT completed", (f"round {round_}",))
        writer.execute("UPDATE todos SET list_id = %s WHERE title = 'round 2' AND list_id = %s", (bob_list, ann_list))
        writer.execute("UPDATE todos SET list_id = %s", (ann_list,))
        writer.execute("DELETE FROM todos WHERE list_id = %s", (ann_list,))
        (last,) = writer.execute("SELECT max(position) FROM todo_changes").fetchone()  # type: ignore[misc]
        notifies = list(listener.notifies(timeout=5, stop_after=last))
    journal = asyncio.run(_journal(db_dsn))
    read = [notified(n.payload) for n in notifies]
    assert [position for position, _ in read] == [e.position for e in journal]
    entries = [entry for _, entry in read]
    assert all(entry is not None for entry in entries)
    assert [_fields(e) for e in entries if e is not None] == [_fields(e) for e in journal]
    assert {e.op for e in journal} >= {"list_created", "member_added", "created", "updated", "deleted"}
    assert any(e.before is not None for e in journal)  # a row that changed lists


def test_a_row_notification_keeps_every_character_of_its_row(db_dsn: str) -> None:
    """A row's notification is built as json text (sql/010): titles that need
    escaping, and one of 512 characters of four bytes each, read back as the
    journal holds them."""
    titles = ['quote " backslash \\ slash / tab \t newline \n', "\u00e9\u4e2d\U0001f600 \u2028", "\U0001f600" * 512]
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        listener.execute("LISTEN todo_changes")
        for title in titles:
            writer.execute("INSERT INTO todos (title) VALUES (%s)", (title,))
        writer.execute("UPDATE todos SET completed = true")
        notifies = list(listener.notifies(timeout=5, stop_after=2 * len(titles)))
    journal = asyncio.run(_journal(db_dsn))
    read = [notified(n.payload) for n in notifies]
    assert all(entry is not None for _, entry in read)
    assert [_fields(entry) for _, entry in read if entry is not None] == [_fields(e) for e in journal]
    assert [e.todo.title for e in journal[: len(titles)] if e.todo is not None] == titles


def test_a_payload_that_does_not_parse_sends_the_hub_to_the_journal() -> None:
    """Someone else's NOTIFY, or one whose times or uuids do not read (the
    remembered parses included), names no entry and a position past any."""
    at = "2026-12-05T06:01:00+00:00"
    row = {"id": "00000000-0000-4000-8000-00000000000a", "title": "t", "completed": False,
           "created_time": at, "updated_time": at}
    good = {"position": 7, "op": "created", "id": row["id"], "changed_at": at, "todo": row}
    assert notified(orjson.dumps(good).decode())[1] is not None
    # As the hub reads it too: the payload's UTF-8 bytes (internals/psycopg.payloads).
    (_, as_bytes), (_, as_text) = notified(orjson.dumps(good)), notified(orjson.dumps(good).decode())
    assert as_bytes is not None and as_text is not None and _exact(as_bytes) == _exact(as_text)
    bad: list[Any] = [
        good | {"changed_at": "yesterday"}, good | {"changed_at": ["a"]}, good | {"id": "nope"},
        good | {"todo": row | {"updated_time": "soon"}}, good | {"todo": row | {"created_time": {}}}, "not ours",
        # Bytes that are not UTF-8 (a Latin-1 title).
        orjson.dumps(good | {"todo": row | {"title": "caf\u00e9"}}).decode().encode("latin-1"),
    ]
    for body in bad:
        for _ in range(2):  # and again, once a good parse of the same kind was remembered
            text = body if isinstance(body, (str, bytes)) else orjson.dumps(body).decode()
            assert notified(text) == (2**63 - 1, None)


def test_a_row_updated_in_its_list_reads_with_its_todo_made_when_first_read() -> None:
    """A row updated in its list, as the trigger sends it: its entry's Todo
    is made when something reads it (a row sink reads the snapshot), the
    general read's Todo, once; a time or uuid that does not read still
    sends the hub to the journal."""
    at, list_id = "2026-12-05T06:01:00.5+00:00", "00000000-0000-4000-8000-000000000002"
    row = {"id": "00000000-0000-4000-8000-00000000000b", "title": "t", "completed": True, "list_id": list_id,
           "created_time": at, "updated_time": "2026-12-05T06:01:01+00:00"}
    body = {"position": 9, "op": "updated", "id": row["id"], "changed_at": at, "todo": row, "person": None,
            "list_before": list_id, "list_after": list_id}
    _, entry = notified(orjson.dumps(body).decode())
    _, general = notified(orjson.dumps(body | {"detail": None}).decode())
    assert isinstance(entry, RowEntry) and type(general) is Entry
    assert entry.made is None and entry.row == row
    todo = entry.todo
    assert todo == general.todo and entry.todo is todo and entry.made is todo
    for bad in [row | {"created_time": "soon"}, row | {"updated_time": "later"}, row | {"id": "nope"}]:
        assert notified(orjson.dumps(body | {"todo": bad, "id": bad["id"]}).decode()) == (2**63 - 1, None)


def test_the_hub_reads_every_kind_of_entry_back_as_the_journal_holds_it(db_dsn: str) -> None:
    """The hub's catch-up (repository.notified_changes, each entry's text
    read by the notifications' parse) gives the entries the journal's
    columns give: rows created, updated, moved and deleted, a list's, a
    member's with the nulls of its detail, a reader's arrivals and
    removals, revoked access; in batches, from any position."""
    with psycopg.connect(db_dsn, autocommit=True) as writer:
        ann, ann_list = _person(writer, "ann")
        bob, bob_list = _person(writer, "bob")
        writer.execute("INSERT INTO todos (title, list_id) SELECT 't' || i, %s FROM generate_series(1, 3) i", (ann_list,))
        writer.execute("UPDATE todos SET title = title || '!', completed = true")
        writer.execute("UPDATE todos SET list_id = %s WHERE title = 't1!'", (bob_list,))
        writer.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (ann_list, bob))  # arrivals
        writer.execute("UPDATE list_members SET role = 'editor' WHERE list_id = %s AND person_id = %s", (ann_list, bob))
        writer.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (ann_list, bob))  # removals
        writer.execute("DELETE FROM todos WHERE title = 't2!'")
        writer.execute(
            "INSERT INTO sessions (secret_hash, person_id, expires_time) VALUES ('\\x01', %s, now())", (ann,)
        )
        writer.execute("DELETE FROM sessions WHERE person_id = %s", (ann,))  # access_revoked

    async def read(after: int, limit: int) -> list[list[tuple[Any, ...]]]:
        async with await psycopg.AsyncConnection.connect(db_dsn) as conn:
            columns, through = await _columns(conn, after, 2**63 - 1, limit)
            texts, through_too = await repository.notified_changes(conn, after, 2**63 - 1, limit, journal_entries)
        assert (texts.last, texts.full, through_too) == (columns.last, columns.full, through)
        return [[_exact(e) for e in texts.entries], [_exact(e) for e in columns.entries]]

    whole, journal = asyncio.run(read(0, 1000))
    assert whole == journal
    assert {e[1] for e in journal} >= {
        "list_created", "member_added", "member_updated", "member_removed", "arrived", "removed",
        "created", "updated", "deleted", "access_revoked",
    }
    assert any(e[8] is not None and e[1] == "updated" for e in journal)  # a move
    assert any(e[7] is not None and None in e[7].values() for e in journal)  # a null kept
    batched, journal = asyncio.run(read(5, 4))
    assert batched == journal and [e[0] for e in batched] == [6, 7, 8, 9]
    assert asyncio.run(read(journal[-1][0] + 10**6, 4)) == [[], []]


def test_a_remembered_parse_runs_once_per_text_and_forgets_them_all_at_its_size() -> None:
    parsed: list[str] = []

    def parse(text: str) -> str:
        parsed.append(text)
        return text.upper()

    remembered = _Remembered(parse, size=2)
    assert [remembered[text] for text in "aab"] == ["A", "A", "B"] and parsed == ["a", "b"]
    assert remembered["c"] == "C" and dict(remembered) == {"c": "C"}
    assert remembered["a"] == "A" and parsed == ["a", "b", "c", "a"]


_IDS = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"]
_AT = "2026-12-05T06:01:00.123456+00:00"


# A change of a row's notification that takes it out of the shorter way.
_MISSES: list[tuple[str, Any]] = [
    ("op", "created"), ("op", "deleted"), ("position", "7"), ("position", 7.0), ("position", True),
    ("list_after", _IDS[1]), ("list_after", None), ("person", _IDS[0]), ("todo", None),
    *(("delete", key) for key in ["position", "op", "id", "changed_at", "list_before", "list_after", "person", "todo"]),
]


@st.composite
def _row_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Row notifications as 010's journal_write builds them for a row
    updated in its list (read by notified's shorter way), and near misses."""
    lists = st.sampled_from([None, *_IDS])
    todo = {"id": draw(st.sampled_from(_IDS)), "title": draw(st.sampled_from(["t", 'a "b" \\ \u00e9'])),
            "completed": draw(st.booleans()), "created_time": _AT, "updated_time": _AT}
    if (list_id := draw(st.one_of(lists, st.just("absent")))) != "absent":
        todo["list_id"] = list_id
    before = draw(lists)
    body: dict[str, Any] = {
        "position": 7, "op": "updated", "id": draw(st.sampled_from(_IDS)), "changed_at": _AT,
        "list_before": before, "list_after": before, "person": None, "todo": todo,
    }
    for key, value in draw(st.lists(st.sampled_from(_MISSES), max_size=2)):
        if key == "delete":
            body.pop(value, None)
        else:
            body[key] = value
    return body


@settings(max_examples=400, deadline=None)
@given(body=_row_bodies())
def test_a_row_notification_reads_as_it_does_with_any_other_key(body: dict[str, Any]) -> None:
    """The row's notification read the shorter way (notifications._read) is
    the entry the general read gives the same body with a key that changes
    nothing (a null detail: no shorter way for it), or the same failure."""
    read, general = (notified(orjson.dumps(b).decode()) for b in (body, body | {"detail": None}))
    assert read[0] == general[0]
    assert (None if read[1] is None else _exact(read[1])) == (None if general[1] is None else _exact(general[1]))


def test_each_row_of_a_statement_is_notified_with_a_commit_time_of_its_own(db_dsn: str) -> None:
    """Why a notification's changed_at is parsed, not remembered
    (notifications._read): in trigger mode each row's entry takes
    clock_timestamp() (sql/001), so no two of an UPDATE's share a text,
    while its rows share their updated_time (now()), which is remembered."""
    with psycopg.connect(db_dsn, autocommit=True) as listener, psycopg.connect(db_dsn, autocommit=True) as writer:
        writer.execute("INSERT INTO todos (title) SELECT 't' || i FROM generate_series(1, 5) i")
        listener.execute("LISTEN todo_changes")
        writer.execute("UPDATE todos SET completed = true")
        bodies = [orjson.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=5)]
    assert len({b["changed_at"] for b in bodies}) == 5
    assert len({b["todo"]["updated_time"] for b in bodies}) == 1


def test_a_row_no_one_here_watches_is_its_position_alone_and_every_other_reads_whole() -> None:
    """notified_for: a todo row's notification whose row is not watched is
    its position and UNREAD (its row unread, however it would read; with no
    one watching anything, not even its id parsed); a watched row's, and
    every other notification (a list's, revoked access, a range, a position
    that is no integer, someone else's text), reads as `notified` reads it."""
    watched_id, other_id = uuid.uuid4(), uuid.uuid4()
    head = {"position": 7, "changed_at": "yesterday", "list_before": None, "list_after": None, "person": None}
    for op in ("created", "updated", "deleted"):
        unread = head | {"op": op, "id": str(other_id), "todo": {"id": 1}}
        assert notified_for(orjson.dumps(unread), {watched_id.int}) == (7, UNREAD)
        assert notified_for(orjson.dumps(unread | {"id": "nope"}), {}) == (7, UNREAD)
    at, list_id = "2026-12-06T03:01:00.5+00:00", str(uuid.uuid4())
    row = {"id": str(watched_id), "title": "t", "completed": False, "list_id": list_id, "created_time": at, "updated_time": at}
    watched = head | {"op": "updated", "id": str(watched_id), "changed_at": at, "list_before": list_id,
                      "list_after": list_id, "todo": row}
    others: list[Any] = [
        watched, head | {"op": "list_created", "id": None, "detail": {}},
        head | {"op": "access_revoked", "id": None, "detail": {}},
        head | {"op": "created", "id": str(other_id), "through": 9},
        head | {"op": "created", "id": str(other_id), "position": "7"}, head, [7], 7, "not ours",
    ]
    def said(position: int, entry: Entry | None) -> tuple[int, tuple[Any, ...] | None]:
        return position, None if entry is None else (entry.position, entry.op, entry.todo_id, entry.detail)

    for body in others:
        payload = body if isinstance(body, str) else orjson.dumps(body).decode()
        position, entry = notified_for(payload, {watched_id.int})
        assert entry is not UNREAD and said(position, entry) == said(*notified(payload))
    assert said(*notified_for(orjson.dumps(watched), {watched_id.int})) == (7, (7, "updated", watched_id, None))
