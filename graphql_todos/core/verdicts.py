"""SQL for numbered mutations' verdicts (docs/design/offline.md): settling a
no-op, recording a rejection, reading what a key settled as, listing a
client's verdicts, pruning them. Small functions taking a connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from graphql_todos.core.mutations import Key

# A row a record keeps must be one its principal may see (people.md section
# 4): a list it is a member of, unless it is the service token's scope
# (edge/acting.SERVICE_SCOPE), which sees every list.
_SEES = """(%(principal)s = '00000000-0000-0000-0000-000000000000'::uuid
     OR t.list_id IN (SELECT list_id FROM list_members WHERE person_id = %(principal)s))"""

# A numbered mutation that journaled nothing (it changed nothing): its rows
# (NULL: as the row `id` is now, for a retry that finds it unsettled, its
# first reply lost with its process), and where the journal stands, which
# covers the state it saw (a later commit has a higher position). Settled
# once: whoever comes first, and everyone answers from the record.
SETTLE_UNCHANGED = f"""
UPDATE mutations SET result = coalesce(%(rows)s, (SELECT jsonb_agg(to_jsonb(t)) FROM todos t WHERE t.id = %(id)s AND {_SEES}), '[]'),
                     position = (SELECT coalesce(max(position), 0) FROM todo_changes)
WHERE (principal, client_id, seq) = (%(principal)s, %(client)s, %(seq)s) AND position IS NULL
RETURNING position
"""
# A rejection, in its own statement: its code and message, the row as the
# server has it (when it names one that exists), and where the journal
# stands. No row back: the key was recorded meanwhile (a duplicate).
RECORD_REJECTION = f"""
INSERT INTO mutations (principal, client_id, seq, fingerprint, verdict, result, position)
VALUES (%(principal)s, %(client)s, %(seq)s, %(fingerprint)s, 'rejected',
        jsonb_strip_nulls(jsonb_build_object(
            'code', %(code)s::text, 'message', %(message)s::text,
            'row', (SELECT to_jsonb(t) FROM todos t WHERE t.id = %(id)s AND {_SEES}))),
        (SELECT coalesce(max(position), 0) FROM todo_changes))
ON CONFLICT DO NOTHING
RETURNING position, result->'row' AS row
"""
# A numbered mutation's answer from its journal entries: its rows, in order,
# and its cursor (the newest entry's). SELECT_SETTLED reads it while the
# entries are kept; the journal's retention stores it with the verdict as
# it prunes them (repository.PRUNE_JOURNAL), so a retry is answered the same
# for as long as the verdict is kept.
ENTRIES_ANSWER = "jsonb_agg(todo ORDER BY position) AS rows, max(position) AS position"
# What a key settled as: its verdict and fingerprint, the rows (stored, or
# its journal entries') and the cursor (stored, or its newest entry's).
SELECT_SETTLED = f"""
SELECT m.verdict, m.fingerprint, m.result, coalesce(m.position, e.position) AS position, e.rows AS entries
FROM mutations m
LEFT JOIN LATERAL (SELECT {ENTRIES_ANSWER} FROM todo_changes WHERE mutation = %(key)s AND m.position IS NULL) e ON true
WHERE (m.principal, m.client_id, m.seq) = (%(principal)s, %(client)s, %(seq)s)
"""
# A client's verdicts after a sequence number, in order: each with its
# cursor and the row it left (its newest entry's, or the stored one).
SELECT_VERDICTS = """
SELECT m.seq, m.verdict, m.result, coalesce(m.position, v.position) AS position, v.todo
FROM mutations m
CROSS JOIN LATERAL (SELECT m.principal::text || ':' || m.client_id::text || ':' || m.seq::text AS key) k
LEFT JOIN LATERAL (
    SELECT position, todo FROM todo_changes WHERE mutation = k.key AND m.position IS NULL
    ORDER BY position DESC LIMIT 1
) v ON true
WHERE m.principal = %(principal)s AND m.client_id = %(client)s AND m.seq > %(after)s
ORDER BY m.seq
LIMIT %(limit)s
"""
# One batch of verdict retention: those older than keep_seconds. Each keeps
# its answer for as long: a rejection's and a no-op's are stored with it,
# an applied one's are its journal entries' until the journal's retention
# stores them with it (ENTRIES_ANSWER).
PRUNE_MUTATIONS = """
WITH batch AS (
    SELECT principal, client_id, seq FROM mutations
    WHERE created_time < now() - %(keep_seconds)s * interval '1 second'
    ORDER BY created_time
    LIMIT %(limit)s
)
DELETE FROM mutations m USING batch b
WHERE (m.principal, m.client_id, m.seq) = (b.principal, b.client_id, b.seq)
"""


async def settle_unchanged(
    conn: AsyncConnection[Any], key: Key, rows: list[dict[str, Any]] | None, todo_id: uuid.UUID | None = None
) -> int | None:
    """Store the rows (None: row `todo_id` as it is now) and cursor of a
    numbered mutation that journaled nothing; None when it was settled already."""
    params = {**key_params(key), "rows": None if rows is None else Jsonb(rows), "id": todo_id}
    async with conn.cursor() as cur:
        await cur.execute(SETTLE_UNCHANGED, params)
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def record_rejection(
    conn: AsyncConnection[Any], key: Key, code: str, message: str, todo_id: uuid.UUID | None
) -> tuple[int, dict[str, Any] | None] | None:
    """Record a numbered mutation's rejection; its cursor and the row as the
    server has it (None: no such row), or None when the key was recorded
    meanwhile."""
    params = {**key_params(key), "fingerprint": key.fingerprint, "code": code, "message": message, "id": todo_id}
    async with conn.cursor() as cur:
        await cur.execute(RECORD_REJECTION, params)
        row = await cur.fetchone()
    return None if row is None else (int(row[0]), row[1])


@dataclass(frozen=True, slots=True)
class Settled:
    """A key's record: verdict, fingerprint, rows (as the journal holds
    them), a rejection's code and message, and the cursor (None: being
    settled right now)."""

    verdict: str
    fingerprint: bytes
    rows: list[dict[str, Any]]
    rejection: dict[str, Any] | None
    position: int | None


async def settled(conn: AsyncConnection[Any], key: Key) -> Settled | None:
    """What the key settled as; None: it is not recorded (anymore)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_SETTLED, {**key_params(key), "key": key.text})
        row = await cur.fetchone()
    if row is None:
        return None
    result = row["result"]
    rejected = row["verdict"] == "rejected"
    rows = result if result is not None and not rejected else (row["entries"] or [])
    position = None if row["position"] is None else int(row["position"])
    return Settled(row["verdict"], bytes(row["fingerprint"]), rows, result if rejected else None, position)


async def verdicts(
    conn: AsyncConnection[Any], principal: uuid.UUID, client: uuid.UUID, after: int, limit: int
) -> list[dict[str, Any]]:
    """A client's verdicts after sequence number `after`, oldest first."""
    params = {"principal": principal, "client": client, "after": after, "limit": limit}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SELECT_VERDICTS, params)
        return await cur.fetchall()


async def prune_mutations(conn: AsyncConnection[Any], keep_seconds: float, limit: int) -> int:
    """Delete one batch of verdicts past retention; how many went."""
    async with conn.cursor() as cur:
        await cur.execute(PRUNE_MUTATIONS, {"keep_seconds": keep_seconds, "limit": limit})
        return cur.rowcount


def key_params(key: Key) -> dict[str, Any]:
    return {"principal": key.principal, "client": key.client, "seq": key.seq, "fingerprint": key.fingerprint}
