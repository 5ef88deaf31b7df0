"""Cursors, as clients spell them; reads gathered for callers asking for keys."""

from __future__ import annotations

import asyncio
import gc

import pytest

from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.journal import Coalesced, Gathered, parse_cursor


@pytest.mark.parametrize(("cursor", "position"), [("0", 0), ("42", 42), ("9223372036854775807", 2**63 - 1)])
def test_cursors_are_decimal_positions(cursor: str, position: int) -> None:
    assert parse_cursor(cursor) == position


@pytest.mark.parametrize("cursor", ["", "-1", "1.0", " 1", "x", "٣", "1" * 20])
def test_other_cursors_are_bad_user_input(cursor: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        parse_cursor(cursor)
    assert refused.value.field == "after"


def test_keys_asked_for_while_a_read_is_under_way_are_the_next_reads_and_each_caller_gets_a_read_started_after_it_asked() -> None:
    # A row watcher registers with the hub, then asks for its row: a read
    # that began before it asked may have missed a change committed since.
    async def run() -> tuple[list[set[str]], list[tuple[int, set[str]]]]:
        started: list[set[str]] = []
        gate = asyncio.get_running_loop().create_future()

        async def read(keys: set[str]) -> tuple[int, set[str]]:
            started.append(keys)
            if len(started) == 1:
                await gate
            return len(started), keys

        rows: Gathered[str, tuple[int, set[str]]] = Gathered(read)
        first = [asyncio.create_task(rows.ask(key)) for key in ("a", "b")]
        while not started:  # until the first read is under way
            await asyncio.sleep(0)
        later = [asyncio.create_task(rows.ask(key)) for key in ("a", "c")]
        await asyncio.sleep(0)
        gate.set_result(None)
        return started, [await task for task in [*first, *later]]

    started, results = asyncio.run(run())
    assert started == [{"a", "b"}, {"a", "c"}]
    assert results == [(1, {"a", "b"})] * 2 + [(2, {"a", "c"})] * 2


def test_a_reader_cancelled_mid_read_leaves_no_caller_waiting() -> None:
    # The loop ending cancels the reader: its read's callers and those who
    # asked during that read are cancelled too, and a later caller reads anew.
    async def run() -> tuple[list[bool], str]:
        started: list[set[str]] = []
        never = asyncio.get_running_loop().create_future()

        async def read(keys: set[str]) -> str:
            started.append(keys)
            if len(started) == 1:
                await never
            return "fresh"

        rows: Gathered[str, str] = Gathered(read)
        reading = asyncio.create_task(rows.ask("a"))
        while not started:
            await asyncio.sleep(0)
        asked_during = asyncio.create_task(rows.ask("b"))
        await asyncio.sleep(0)
        assert rows._reader is not None
        rows._reader.cancel()
        done, _ = await asyncio.wait([reading, asked_during], timeout=1)
        return [task in done and task.cancelled() for task in (reading, asked_during)], await rows.ask("c")

    cancelled, later = asyncio.run(run())
    assert cancelled == [True, True]
    assert later == "fresh"


def test_a_caller_that_gives_up_leaves_the_read_to_the_others_and_a_failed_read_fails_each_caller() -> None:
    # Each caller waits on a future of its own: cancelling one (a socket gone
    # while its subscribe waited for "now") costs the others nothing.
    async def run() -> tuple[list[object], int, list[str]]:
        reads = 0
        gate = asyncio.get_running_loop().create_future()

        async def read() -> int:
            nonlocal reads
            reads += 1
            await gate
            if reads == 2:
                raise RuntimeError("database away")
            return 7

        position = Coalesced(read)
        callers = [asyncio.ensure_future(position()) for _ in range(3)]
        while not reads:
            await asyncio.sleep(0)
        callers[1].cancel()
        gate.set_result(None)
        got: list[object] = [await callers[0], callers[1].cancelled(), await callers[2]]
        gate = asyncio.get_running_loop().create_future()
        gate.set_result(None)
        failed = await asyncio.gather(position(), position(), return_exceptions=True)
        return got, reads, [str(error) for error in failed]

    got, reads, failed = asyncio.run(run())
    assert got == [7, True, 7]
    assert reads == 2
    assert failed == ["database away", "database away"]


def test_a_failed_read_whose_caller_never_awaited_it_is_not_logged_as_lost() -> None:
    # A caller may drop its future unawaited (it went away): the read's error
    # is each waiting caller's, and no "exception was never retrieved" for the
    # gone one, though the reader goes on to a next read (one who asked
    # during the failed one) and so never cancels the failed read's futures.
    async def run() -> tuple[list[dict[str, object]], int]:
        seen: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: seen.append(context))
        later: list[asyncio.Future[int]] = []

        async def read() -> int:
            if not later:
                later.append(position())
                raise RuntimeError("database away")
            return 7

        position = Coalesced(read)
        dropped, kept = position(), position()
        with pytest.raises(RuntimeError, match="database away"):
            await kept
        got = await later[0]
        # The error's traceback holds the read's batch, and so both futures.
        del dropped, kept
        gc.collect()
        return seen, got

    assert asyncio.run(run()) == ([], 7)
