"""Issue 19's case (docs/design/people.md, section 11, "Bench"): people,
lists and sharing.

A database of its own: `people` people, each in one of `people / 10` lists
of 10 members (person p in list p // 10) and each with a personal access
token. A list's members are neighbours, so one client process holds all
of them, as one holds the yardstick's 10: over loopback the server's
writes pay for waking the processes they reach, which is the clients'
layout, not the server's work (members spread over the 4 processes, p in
list p % 100, cost 140 us per delivery against 125 us so, the same server
code on one machine minutes apart). In AUTH=accounts, every person holds one graphql-transport-ws
`todoChanges` subscriber signed in with their token; one INSERT into one
list must reach exactly that list's members. Beside it, from the same run,
the single-person figures (AUTH=open) with as many deliveries: 10
subscribers and one change; and those of 1,000 subscribers, shown but not
the yardstick (a change's fixed cost is shared by 10 deliveries, not 1,000);
and the yardstick's 10 again beside as many quiet open-mode sockets as make
up the people's 1,000, each holding a `todo(id)` subscription to a row no
change touches: what holding 1,000 sockets costs (uvicorn's keep-alive
ping of each, the loop's wake-ups), apart from what people cost.
Then the 50-row list read by a signed-in person against open mode's, with
and without the response cache.

Anything but exactly the members' deliveries, once each, is an error in
the results (`errors`), not a figure: `python -m bench` exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import psycopg

from graphql_todos.core.people import TOKEN_PREFIX, digest, is_token

from .changes import sql_inserts
from .databases import ROWS, Databases, created
from .documents import CHANGES, LIST, row_variables
from .fanout import GAP_SECONDS, Clients, FanoutResult, client_processes, fan_out, median
from .http_load import Load, wrk
from .procstat import cpu_seconds, rss_bytes
from .restarts import rerun_on_restart
from .servers import OURS, OURS_ACCOUNTS, OURS_ACCOUNTS_CACHED, OURS_CACHED, Server, running

MEMBERS = 10
# The yardstick: as many single-person subscribers as a list has members.
SINGLE = MEMBERS
# How long after the last change a delivery to anyone else is still looked for.
QUIET_SECONDS = 0.5
EVENT_TIMEOUT = 30.0
WARM_ATTEMPTS = 3


@dataclass(frozen=True)
class People:
    """The people database: person p's token is tokens[p]; list k's id is lists[k]."""

    dbs: Databases
    tokens: tuple[str, ...]
    lists: tuple[str, ...]

    def members(self, k: int) -> frozenset[int]:
        """The people (socket indexes) of list k."""
        return frozenset(range(k * MEMBERS, (k + 1) * MEMBERS))


@dataclass
class MembersResult(FanoutResult):
    """A fan-out where each change may reach only some subscribers."""

    lists: int = 0
    # Deliveries to people not in the changed list (the leak), and repeated ones.
    non_members: int = 0
    repeated: int = 0
    errors: list[str] = field(default_factory=list)


@contextmanager
def people_database(dbs: Databases, people: int) -> Iterator[People]:
    """gt_people: `people` people in lists of MEMBERS with a token each,
    and ROWS todos, all in person 0's default list: the same rows for open
    mode (local reads every list) and for person 0 signed in; dropped
    afterwards."""
    if people % MEMBERS:
        raise ValueError(f"{people} people do not make lists of {MEMBERS}")
    lists = people // MEMBERS
    ids = [uuid.uuid4() for _ in range(people)]
    list_ids = [uuid.uuid4() for _ in range(lists)]
    tokens = [TOKEN_PREFIX + secrets.token_urlsafe(32) for _ in range(people)]
    assert all(map(is_token, tokens))
    with created(dbs.admin, "gt_people") as dsn:
        with psycopg.connect(dsn) as conn:
            # Each person's default list comes with them (a trigger).
            conn.execute(
                "INSERT INTO people (id, username) SELECT * FROM unnest(%s::uuid[], %s::text[])",
                (ids, [f"person{p}" for p in range(people)]),
            )
            conn.execute(
                "INSERT INTO access_tokens (secret_hash, person_id, name) "
                "SELECT s, p, 'bench' FROM unnest(%s::bytea[], %s::uuid[]) AS t (s, p)",
                ([digest(t) for t in tokens], ids),
            )
            # Person 10k owns list k; the next 9 are its editors.
            conn.execute(
                "INSERT INTO lists (id, owner_id, name) SELECT l, o, 'list ' || o FROM unnest(%s::uuid[], %s::uuid[]) AS t (l, o)",
                (list_ids, ids[::MEMBERS]),
            )
            conn.execute(
                "INSERT INTO list_members (list_id, person_id, role) SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[])",
                (
                    [list_ids[p // MEMBERS] for p in range(people)],
                    ids,
                    ["editor" if p % MEMBERS else "owner" for p in range(people)],
                ),
            )
        with psycopg.connect(dsn) as conn:
            # A transaction of its own: one may change a list's members or its todos, not both.
            conn.execute(
                "INSERT INTO todos (title, completed, created_time, list_id) "
                "SELECT 'todo ' || i, i %% 3 = 0, now() + i * interval '1 ms', "
                "(SELECT id FROM lists WHERE owner_id = %s AND is_default) FROM generate_series(1, %s) i",
                (ids[0], ROWS),
            )
        yield People(dataclasses.replace(dbs, ours=dsn), tuple(tokens), tuple(str(k) for k in list_ids))


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _arrived(clients: Clients, expected: dict[str, frozenset[int]]) -> bool:
    """Whether each change has reached each of its members."""
    return all(members <= {g.socket for g in clients.got.get(t, [])} for t, members in expected.items())


async def _wait(clients: Clients, expected: dict[str, frozenset[int]], timeout: float) -> None:
    """Until each change has reached its members or `timeout` passes, woken at each frame reported."""
    deadline = time.monotonic() + timeout
    while not _arrived(clients, expected) and (left := deadline - time.monotonic()) > 0:
        clients.got_more.clear()
        try:
            await asyncio.wait_for(clients.got_more.wait(), left)
        except TimeoutError:
            return


async def _insert(conn: psycopg.AsyncConnection, list_id: str, title: str) -> tuple[str, float]:
    """An INSERT into one list: its row's id (the frames' token) and when it was sent."""
    sent = time.time()
    cursor = await conn.execute("INSERT INTO todos (title, list_id) VALUES (%s, %s) RETURNING id", (title, list_id))
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0]), sent


def _tally(result: MembersResult, clients: Clients, expected: dict[str, frozenset[int]], warm: set[str]) -> None:
    """Every change's deliveries against its list's members: errors for any
    other, repeated, or (but for the `warm` changes, made while subscriptions
    were opening) missing."""
    missing = 0
    for token, members in expected.items():
        got = [g.socket for g in clients.got.get(token, [])]
        result.non_members += sum(1 for s in got if s not in members)
        result.repeated += len(got) - len(set(got))
        missing += 0 if token in warm else len(members - set(got))
    changes = len(expected)
    if result.non_members:
        result.errors.append(
            f"{result.non_members:,} deliveries to people not in the changed list "
            f"({result.non_members / changes:,.0f} per change; each reader may get only their lists' changes)"
        )
    if result.repeated:
        result.errors.append(f"{result.repeated:,} deliveries repeated (each member must get a change once)")
    if missing:
        result.errors.append(f"{missing:,} deliveries to members missing after {EVENT_TIMEOUT:g} s")


async def _members_fanout(people: People, events: int, processes: int) -> MembersResult:
    """Every person subscribed, signed in with their token; a warm-up INSERT
    into each list, then `events` INSERTs, each into the next list."""
    n, lists = len(people.tokens), len(people.lists)
    result = MembersResult(OURS_ACCOUNTS, n, lists=lists)
    inits = [json.dumps({"Authorization": _bearer(t)}) for t in people.tokens]
    expected: dict[str, frozenset[int]] = {}
    with running(OURS_ACCOUNTS, people.dbs) as server:
        async with await psycopg.AsyncConnection.connect(people.dbs.ours, autocommit=True) as conn:
            rss0, cpu0, t0 = rss_bytes(server.pid), cpu_seconds(server.pid), time.monotonic()
            clients = await Clients.start(
                server.ws_url, "graphql-transport-ws", n, processes, CHANGES[OURS], inits=inits, each=True
            )
            try:
                _, result.failed_connections = await clients.ready(60 + n / 50)
                result.open_seconds = time.monotonic() - t0
                if result.failed_connections:
                    result.errors.append(f"{result.failed_connections:,} of {n:,} signed-in sockets failed to open")
                # A subscription is live once a change reaches it: warm up
                # until one has reached each list's members.
                cold = list(range(lists))
                for _ in range(WARM_ATTEMPTS):
                    warm = {}
                    for k in cold:
                        token, _ = await _insert(conn, people.lists[k], f"warm-up {k}")
                        warm[token] = expected[token] = people.members(k)
                    await _wait(clients, warm, EVENT_TIMEOUT)
                    cold = [k for k, t in zip(cold, warm, strict=True) if not _arrived(clients, {t: warm[t]})]
                    if not cold:
                        break
                warmed = set(expected)
                result.open_cpu_per_subscription = (cpu_seconds(server.pid) - cpu0) / n
                result.rss_per_subscription = (rss_bytes(server.pid) - rss0) / n
                cpu1, client_cpu1 = cpu_seconds(server.pid), clients.cpu_seconds()
                for i in range(events):
                    k = i % lists
                    token, sent = await _insert(conn, people.lists[k], f"people {i}")
                    members = expected[token] = people.members(k)
                    await _wait(clients, {token: members}, EVENT_TIMEOUT)
                    # Each member's first frame of it (a repeat is _tally's).
                    at = {g.socket: g.at for g in reversed(clients.got.get(token, [])) if g.socket in members}
                    result.expected += len(members)
                    result.delivered += len(at)
                    if len(at) == len(members):
                        result.last_arrival.append(max(at.values()) - sent)
                        result.first_arrival.append(min(at.values()) - sent)
                    await asyncio.sleep(GAP_SECONDS)
                delivered = max(1, result.delivered)
                result.cpu_per_delivery = (cpu_seconds(server.pid) - cpu1) / delivered
                result.client_cpu_per_delivery = (clients.cpu_seconds() - client_cpu1) / delivered
                # Anything still on its way to someone else counts too.
                await asyncio.sleep(QUIET_SECONDS)
            finally:
                await clients.close()
    _tally(result, clients, expected, warmed)
    return result


async def _single(people: People, subscribers: int, events: int, processes: int) -> FanoutResult:
    """Open mode on the same database: `subscribers` of local's, one INSERT (local's default list) each."""
    with running(OURS, people.dbs) as server:
        async with await psycopg.AsyncConnection.connect(people.dbs.ours, autocommit=True) as conn:
            return await _single_on(server, conn, subscribers, events, processes)


async def _single_on(
    server: Server, conn: psycopg.AsyncConnection, subscribers: int, events: int, processes: int
) -> FanoutResult:
    procs = client_processes(subscribers, processes)
    return await fan_out(server, CHANGES[OURS], subscribers, events, sql_inserts(conn), procs)


@dataclass
class BesideIdleResult(FanoutResult):
    """The yardstick's fan-out with `idle` quiet sockets open beside it."""

    idle: int = 0


# What each quiet socket holds: one row's subscription, a row no change of
# this case touches (the fan-outs only INSERT). Its first frame, the row,
# names the row, so the clients say when every quiet socket has it.
QUIET = "subscription($id: ID!) { todo(id: $id) { id title completed } }"


async def _single_beside_idle(people: People, events: int, processes: int) -> BesideIdleResult:
    """`_single`'s SINGLE subscribers while as many more sockets as make up
    the people are held open beside them, in client processes of their own:
    each acknowledged and holding a subscription that never fires, as each
    person holds one no other list's change visits. They have all opened and
    got their row before the yardstick's changes (and CPU) begin."""
    idle = len(people.tokens) - SINGLE
    async with await psycopg.AsyncConnection.connect(people.dbs.ours, autocommit=True) as conn:
        cursor = await conn.execute("SELECT id FROM todos ORDER BY created_time, id LIMIT 1")
        row = await cursor.fetchone()
        assert row is not None
        quiet_row = str(row[0])
        with running(OURS, people.dbs) as server:
            variables = [json.dumps(row_variables(OURS, quiet_row))] * idle
            quiet = await Clients.start(
                server.ws_url, "graphql-transport-ws", idle, client_processes(idle, processes), QUIET, variables,
                each=True,
            )
            try:
                await quiet.ready(60 + idle / 50)
                everyone = {quiet_row: frozenset(range(idle))}
                await _wait(quiet, everyone, EVENT_TIMEOUT)
                if not _arrived(quiet, everyone):
                    held = len({g.socket for g in quiet.got.get(quiet_row, [])})
                    raise RuntimeError(f"{held:,} of {idle:,} quiet sockets opened and got their row")
                done = await _single_on(server, conn, SINGLE, events, processes)
            finally:
                await quiet.close()
    return BesideIdleResult(**dataclasses.asdict(done), idle=idle)


R = TypeVar("R", bound=FanoutResult)


def _timed(people: People, label: str, case: Callable[[], Coroutine[Any, Any, R]]) -> R:
    """One fan-out on a fresh server, run again if PostgreSQL restarted under it."""
    r = rerun_on_restart(people.dbs.admin, label, lambda: asyncio.run(case()))
    p50 = median(r.last_arrival) * 1000
    print(f"  {label}: last arrival p50 {p50:.2f} ms, CPU per delivery {r.cpu_per_delivery * 1e6:.0f} us", flush=True)
    return r


def _fanouts(
    people: People, args: argparse.Namespace
) -> tuple[MembersResult, list[FanoutResult], BesideIdleResult]:
    """The members' fan-out and its single-person figures, as many changes
    each: the yardstick, with quiet sockets beside it, the members, then the
    1,000 (the report's order, bar the second)."""
    n, events, procs = len(people.tokens), args.people_events, args.client_processes
    single = _timed(people, f"{SINGLE} single-person subscribers", lambda: _single(people, SINGLE, events, procs))
    beside = _timed(
        people, f"{SINGLE} single-person subscribers beside {n - SINGLE:,} quiet sockets",
        lambda: _single_beside_idle(people, events, procs),
    )
    members = _timed(people, f"{n:,} people in lists of {MEMBERS}", lambda: _members_fanout(people, events, procs))
    for error in members.errors:
        print(f"  ERROR: {error}", flush=True)
    many = _timed(people, f"{n:,} single-person subscribers", lambda: _single(people, n, events, procs))
    return members, [single, many], beside


def _rows_read(url: str, load: Load) -> None:
    """The read answers exactly the ROWS rows, no error."""
    load.check(url)
    headers = {"Content-Type": "application/json"} | ({"Authorization": load.authorization} if load.authorization else {})
    answer = httpx.post(url + load.path, content=load.body, headers=headers).json()
    if len(answer["data"]["todos"]) != ROWS:
        raise RuntimeError(f"{url} answered {len(answer['data']['todos'])} rows, not {ROWS}")


def _reads(people: People, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The 50-row list, open mode's (local) and a signed-in person's (token), without and with the response cache."""
    body = json.dumps({"query": LIST[OURS], "variables": {}})
    open_mode, person = Load("/graphql", body), Load("/graphql", body, authorization=_bearer(people.tokens[0]))
    tests = [
        ("without the response cache", OURS, open_mode),
        ("without the response cache", OURS_ACCOUNTS, person),
        ("with the response cache", OURS_CACHED, open_mode),
        ("with the response cache", OURS_ACCOUNTS_CACHED, person),
    ]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with (
        running(OURS, people.dbs) as ours,
        running(OURS_CACHED, people.dbs) as cached,
        running(OURS_ACCOUNTS, people.dbs) as accounts,
        running(OURS_ACCOUNTS_CACHED, people.dbs) as accounts_cached,
    ):
        urls = {s.name: s.url for s in (ours, cached, accounts, accounts_cached)}
        for _, server, load in tests:
            _rows_read(urls[server], load)
            wrk(urls[server], load, 1, args.connections)
        # Alternating within each round: drift on a shared machine hits all alike.
        for _ in range(args.rounds):
            for test, server, load in tests:
                timed = functools.partial(wrk, urls[server], load, args.seconds, args.connections)
                run = rerun_on_restart(people.dbs.admin, f"{test} {server}", timed)
                entry = results.setdefault((test, server), {"test": test, "server": server, "rps": [], "errors": 0})
                entry["rps"].append(run.requests_per_second)
                entry["errors"] += run.errors
                entry["command"] = run.command
                print(f"  50-row list {test}, {server}: {run.requests_per_second:.0f} req/s", flush=True)
    return list(results.values())


def people_tests(dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    """The reads first (the fan-outs add rows to the lists), then the fan-outs."""
    with people_database(dbs, args.people) as people:
        reads = _reads(people, args)
        members, single, beside = _fanouts(people, args)
    return {
        "people": args.people,
        "members": dataclasses.asdict(members),
        "single": [dataclasses.asdict(r) for r in single],
        "beside_idle": dataclasses.asdict(beside),
        "reads": reads,
        "errors": members.errors,
    }
