"""Journal retention: every JOURNAL_PRUNE_SECONDS, delete entries older than
JOURNAL_KEEP_SECONDS or beyond the newest JOURNAL_KEEP_ROWS, a batch at a
time, never one a subscriber (or broadcast member) of this process has
still to read (Hub.needed_after); then numbered mutations' verdicts older
than MUTATIONS_KEEP_SECONDS (an applied one's answer is stored with it as
its entries go: repository.PRUNE_JOURNAL)."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from graphql_todos.core.errors import DatabaseUnavailable
from graphql_todos.core.journal import Journal
from graphql_todos.core.settings import Settings
from graphql_todos.live.hub import Hub

logger = logging.getLogger(__name__)


class Retention:
    def __init__(self, journal: Journal, hub: Hub, settings: Settings) -> None:
        self.journal = journal
        self.hub = hub
        self.keep_seconds = settings.journal_keep_seconds
        self.keep_rows = settings.journal_keep_rows
        self.mutations_keep_seconds = settings.mutations_keep_seconds
        self.interval = settings.journal_prune_seconds
        self.batch = settings.journal_batch
        self.pruned = 0

    async def prune(self) -> int:
        """Prune now, batch after batch until nothing is left to prune (or
        another process is pruning); how many entries went."""
        total = 0
        while True:
            count = await self.journal.prune(
                self.hub.needed_after() + 1, self.keep_seconds, self.keep_rows, self.batch
            )
            total += count
            if count < self.batch:
                break
            # Small batches keep each delete short; let requests run between them.
            await asyncio.sleep(0)
        self.pruned += total
        if total:
            logger.info("journal: pruned %s entries", total)
        verdicts = 0
        while (count := await self.journal.prune_mutations(self.mutations_keep_seconds, self.batch)) > 0:
            verdicts += count
            if count < self.batch:
                break
            await asyncio.sleep(0)
        if verdicts:
            logger.info("mutations: pruned %s verdicts", verdicts)
        return total

    async def run(self) -> None:
        """Prune every interval, for as long as the app runs; a failure waits
        for the next turn (the database may be restarting)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.prune()
            except (DatabaseUnavailable, psycopg.Error) as exc:
                logger.warning("journal pruning failed (next try in %.0fs): %s", self.interval, exc)
            except Exception:  # never die silently: log, and try again next turn
                logger.exception("journal pruning failed (next try in %.0fs)", self.interval)
