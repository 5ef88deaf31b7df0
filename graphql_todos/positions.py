"""Where a new subscription starts, with one journal read for many.

"From now" means the position the database has committed when the request
arrived: a read that started earlier could miss a change committed just
before it. So concurrent callers share reads group-commit style: a caller
waits for the next read to start (right away when none is running), and one
read answers everyone who asked before it started.
"""

from __future__ import annotations

import asyncio

from .journal import Journal, parse_cursor


class Positions:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.reads = 0
        self._next: asyncio.Future[int] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def committed(self) -> int:
        """The newest position committed before this call."""
        answer = self._next
        if answer is None:
            answer = self._next = asyncio.get_running_loop().create_future()
            if self._reading is None:
                self._start()
        # shield: a caller that leaves must not cancel the others' answer.
        return await asyncio.shield(answer)

    async def start(self, after: str | None) -> int:
        """The position a subscription from cursor `after` (None: from now)
        starts after; raises BadUserInput for a cursor not yet written."""
        if after is None:
            return await self.committed()
        position = parse_cursor(after)
        if position > await self.committed():
            # Rare: let the journal say so (or find it committed meanwhile).
            return await self.journal.check_cursor(after)
        return position

    def _start(self) -> None:
        answer, self._next = self._next, None
        assert answer is not None
        self._reading = asyncio.get_running_loop().create_task(self._read(answer))

    async def _read(self, answer: asyncio.Future[int]) -> None:
        try:
            self.reads += 1
            answer.set_result(await self.journal.position())
        except Exception as exc:  # noqa: BLE001 - every waiter gets it
            answer.set_exception(exc)
        finally:
            self._reading = None
            if self._next is not None:
                self._start()
