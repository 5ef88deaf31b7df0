"""The live list's update rule, and how a Todo is written, on plain values; row watchers' reads;
where a change feed starts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import psycopg
import pytest

from graphql_todos.core.database import GatedPool
from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.journal import Journal
from graphql_todos.core.models import ALL, Change, Op, Todo, TodoState, Viewer
from graphql_todos.core.service import TodoService
from graphql_todos.core.settings import Settings
from graphql_todos.live.hub import Hub
from graphql_todos.live.streams import LiveRows, apply_changes, start_after, todo_states
from graphql_todos.rest.resources import todo_json

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def todo(n: int, completed: bool = False, title: str | None = None) -> Todo:
    at = T0 + timedelta(seconds=n)
    return Todo(uuid.UUID(int=n), title or f"t{n}", completed, at, at)


def test_changes_insert_update_and_delete_in_list_order() -> None:
    rows = LiveRows([todo(1), todo(3)])
    changes = [
        Change(1, Op.CREATED, todo(2)),
        Change(2, Op.UPDATED, todo(3, title="renamed")),
        Change(3, Op.DELETED, todo(1)),
    ]
    assert apply_changes(rows, changes, None) == (todo(2), todo(3, title="renamed"))


@pytest.mark.parametrize("completed", [True, False])
def test_a_row_leaves_and_joins_a_filtered_list(completed: bool) -> None:
    rows = LiveRows([todo(1, completed), todo(2, completed)])
    moved_out = apply_changes(rows, [Change(1, Op.UPDATED, todo(1, not completed))], completed)
    assert list(moved_out) == [todo(2, completed)]
    back = apply_changes(moved_out, [Change(2, Op.UPDATED, todo(1, completed))], completed)
    assert back == rows


def test_a_change_that_alters_nothing_yields_an_equal_list() -> None:
    rows = LiveRows([todo(1, True)])
    assert apply_changes(rows, [Change(1, Op.DELETED, todo(9))], True) == rows


def test_orjson_writes_a_todo_as_rest_clients_see_it() -> None:
    # rest._json hands Todo objects to orjson directly.
    odd = Todo(uuid.UUID(int=7), 'a "b" é', True, T0.replace(microsecond=456), T0.astimezone(timezone(timedelta(hours=-3))))
    for row in (todo(1), odd):
        assert orjson.loads(orjson.dumps(row)) == todo_json(row)


def test_rows_watchers_ask_for_together_come_from_one_read_each_seeing_what_its_viewer_may(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        people = setup.execute("INSERT INTO people (username) VALUES ('ann'), ('bob') RETURNING id").fetchall()
        ann, bob = (Viewer(row[0]) for row in people)
    stranger = Viewer(uuid.uuid4())  # a member of no list: sees no row

    async def run() -> tuple[list[TodoState], int]:
        async with GatedPool(db_dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}) as pool:
            service = TodoService(pool)
            made = [await service.create_todo(f"row {n}") for n in range(3)]
            # ann's own row, in her default list: hers to see, not bob's.
            assert ann.person is not None
            hers = await service.create_todo("ann's", actor=ann.person)
            asked = pool.get_stats()["requests_num"]
            absent = uuid.uuid4()
            states = await asyncio.gather(
                *(service.todo_snapshot(ALL, key) for key in [t.id for t in made] + [absent]),
                service.todo_snapshot(stranger, made[0].id),
                service.todo_snapshot(ann, hers.id),
                service.todo_snapshot(bob, hers.id),
                service.todo_snapshot(ALL, hers.id),
            )
            assert [s.todo for s in states] == [*made, None, None, hers, None, hers]
            return states, pool.get_stats()["requests_num"] - asked

    states, reads = asyncio.run(run())
    assert reads == 1  # every viewer's rows in one statement
    assert len({s.position for s in states}) == 1 and states[0].position > 0


def test_row_watchers_starting_while_the_row_changes_get_each_later_change_once(db_dsn: str) -> None:
    """Each watcher's first state, then every change after it, none twice
    and none missed, however its registration, its read and the commits
    interleave (watchers start in bursts of a turn, their reads coalesced)."""
    last = 60

    async def run() -> list[list[int]]:
        async with GatedPool(db_dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}) as pool:
            service = TodoService(pool)
            hub = Hub(db_dsn, Journal(pool), Settings())
            await hub.start()
            row = await service.create_todo("0")

            async def watch() -> list[int]:
                seen = []
                async for state in todo_states(service, hub, ALL, row.id):
                    assert state.todo is not None
                    seen.append(int(state.todo.title))
                    if seen[-1] == last:
                        return seen
                return seen

            async def write() -> None:
                for title in range(1, last + 1):
                    await service.update_todo(str(row.id), title=str(title))
                    await asyncio.sleep(0.002 * (title % 3))

            try:
                watchers = []
                writing = asyncio.create_task(write())
                while not writing.done():
                    watchers += [asyncio.create_task(watch()) for _ in range(3)]
                    await asyncio.sleep(0.001)
                async with asyncio.timeout(10):
                    return list(await asyncio.gather(*watchers))
            finally:
                await hub.stop()

    seen = asyncio.run(run())
    assert len(seen) > 20
    for titles in seen:
        assert titles == list(range(titles[0], last + 1))
    assert len({titles[0] for titles in seen}) > 5  # they started all along the way


def test_a_cursor_at_the_hubs_position_starts_there_unread_and_every_other_start_asks_the_journal(
    db_dsn: str,
) -> None:
    async def run() -> tuple[dict[str, int], dict[str, int], list[str]]:
        async with GatedPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            service, journal = TodoService(pool), Journal(pool)
            hub = Hub(db_dsn, journal, Settings())
            await hub.start()
            try:
                for title in ("one", "two"):
                    await service.create_todo(title)
                newest = await journal.position()
                while hub.position < newest:
                    await asyncio.sleep(0.01)
                starts, reads = {}, {}
                for name, cursor in (("at the hub", str(newest)), ("older", str(newest - 1)), ("now", None)):
                    asked = pool.get_stats()["requests_num"]
                    starts[name] = await start_after(journal, cursor, hub)
                    reads[name] = pool.get_stats()["requests_num"] - asked
                with pytest.raises(BadUserInput):
                    await start_after(journal, str(newest + 1), hub)
                # Started at the hub's position, it gets what comes next, and only that.
                async with hub.subscribe(after=starts["at the hub"]) as sub:
                    await service.create_todo("three")
                    titles = [change.todo.title for change in await anext(sub.batches())]
            finally:
                await hub.stop()
            # A hub without its listener cannot vouch for its position: the database is asked.
            asked = pool.get_stats()["requests_num"]
            assert await start_after(journal, str(hub.position), hub) == hub.position
            reads["at a hub that stopped listening"] = pool.get_stats()["requests_num"] - asked
            asked = pool.get_stats()["requests_num"]
            assert await start_after(journal, None, hub) == hub.position
            reads["now at a hub that stopped listening"] = pool.get_stats()["requests_num"] - asked
            return starts, {**reads, "newest": newest}, titles

    starts, reads, titles = asyncio.run(run())
    newest = reads.pop("newest")
    assert starts == {"at the hub": newest, "older": newest - 1, "now": newest}
    # "Now" is asked even when the hub is there (a NOTIFY may be in flight):
    # of the hub's LISTEN connection (Hub.now), or of the journal without it.
    assert reads == {
        "at the hub": 0, "older": 1, "now": 0, "at a hub that stopped listening": 1, "now at a hub that stopped listening": 1
    }
    assert titles == ["three"]
