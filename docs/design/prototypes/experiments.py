"""Experiments behind docs/design/people.md and docs/design/offline.md.

    python docs/design/prototypes/experiments.py --dsn postgresql://postgres@127.0.0.1:5432/postgres [--only NAME ...]

Each experiment makes a scratch database (design_<pid>_<name>), applies the
package's migrations 001-004 and the prototypes 005/006, runs, prints, and
drops the database. Needs psycopg 3 and argon2-cffi.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

HERE = Path(__file__).resolve().parent
SQL = HERE.parents[2] / "graphql_todos" / "sql"
sys.path.insert(0, str(HERE))
from visibility import Router, View  # noqa: E402

LOCAL = "00000000-0000-4000-8000-000000000001"
DEFAULT_LIST = "00000000-0000-4000-8000-000000000002"


def with_db(dsn: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=name)


@contextlib.contextmanager
def scratch(dsn: str, tag: str, prototypes: tuple[str, ...] = ("005_people.sql", "006_mutations.sql"),
            before: Callable[[psycopg.Connection[Any]], None] | None = None) -> Iterator[str]:
    name = f"design_{os.getpid()}_{tag}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        if os.environ.get("DESIGN_ASYNC_COMMIT"):
            # Throughput comparisons on a machine whose disk others share:
            # no WAL flush wait, so the ratios measure CPU, not fsync queues.
            admin.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    url = with_db(dsn, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for path in sorted(SQL.glob("00[1-4]_*.sql")):
                conn.execute(path.read_text())
            if before is not None:
                before(conn)
            for proto in prototypes:
                conn.execute((HERE / proto).read_text())
        yield url
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def journal(conn: psycopg.Connection[Any], after: int = 0) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT position, op, todo_id::text, list_before::text, list_after::text, person_id::text, todo, before"
        " FROM todo_changes WHERE position > %s ORDER BY position", (after,)
    ).fetchall()


def person(conn: psycopg.Connection[Any], name: str) -> str:
    return str(conn.execute("INSERT INTO people (username) VALUES (%s) RETURNING id", (name,)).fetchone()[0])


def new_list(conn: psycopg.Connection[Any], owner: str, name: str) -> str:
    with conn.transaction():
        lid = str(conn.execute("INSERT INTO lists (owner_id, name) VALUES (%s, %s) RETURNING id", (owner, name)).fetchone()[0])
        conn.execute("INSERT INTO list_members VALUES (%s, %s, 'owner')", (lid, owner))
    return lid


def act(conn: psycopg.Connection[Any], who: str) -> None:
    conn.execute("SELECT set_config('app.person_id', %s, true)", (who,))


def position(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT coalesce(max(position), 0) FROM todo_changes").fetchone()[0])


def streams(entries: list[dict[str, Any]], views: dict[str, View]) -> dict[str, list[tuple[int, str, str | None]]]:
    out: dict[str, list[tuple[int, str, str | None]]] = {name: [] for name in views}
    for e in entries:
        for name, view in views.items():
            kind = view.step(e)
            if kind is not None:
                out[name].append((e["position"], kind, e["op"]))
    return out


VIEW_AT = """
WITH later AS (
    SELECT DISTINCT ON (list_after) list_after AS list_id, op FROM todo_changes
    WHERE person_id = %(p)s AND op IN ('member_added', 'member_removed') AND position > %(c)s
    ORDER BY list_after, position
)
SELECT list_id::text FROM list_members WHERE person_id = %(p)s
    AND list_id NOT IN (SELECT list_id FROM later)
UNION ALL
SELECT list_id::text FROM later WHERE op = 'member_removed'
"""


def view_at(conn: psycopg.Connection[Any], who: str, cursor: int) -> set[str]:
    return {r[0] for r in conn.execute(VIEW_AT, {"p": who, "c": cursor}).fetchall()}


# --- issue 19 -----------------------------------------------------------------

def exp_migration(dsn: str) -> None:
    """Existing rows join local's default list: nothing rewritten, nothing journaled."""
    def seed(conn: psycopg.Connection[Any]) -> None:
        conn.execute("INSERT INTO todos (title) SELECT 'old ' || g FROM generate_series(1, 1000) g")
        conn.execute("UPDATE todos SET completed = true WHERE title LIKE 'old 1%'")

    with scratch(dsn, "migration", before=seed) as url, psycopg.connect(url, autocommit=True) as conn:
        n, in_default = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE list_id = %s) FROM todos", (DEFAULT_LIST,)).fetchone()
        entries, old = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE list_after = %s) FROM todo_changes", (DEFAULT_LIST,)).fetchone()
        print(f"migration: {in_default}/{n} todos in the default list, {entries} journal entries"
              f" ({old} read as the default list's); local sees them: {view_at(conn, LOCAL, 0) == {DEFAULT_LIST}}")
        conn.execute("INSERT INTO todos (title) VALUES ('from psql')")
        print("  psql INSERT without a list goes to:", conn.execute(
            "SELECT list_id FROM todos WHERE title = 'from psql'").fetchone()[0])


def exp_commit_order(dsn: str) -> None:
    """Membership changes and todo writes from two sessions, interleaved."""
    with scratch(dsn, "order") as url, psycopg.connect(url, autocommit=True) as setup:
        owner, editor, reader = person(setup, "olivia"), person(setup, "ed"), person(setup, "rita")
        lid = new_list(setup, owner, "shared")
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'editor')", (lid, editor))
        with setup.transaction():
            act(setup, owner)
            tid = str(setup.execute("INSERT INTO todos (title, list_id) VALUES ('t1', %s) RETURNING id", (lid,)).fetchone()[0])
        start = position(setup)
        a, b = psycopg.connect(url), psycopg.connect(url)

        # 1. The editor writes; the owner removes the editor and commits first.
        act(a, editor)
        a.execute("UPDATE todos SET title = 'written by ed' WHERE id = %s", (tid,))
        b.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (lid, editor))
        b.commit()
        try:
            a.commit()
            outcome = "committed (WRONG)"
        except psycopg.errors.InsufficientPrivilege as exc:
            outcome = f"refused at commit: {exc.sqlstate} {exc.diag.message_primary}"
        print("case 1, removal commits first, then the removed editor's write:", outcome)

        # 2. The owner writes and commits first; then adds the reader (arrivals
        #    carry the write); a concurrent insert commits after the share.
        act(a, owner)
        a.execute("UPDATE todos SET title = 'v2' WHERE id = %s", (tid,))
        a.commit()
        act(a, owner)
        a.execute("INSERT INTO todos (title, list_id) VALUES ('inserted during the share', %s)", (lid,))
        b.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (lid, reader))
        b.commit()   # the share commits first: its arrivals cannot hold the uncommitted row
        a.commit()   # then the insert: a 'created' the new viewer now sees
        # 3. The reader is removed while the owner moves a row out to a private list.
        private = new_list(setup, owner, "private")
        start3 = position(setup)
        act(a, owner)
        a.execute("UPDATE todos SET list_id = %s, title = 'secret' WHERE title = 'v2'", (private,))
        a.commit()
        b.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (lid, reader))
        b.commit()
        # 4. One transaction changing a list's members and its todos is refused.
        try:
            with setup.transaction():
                act(setup, owner)
                setup.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (lid, reader))
                setup.execute("INSERT INTO todos (title, list_id) VALUES ('mixed', %s)", (lid,))
            print("case 4: mixed transaction committed (WRONG)")
        except psycopg.errors.ObjectNotInPrerequisiteState as exc:
            print("case 4, members and todos of one list in one transaction:", exc.diag.message_primary)
        # 5. Deleting the list: its todos' deletes come before the list's and the members'.
        start5 = position(setup)
        setup.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (lid, reader))
        with setup.transaction():
            act(setup, owner)
            setup.execute("DELETE FROM lists WHERE id = %s", (lid,))
        entries = journal(setup, start)
        for e in entries:
            who = {owner: "olivia", editor: "ed", reader: "rita"}.get(e["person_id"] or "", "")
            title = (e["todo"] or {}).get("title", "")
            lists = f"{(e['list_before'] or '-')[:8]}->{(e['list_after'] or '-')[:8]}"
            print(f"  {e['position']:>4} {e['op']:<15} {lists:<19} {who:<7} {title}")
        views = {"olivia": View(owner, view_at(setup, owner, start)), "ed": View(editor, view_at(setup, editor, start)),
                 "rita": View(reader, view_at(setup, reader, start))}
        for name, seen in streams(entries, views).items():
            print(f"  {name} sees:", ", ".join(f"{p}:{k}" for p, k, _ in seen))
        # Resumed from any cursor, the stream is the tail of the whole one.
        mismatches = 0
        for cursor in range(start, position(setup) + 1):
            for who, name in ((owner, "olivia"), (editor, "ed"), (reader, "rita")):
                whole = streams(entries, {name: View(who, view_at(setup, who, start))})[name]
                resumed = streams([e for e in entries if e["position"] > cursor],
                                  {name: View(who, view_at(setup, who, cursor))})[name]
                if resumed != [s for s in whole if s[0] > cursor]:
                    mismatches += 1
                    print("   mismatch", name, cursor, resumed, [s for s in whole if s[0] > cursor])
        print(f"  resumed from every cursor {start}..{position(setup)} for each person: {mismatches} mismatches")
        rita = {p: k for p, k, _ in streams(entries, {"rita": View(reader, view_at(setup, reader, start))})["rita"]}
        secret = [e for e in entries if (e["todo"] or {}).get("title") == "secret"]
        print("  rita never sees 'secret':", all(e["position"] not in rita or rita[e["position"]] == "removal" for e in secret),
              f"(start3={start3}, start5={start5})")
        a.close()
        b.close()


def replay_rows(entries: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Each entry with the table as the journal says it stood just before it:
    todo id -> list id, from the todo entries alone."""
    rows: dict[str, str] = {}
    for e in entries:
        yield e, rows
        if e["op"] in ("created", "updated"):
            rows[e["todo_id"]] = e["list_after"]
        elif e["op"] == "deleted":
            rows.pop(e["todo_id"], None)


def exp_stress(dsn: str) -> None:
    """4 sessions at once: random writes, moves, deletes, shares, unshares and
    role changes by random people (a write by someone who may not edit fails,
    at its statement or at its commit). Then, from the journal alone: the
    table it replays to is the table; every arrival set is exactly the list's
    rows at its position; every removal set too; each person's stream
    resumed from random cursors is the tail of the whole one."""
    import random

    with scratch(dsn, "stress") as url, psycopg.connect(url, autocommit=True) as setup:
        people = [person(setup, f"p{i}") for i in range(5)]
        lists = [new_list(setup, people[i % 5], f"l{i}") for i in range(4)]
        start = position(setup)
        failures: dict[str, int] = {}
        ops: dict[str, int] = {}

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            with psycopg.connect(url, autocommit=True) as conn:
                for _ in range(250):
                    who, lid = rnd.choice(people), rnd.choice(lists)
                    op = rnd.choice(["insert", "insert", "update", "move", "delete", "share", "unshare", "role"])
                    ops[op] = ops.get(op, 0) + 1
                    try:
                        with conn.transaction():
                            act(conn, who)
                            if op == "insert":
                                conn.execute("INSERT INTO todos (title, list_id) SELECT 't', %s WHERE may_edit(%s, %s)",
                                             (lid, lid, who))
                            elif op == "update":
                                conn.execute("UPDATE todos SET title = md5(random()::text) WHERE id = (SELECT id FROM todos"
                                             " WHERE list_id = %s ORDER BY random() LIMIT 1) AND may_edit(list_id, %s)",
                                             (lid, who))
                            elif op == "move":
                                conn.execute("UPDATE todos SET list_id = %s WHERE id = (SELECT id FROM todos WHERE list_id <> %s"
                                             " ORDER BY random() LIMIT 1) AND may_edit(list_id, %s) AND may_edit(%s, %s)",
                                             (lid, lid, who, lid, who))
                            elif op == "delete":
                                conn.execute("DELETE FROM todos WHERE id = (SELECT id FROM todos WHERE list_id = %s"
                                             " ORDER BY random() LIMIT 1) AND may_edit(list_id, %s)", (lid, who))
                            elif op == "share":
                                conn.execute("INSERT INTO list_members VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                                             (lid, who, rnd.choice(["editor", "viewer"])))
                            elif op == "unshare":
                                conn.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s"
                                             " AND role <> 'owner'", (lid, who))
                            else:
                                conn.execute("UPDATE list_members SET role = CASE role WHEN 'editor' THEN 'viewer'"
                                             " ELSE 'editor' END WHERE list_id = %s AND person_id = %s AND role <> 'owner'",
                                             (lid, who))
                    except psycopg.Error as exc:
                        failures[exc.sqlstate or "?"] = failures.get(exc.sqlstate or "?", 0) + 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = journal(setup, start)
        positions = [e["position"] for e in entries]
        print(f"4 sessions x 250 operations {dict(sorted(ops.items()))}; refused: {failures};"
              f" {len(entries)} journal entries")
        # 1. The journal replays to the table.
        final: dict[str, str] = {}
        for _, rows in replay_rows(entries + [{"op": "end", "position": 0}]):
            final = dict(rows)
        table = {str(r[0]): str(r[1]) for r in setup.execute("SELECT id, list_id FROM todos")}
        print("  the journal replays to the table:", final == table)
        # 2. Arrivals and removals are exactly the list's rows at their position.
        wrong = checked = 0
        by_pos = {e["position"]: e for e in entries}
        for e, rows in replay_rows(entries):
            if e["op"] not in ("member_added", "member_removed"):
                continue
            lid, who = e["list_after"], e["person_id"]
            expected = {t for t, l in rows.items() if l == lid}
            kind = "arrived" if e["op"] == "member_added" else "removed"
            if kind == "arrived":
                p = e["position"] + 1
                got = set()
                while p in by_pos and by_pos[p]["op"] == "arrived" and by_pos[p]["person_id"] == who:
                    got.add(by_pos[p]["todo_id"])
                    p += 1
            else:
                p = e["position"] - 1
                got = set()
                while p in by_pos and by_pos[p]["op"] == "removed" and by_pos[p]["person_id"] == who:
                    got.add(by_pos[p]["todo_id"])
                    p -= 1
                # (removals are no todo entries: the rows before the member
                # entry are the rows before the removals began)
            checked += 1
            wrong += got != expected
        print(f"  arrival and removal sets equal to the list's rows at their position: {checked - wrong} of {checked}")
        # 3. Streams resumed from random cursors are the tails of the whole streams.
        rnd = random.Random(1)
        mismatches = 0
        for who in people:
            whole = streams(entries, {"x": View(who, view_at(setup, who, start))})["x"]
            for cursor in rnd.sample(positions, min(25, len(positions))):
                resumed = streams([e for e in entries if e["position"] > cursor], {"x": View(who, view_at(setup, who, cursor))})["x"]
                mismatches += resumed != [x for x in whole if x[0] > cursor]
        print(f"  5 people x 25 random cursors: {mismatches} resumed streams differ from the tail")


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def exp_arrivals(dsn: str) -> None:
    """Sharing a 1,000-row list: the arrivals written at commit, and what the
    commit-order lock costs other writers meanwhile."""
    with scratch(dsn, "arrivals") as url, psycopg.connect(url, autocommit=True) as conn:
        owner = person(conn, "olivia")
        readers = [person(conn, f"r{i}") for i in range(12)]
        lid = new_list(conn, owner, "big")
        conn.execute("INSERT INTO todos (title, list_id) SELECT 'row ' || g || repeat('x', 40), %s"
                     " FROM generate_series(1, 1000) g", (lid,))
        conn.execute("ANALYZE")
        add, remove = [], []
        for r in readers:
            add.append(timed(lambda r=r: conn.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (lid, r))))
            remove.append(timed(lambda r=r: conn.execute(
                "DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (lid, r))))
        print(f"share 1,000 rows (member_added + 1,000 arrivals): median {statistics.median(add[2:]):.1f} ms,"
              f" unshare (1,000 removals): median {statistics.median(remove[2:]):.1f} ms")
        # A writer committing while a share holds the lock waits for it.
        other = new_list(conn, readers[0], "other")
        waits: list[float] = []
        for r in readers[:6]:
            share = psycopg.connect(url)
            share.execute("INSERT INTO list_members VALUES (%s, %s, 'viewer')", (lid, r))
            started = threading.Event()

            def commit_share() -> None:
                started.set()
                share.commit()

            t = threading.Thread(target=commit_share)
            t.start()
            started.wait()
            time.sleep(0.0005)
            waits.append(timed(lambda: conn.execute("INSERT INTO todos (title, list_id) VALUES ('w', %s)", (other,))))
            t.join()
            share.close()
            conn.execute("DELETE FROM list_members WHERE list_id = %s AND person_id = %s", (lid, r))
        print(f"  a one-row INSERT into another list committing during a share: median {statistics.median(waits):.1f} ms"
              f" (max {max(waits):.1f})")
        base = [timed(lambda: conn.execute("INSERT INTO todos (title, list_id) VALUES ('w', %s)", (other,)))
                for _ in range(50)]
        print(f"  the same INSERT alone: median {statistics.median(base):.2f} ms")
        # The alternative: one entry holding the list as a JSON array.
        agg = [timed(lambda: conn.execute(
            "SELECT jsonb_agg(to_jsonb(t) ORDER BY created_time, id) FROM todos t WHERE list_id = %s", (lid,)))
            for _ in range(20)]
        size = conn.execute("SELECT pg_column_size(jsonb_agg(to_jsonb(t))) FROM todos t WHERE list_id = %s",
                            (lid,)).fetchone()[0]
        print(f"  alternative, one entry with the rows as one jsonb array: build {statistics.median(agg):.1f} ms,"
              f" {size} bytes stored (toasted)")


READ_PEOPLE = """
INSERT INTO people (id, username) SELECT gen_random_uuid(), 'p' || g FROM generate_series(1, 1000) g;
INSERT INTO lists (id, owner_id, name)
    SELECT gen_random_uuid(), p.id, 'list of ' || p.username FROM people p WHERE p.username <> 'local';
INSERT INTO list_members SELECT l.id, l.owner_id, 'owner' FROM lists l WHERE NOT l.is_default;
-- each person also sees 2 lists of others
INSERT INTO list_members
    SELECT l.id, p.id, 'viewer' FROM people p
    JOIN LATERAL (SELECT id FROM lists WHERE owner_id <> p.id AND NOT is_default ORDER BY md5(p.id::text || id::text) LIMIT 2) l ON true
    WHERE p.username <> 'local' ON CONFLICT DO NOTHING;
"""

LIST_COLUMNS = "id, title, completed, created_time, updated_time, list_id"
Q_TODAY = f"SELECT {LIST_COLUMNS} FROM todos ORDER BY created_time, id LIMIT 10001 OFFSET 0"
Q_MEMBER = (f"SELECT {LIST_COLUMNS} FROM todos t WHERE t.list_id IN"
            " (SELECT list_id FROM list_members WHERE person_id = $1::uuid) ORDER BY created_time, id LIMIT 10001 OFFSET 0")
Q_MEMBER_ONE = (f"SELECT {LIST_COLUMNS} FROM todos t WHERE t.list_id = $2 AND EXISTS"
                " (SELECT FROM list_members WHERE list_id = $2 AND person_id = $1) ORDER BY created_time, id LIMIT 10001")
Q_RLS = f"SELECT {LIST_COLUMNS} FROM todos ORDER BY created_time, id LIMIT 10001 OFFSET 0"
RLS_SETUP = """
CREATE ROLE design_app LOGIN;
GRANT SELECT ON todos, list_members TO design_app;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY todos_members ON todos FOR SELECT TO design_app USING (
    list_id IN (SELECT list_id FROM list_members WHERE person_id = nullif(current_setting('app.person_id', true), '')::uuid));
"""


def pgbench(url: str, script: str, seconds: int = 8, clients: int = 8, user: str | None = None,
            defines: dict[str, str] | None = None) -> float:
    path = Path(f"/tmp/design_bench_{os.getpid()}.sql")
    path.write_text(script)
    args = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(path)]
    for k, v in (defines or {}).items():
        args += ["-D", f"{k}={v}"]
    info = psycopg.conninfo.conninfo_to_dict(url)
    if user:
        info["user"] = user
    args.append(psycopg.conninfo.make_conninfo(**info))
    import subprocess

    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("tps"))
    return float(line.split("=")[1].split()[0])


def explain(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> str:
    rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) " + sql.replace("$1", "%s").replace("$2", "%s"),
                        params).fetchall()
    return "\n".join("    " + r[0] for r in rows)


def exp_reads(dsn: str) -> None:
    """The 50-row list read by a signed-in person: membership condition vs RLS."""
    for table_rows in (50, 50_000):
        with scratch(dsn, f"reads{table_rows}") as url, psycopg.connect(url, autocommit=True) as conn:
            conn.execute(READ_PEOPLE)
            reader = str(conn.execute("SELECT id FROM people WHERE username = 'p1'").fetchone()[0])
            mine = str(conn.execute("SELECT id FROM lists WHERE owner_id = %s", (reader,)).fetchone()[0])
            # 50 rows in the reader's own list; the rest spread over the other lists.
            conn.execute("INSERT INTO todos (title, list_id) SELECT 'mine ' || g, %s FROM generate_series(1, 50) g", (mine,))
            if table_rows > 50:
                conn.execute("""INSERT INTO todos (title, list_id)
                    SELECT 'other ' || g, (SELECT id FROM lists WHERE owner_id <> %s AND NOT is_default
                                           ORDER BY id OFFSET (g %% 900) LIMIT 1)
                    FROM generate_series(1, %s) g""", (reader, table_rows - 50))
            # the reader's two shared lists: drop those memberships so only 50 rows are visible
            conn.execute("DELETE FROM list_members WHERE person_id = %s AND role = 'viewer'", (reader,))
            conn.execute("VACUUM ANALYZE")
            n = len(conn.execute(Q_MEMBER.replace("$1", "%s"), (reader,)).fetchall())
            print(f"table of {table_rows} rows, the reader sees {n}:")
            if table_rows == 50:
                print(explain(conn, Q_TODAY, ()))
            print(explain(conn, Q_MEMBER, (reader,)))
            conn.execute(RLS_SETUP)
            results = {}
            rounds: dict[str, list[float]] = {}
            scripts = {
                "today (no visibility)": (f"{Q_TODAY};", None),
                "membership condition": (f"{Q_MEMBER.replace('$1', ':reader')};", None),
                "RLS, BEGIN; set_config; SELECT; COMMIT (pipelined)":
                    ("\\startpipeline\nBEGIN;\nSELECT set_config('app.person_id', :reader, true);\n"
                     f"{Q_RLS};\nCOMMIT;\n\\endpipeline\n", "design_app"),
                "RLS, set_config then SELECT (2 round trips, session-level)":
                    (f"SELECT set_config('app.person_id', :reader, false);\n{Q_RLS};\n", "design_app"),
            }
            for _ in range(2):
                for name, (script, user) in scripts.items():
                    if table_rows > 50 and name.startswith("today"):
                        continue
                    rounds.setdefault(name, []).append(
                        pgbench(url, script, seconds=6, user=user, defines={"reader": reader}))
            for name, tps in rounds.items():
                results[name] = statistics.mean(tps)
                print(f"  pgbench -c8 -M prepared, {name}: {results[name]:.0f} tps {[round(t) for t in tps]}")
            with psycopg.connect(psycopg.conninfo.make_conninfo(url, user="design_app"), autocommit=True) as app:
                with app.transaction():
                    app.execute("SELECT set_config('app.person_id', %s, true)", (reader,))
                    print(explain(app, Q_RLS, ()))
            conn.execute("DROP OWNED BY design_app; DROP ROLE design_app")


# --- issue 20 -----------------------------------------------------------------

CREATE_PLAIN = "INSERT INTO todos (title, completed) VALUES (%(t)s, false) RETURNING id, title, completed, created_time, updated_time"
CREATE_ACTING = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true))
INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
RETURNING id, title, completed, created_time, updated_time, list_id
"""
# The design (offline.md): one statement writes the change and the verdict
# (key and fingerprint); the journal entries carry the key; the cursor comes
# back as a NOTICE at commit, in the same round trip.
CREATE_RECORDED = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
changed AS (
    INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
    RETURNING id, title, completed, created_time, updated_time, list_id
),
recorded AS (
    INSERT INTO mutations (person_id, client_id, seq, fingerprint, verdict)
    SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied' FROM changed HAVING count(*) > 0
)
SELECT id, title, completed, created_time, updated_time, list_id FROM changed
"""
# A retry's answer: the verdict; the rows and cursor stored, or its journal entries'.
SETTLED = """
SELECT m.verdict,
       coalesce(m.position, (SELECT max(position) FROM todo_changes WHERE mutation = %(k)s)),
       coalesce(m.result, (SELECT jsonb_agg(todo ORDER BY position) FROM todo_changes WHERE mutation = %(k)s))
FROM mutations m WHERE (person_id, client_id, seq) = (%(p)s::uuid, %(c)s::uuid, %(s)s)
"""
# Alternatives measured. FULL: the verdict row carries the rows (jsonb) and a
# deferred trigger raises the cursor, storing it when nothing was journaled.
# STORED: the cursor written into the row by an UPDATE at every commit and
# read back by a second statement after it (pipelined: one round trip).
ALTERNATIVE = """
CREATE TABLE mutations_full (LIKE mutations INCLUDING ALL);
CREATE FUNCTION mutations_full_settle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wrote bigint := nullif(current_setting('app.last_position', true), '')::bigint;
BEGIN
    IF wrote IS NULL THEN
        SELECT coalesce(max(position), 0) INTO wrote FROM todo_changes WHERE todo_id = (NEW.result #>> '{0,id}')::uuid;
        UPDATE mutations_full SET position = wrote
        WHERE (person_id, client_id, seq) = (NEW.person_id, NEW.client_id, NEW.seq);
    END IF;
    RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || wrote, ERRCODE = '01GT0';
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER mutations_full_settle AFTER INSERT ON mutations_full
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mutations_full_settle();
CREATE TABLE mutations_stored (LIKE mutations INCLUDING ALL);
CREATE FUNCTION mutations_store() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mutations_stored SET position = current_setting('app.last_position')::bigint
    WHERE (person_id, client_id, seq) = (NEW.person_id, NEW.client_id, NEW.seq);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER mutations_store AFTER INSERT ON mutations_stored
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mutations_store();
"""
CREATE_WITH_ROWS = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
changed AS (
    INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
    RETURNING id, title, completed, created_time, updated_time, list_id
),
recorded AS (
    INSERT INTO {table} (person_id, client_id, seq, fingerprint, verdict, result)
    SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied', jsonb_agg(to_jsonb(changed)) FROM changed
    HAVING count(*) > 0
)
SELECT id, title, completed, created_time, updated_time, list_id FROM changed
"""
CREATE_UNNUMBERED = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.cursor_notice', 'on', true))
INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
RETURNING id, title, completed, created_time, updated_time, list_id
"""
STORED = "SELECT verdict, position, result FROM mutations_stored WHERE (person_id, client_id, seq) = (%(p)s::uuid, %(c)s::uuid, %(s)s)"


async def rate(url: str, work: Callable[[psycopg.AsyncConnection[Any], int], Any], seconds: float, tasks: int,
               pool_size: int) -> float:
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(url, min_size=pool_size, max_size=pool_size, kwargs={"autocommit": True},
                                   open=False) as pool:
        await pool.open(wait=True)
        done = 0
        stop = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < stop:
                async with pool.connection() as conn:
                    await work(conn, k * 10_000_000 + i)
                i += 1
                done += 1

        await asyncio.gather(*(worker(k) for k in range(tasks)))
    return done / seconds


def exp_verdicts(dsn: str) -> None:
    """createTodo with and without recording its verdict and cursor."""
    with scratch(dsn, "verdicts") as url, psycopg.connect(url, autocommit=True) as conn:
        who = person(conn, "olivia")
        lid = new_list(conn, who, "mine")
        client = str(uuid.uuid4())
        fp = b"\x00" * 32
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))

        def params(s: int, title: str = "x") -> dict[str, Any]:
            return {"p": who, "t": title, "l": lid, "c": client, "s": s, "f": fp, "k": f"{who}:{client}:{s}"}

        row = conn.execute(CREATE_RECORDED, params(1)).fetchone()
        entry = conn.execute("SELECT position FROM todo_changes WHERE todo_id = %s", (row[0],)).fetchone()[0]
        answer = conn.execute(SETTLED, params(1)).fetchone()
        print(f"recorded createTodo: the NOTICE read with the reply says {notices[-1]!r}; its journal entry: {entry};"
              f" a retry's answer: {answer[:2]}, rows from the journal: {[r['title'] for r in answer[2]]}")
        try:
            conn.execute(CREATE_RECORDED, params(1))
        except psycopg.errors.UniqueViolation:
            rows = conn.execute("SELECT count(*) FROM todos WHERE list_id = %s", (lid,)).fetchone()[0]
            print(f"  retry: unique violation (the statement rolled back), todos in the list: {rows}")
        notices.clear()
        unchanged = conn.execute("""WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
            changed AS (UPDATE todos SET title = title FROM acting WHERE id = %(id)s RETURNING todos.*),
            recorded AS (INSERT INTO mutations (person_id, client_id, seq, fingerprint, verdict)
                         SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied' FROM changed HAVING count(*) > 0)
            SELECT jsonb_agg(to_jsonb(changed)) FROM changed""", {**params(2), "id": row[0]}).fetchone()[0]
        settled = conn.execute("SELECT mutation_unchanged(%s, %s, 2, %s)",
                               (who, client, psycopg.types.json.Jsonb(unchanged))).fetchone()[0]
        print(f"  a write that changes nothing: NOTICEs {notices} (none), so the service settles it: cursor {settled};"
              f" a retry's answer {conn.execute(SETTLED, params(2)).fetchone()[:2]}")
        a, b = psycopg.connect(url), psycopg.connect(url)
        race = params(3, "race")
        a.execute(CREATE_RECORDED, race)
        outcome: list[str] = []

        def second() -> None:
            try:
                b.execute(CREATE_RECORDED, race)
                b.commit()
                outcome.append("second committed (WRONG)")
            except psycopg.errors.UniqueViolation:
                b.rollback()
                outcome.append("the second waited for the first, then unique violation; answered "
                               + str(b.execute(SETTLED, race).fetchone()[:2]))

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
        a.commit()
        t.join()
        print("  the same (client, seq) from two sessions at once:", outcome[0], "; rows titled race:",
              conn.execute("SELECT count(*) FROM todos WHERE title = 'race'").fetchone()[0])
        a.close()
        b.close()

        # Several rows in one numbered mutation: one NOTICE, the last entry; the rows recorded.
        conn.execute("INSERT INTO todos (title, list_id) SELECT 'many ' || g, %s FROM generate_series(1, 3) g", (lid,))
        many = {**params(4), "completed": True}
        conn.execute("""WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
            changed AS (UPDATE todos SET completed = %(completed)s FROM acting
                        WHERE list_id = %(l)s AND title LIKE 'many %%' RETURNING todos.*),
            recorded AS (INSERT INTO mutations (person_id, client_id, seq, fingerprint, verdict)
                         SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied' FROM changed HAVING count(*) > 0)
            SELECT id FROM changed""", many)
        last = conn.execute("SELECT max(position), count(*) FROM todo_changes WHERE mutation = %s", (many["k"],)).fetchone()
        rows = len(conn.execute(SETTLED, many).fetchone()[2])
        print(f"  toggle of 3 rows, numbered: NOTICEs {notices[-3:]}, its entries {last[1]} (last {last[0]}),"
              f" rows in a retry's answer {rows}")
        # Nothing matched (a row that is gone): no verdict row from the statement (HAVING), the service records a rejection.
        gone = conn.execute("""WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
            changed AS (UPDATE todos SET title = 'x' FROM acting WHERE id = gen_random_uuid() RETURNING todos.*),
            recorded AS (INSERT INTO mutations (person_id, client_id, seq, fingerprint, verdict)
                         SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied' FROM changed HAVING count(*) > 0)
            SELECT count(*) FROM changed""", params(5)).fetchone()[0]
        print(f"  update of a row that is gone: {gone} rows, verdict rows for it:",
              conn.execute("SELECT count(*) FROM mutations WHERE seq = 5").fetchone()[0])
        # Unnumbered: the journal trigger's NOTICE per entry, the highest wins; over asyncio psycopg too.
        notices.clear()
        conn.execute("""WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.cursor_notice', 'on', true))
            UPDATE todos SET completed = false FROM acting WHERE list_id = %(l)s AND title LIKE 'many %%'""", params(6))
        print(f"  unnumbered toggle of 3 rows: NOTICEs {notices}")

        async def async_notice() -> list[str]:
            got: list[str] = []
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as aconn:
                aconn.add_notice_handler(lambda d: got.append(d.message_primary or ""))
                await aconn.execute(CREATE_RECORDED, params(7))
            return got

        print(f"  asyncio psycopg, numbered createTodo: NOTICE after execute() returned: {asyncio.run(async_notice())}")

        conn.execute(ALTERNATIVE)
        seqs = iter(range(10, 10**9))

        async def plain(c: psycopg.AsyncConnection[Any], i: int) -> None:
            await (await c.execute(CREATE_PLAIN, {"t": "wrk create"})).fetchone()

        async def acting(c: psycopg.AsyncConnection[Any], i: int) -> None:
            await (await c.execute(CREATE_ACTING, {"p": who, "t": "wrk create", "l": lid})).fetchone()

        async def recorded(c: psycopg.AsyncConnection[Any], i: int) -> None:
            await (await c.execute(CREATE_RECORDED, params(next(seqs), "wrk create"))).fetchone()

        async def full(c: psycopg.AsyncConnection[Any], i: int) -> None:
            await (await c.execute(CREATE_WITH_ROWS.format(table="mutations_full"), params(next(seqs), "wrk create"))).fetchone()

        async def stored(c: psycopg.AsyncConnection[Any], i: int) -> None:
            p = params(next(seqs), "wrk create")
            async with c.pipeline() as pipe:
                first = await c.execute(CREATE_WITH_ROWS.format(table="mutations_stored"), p)
                await pipe.sync()
                settled = await c.execute(STORED, p)
            await first.fetchone()
            await settled.fetchone()

        async def held(c: psycopg.AsyncConnection[Any], i: int) -> None:
            # Fire the journal now (the commit-order lock is then held across
            # round trips), read the position, store it, commit.
            p = params(next(seqs), "wrk create")
            async with c.transaction():
                await (await c.execute(CREATE_ACTING, p)).fetchone()
                await c.execute("SET CONSTRAINTS ALL IMMEDIATE")
                pos = (await (await c.execute("SELECT current_setting('app.last_position')")).fetchone())[0]
                await c.execute("INSERT INTO mutations_stored (person_id, client_id, seq, fingerprint, verdict, result,"
                                " position) VALUES (%s, %s, %s, %s, 'applied', '[]', %s)", (who, client, p["s"], fp, int(pos)))

        cases = {"today's INSERT": plain, "INSERT acting for a person (issue 19)": acting,
                 "the design: + verdict row, cursor by NOTICE": recorded,
                 "alternative: + the rows in the verdict row, a settle trigger": full,
                 "alternative: + UPDATE at commit, SELECT after (pipelined)": stored,
                 "alternative: lock held across round trips": held}
        for tasks, pool in ((20, 10), (4, 4)):
            got: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(3):
                for name, work in cases.items():
                    got[name].append(asyncio.run(rate(url, work, 4, tasks, pool)))
            print(f"createTodo at the database, {tasks} concurrent on a pool of {pool} (asyncio psycopg, 3 alternating runs):")
            base = statistics.median(got["INSERT acting for a person (issue 19)"])
            for name, runs in got.items():
                print(f"  {name}: median {statistics.median(runs):.0f}/s {[round(r) for r in runs]}"
                      f"  acting/this {base / statistics.median(runs):.2f}")


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    pid = conn.info.backend_pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def exp_verdict_cpu(dsn: str) -> None:
    """Where a numbered createTodo's database CPU goes: one connection, 3 x 3,000
    statements per variant (alternating), the backend's own CPU from /proc (robust to the
    machine's other load, which the throughput figures are not). Needs a
    server on this machine."""
    variants = {  # name: (before, after, statement)
        "unnumbered (cursor NOTICE per entry)": ("", "", CREATE_UNNUMBERED),
        "numbered, the design": ("", "", CREATE_RECORDED),
        "numbered, without the created_time index": ("DROP INDEX mutations_created",
                                                     "CREATE INDEX mutations_created ON mutations (created_time)",
                                                     CREATE_RECORDED),
        "numbered, without the journal's mutation index": (
            "DROP INDEX todo_changes_mutation",
            "CREATE INDEX todo_changes_mutation ON todo_changes (mutation) WHERE mutation IS NOT NULL", CREATE_RECORDED),
        "alternative: the rows in the verdict row, a settle trigger": ("", "", CREATE_WITH_ROWS.format(table="mutations_full")),
    }
    per_run = 3000
    with scratch(dsn, "verdictcpu") as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ALTERNATIVE)
        who = person(conn, "olivia")
        lid = new_list(conn, who, "mine")
        client = str(uuid.uuid4())
        seq = iter(range(1, 10**9))
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(3):
            for name, (before, after, statement) in variants.items():
                if before:
                    conn.execute(before)
                start = backend_cpu(conn)
                for _ in range(per_run):
                    s = next(seq)
                    conn.execute(statement, {"p": who, "t": "wrk create", "l": lid, "c": client, "s": s,
                                             "f": b"\x00" * 32, "k": f"{who}:{client}:{s}"}).fetchone()
                results[name].append((backend_cpu(conn) - start) / per_run * 1e6)
                if after:
                    conn.execute(after)
    # Today's schema (001-004 only) and statement, for what issue 19 adds to a write.
    with scratch(dsn, "verdictcpu0", prototypes=()) as url, psycopg.connect(url, autocommit=True) as conn:
        today = []
        for _ in range(3):
            start = backend_cpu(conn)
            for _ in range(per_run):
                conn.execute(CREATE_PLAIN, {"t": "wrk create"}).fetchone()
            today.append((backend_cpu(conn) - start) / per_run * 1e6)
        results = {"today's schema and INSERT": today, **results}
        base = statistics.median(results["unnumbered (cursor NOTICE per entry)"])
        for name, runs in results.items():
            print(f"  {name}: {statistics.median(runs):.0f} us of backend CPU per createTodo {[round(r) for r in runs]}"
                  f" ({statistics.median(runs) / base:.2f})")


def exp_routing(_: str) -> None:
    """The group's routing cost: 1,000 members in 100 lists of 10, one change
    to one list, against today's walk over every member."""
    class Member:
        __slots__ = ("view", "last")

        def __init__(self, view: View) -> None:
            self.view = view
            self.last = 0

    lists = [str(uuid.uuid4()) for _ in range(100)]
    members = [Member(View(str(uuid.uuid4()), {lists[i // 10]})) for i in range(1000)]
    router = Router()
    for m in members:
        router.add(m)
    entry = {"op": "updated", "list_before": lists[7], "list_after": lists[7], "person_id": None}
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        kinds = router.route(entry)
    routed = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for i in range(200):
        reached = [m for m in members if i + 1 > m.last]  # today's _fan_out test per member
    walked = (time.perf_counter() - start) / 200 * 1e6
    print(f"route one change: {routed:.1f} us for {len(kinds['update'])} members reached"
          f" ({routed / len(kinds['update']):.2f} us each); today's per-change walk over 1,000 members:"
          f" {walked:.0f} us (its writes aside)")


def measure_cpu(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any], n: int) -> float:
    start = backend_cpu(conn)
    for _ in range(n):
        conn.execute(statement, params).fetchall()
    return (backend_cpu(conn) - start) / n * 1e6


def exp_write_cpu(dsn: str) -> None:
    """What issue 19 adds to a one-row INSERT, part by part: the backend's CPU
    per statement (one connection, 3 x 2,000, alternating), each variant
    removing one part from the full design."""
    payload_json = """CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint := nextval('todo_changes_position');
    committed timestamptz;
    payload text;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (pos, change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail, p_before_row,
            nullif(current_setting('app.mutation', true), ''))
    RETURNING changed_at INTO committed;
    payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
        'list_before', p_before, 'list_after', p_after, 'person', p_person, 'todo', p_todo)::text;
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id)::text;
    END IF;
    PERFORM pg_notify('todo_changes', payload);
    PERFORM set_config('app.last_position', pos::text, true);
    RETURN pos;
END
$$"""
    n = 2000
    with scratch(dsn, "writecpu0", prototypes=()) as url0, psycopg.connect(url0, autocommit=True) as c0, \
            scratch(dsn, "writecpu") as url, psycopg.connect(url, autocommit=True) as conn:
        who = person(conn, "olivia")
        lid = new_list(conn, who, "mine")
        acting = {"p": who, "t": "wrk create", "l": lid}
        variants: dict[str, tuple[str, str, str, dict[str, Any]]] = {  # name: (before, after, statement, params)
            "the design (acting INSERT)": ("", "", CREATE_ACTING, acting),
            "without the list FK": ("ALTER TABLE todos DROP CONSTRAINT todos_list_id_fkey",
                                    "ALTER TABLE todos ADD FOREIGN KEY (list_id) REFERENCES lists (id)", CREATE_ACTING, acting),
            "without the journal's todo_id index": (
                "DROP INDEX todo_changes_todo",
                "CREATE INDEX todo_changes_todo ON todo_changes (todo_id, position) WHERE todo_id IS NOT NULL",
                CREATE_ACTING, acting),
            "without todos_list_order": ("DROP INDEX todos_list_order",
                                         "CREATE INDEX todos_list_order ON todos (list_id, created_time, id)",
                                         CREATE_ACTING, acting),
            "without journal_mark_list": (
                "ALTER FUNCTION journal_mark_list(text, uuid) RENAME TO journal_mark_list_off;"
                " CREATE FUNCTION journal_mark_list(kind text, p_list uuid) RETURNS void LANGUAGE sql AS 'SELECT'",
                "DROP FUNCTION journal_mark_list(text, uuid);"
                " ALTER FUNCTION journal_mark_list_off(text, uuid) RENAME TO journal_mark_list", CREATE_ACTING, acting),
            "without the actor (no set_config, no may_edit)": (
                "", "", "INSERT INTO todos (title, completed, list_id) VALUES (%(t)s, false, %(l)s)"
                " RETURNING id, title, completed, created_time, updated_time, list_id", acting),
        }
        results: dict[str, list[float]] = {"today's schema and INSERT": [], **{k: [] for k in variants}}
        for _ in range(3):
            results["today's schema and INSERT"].append(measure_cpu(c0, CREATE_PLAIN, {"t": "wrk create"}, n))
            for name, (before, after, statement, params) in variants.items():
                if before:
                    conn.execute(before)
                results[name].append(measure_cpu(conn, statement, params, n))
                if after:
                    conn.execute(after)
        conn.execute(payload_json)
        results["NOTIFY payload by json_build_object"] = [measure_cpu(conn, CREATE_ACTING, acting, n) for _ in range(3)]
        base = statistics.median(results["the design (acting INSERT)"])
        for name, runs in results.items():
            print(f"  {name}: {statistics.median(runs):.0f} us {[round(r) for r in runs]}"
                  f" ({statistics.median(runs) - base:+.0f} us)")


# The todos journal trigger written flat: no plpgsql function calls, the
# NOTIFY payload by json_build_object, lists marked only when the
# transaction touched list_members (a statement trigger says so).
LEAN_TRIGGER = """
CREATE FUNCTION list_members_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.members_touched', 'on', true);
    RETURN NULL;
END $$;
CREATE TRIGGER list_members_touched AFTER INSERT OR UPDATE OR DELETE ON list_members
    FOR EACH STATEMENT EXECUTE FUNCTION list_members_touched();
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text;
    row_state todos;
    l_before uuid;
    l_after uuid;
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
    snapshot jsonb;
    before_row jsonb;
    pos bigint;
    committed timestamptz;
    payload text;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    IF TG_OP = 'INSERT' THEN
        change_op := 'created'; row_state := NEW; l_after := NEW.list_id;
    ELSIF TG_OP = 'UPDATE' THEN
        change_op := 'updated'; row_state := NEW; l_before := OLD.list_id; l_after := NEW.list_id;
        IF l_before <> l_after THEN
            before_row := to_jsonb(OLD);
        END IF;
    ELSE
        change_op := 'deleted'; row_state := OLD; l_before := OLD.list_id;
    END IF;
    IF actor IS NOT NULL AND (
        (l_before IS NOT NULL AND l_before IS DISTINCT FROM l_after
         AND current_setting('app.list_deleting', true) IS DISTINCT FROM l_before::text
         AND NOT EXISTS (SELECT FROM list_members WHERE list_id = l_before AND person_id = actor AND role <> 'viewer'))
        OR (l_after IS NOT NULL
            AND NOT EXISTS (SELECT FROM list_members WHERE list_id = l_after AND person_id = actor AND role <> 'viewer'))
    ) THEN
        RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('app.members_touched', true) = 'on' THEN
        PERFORM journal_mark_list('todos', l_before);
        PERFORM journal_mark_list('todos', l_after);
    END IF;
    pos := nextval('todo_changes_position');
    snapshot := to_jsonb(row_state);
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, before, mutation)
    VALUES (pos, change_op, row_state.id, snapshot, l_before, l_after, before_row,
            nullif(current_setting('app.mutation', true), ''))
    RETURNING changed_at INTO committed;
    payload := json_build_object('position', pos, 'op', change_op, 'id', row_state.id, 'changed_at', committed,
        'list_before', l_before, 'list_after', l_after, 'todo', snapshot, 'before', before_row)::text;
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', row_state.id,
            'list_before', l_before, 'list_after', l_after)::text;
    END IF;
    PERFORM pg_notify('todo_changes', payload);
    PERFORM set_config('app.last_position', pos::text, true);
    IF current_setting('app.cursor_notice', true) = 'on' OR nullif(current_setting('app.mutation', true), '') IS NOT NULL THEN
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN NULL;
END
$$;
"""


def exp_lean_trigger(dsn: str) -> None:
    """The todos journal trigger written flat (LEAN_TRIGGER) against the
    prototype's and today's: backend CPU per one-row INSERT, alternating."""
    n = 2000
    with scratch(dsn, "lean0", prototypes=()) as url0, psycopg.connect(url0, autocommit=True) as c0, \
            scratch(dsn, "lean1") as url1, psycopg.connect(url1, autocommit=True) as c1, \
            scratch(dsn, "lean2") as url2, psycopg.connect(url2, autocommit=True) as c2:
        c2.execute(LEAN_TRIGGER)
        cases = []
        for conn in (c1, c2):
            who = person(conn, "olivia")
            cases.append((conn, {"p": who, "t": "wrk create", "l": new_list(conn, who, "mine")}))
        results: dict[str, list[float]] = {"today's schema and INSERT": [], "the prototype's trigger": [],
                                           "the flat trigger": []}
        for _ in range(3):
            results["today's schema and INSERT"].append(measure_cpu(c0, CREATE_PLAIN, {"t": "wrk create"}, n))
            results["the prototype's trigger"].append(measure_cpu(cases[0][0], CREATE_ACTING, cases[0][1], n))
            results["the flat trigger"].append(measure_cpu(cases[1][0], CREATE_ACTING, cases[1][1], n))
        for name, runs in results.items():
            print(f"  {name}: {statistics.median(runs):.0f} us {[round(r) for r in runs]}")


def exp_argon2(_: str) -> None:
    from argon2 import PasswordHasher

    # argon2-cffi's default (RFC 9106's second option: t=3, m=64 MiB, p=4), then OWASP's minimum.
    for ph in (PasswordHasher(), PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)):
        hashed = ph.hash("correct horse battery staple")
        times = [timed(lambda: ph.verify(hashed, "correct horse battery staple")) for _ in range(10)]
        cpu = time.process_time()
        for _ in range(10):
            ph.verify(hashed, "correct horse battery staple")
        print(f"argon2id t={ph.time_cost} m={ph.memory_cost} KiB p={ph.parallelism}: verify median"
              f" {statistics.median(times):.0f} ms wall, {(time.process_time() - cpu) * 100:.0f} ms CPU each")


EXPERIMENTS = {
    "migration": exp_migration,
    "order": exp_commit_order,
    "stress": exp_stress,
    "arrivals": exp_arrivals,
    "reads": exp_reads,
    "verdicts": exp_verdicts,
    "verdict_cpu": exp_verdict_cpu,
    "write_cpu": exp_write_cpu,
    "lean_trigger": exp_lean_trigger,
    "argon2": exp_argon2,
    "routing": exp_routing,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    args = parser.parse_args()
    with psycopg.connect(args.dsn) as c:
        print("server:", c.execute("SELECT version()").fetchone()[0].split(" on ")[0])
    for name in args.only:
        print(f"\n== {name} ==")
        EXPERIMENTS[name](args.dsn)
