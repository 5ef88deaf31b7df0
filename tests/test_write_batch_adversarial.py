"""Group commit (core/write_batch.py, writes.write_together) tried from
outside: real servers on real sockets, many writers at once, and the
journal read back with psql. Each test checks invariants, never timings:
every accepted write journaled exactly once, at the cursor its reply
carries; refused writes changing nothing, with the code they get alone;
each person's subscribers getting exactly the changes to the lists they
may see, once each, in order; a removed member's edit never journaled
after the removal (docs/design/people.md); no error in the servers' log."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.helpers import TOKEN, Server, errors_logged, make_server, serving, wait_until
from tests.leaks import Wiretap, token
from tests.subscribers import Credential, Subscriber, new_token

PASSWORD = "correct horse battery"
SERVICE = Credential("token", TOKEN, "")

CREATE = (
    "mutation($t: String!, $l: ID, $id: ID) { createTodo(input: {title: $t, listId: $l, id: $id})"
    " { id title completed listId } }"
)
UPDATE = "mutation($id: ID!, $t: String, $c: Boolean) { updateTodo(id: $id, input: {title: $t, completed: $c}) { id title completed } }"
DELETE = "mutation($id: ID!) { deleteTodo(id: $id) { id title } }"
TOGGLE = "mutation($c: Boolean!, $l: ID) { toggleAll(completed: $c, listId: $l) { id title completed } }"
CLEAR = "mutation($l: ID) { clearCompleted(listId: $l) { id title } }"


@dataclass
class Reply:
    """What one write was answered: its kind, what it sent, its HTTP status,
    its error code (None: accepted), its cursor and the rows it returned."""

    kind: str
    title: str | None
    status: int
    code: str | None
    cursor: int | None
    rows: list[dict[str, Any]]
    expect: tuple[str | None, ...]  # the codes it may get (None: accepted)
    row_id: str | None = None


@dataclass
class Person:
    """A signed-up person: their id, default list and a personal access token."""

    username: str
    id: str
    default_list: str
    credential: Credential
    lists: set[str] = field(default_factory=set)


def sign_up(server: Server, username: str) -> Person:
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}, timeout=10) as http:
        response = http.post("/api/auth/sign-up", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        person_id = response.json()["person"]["id"]
        lists = http.post("/graphql", json={"query": "{ lists { id isDefault } }"}).json()["data"]["lists"]
        default = next(entry["id"] for entry in lists if entry["isDefault"])
        return Person(username, person_id, default, new_token(http, f"{username}-writer"), {default})


class Writer:
    """One person's HTTP client on one server: GraphQL and REST writes, each
    reply recorded with the codes it may get."""

    def __init__(self, base_url: str, credential: Credential | None = None) -> None:
        """`credential` None: an open server's client."""
        headers = {} if credential is None else credential.headers()
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=20)
        self.replies: list[Reply] = []

    def close(self) -> None:
        self.http.close()

    def graphql(self, kind: str, query: str, expect: tuple[str | None, ...], title: str | None = None,
                row_id: str | None = None, **variables: Any) -> Reply:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        cursor = (body.get("extensions") or {}).get("cursor")
        # A request refused before GraphQL ran (the guard's credential check, say) carries REST's error object.
        code = body["errors"][0]["extensions"]["code"] if body.get("errors") else (body.get("error") or {}).get("code")
        data = next(iter((body.get("data") or {None: None}).values()))
        rows = [] if data is None else data if isinstance(data, list) else [data]
        reply = Reply(kind, title, response.status_code, code, None if cursor is None else int(cursor), rows, expect, row_id)
        self.replies.append(reply)
        return reply

    def rest(self, kind: str, method: str, path: str, expect: tuple[str | None, ...], title: str | None = None,
             row_id: str | None = None, body: dict[str, Any] | None = None) -> Reply:
        response = self.http.request(method, path, json=body)
        cursor = response.headers.get("journal-cursor")
        payload = response.json() if response.content else {}
        ok = response.status_code < 400
        code = None if ok else (payload.get("error") or {}).get("code")
        rows = [payload] if ok and payload else []
        reply = Reply(kind, title, response.status_code, code, None if cursor is None else int(cursor), rows, expect, row_id)
        self.replies.append(reply)
        return reply


class Crew:
    """A test's writers: each made with its own seeded random choices; their replies read together."""

    def __init__(self) -> None:
        self.writers: list[Writer] = []

    def writer(self, base_url: str, credential: Credential | None = None, seed: int = 0) -> tuple[Writer, random.Random]:
        writer = Writer(base_url, credential)
        self.writers.append(writer)
        return writer, random.Random(seed)

    def close(self) -> list[Reply]:
        """Close every client; every reply they got."""
        for writer in self.writers:
            writer.close()
        return [reply for writer in self.writers for reply in writer.replies]


@dataclass(frozen=True)
class Entry:
    position: int
    op: str
    todo_id: str | None
    title: str | None
    completed: bool | None
    list_before: str | None
    list_after: str | None
    person_id: str | None


def journal(dsn: str, after: int = 0) -> list[Entry]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT position, op, todo_id::text, todo->>'title', (todo->>'completed')::boolean,"
            " list_before::text, list_after::text, person_id::text FROM todo_changes WHERE position > %s ORDER BY position",
            (after,),
        ).fetchall()
    return [Entry(*row) for row in rows]


def newest(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()
    assert row is not None
    return int(row[0])


def run_together(workers: list[Callable[[], None]], timeout: float = 60) -> None:
    """Run each in a thread of its own, started together; re-raise the first failure."""
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            start.wait(10)
            work()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(work,), daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a writer did not finish: a batch stuck?"
    if failures:
        raise failures[0]


def check_replies(replies: list[Reply], entries: list[Entry], ceiling: int) -> None:
    """Each reply against the journal: a refused write got a code it may get
    and changed nothing; an accepted one is journaled exactly once, at the
    cursor its reply carries (a write that changed nothing: a cursor not above
    the journal's newest)."""
    by_position = {entry.position: entry for entry in entries}
    # The entries that gave a row a title it did not have (a toggle's entry
    # carries the title a write gave before): each write's titles are its own.
    titles: dict[str, list[Entry]] = {}
    last: dict[str | None, str | None] = {}
    for entry in entries:
        if entry.title is not None and entry.op in ("created", "updated") and last.get(entry.todo_id) != entry.title:
            titles.setdefault(entry.title, []).append(entry)
        last[entry.todo_id] = entry.title
    cursors: dict[int, Reply] = {}
    for reply in replies:
        assert reply.status < 500 or (reply.status, reply.code) == (503, "DATABASE_UNAVAILABLE"), reply
        assert reply.code in reply.expect, reply
        if reply.code == "DATABASE_UNAVAILABLE":
            continue  # its commit may have happened: journaled at most once (checked by its test)
        if reply.code is not None:
            if reply.title is not None:
                assert reply.title not in titles, f"a refused write was journaled: {reply} {titles[reply.title]}"
            continue
        assert reply.cursor is not None and reply.cursor <= ceiling, reply
        if reply.kind in ("create", "update", "rest-create", "rest-update"):
            [row] = reply.rows
            op = "created" if "create" in reply.kind else "updated"
            made = titles.get(reply.title or "", [])
            assert len(made) == 1, f"journaled {len(made)} times: {reply} {made}"
            [entry] = made
            assert (entry.op, entry.todo_id, entry.position) == (op, row["id"], reply.cursor), (reply, entry)
        elif reply.kind in ("delete", "rest-delete"):
            deleted = [e for e in entries if e.op == "deleted" and e.todo_id == reply.row_id]
            assert len(deleted) == 1, (reply, deleted)
            assert deleted[0].position == reply.cursor, (reply, deleted)
        elif reply.rows:  # a list-wide write that changed rows: its cursor is its last row's entry
            entry = by_position[reply.cursor]
            assert entry.todo_id in {row["id"] for row in reply.rows}, (reply, entry)
            op = "deleted" if reply.kind == "clear" else "updated"
            for row in reply.rows:
                mine = [e for e in entries if e.todo_id == row["id"] and e.op == op and e.position <= reply.cursor]
                assert mine, (reply, row)
        if reply.kind in ("create", "update", "delete", "rest-create", "rest-update", "rest-delete") or reply.rows:
            assert reply.cursor not in cursors, f"two writes answered one cursor: {reply} {cursors[reply.cursor]}"
            cursors[reply.cursor] = reply


def check_subscribers(subscribers: Sequence[tuple[Subscriber, set[str] | None]], entries: list[Entry], after: int) -> None:
    """Each got exactly the row changes of its lists (None: every list) after `after`, once each, in order."""
    for subscriber, lists in subscribers:
        wanted = [
            e.position for e in entries
            if e.position > after and e.op in ("created", "updated", "deleted")
            and (lists is None or e.list_after in lists or e.list_before in lists)
        ]
        if wanted:
            subscriber.wait_for(wanted[-1])
        got = [event.cursor for event in subscriber.events if event.cursor <= (wanted[-1] if wanted else after)]
        assert not subscriber.unexpected, subscriber.unexpected
        assert got == wanted, (
            f"{subscriber.transport} of {subscriber.tap.person}: missing {sorted(set(wanted) - set(got))},"
            f" extra {sorted(set(got) - set(wanted))}, {len(got)} got, {len(wanted)} wanted"
        )


def subscribe(server: Server, person: str, credential: Credential, after: int, transport: str) -> Subscriber:
    subscriber = Subscriber(server.url, transport, credential, after, Wiretap(person))
    subscriber.wait_until_connected()
    assert not subscriber.ended.is_set(), (subscriber.ending, subscriber.unexpected)
    return subscriber


def graphql_as(server: Server, credential: Credential, query: str, **variables: Any) -> Any:
    response = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables},
                          headers=credential.headers(), timeout=10)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_many_writers_of_many_people_on_two_servers_each_journaled_once_at_its_cursor(accounts: Server) -> None:
    """Creates, updates of shared rows, deletes, toggleAll, clearCompleted,
    GraphQL and REST, from three people and the service token on two servers
    of one database, with refusals among them (a viewer's edit, a stranger's,
    a taken id, a malformed id, a row deleted twice)."""
    ann, bob, carol, dave = (sign_up(accounts, name) for name in ("ann", "bob", "carol", "dave"))
    shared = graphql_as(accounts, ann.credential, "mutation { createList(input: {name: \"shared\"}) { id } }")
    shared_id = shared["createList"]["id"]
    share = "mutation($id: ID!, $u: String!, $r: Role!) { shareList(id: $id, username: $u, role: $r) { role } }"
    graphql_as(accounts, ann.credential, share, id=shared_id, u="bob", r="EDITOR")
    graphql_as(accounts, ann.credential, share, id=shared_id, u="carol", r="VIEWER")
    for person in (ann, bob, carol):
        person.lists.add(shared_id)
    seeded = [
        graphql_as(accounts, ann.credential, CREATE, t=token("seed"), l=shared_id, id=None)["createTodo"]["id"]
        for _ in range(8)
    ]
    start = newest(accounts.dsn)
    with serving(accounts.dsn, auth="accounts", token=TOKEN) as other, errors_logged() as errors:
        subscribers = [
            (subscribe(server, person.username, person.credential, start, transport), person.lists)
            for person in (ann, bob, carol, dave)
            for server, transport in ((accounts, "graphql-transport-ws"), (other, "rest-sse"))
        ] + [(subscribe(other, "service", SERVICE, start, "graphql-transport-ws"), None)]
        crew = Crew()

        def editor(person: Person, server: Server, seed: int) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, person.credential, seed=seed)

            def work() -> None:
                mine: list[str] = []
                for _ in range(24):
                    choice = rng.randrange(10)
                    title = token(person.username)
                    if choice == 0:
                        reply = writer.graphql("create", CREATE, (None,), title, t=title, l=shared_id, id=str(uuid.uuid4()))
                        mine.append(reply.rows[0]["id"])
                    elif choice == 1:
                        reply = writer.rest("rest-create", "POST", "/api/todos/", (None,), title, body={"title": title})
                        mine.append(reply.rows[0]["id"])
                    elif choice in (2, 3):
                        row = rng.choice(seeded)
                        writer.graphql("update", UPDATE, (None,), title, row, id=row, t=title)
                    elif choice == 4:
                        row = rng.choice(seeded)
                        writer.rest("rest-update", "PATCH", f"/api/todos/{row}/", (None,), title, row,
                                    {"title": title, "completed": rng.random() < 0.5})
                    elif choice == 5 and mine:
                        row = mine.pop(rng.randrange(len(mine)))
                        if rng.random() < 0.5:
                            writer.graphql("delete", DELETE, (None, "NOT_FOUND"), None, row, id=row)
                            writer.graphql("delete-again", DELETE, ("NOT_FOUND",), None, row, id=row)
                        else:
                            writer.rest("rest-delete", "DELETE", f"/api/todos/{row}/", (None, "NOT_FOUND"), None, row)
                            writer.rest("delete-again", "DELETE", f"/api/todos/{row}/", ("NOT_FOUND",), None, row)
                    elif choice == 6:
                        writer.graphql("toggle", TOGGLE, (None,), c=rng.random() < 0.5, l=rng.choice((shared_id, person.default_list)))
                    elif choice == 7:
                        writer.graphql("clear", CLEAR, (None,), l=person.default_list)
                    elif choice == 8:
                        # A taken id: CONFLICT, alone or in a batch.
                        writer.graphql("create-taken", CREATE, ("CONFLICT",), title, t=title, l=shared_id,
                                       id=rng.choice(seeded))
                    else:
                        writer.graphql("bad-id", UPDATE, ("BAD_USER_INPUT",), title, id="not-an-id", t=title)
            return work

        def refused(person: Person, server: Server, codes: tuple[str | None, ...], seed: int) -> Callable[[], None]:
            """A viewer's (FORBIDDEN) or a stranger's (NOT_FOUND) edits of the shared list."""
            writer, rng = crew.writer(server.url, person.credential, seed=seed)

            def work() -> None:
                for _ in range(16):
                    title = token(person.username)
                    row = rng.choice(seeded)
                    if rng.random() < 0.5:
                        writer.graphql("update", UPDATE, codes, title, row, id=row, t=title)
                    else:
                        writer.graphql("create", CREATE, codes, title, t=title, l=shared_id, id=None)
                    # Their own list they may edit.
                    writer.graphql("create", CREATE, (None,), title + "own", t=title + "own", l=None, id=None)
            return work

        def service(server: Server, seed: int) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, SERVICE, seed=seed)

            def work() -> None:
                for _ in range(16):
                    title = token("svc")
                    row = rng.choice(seeded)
                    writer.graphql("update", UPDATE, (None,), title, row, id=row, t=title, c=rng.random() < 0.5)
                    writer.graphql("create", CREATE, (None,), title + "n", t=title + "n", l=shared_id, id=None)
            return work

        run_together([
            editor(ann, accounts, 1), editor(ann, other, 2), editor(bob, accounts, 3), editor(bob, other, 4),
            refused(carol, accounts, ("FORBIDDEN",), 5), refused(dave, other, ("NOT_FOUND",), 6), service(accounts, 7),
        ])
        replies = crew.close()
        ceiling = newest(accounts.dsn)
        entries = journal(accounts.dsn)
        # A create of another's title fixes each reply's title: creates' "own" titles are theirs.
        for reply in replies:
            if reply.kind == "create" and reply.code is None and reply.rows and reply.title != reply.rows[0]["title"]:
                raise AssertionError(f"a create answered another row: {reply}")
        check_replies(replies, entries, ceiling)
        check_subscribers(subscribers, entries, start)
        # Readers resuming from cursors the writes were answered: each misses nothing after it, sees nothing twice.
        cursors = sorted({reply.cursor for reply in replies if reply.cursor is not None and reply.code is None})
        for after in random.Random(8).sample(cursors, 3):
            resumed = subscribe(other, "service", SERVICE, after, "rest-sse")
            check_subscribers([(resumed, None)], entries, after)
            resumed.close()
        for subscriber, _ in subscribers:
            subscriber.close()
        assert errors == []
    positions = [entry.position for entry in entries]
    assert positions == sorted(set(positions))


def shared_list(server: Server, owner: Person, editors: list[Person], rows: int) -> tuple[str, list[str]]:
    """A list of owner's shared with editors, and `rows` rows of it."""
    made = graphql_as(server, owner.credential, "mutation { createList(input: {name: \"shared\"}) { id } }")
    list_id = made["createList"]["id"]
    share = "mutation($id: ID!, $u: String!) { shareList(id: $id, username: $u, role: EDITOR) { role } }"
    for editor in editors:
        graphql_as(server, owner.credential, share, id=list_id, u=editor.username)
        editor.lists.add(list_id)
    owner.lists.add(list_id)
    seeded = [
        graphql_as(server, owner.credential, CREATE, t=token("seed"), l=list_id, id=None)["createTodo"]["id"]
        for _ in range(rows)
    ]
    return list_id, seeded


REMOVE = "mutation($l: ID!, $p: ID!) { removeMember(listId: $l, personId: $p) { role } }"
DEMOTE = "mutation($l: ID!, $p: ID!) { setMemberRole(listId: $l, personId: $p, role: VIEWER) { role } }"


@pytest.mark.parametrize("change", ["remove", "demote"])
def test_a_member_losing_the_right_while_their_writes_are_batched_is_never_journaled_after(
    accounts: Server, change: str
) -> None:
    """people.md: an edit lands before the removal (or demotion) that
    follows it in the journal, or is refused; never journaled after it as
    the member's. Bob writes from four clients on two servers, Ann beside
    him, while Ann takes his right away."""
    ann, bob = sign_up(accounts, "ann"), sign_up(accounts, "bob")
    list_id, seeded = shared_list(accounts, ann, [bob], 6)
    refusal = "NOT_FOUND" if change == "remove" else "FORBIDDEN"
    start = newest(accounts.dsn)
    with serving(accounts.dsn, auth="accounts", token=TOKEN) as other, errors_logged() as errors:
        subscribers = [
            (subscribe(server, "bob", bob.credential, start, transport), None)
            for server, transport in ((accounts, "graphql-transport-ws"), (other, "rest-sse"))
        ]
        crew = Crew()
        accepted = threading.Semaphore(0)
        changed = threading.Event()

        def bob_writes(server: Server, seed: int) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, bob.credential, seed=seed)

            def work() -> None:
                refused = 0
                deadline = time.monotonic() + 15
                while refused < 4 and time.monotonic() < deadline:
                    title = token("bob")
                    if rng.random() < 0.5:
                        row = rng.choice(seeded)
                        reply = writer.graphql("update", UPDATE, (None, refusal), title, row, id=row, t=title)
                    else:
                        reply = writer.graphql("create", CREATE, (None, refusal), title, t=title, l=list_id, id=None)
                    if reply.code is None:
                        accepted.release()
                    elif changed.is_set():
                        refused += 1
            return work

        def ann_writes(server: Server, seed: int, takes: bool) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, ann.credential, seed=seed)

            def work() -> None:
                for _ in range(12):
                    title = token("ann")
                    row = rng.choice(seeded)
                    writer.graphql("update", UPDATE, (None,), title, row, id=row, t=title)
                if takes:
                    for _ in range(8):  # bob has some in flight: take his right away
                        assert accepted.acquire(timeout=10), "bob's writes were not accepted before the change"
                    query = REMOVE if change == "remove" else DEMOTE
                    graphql_as(server, ann.credential, query, l=list_id, p=bob.id)
                    changed.set()
                for _ in range(12):
                    title = token("ann")
                    row = rng.choice(seeded)
                    writer.graphql("update", UPDATE, (None,), title, row, id=row, t=title)
            return work

        run_together([
            bob_writes(accounts, 1), bob_writes(accounts, 2), bob_writes(other, 3), bob_writes(other, 4),
            ann_writes(accounts, 5, True), ann_writes(other, 6, False),
        ])
        replies = crew.close()
        entries = journal(accounts.dsn)
        op = "member_removed" if change == "remove" else "member_updated"
        [taken] = [e.position for e in entries if e.op == op and e.person_id == bob.id]
        check_replies(replies, entries, newest(accounts.dsn))
        late = [e for e in entries if e.position > taken and e.title is not None and e.title.startswith("bob")
                and e.op in ("created", "updated") and e.list_after == list_id]
        # A title bob gave a row may ride on a later entry of ann's (her update
        # of another column keeps it): only the entries that gave it count.
        introduced = {e.title for e in entries if e.position < taken and e.title is not None}
        assert [e for e in late if e.title not in introduced] == [], "bob's edit journaled after his right was taken"
        bobs = [r for r in replies if r.title is not None and r.title.startswith("bob") and r.code is None]
        assert bobs and all(r.cursor is not None and r.cursor < taken for r in bobs), [
            r for r in bobs if r.cursor is None or r.cursor >= taken
        ]
        assert any(r.code == refusal for r in replies), "no write of bob's came after the change"
        # Bob's subscribers: the shared list's changes up to his removal, and nothing of it after.
        wanted = {
            e.position for e in entries if e.position > start and (
                (e.op in ("created", "updated", "deleted") and e.list_after == list_id
                 and (change == "demote" or e.position < taken))
                or (e.op in ("created", "updated", "deleted") and e.list_after == bob.default_list)
            )
        }
        for subscriber, _ in subscribers:
            if wanted:
                subscriber.wait_for(max(wanted))
            got = [event.cursor for event in subscriber.events if event.op in ("created", "updated", "deleted")]
            assert len(got) == len(set(got)) and got == sorted(got), subscriber.transport
            assert set(got) & wanted == wanted and not {g for g in got if g > taken} - wanted, (
                subscriber.transport, sorted(wanted - set(got)), sorted({g for g in got if g > taken} - wanted)
            )
            subscriber.close()
        assert errors == []


def test_psql_writers_holding_row_locks_beside_batches_surface_no_error(accounts: Server) -> None:
    """Plain psycopg transactions lock and change the rows the app's batches
    write (a short hold, a long one, one that takes the commit-order lock
    early by journaling at once): the batches that would wait on them are
    rolled back and run alone; every HTTP write is answered, journaled once
    at its cursor; no psql transaction meets a deadlock."""
    ann = sign_up(accounts, "ann")
    list_id, seeded = shared_list(accounts, ann, [], 6)
    stop = threading.Event()
    psql_titles: list[str] = []

    def psql(kind: str) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(kind)
            with psycopg.connect(accounts.dsn, autocommit=True) as conn:
                while not stop.is_set():
                    row = rng.choice(seeded)
                    title = token("psql")
                    # One row each: two would deadlock with a list-wide write of the app's
                    # run alone (it locks rows in its scan's order), batches or not.
                    with conn.transaction():
                        conn.execute("SELECT FROM todos WHERE id = %s FOR UPDATE", (row,))
                        conn.execute("SELECT pg_sleep(%s)", (0.3 if kind == "long" else 0.02,))
                        if kind == "early":
                            # Journals at the statement's end: holds the commit-order lock from there.
                            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
                        conn.execute("UPDATE todos SET title = %s, completed = NOT completed WHERE id = %s", (title, row))
                        if kind == "early":
                            conn.execute("SELECT pg_sleep(0.05)")
                    psql_titles.append(title)
        return work

    crew = Crew()

    def app(seed: int, rounds: int) -> Callable[[], None]:
        writer, rng = crew.writer(accounts.url, ann.credential, seed=seed)

        def work() -> None:
            for _ in range(rounds):
                title = token("app")
                row = rng.choice(seeded)
                if rng.random() < 0.6:
                    writer.graphql("update", UPDATE, (None,), title, row, id=row, t=title)
                elif rng.random() < 0.5:
                    writer.rest("rest-update", "PATCH", f"/api/todos/{row}/", (None,), title, row, {"title": title})
                elif rng.random() < 0.5:
                    writer.graphql("toggle", TOGGLE, (None,), c=rng.random() < 0.5, l=list_id)
                else:
                    writer.graphql("create", CREATE, (None,), title, t=title, l=list_id, id=None)
            stop.set()
        return work

    with errors_logged() as errors:
        run_together([psql("short"), psql("long"), psql("early"), *(app(seed, 30) for seed in range(5))])
        replies = crew.close()
        entries = journal(accounts.dsn)
        check_replies(replies, entries, newest(accounts.dsn))
        for title in psql_titles:
            assert len([e for e in entries if e.title == title and e.op == "updated"]) >= 1, title
        assert errors == []


def test_clients_gone_mid_write_leave_each_write_applied_at_most_once_and_no_batch_stuck(accounts: Server) -> None:
    """Clients that send a create naming its id and hang up at once (a reset,
    a close, a read timeout), beside clients that wait: each row is made at
    most once and journaled once if made; later writes are still answered;
    nothing is logged at ERROR."""
    ann = sign_up(accounts, "ann")
    ids = [str(uuid.uuid4()) for _ in range(80)]
    secret = ann.credential.secret

    def hang_up(chunk: list[str], how: str) -> Callable[[], None]:
        def work() -> None:
            for todo_id in chunk:
                body = httpx.Request("POST", f"{accounts.url}/graphql", json={
                    "query": CREATE, "variables": {"t": token("gone"), "id": todo_id, "l": None},
                }).read()
                head = (
                    f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                if how == "socket":
                    # A mutation over graphql-transport-ws, the socket closed under it: its operation is cancelled.
                    with connect(
                        accounts.ws_url + "/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
                    ) as ws:
                        ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {secret}"}}))
                        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"
                        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                            "query": CREATE, "variables": {"t": token("gone"), "id": todo_id, "l": None},
                        }}))
                    continue
                if how == "timeout":
                    with httpx.Client(base_url=accounts.url, headers=ann.credential.headers(), timeout=0.001) as http:
                        try:
                            http.post("/graphql", json={"query": CREATE, "variables": {"t": token("gone"), "id": todo_id}})
                        except httpx.TimeoutException:
                            pass
                    continue
                sock = socket.create_connection(("127.0.0.1", accounts.port))
                if how == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.sendall(head + body)
                sock.close()
        return work

    crew = Crew()

    def waits(seed: int) -> Callable[[], None]:
        writer, _ = crew.writer(accounts.url, ann.credential)

        def work() -> None:
            for _ in range(25):
                title = token("stays")
                writer.graphql("create", CREATE, (None,), title, t=title, l=None, id=str(uuid.uuid4()))
        return work

    with errors_logged() as errors:
        run_together([
            hang_up(ids[0:20], "reset"), hang_up(ids[20:40], "close"),
            hang_up(ids[40:60], "timeout"), hang_up(ids[60:80], "socket"),
            waits(1), waits(2), waits(3),
        ])
        # Still answered, at once and after whatever the gone clients left running.
        after, _ = crew.writer(accounts.url, ann.credential)
        title = token("after")
        after.graphql("create", CREATE, (None,), title, t=title, l=None, id=None)

        def settled() -> bool:
            with psycopg.connect(accounts.dsn) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                    " AND state = 'active' AND pid <> pg_backend_pid()"
                                    " AND application_name <> 'graphql-todos listener'").fetchone() == (0,)
        wait_until(settled, timeout=10)
        replies = crew.close()
        entries = journal(accounts.dsn)
        with psycopg.connect(accounts.dsn) as conn:
            rows = {row[0] for row in conn.execute("SELECT id::text FROM todos").fetchall()}
        for todo_id in ids:
            created = [e for e in entries if e.todo_id == todo_id and e.op == "created"]
            assert len(created) == (1 if todo_id in rows else 0), (todo_id, created)
        check_replies(replies, entries, newest(accounts.dsn))
        assert errors == []


def test_batches_whose_connections_are_cut_never_apply_a_write_twice(accounts: Server) -> None:
    """psql ends the app's pooled connections (pg_terminate_backend) while
    batches run on them: a write is answered as applied (journaled once, at
    its cursor) or DATABASE_UNAVAILABLE (journaled at most once), never run
    again after a commit that happened (a create naming its id would then
    meet its own row: CONFLICT), never a 500."""
    ann = sign_up(accounts, "ann")
    stop = threading.Event()
    cut: list[int] = []

    def terminator() -> None:
        with psycopg.connect(accounts.dsn, autocommit=True) as conn:
            while not stop.is_set():
                ended = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = 'graphql-todos'"
                    " AND state <> 'idle' AND pid <> pg_backend_pid()"
                ).fetchone()
                cut.append(int(ended[0]) if ended else 0)
                time.sleep(0.005)  # a pace, not an assertion

    crew = Crew()

    def creates(seed: int) -> Callable[[], None]:
        writer, rng = crew.writer(accounts.url, ann.credential, seed=seed)

        def work() -> None:
            try:
                for _ in range(40):
                    title = token("cut")
                    named = str(uuid.uuid4()) if rng.random() < 0.5 else None
                    writer.graphql("create", CREATE, (None, "DATABASE_UNAVAILABLE"), title, named, t=title, l=None, id=named)
            finally:
                if seed == 0:
                    stop.set()
        return work

    with errors_logged() as errors:
        run_together([terminator, *(creates(seed) for seed in range(6))])
    assert errors == []
    replies = crew.close()
    assert sum(cut) > 0, "no connection was cut: the test tried nothing"
    entries = journal(accounts.dsn)
    check_replies(replies, entries, newest(accounts.dsn))
    for reply in replies:
        made = [e for e in entries if e.op == "created" and e.title == reply.title]
        assert len(made) <= 1, (reply, made)
        if reply.row_id is not None and made:
            assert made[0].todo_id == reply.row_id


# A batch's COMMIT as PostgreSQL answers it: CommandComplete, tag "COMMIT".
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"


class CommitCutter:
    """A TCP proxy between the app and PostgreSQL that, while armed, ends a
    connection the moment PostgreSQL answers a COMMIT, before the app reads
    it: the commit happened and its answer is lost (only a batch commits by
    COMMIT; the app's other statements run in autocommit)."""

    def __init__(self, dsn: str) -> None:
        target = psycopg.conninfo.conninfo_to_dict(dsn)
        host, port = str(target.get("host") or "/tmp"), int(target.get("port") or 5432)
        self.target: tuple[int, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.dsn = psycopg.conninfo.make_conninfo(dsn, host="127.0.0.1", port=self.listener.getsockname()[1], sslmode="disable")
        self.armed = threading.Event()
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(self.target[0], socket.SOCK_STREAM)
            server.connect(self.target[1])
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.armed.is_set() and COMMIT_DONE in data:
                    self.cuts += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.close()


def test_a_batch_whose_commit_answer_is_lost_answers_unavailable_and_runs_nothing_again(db_dsn: str) -> None:
    """The connection ends after PostgreSQL committed a batch and before the
    app read the answer: its writes are answered DATABASE_UNAVAILABLE (the
    commit may have happened), each journaled exactly once, none run again
    (a create naming its id would meet its own row: CONFLICT; one without
    would be made twice)."""
    cutter = CommitCutter(db_dsn)
    try:
        with serving(cutter.dsn) as server:
            crew = Crew()

            def creates(seed: int) -> Callable[[], None]:
                writer, rng = crew.writer(server.url, seed=seed)

                def work() -> None:
                    for _ in range(15):
                        title = token("cut")
                        named = str(uuid.uuid4()) if rng.random() < 0.5 else None
                        writer.graphql(
                            "create", CREATE, (None, "DATABASE_UNAVAILABLE"), title, named, t=title, l=None, id=named
                        )
                return work

            cutter.armed.set()
            run_together([creates(seed) for seed in range(6)])
            cutter.armed.clear()
            replies = crew.close()
        assert cutter.cuts > 0, "no batch's commit was cut: the test tried nothing"
    finally:
        cutter.close()
    entries = journal(db_dsn)
    assert any(reply.code == "DATABASE_UNAVAILABLE" for reply in replies)
    check_replies(replies, entries, newest(db_dsn))
    for reply in replies:
        made = [e for e in entries if e.op == "created" and e.title == reply.title]
        # Every commit happened (the cut comes after it): each write journaled exactly once.
        assert len(made) == 1, (reply, made)


TODOS = "{ todos { id title completed } }"


@pytest.mark.parametrize("pool_size", [1, 3])
def test_each_writer_reads_its_own_write_at_once_through_the_response_cache(db_dsn: str, pool_size: int) -> None:
    """Writers that read right after each write (GraphQL `todos`, REST's
    list: both kept by the response cache) see it, on a pool as small as one
    connection (the batch's) with writes refused and batches failing beside
    them (a taken id rolls its batch back: each of its writes runs alone)."""
    with serving(db_dsn, pool_size=pool_size) as server, errors_logged() as errors:
        crew = Crew()
        taken, _ = crew.writer(server.url)
        seeded = taken.graphql("create", CREATE, (None,), "seed", t="seed", l=None, id=None).rows[0]["id"]

        def work_of(seed: int) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, seed=seed)

            def work() -> None:
                for _ in range(15):
                    title = token("mine")
                    row = writer.graphql("create", CREATE, (None,), title, t=title, l=None, id=str(uuid.uuid4()))
                    todo_id = row.rows[0]["id"]
                    assert {"id": todo_id, "title": title, "completed": False} in writer.http.post(
                        "/graphql", json={"query": TODOS}
                    ).json()["data"]["todos"], "a write not read right after its reply"
                    changed = token("changed")
                    writer.rest("rest-update", "PATCH", f"/api/todos/{todo_id}/", (None,), changed, todo_id,
                                {"title": changed, "completed": True})
                    assert any(
                        t["id"] == todo_id and t["title"] == changed for t in writer.http.get("/api/todos/").json()
                    ), "an update not read right after its reply"
                    if rng.random() < 0.3:
                        writer.graphql("create-taken", CREATE, ("CONFLICT",), token("taken"), t="x", l=None, id=seeded)
                    if rng.random() < 0.3:
                        writer.graphql("update", UPDATE, ("NOT_FOUND",), None, id=str(uuid.uuid4()), t="gone")
            return work

        run_together([work_of(seed) for seed in range(5)])
        replies = crew.close()
        check_replies(replies, journal(db_dsn), newest(db_dsn))
        assert errors == []


def test_writes_racing_the_deletion_of_their_list_leave_no_row_behind_and_journal_before_it(accounts: Server) -> None:
    """Ann deletes the shared list while she and Bob write into it, on two
    servers: every accepted write is journaled before the list's deletion,
    every row the list held is gone with a `deleted` entry after its
    `created` one, and the writes after it are NOT_FOUND."""
    ann, bob = sign_up(accounts, "ann"), sign_up(accounts, "bob")
    list_id, seeded = shared_list(accounts, ann, [bob], 6)
    deleted = threading.Event()
    accepted = threading.Semaphore(0)
    with serving(accounts.dsn, auth="accounts", token=TOKEN) as other, errors_logged() as errors:
        crew = Crew()

        def writes(person: Person, server: Server, seed: int) -> Callable[[], None]:
            writer, rng = crew.writer(server.url, person.credential, seed=seed)

            def work() -> None:
                refused = 0
                deadline = time.monotonic() + 15
                while refused < 3 and time.monotonic() < deadline:
                    title = token(person.username)
                    row = rng.choice(seeded)
                    kind = rng.randrange(3)
                    if kind == 0:
                        reply = writer.graphql("update", UPDATE, (None, "NOT_FOUND"), title, row, id=row, t=title)
                    elif kind == 1:
                        reply = writer.graphql("create", CREATE, (None, "NOT_FOUND"), title, t=title, l=list_id, id=None)
                    else:
                        reply = writer.graphql("toggle", TOGGLE, (None, "NOT_FOUND"), c=rng.random() < 0.5, l=list_id)
                    if reply.code is None:
                        accepted.release()
                    elif deleted.is_set():
                        refused += 1
            return work

        def deletes() -> None:
            for _ in range(10):
                assert accepted.acquire(timeout=10), "no write accepted before the deletion"
            graphql_as(accounts, ann.credential, "mutation($id: ID!) { deleteList(id: $id) { id } }", id=list_id)
            deleted.set()

        run_together([
            writes(ann, accounts, 1), writes(bob, accounts, 2), writes(ann, other, 3), writes(bob, other, 4), deletes,
        ])
        replies = crew.close()
        entries = journal(accounts.dsn)
        [gone] = [e.position for e in entries if e.op == "list_deleted" and e.list_before == list_id or
                  e.op == "list_deleted" and e.list_after == list_id]
        check_replies(replies, entries, newest(accounts.dsn))
        assert all(r.cursor is not None and r.cursor < gone for r in replies if r.code is None and r.rows), [
            r for r in replies if r.code is None and r.rows and (r.cursor is None or r.cursor >= gone)
        ]
        with psycopg.connect(accounts.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM todos WHERE list_id = %s", (list_id,)).fetchone() == (0,)
        made = {e.todo_id: e.position for e in entries if e.op == "created" and e.list_after == list_id}
        ended = {e.todo_id: e.position for e in entries if e.op == "deleted" and e.list_before == list_id}
        assert made.keys() == ended.keys(), "a row of the list left without its deletion journaled"
        assert all(made[key] < ended[key] for key in made)
        assert errors == []


def test_a_server_stopping_while_batches_run_logs_no_error_and_applies_each_write_at_most_once(db_dsn: str) -> None:
    """SIGTERM's path (uvicorn told to exit) while writers keep writing: the
    batches under way end (their writes answered, or the connection closed
    on the client), nothing is logged at ERROR (no task destroyed pending,
    no traceback), and no write is journaled twice."""
    server = make_server(db_dsn)
    server.start()
    stopped = False
    titles: list[str] = []
    answered = threading.Semaphore(0)
    try:
        with errors_logged() as errors:
            def writes() -> None:
                with httpx.Client(base_url=server.url, timeout=20) as http:
                    while True:
                        title = token("stop")
                        titles.append(title)
                        try:
                            http.post("/graphql", json={"query": CREATE, "variables": {"t": title, "id": None, "l": None}})
                        except httpx.TransportError:
                            return  # the server went away
                        answered.release()

            def stops() -> None:
                nonlocal stopped
                for _ in range(30):
                    assert answered.acquire(timeout=10)
                server.stop()
                stopped = True

            run_together([writes, writes, writes, writes, stops])
            assert errors == []
    finally:
        if not stopped:
            server.stop()
    entries = journal(db_dsn)
    for title in titles:
        assert len([e for e in entries if e.op == "created" and e.title == title]) <= 1, title
