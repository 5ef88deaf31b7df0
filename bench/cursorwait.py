"""The journal fed by logical decoding, through the app, with the writer's
cursor wait (issue 21; docs/design/journal-decoding.md, "The writer's
cursor"). Up to four servers in one sitting, as bench.ab runs two and
PostGraphile 5 (docs/bench-ab-journal.md, "Fourth round"):

- A: this checkout as it runs by default (JOURNAL=trigger: today's journal trigger);
- C: this checkout with JOURNAL=decoded: the statement returns
  pg_current_xact_id(), the sequencer journals each entry with its xid and
  sends one NOTIFY per batch naming each transaction's xid and last
  position, and the process's hub (its one LISTEN) resolves the writer's
  waiter (graphql_todos/core/cursors.py);
- D: C, its sequencer also sending each entry's NOTIFY as today's trigger
  does, so the hub reads nothing back;
- PostGraphile 5 on the peers' table.

The decoded versions' databases have the todos journal triggers dropped
and offcommit.APP_DECODED applied, and each has `python -m bench.offcommit
--sequence stream_app` (D: stream_app_rows) running beside it
(offcommit.WRITE_APP: the entries into the app's own todo_changes). All on
offcommit's logical cluster (or DATABASE_URL, with wal_level = logical).

    python -m bench.cursorwait --cases createTodo,updateTodo --rounds 6 --seconds 3 --out runs.jsonl
    python -m bench.ab --summary runs.jsonl
    python -m bench.cursorwait --rows --versions C,D --rounds 3     # make bench's rows case

`--rows` times make bench's rows case (1,000 subscribers each on its own
row, one UPDATE of every row per change, bench.__main__._rows_one) against
A and the decoded versions in turn: today's 1,000 NOTIFYs at the UPDATE's
commit, against the sequencer's one batch INSERT after it. (The patched
copies this bench measured first, B replying without the wait among them,
are in the history: bench/cursorwait.patch, before JOURNAL=decoded.)"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

from .__main__ import ROW_SUBSCRIBERS, _ids, _rows_one
from .ab import CASES, alternate, ours, peer5, postmaster, warmed
from .databases import ROOT, ROWS, Databases, _server, pair
from .offcommit import APP_DECODED, UNJOURNALED, logical_cluster, sequencer
from .procstat import cpu_seconds
from .report import median
from .servers import OURS, Server

# The decoded versions' sequencers (offcommit's WRITE_APP: one NOTIFY per
# batch, which the hub reads back; WRITE_APP_ROWS: each entry's NOTIFY too,
# as today's trigger sends it).
DECODED_VERSIONS = {"C": "stream_app", "D": "stream_app_rows"}


@contextmanager
def _logical() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        with _server() as admin:
            yield admin
    else:
        with logical_cluster() as admin:
            yield admin


def decoded(dsn: str) -> None:
    """No todos journal trigger: the sequencer writes the entries."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(UNJOURNALED + APP_DECODED)  # type: ignore[arg-type]


def check_cursor(server: Server, dsn: str) -> None:
    """A REST create's Journal-Cursor is its own entry's position (the reply waits for it)."""
    reply = httpx.post(server.url + "/api/todos/", json={"title": "cursor check"})
    reply.raise_for_status()
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT position FROM todo_changes WHERE todo_id = %s", (reply.json()["id"],)).fetchone()
    if row is None or str(row[0]) != reply.headers.get("Journal-Cursor"):
        raise RuntimeError(f"{server.name}: cursor {reply.headers.get('Journal-Cursor')}, entry {row}")
    print(f"{server.name}: a create's Journal-Cursor {row[0]} is its entry's position", flush=True)


def journal_check(name: str, dsn: str) -> None:
    """The journal after the rounds, once the sequencer has caught up (or 10
    s): positions without a gap, the decoded entries (those with an xid)
    against the rows written (pg_stat_user_tables, less the ROWS written
    before the slot), and the numbered writes' keys."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        written = conn.execute(
            "SELECT n_tup_ins + n_tup_upd + n_tup_del - %s FROM pg_stat_user_tables WHERE relname = 'todos'", (ROWS,)
        ).fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 10
        while True:
            entries, first, last, decoded, keyed = conn.execute(
                "SELECT count(*), min(position), max(position), count(xid), count(DISTINCT mutation) FROM todo_changes"
            ).fetchone()  # type: ignore[misc]
            if decoded >= written or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        verdicts = conn.execute("SELECT count(*) FROM mutations").fetchone()[0]  # type: ignore[index]
    print(f"{name}: {entries} entries, positions {first} to {last}; {decoded} decoded (with an xid) for {written} "
          f"rows written after the slot; {keyed} keys in the journal for {verdicts} mutations rows", flush=True)

def _decoded_servers(stack: ExitStack, admin: str, names: list[str], rows: int) -> dict[str, tuple[Databases, int]]:
    """Each decoded version's databases (pair) and its sequencer's pid: running until the stack closes."""
    versions = {}
    for name in names:
        dbs = stack.enter_context(pair(admin, f"_{name.lower()}", rows))
        decoded(dbs.ours)
        versions[name] = (dbs, stack.enter_context(sequencer(dbs.ours, DECODED_VERSIONS[name])))
    return versions


def rows(admin: str, names: list[str], args: argparse.Namespace) -> None:
    """The rows case, A (this checkout) and the decoded versions in turn, each round a fresh server of each."""
    settings = argparse.Namespace(row_events=args.row_events, client_processes=4)
    with ExitStack() as stack:
        trees = {"A": stack.enter_context(pair(admin, "_a", ROW_SUBSCRIBERS))}
        trees |= {name: dbs for name, (dbs, _) in _decoded_servers(stack, admin, names, ROW_SUBSCRIBERS).items()}
        order = list(trees)
        last: dict[str, list[float]] = {name: [] for name in order}
        for round_ in range(args.rounds):
            for name in order[round_ % len(order):] + order[: round_ % len(order)]:
                # running() starts ours with the environment it inherits.
                os.environ["JOURNAL"] = "trigger" if name == "A" else "decoded"
                result = asyncio.run(_rows_one(trees[name], OURS, ROW_SUBSCRIBERS, settings))
                last[name] += result.last_arrival
                print(f"round {round_} {name}: last arrival {', '.join(f'{v * 1000:.1f}' for v in result.last_arrival)} ms, "
                      f"load average {os.getloadavg()}", flush=True)
        base = median(last["A"])
        print("last arrival p50: " + ", ".join(f"{n} {median(v) * 1000:.1f} ms ({median(v) / base:.2f})" for n, v in last.items()),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cursorwait", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="createTodo", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--versions", default="C,D", help=f"decoded versions beside A, of {','.join(DECODED_VERSIONS)}")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--out", type=Path, help="JSON lines, one per run (python -m bench.ab --summary reads them)")
    parser.add_argument("--rows", action="store_true", help="the rows case instead")
    parser.add_argument("--row-events", type=int, default=10, help="UPDATEs timed per server and round (--rows)")
    args = parser.parse_args()
    names = args.versions.split(",")
    if args.rows:
        with _logical() as admin:
            rows(admin, names, args)
        return
    with _logical() as admin, ExitStack() as stack:
        dbs_a = stack.enter_context(pair(admin, "_a"))
        versions = _decoded_servers(stack, admin, names, ROWS)
        with ExitStack() as running:
            servers = [running.enter_context(ours("A", ROOT, dbs_a.ours))]
            for name, (dbs, _) in versions.items():
                servers.append(server := running.enter_context(ours(name, ROOT, dbs.ours, "decoded")))
                check_cursor(server, dbs.ours)
            servers.append(running.enter_context(peer5(dbs_a.peer_url)))
            pg = postmaster(admin)
            print(f"load average {os.getloadavg()}", flush=True)
            ids = {"A": _ids(dbs_a.ours, 50)} | {name: _ids(dbs.ours, 50) for name, (dbs, _) in versions.items()}
            plans = warmed(args.cases.split(","), servers, ids, _ids(dbs_a.peer, 50))
            sequencer_cpu = {name: cpu_seconds(pid) for name, (_, pid) in versions.items()}
            alternate(plans, args.rounds, args.seconds, pg, args.out)
            print(f"load average {os.getloadavg()}", flush=True)
            for name, (_, pid) in versions.items():
                print(f"{name}'s sequencer: {cpu_seconds(pid) - sequencer_cpu[name]:.2f} CPU s over the rounds", flush=True)
        # The servers stopped: their backends' statistics are flushed.
        for name, (dbs, _) in versions.items():
            journal_check(name, dbs.ours)


if __name__ == "__main__":
    main()
