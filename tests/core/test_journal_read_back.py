"""bench.journal_instructions' `--read-back` (docs/bench-ab-journal.md,
tenth round): the reads it counts after a bulk UPDATE are the hub's
catch-up of that UPDATE's entries after its first, each whole, in as many
queries as JOURNAL_BATCH makes it."""

from __future__ import annotations

import psycopg
import pytest

from bench.databases import add_rows
from bench.journal_instructions import BULK_UPDATE, _read_back
from graphql_todos.live.notifications import journal_entries


def test_the_read_back_is_an_updates_entries_after_its_first(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_BATCH", "7")
    reads = _read_back(30).splitlines()
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        add_rows(conn, 30)
        conn.execute(BULK_UPDATE)
        updated = [p for (p,) in conn.execute("SELECT position FROM todo_changes WHERE op = 'updated' ORDER BY position")]
        entries = []
        for query in reads:
            ((_, text),) = conn.execute(query).fetchall()  # type: ignore[call-overload]
            entries += journal_entries(text)
    assert len(updated) == 30
    assert [entry.position for entry in entries] == updated[1:]
    # 29 entries, 7 a query: the hub's catch-up reads until a chunk is not full.
    assert len(reads) == 5
