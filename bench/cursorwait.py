"""The journal fed by logical decoding, through the app, with the writer's
cursor wait (issue 21; docs/design/journal-decoding.md, "The writer's
cursor"). Four servers in one sitting, as bench.ab runs two and PostGraphile 5:

- A: this checkout as it is (today's journal trigger);
- B: a throwaway copy of it with bench/cursorwait.patch applied, replying
  without waiting for its cursor (the newest position read instead, as the
  helper decoding's copy did);
- C: the same copy, replying with its cursor: the statement returns
  pg_current_xact_id(), the sequencer journals each entry with its xid and
  sends one NOTIFY per batch naming each transaction's xid and last
  position, and the process's hub (its one LISTEN) resolves the writer's
  waiter (graphql_todos/core/cursors.py in the copy);
- PostGraphile 5 on the peers' table.

B's and C's databases have the todos journal triggers dropped and
offcommit.APP_DECODED applied, and each has `python -m bench.offcommit
--sequence stream_app` running beside it (offcommit.WRITE_APP: the entries
into the app's own todo_changes). All on offcommit's logical cluster (or
DATABASE_URL, with wal_level = logical).

    python -m bench.cursorwait --cases createTodo,updateTodo --rounds 6 --seconds 3 --out runs.jsonl
    python -m bench.ab --summary runs.jsonl
    python -m bench.cursorwait --rows --rounds 3     # make bench's rows case, A against C

`--rows` times make bench's rows case (1,000 subscribers each on its own
row, one UPDATE of every row per change, bench.__main__._rows_one) against
A and C in turn: today's 1,000 NOTIFYs at the UPDATE's commit, against the
sequencer's one batch INSERT and one NOTIFY, which the hub reads back.

The copies are made from HEAD (git archive) in TMPDIR, kept for a rerun."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

from .__main__ import ROW_SUBSCRIBERS, _ids, _rows_one
from .ab import CASES, alternate, ours, peer5, postmaster, warmed
from .databases import ROOT, ROWS, _server, pair
from .offcommit import APP_DECODED, UNJOURNALED, logical_cluster, sequencer
from .procstat import cpu_seconds
from .report import median
from .servers import OURS, Server

PATCH = Path(__file__).with_name("cursorwait.patch")


def copy(target: Path, wait: bool) -> Path:
    """HEAD's graphql_todos with the patch applied in target (made afresh); `wait`: C, else B."""
    subprocess.run(["rm", "-rf", str(target)], check=True)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD", "graphql_todos"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    subprocess.run(["git", "apply", str(PATCH)], cwd=target, check=True)
    if not wait:
        cursors = target / "graphql_todos" / "core" / "cursors.py"
        cursors.write_text(cursors.read_text().replace("\nWAIT = True\n", "\nWAIT = False\n"))
    return target


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
    """A REST create's Journal-Cursor is its own entry's position (C waits for it)."""
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

def rows(admin: str, tree: Path, args: argparse.Namespace) -> None:
    """The rows case, A (this checkout) and C (`tree`) in turn, each round a fresh server of each."""
    settings = argparse.Namespace(row_events=args.row_events, client_processes=4)
    with ExitStack() as stack:
        dbs = {name: stack.enter_context(pair(admin, f"_rows_{name.lower()}", ROW_SUBSCRIBERS)) for name in ("A", "C")}
        decoded(dbs["C"].ours)
        stack.enter_context(sequencer(dbs["C"].ours, "stream_app"))
        trees = {"A": ROOT, "C": tree}
        last: dict[str, list[float]] = {"A": [], "C": []}
        for round_ in range(args.rounds):
            for name in ("A", "C")[:: 1 if round_ % 2 == 0 else -1]:
                # running() starts ours from the PYTHONPATH it inherits.
                os.environ["PYTHONPATH"] = str(trees[name])
                result = asyncio.run(_rows_one(dbs[name], OURS, ROW_SUBSCRIBERS, settings))
                last[name] += result.last_arrival
                print(f"round {round_} {name}: last arrival {', '.join(f'{v * 1000:.1f}' for v in result.last_arrival)} ms, "
                      f"load average {os.getloadavg()}", flush=True)
        a, c = median(last["A"]), median(last["C"])
        print(f"last arrival p50: A {a * 1000:.1f} ms, C {c * 1000:.1f} ms, C/A {c / a:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cursorwait", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="createTodo", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--out", type=Path, help="JSON lines, one per run (python -m bench.ab --summary reads them)")
    parser.add_argument("--rows", action="store_true", help="the rows case instead, A against C")
    parser.add_argument("--row-events", type=int, default=10, help="UPDATEs timed per server and round (--rows)")
    args = parser.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    trees = {"B": copy(tmp / "cursorwait-b", wait=False), "C": copy(tmp / "cursorwait-c", wait=True)}
    if args.rows:
        with _logical() as admin:
            rows(admin, trees["C"], args)
        return
    with _logical() as admin, ExitStack() as stack:
        dbs = {name: stack.enter_context(pair(admin, f"_{name.lower()}")) for name in ("A", "B", "C")}
        sequencers = {}
        for name in trees:
            decoded(dbs[name].ours)
            sequencers[name] = stack.enter_context(sequencer(dbs[name].ours, "stream_app"))
        with ExitStack() as running:
            servers = [running.enter_context(ours("A", ROOT, dbs["A"].ours))]
            servers += [running.enter_context(ours(name, tree, dbs[name].ours)) for name, tree in trees.items()]
            servers.append(running.enter_context(peer5(dbs["A"].peer_url)))
            check_cursor(servers[2], dbs["C"].ours)
            pg = postmaster(admin)
            print(f"load average {os.getloadavg()}", flush=True)
            ids = {name: _ids(d.ours, 50) for name, d in dbs.items()}
            plans = warmed(args.cases.split(","), servers, ids, _ids(dbs["A"].peer, 50))
            sequencer_cpu = {name: cpu_seconds(pid) for name, pid in sequencers.items()}
            alternate(plans, args.rounds, args.seconds, pg, args.out)
            print(f"load average {os.getloadavg()}", flush=True)
            for name, pid in sequencers.items():
                print(f"{name}'s sequencer: {cpu_seconds(pid) - sequencer_cpu[name]:.2f} CPU s over the rounds", flush=True)
        # The servers stopped: their backends' statistics are flushed.
        for name in trees:
            journal_check(name, dbs[name].ours)

if __name__ == "__main__":
    main()
