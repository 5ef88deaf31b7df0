"""The oracle of tests/test_visibility_oracle.py: its own model of people,
lists, members and rows; the journal entries each operation commits, checked
against the journal read back (which gives them their positions); and what
each person may see of them, by the design's view
(docs/design/prototypes/visibility.py, not the package's: the oracle is no
copy of what it checks)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import psycopg
from hypothesis import strategies as st

from tests.helpers import ROOT
from tests.leaks import Leaks, Wiretap, token
from tests.subscribers import FEEDS, TRANSPORTS, Credential, Event, FeedEvent, Subscriber, new_token, sign_in

T = TypeVar("T")
PASSWORD = "correct horse battery"


def _prototype_view() -> Any:
    """The design's per-reader view (not the package's: the oracle is no copy of what it checks)."""
    path = ROOT / "docs" / "design" / "prototypes" / "visibility.py"
    spec = importlib.util.spec_from_file_location("visibility_prototype", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.View


View = _prototype_view()


# -- the model ---------------------------------------------------------------

@dataclass
class Row:
    id: str
    list: str
    title: str
    completed: bool
    order: int  # creation order: list order (created_time, id)
    alive: bool = True


@dataclass
class TodoList:
    id: str
    name: str
    default: bool
    members: dict[str, str]  # person id -> owner, editor, viewer
    alive: bool = True


@dataclass
class Entry:
    """A journal entry as the oracle predicts it; its position comes from the journal."""

    op: str
    todo_id: str | None = None
    list_before: str | None = None
    list_after: str | None = None
    person_id: str | None = None
    values: tuple[str, bool] | None = None  # the row (todo)
    before: tuple[str, bool] | None = None  # the row before (before)
    role: str | None = None  # member entries: the role after (the one they had, for a removal)
    reason: str | None = None  # member entries: list_deleted when they went with their list
    position: int = 0

    def key(self) -> tuple[Any, ...]:
        return (self.op, self.todo_id, self.list_before, self.list_after, self.person_id, self.values, self.before,
                self.role, self.reason)

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "list_before": self.list_before, "list_after": self.list_after,
                "person_id": self.person_id}


@dataclass
class Follower:
    """One reader's subscription on one transport: its connections in turn, each resuming where the last ended."""

    transport: str
    start: int
    connections: list[Subscriber]

    @property
    def current(self) -> Subscriber:
        return self.connections[-1]

    @property
    def list_id(self) -> str | None:
        return self.connections[0].list_id

    def events(self) -> list[Event | FeedEvent]:
        got: list[Event | FeedEvent] = []
        for connection in self.connections:
            got += connection.events
            got += connection.feed
        return got


@dataclass
class Person:
    name: str
    id: str
    default: str
    http: httpx.Client = field(repr=False)
    tap: Wiretap = field(repr=False)
    start: int
    credentials: list[Credential] = field(default_factory=list, repr=False)
    followers: list[Follower] = field(default_factory=list, repr=False)
    # transport -> where in its past it resumes at the end, and (the feed) of which list
    later: dict[str, tuple[float, str | None]] = field(default_factory=dict, repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis shows a draw of one: its name."""
        printer.text(f"Person({self.name})")

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def graphql_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return None if not errors else errors[0]["extensions"]["code"]


def rest_code(response: httpx.Response) -> str | None:
    if response.status_code < 300:
        return None
    code: str = response.json()["error"]["code"]
    return code


EDITORS = ("owner", "editor")
LIST_KINDS = {"list_created": "list_added", "list_updated": "list_updated", "list_deleted": "list_removed"}
# Every stream a person follows: the change feed's and the feed's.
STREAMS = TRANSPORTS + FEEDS

class Oracle:
    """The model, the journal entries it predicted (positioned), and what
    each person may see: the leak scanner's allowance, by person id."""

    def __init__(self, url: str, dsn: str) -> None:
        self.url = url
        self.leaks = Leaks()
        self.db = psycopg.connect(dsn, autocommit=True)
        self.mark = self._newest()
        self.entries: list[Entry] = []
        self.people: dict[str, Person] = {}
        self.lists: dict[str, TodoList] = {}
        self.rows: dict[str, Row] = {}
        self.orders = iter(range(1, 1 << 30))
        self.secret: set[str] = set()
        self.allowed: dict[str, set[str]] = defaultdict(set)

    # -- the journal ---------------------------------------------------------

    def _newest(self) -> int:
        row = self.db.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()
        assert row is not None
        return int(row[0])

    def commit(self, predicted: list[Entry]) -> None:
        """The journal since the last operation holds exactly the predicted
        entries; they take its positions (its order within the operation)."""
        rows = self.db.execute(
            "SELECT position, op, todo_id::text, list_before::text, list_after::text, person_id::text,"
            " todo->>'title', (todo->>'completed')::bool, before->>'title', (before->>'completed')::bool,"
            " CASE WHEN op LIKE 'member%%' THEN coalesce(detail->>'role_after', detail->>'role_before') END,"
            " CASE WHEN op LIKE 'member%%' THEN detail->>'reason' END"
            " FROM todo_changes WHERE position > %s ORDER BY position",
            (self.mark,),
        ).fetchall()
        journal = [
            Entry(op, todo_id, lb, la, person,
                  None if title is None else (title, completed), None if btitle is None else (btitle, bcompleted),
                  role, reason, position=pos)
            for pos, op, todo_id, lb, la, person, title, completed, btitle, bcompleted, role, reason in rows
        ]
        assert Counter(e.key() for e in journal) == Counter(e.key() for e in predicted), (
            f"the journal differs from the oracle:\n journal {[e.key() for e in journal]}\n oracle  {[e.key() for e in predicted]}"
        )
        waiting: dict[tuple[Any, ...], list[Entry]] = defaultdict(list)
        for entry in predicted:
            waiting[entry.key()].append(entry)
        for written in journal:
            entry = waiting[written.key()].pop(0)
            entry.position = written.position
            self.entries.append(entry)
        # One reader's arrivals and removals come in list order.
        for op in ("arrived", "removed"):
            orders = [self.rows[e.todo_id].order for e in journal if e.op == op and e.todo_id is not None]
            assert orders == sorted(orders), f"{op} entries not in list order"
        if journal:
            self.mark = journal[-1].position
        self._observe()

    def _observe(self) -> None:
        """What each member may see now: the leak scanner's allowance."""
        for todo_list in self.lists.values():
            if not todo_list.alive:
                continue
            seen = {todo_list.id, todo_list.name} | {
                value for row in self.rows.values() if row.alive and row.list == todo_list.id
                for value in (row.id, row.title)
            }
            for member in todo_list.members:
                self.allowed[member] |= seen

    def _seen(self, person: Person, after: int) -> Iterator[tuple[Entry, str]]:
        """The entries after the cursor the design's view gives this person, and what each is for them."""
        view = View(person.id)
        for entry in sorted(self.entries, key=lambda e: e.position):
            kind = view.step(entry.as_dict())
            if kind is not None and entry.position > after:
                yield entry, kind

    def expected(self, person: Person, after: int) -> list[Event]:
        """The changes the design's view gives this person after the cursor, in the legacy shapes."""
        events: list[Event] = []
        for entry, kind in self._seen(person, after):
            if entry.todo_id is None:
                continue
            if kind == "update":
                values = entry.values
                op = entry.op
            elif kind == "arrival":
                values, op = entry.values, "created"
            elif kind == "removal":
                values, op = entry.before, "deleted"
            else:
                continue
            assert values is not None
            events.append(Event(entry.position, op, entry.todo_id, values[0], values[1]))
        return events

    def expected_feed(self, person: Person, after: int, of_list: str | None) -> list[FeedEvent]:
        """The feed's events the design's view gives this person after the
        cursor (people.md section 9), of one list's entries when given (its
        list before or after; a removal's the list it left, an arrival's the
        one it came into): a removal names the row and the list it left,
        never where it went, and an arrival never where it came from."""
        events: list[FeedEvent] = []
        for entry, kind in self._seen(person, after):
            list_id = entry.list_before if kind == "removal" else entry.list_after or entry.list_before
            assert list_id is not None
            named = (list_id,) if kind in ("removal", "arrival") else (entry.list_before, entry.list_after)
            if of_list is not None and of_list not in named:
                continue
            todo = None
            if kind in ("update", "arrival"):
                assert entry.todo_id is not None and entry.values is not None
                todo = (entry.todo_id, *entry.values, list_id)
            member = None
            if kind == "member":
                assert entry.person_id is not None and entry.role is not None
                member = (entry.person_id, self.people[entry.person_id].name, entry.role)
            name = {"update": f"todo_{entry.op}", "arrival": "todo_arrived", "removal": "todo_removed",
                    "member": entry.op, "list": LIST_KINDS.get(entry.op)}[kind]
            assert name is not None
            went = entry.op == "list_deleted" or entry.reason == "list_deleted"
            events.append(FeedEvent(entry.position, name, entry.todo_id, list_id, todo, member,
                                    "LIST_DELETED" if went else None))
        return events

    def role(self, person: Person, list_id: str) -> str | None:
        todo_list = self.lists[list_id]
        return todo_list.members.get(person.id) if todo_list.alive else None

    # -- people and their streams ---------------------------------------------

    def sign_in(self, person: Person) -> Credential:
        return sign_in(self.url, person.tap, person.name, PASSWORD)

    def new_token(self, person: Person) -> Credential:
        return new_token(person.http, token("n"))

    def connect(
        self, person: Person, transport: str, credential: Credential, after: int,
        url_after: int | None = None, list_id: str | None = None,
    ) -> Subscriber:
        return Subscriber(self.url, transport, credential, after, person.tap, url_after, list_id)

    def feed_filter(self, data: st.DataObject, transport: str) -> str | None:
        """The feed's ?list_id=, sometimes: any list (one the reader may never see gets nothing)."""
        if transport not in FEEDS or not data.draw(st.booleans(), label=f"{transport} of one list"):
            return None
        return data.draw(st.sampled_from(sorted(self.lists)), label="of list")

    def follow(
        self, person: Person, transport: str, credential: Credential, after: int, list_id: str | None = None
    ) -> None:
        subscriber = self.connect(person, transport, credential, after, list_id=list_id)
        subscriber.wait_until_connected()
        person.followers.append(Follower(transport, after, [subscriber]))

    def add_person(self, data: st.DataObject) -> None:
        name = token("p")
        tap = self.leaks.tap(name)
        http = tap.client(self.url, headers={"Origin": self.url}, timeout=10)
        response = http.post("/api/auth/sign-up", json={"username": name, "password": PASSWORD})
        assert response.status_code == 201, response.text
        person_id = response.json()["person"]["id"]
        [default] = [entry["id"] for entry in http.get("/api/lists/").json() if entry["is_default"]]
        self.lists[default] = TodoList(default, "Todos", True, {person_id: "owner"})
        self.secret.add(default)
        self.commit([Entry("list_created", None, default, default),
                     Entry("member_added", None, default, default, person_id, role="owner")])
        person = Person(name, person_id, default, http, tap, self.mark)
        self.people[person_id] = person
        person.credentials = [self.sign_in(person), self.new_token(person)]
        for transport in STREAMS:
            if data.draw(st.booleans(), label=f"{transport} connected throughout"):
                credential = data.draw(st.sampled_from(person.credentials), label="credential")
                self.follow(person, transport, credential, person.start, self.feed_filter(data, transport))
            else:
                back = data.draw(st.floats(0, 1), label=f"{transport} resumes from")
                person.later[transport] = (back, self.feed_filter(data, transport))

    def sql_create(self, list_id: str) -> None:
        title = token("s")
        self.secret.add(title)
        row = self.db.execute(
            "INSERT INTO todos (title, list_id) VALUES (%s, %s) RETURNING id::text", (title, list_id)
        ).fetchone()
        assert row is not None
        self.rows[row[0]] = Row(row[0], list_id, title, False, next(self.orders))
        self.secret.add(row[0])
        self.commit([Entry("created", row[0], None, list_id, None, (title, False))])

    # -- choices (hypothesis draws) ----------------------------------------

    def _someone(self, data: st.DataObject, roles: Collection[str] = (), where: Callable[[TodoList], bool] = lambda l: True) -> Person:
        """Anyone; mostly, when roles are named, one with such a role in a list `where` holds of."""
        likely = [
            p for p in self.people.values()
            if any(self.role(p, l.id) in roles and where(l) for l in self.lists.values())
        ]
        return self._pick(data, "person", likely, list(self.people.values()))

    @staticmethod
    def _pick(data: st.DataObject, label: str, likely: list[T], anything: list[T]) -> T:
        """Mostly (3 in 4) one of `likely`, what the person may act on, else
        any (refusals are tested too: most random choices would be refused)."""
        if likely and data.draw(st.integers(0, 3), label=f"{label}: any at all") < 3:
            return data.draw(st.sampled_from(likely), label=label)
        return data.draw(st.sampled_from(anything), label=label)

    def _a_list(
        self, data: st.DataObject, person: Person, roles: Collection[str] = EDITORS,
        where: Callable[[TodoList], bool] = lambda todo_list: True,
    ) -> TodoList:
        likely = [l for l in self.lists.values() if self.role(person, l.id) in roles and where(l)]
        return self._pick(data, "list", likely, list(self.lists.values()))

    def _a_row(self, data: st.DataObject, person: Person) -> Row:
        likely = [row for row in self.rows.values() if row.alive and self.role(person, row.list) in EDITORS]
        return self._pick(data, "row", likely, list(self.rows.values()))

    def _a_member(self, data: st.DataObject, todo_list: TodoList, member: bool) -> Person:
        """Someone who is (not) a member of the list, but its owner, mostly."""
        likely = [p for p in self.people.values()
                  if (p.id in todo_list.members) == member and todo_list.members.get(p.id) != "owner"]
        return self._pick(data, "person", likely, list(self.people.values()))

def difference(
    person: Person, follower: Follower, expected: list[Any], got: list[Event | FeedEvent], problems: list[Any]
) -> str:
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    return (
        f"{person.name} on {follower.transport} from {follower.start} ({len(follower.connections)} connections,"
        f" ended {follower.current.ending!r}): {len(got)} changes, expected {len(expected)};"
        f" first difference at {first}: got {got[first:first + 3]}, expected {expected[first:first + 3]};"
        f" unexpected {problems}"
    )
