"""core/cursors.py: a writer's cursor heard from the sequencer's batch
NOTIFY (JOURNAL=decoded), before or after the writer asks, read from the
journal when the NOTIFY went missing, and a clear error when nothing comes."""

from __future__ import annotations

import asyncio

import pytest

from graphql_todos.core.cursors import Cursors, JournalLate


async def _nothing() -> int | None:
    return None


def test_a_batch_heard_before_its_writer_asks_is_kept_and_used_once() -> None:
    async def run() -> tuple[int, int]:
        cursors = Cursors(5.0, keep=2)
        cursors.heard([("10", 4), ("11", 6), ("12", 7)], 7)
        # The oldest went past `keep`: read from the journal instead.
        reads: list[str] = []

        async def journaled() -> int | None:
            reads.append("read")
            return 4

        first = await cursors.position("12", _nothing)
        assert cursors.through == 7 and "12" not in cursors._heard
        evicted = await cursors.position("10", journaled)
        assert reads == ["read"]
        return first, evicted

    assert asyncio.run(run()) == (7, 4)


def test_a_waiting_writer_is_resolved_by_its_batch() -> None:
    async def run() -> int:
        cursors = Cursors(5.0)
        waiting = asyncio.ensure_future(cursors.position("20", _nothing))
        await asyncio.sleep(0)
        assert cursors.waiters == 1
        cursors.heard([("19", 8), ("20", 9)], 9)
        position = await waiting
        assert cursors.waiters == 0 and cursors._heard == {"19": 8}
        return position

    assert asyncio.run(run()) == 9


def test_a_missed_notify_is_read_from_the_journal() -> None:
    async def run() -> int:
        cursors = Cursors(5.0)

        async def journaled() -> int | None:
            return 12

        return await cursors.position("30", journaled)

    assert asyncio.run(run()) == 12


def test_until_reads_again_after_each_batch_and_nothing_is_a_clear_error() -> None:
    async def run() -> str:
        cursors = Cursors(5.0)
        reads: list[int] = []

        async def journaled() -> str | None:
            reads.append(len(reads))
            return "found" if len(reads) == 2 else None

        waiting = asyncio.ensure_future(cursors.until(journaled))
        await asyncio.sleep(0)
        cursors.heard([], 1)
        return await waiting

    assert asyncio.run(run()) == "found"
    with pytest.raises(JournalLate, match="the change was made, but the journal has not recorded it in 0.05 s"):
        asyncio.run(Cursors(0.05).position("40", _nothing))
