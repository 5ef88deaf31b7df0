"""createTodo over HTTP with and without a numbered mutation, in a minimal
Starlette app shaped like the real request path (JSON in, one pooled
statement, the cursor from the commit's NOTICE, orjson out), under wrk.

    python docs/design/prototypes/create_bench.py --dsn postgresql://...

The real app does more per request than this one (routing, middleware, the
compiled plan), so its ratio should sit between this one's and 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg

HERE = Path(__file__).resolve().parent

UNNUMBERED = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.cursor_notice', 'on', true))
INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
RETURNING id, title, completed
"""
# The verdict (key, fingerprint) is written by a CTE; the statement returns
# the row's typed columns, as the unnumbered one does.
NUMBERED = """
WITH acting AS (SELECT set_config('app.person_id', %(p)s, true), set_config('app.mutation', %(k)s, true)),
changed AS (
    INSERT INTO todos (title, completed, list_id) SELECT %(t)s, false, %(l)s FROM acting
    RETURNING id, title, completed, created_time, updated_time, list_id
),
recorded AS (
    INSERT INTO mutations (person_id, client_id, seq, fingerprint, verdict)
    SELECT %(p)s::uuid, %(c)s::uuid, %(s)s, %(f)s, 'applied' FROM changed HAVING count(*) > 0
)
SELECT id, title, completed FROM changed
"""


def make_app() -> Any:
    from psycopg_pool import AsyncConnectionPool
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    person, list_id = os.environ["BENCH_PERSON"], os.environ["BENCH_LIST"]
    cursors: dict[int, int] = {}

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        key = id(conn)

        def notice(diag: psycopg.errors.Diagnostic) -> None:
            text = diag.message_primary or ""
            if text.startswith("graphql-todos cursor "):
                cursors[key] = max(cursors.get(key, 0), int(text.rsplit(" ", 1)[1]))

        conn.add_notice_handler(notice)

    pool = AsyncConnectionPool(os.environ["BENCH_DSN"], min_size=10, max_size=10, kwargs={"autocommit": True},
                               configure=configure, open=False)

    async def graphql(request: Request) -> Response:
        body = orjson.loads(await request.body())
        title = body["variables"]["t"]
        numbered = (body.get("extensions") or {}).get("mutation")
        async with pool.connection() as conn:
            cursors.pop(id(conn), None)
            if numbered is None:
                row = await (await conn.execute(UNNUMBERED, {"p": person, "t": title, "l": list_id})).fetchone()
                todo = {"id": str(row[0]), "title": row[1], "completed": row[2]}
                extensions: dict[str, Any] = {"cursor": str(cursors.get(id(conn), 0))}
            else:
                canonical = orjson.dumps({"query": body["query"], "variables": body["variables"],
                                          "operationName": body.get("operationName")}, option=orjson.OPT_SORT_KEYS)
                params = {"p": person, "t": title, "l": list_id, "c": numbered["client"], "s": numbered["seq"],
                          "f": hashlib.sha256(canonical).digest(),
                          "k": f"{person}:{numbered['client']}:{numbered['seq']}"}
                row = await (await conn.execute(NUMBERED, params)).fetchone()
                todo = {"id": str(row[0]), "title": row[1], "completed": row[2]}
                extensions = {"cursor": str(cursors.get(id(conn), 0)),
                              "mutation": {"client": numbered["client"], "seq": numbered["seq"], "verdict": "APPLIED"}}
        return Response(orjson.dumps({"data": {"createTodo": todo}, "extensions": extensions}),
                        media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await pool.open(wait=True)
        yield
        await pool.close()

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


LUA = """
local counter = 0
local query = '"query":"mutation($t: String!) { createTodo(input: {title: $t}) { id title completed } }","variables":{"t":"wrk create"}'
request = function()
  counter = counter + 1
  local body
  if NUMBERED and SPREAD then
    -- many clients, as in life: a client id per request (its first mutation)
    local id = string.format("%08x-%04x-4%03x-8%03x-%012x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
      math.random(0, 0xfff), math.random(0, 0xfff), counter)
    body = '{' .. query .. ',"extensions":{"mutation":{"client":"' .. id .. '","seq":1}}}'
  elseif NUMBERED then
    body = '{' .. query .. ',"extensions":{"mutation":{"client":"' .. client .. '","seq":' .. counter .. '}}}'
  else
    body = '{' .. query .. '}'
  end
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, body)
end
"""


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, from /proc (clock ticks)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def database_pids(conn: psycopg.Connection[Any]) -> list[int]:
    """The backends of our pool, found once they are connected (application_name unset)."""
    return [int(r[0]) for r in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spread", action="store_true", help="a client id per request instead of one per run")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import experiments as x

    with x.scratch(args.dsn, "createbench") as url, psycopg.connect(url, autocommit=True) as conn:
        who = x.person(conn, "olivia")
        lid = x.new_list(conn, who, "mine")
        port = free_port()
        env = {**os.environ, "BENCH_DSN": url, "BENCH_PERSON": who, "BENCH_LIST": lid, "PYTHONPATH": str(HERE)}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "create_bench:make_app", "--factory", "--port", str(port),
             "--no-access-log", "--log-level", "warning"], env=env, cwd=HERE)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            rates: dict[str, list[float]] = {"without": [], "numbered": []}
            cpu: dict[str, list[float]] = {"without": [], "numbered": []}
            server_cpu: dict[str, list[float]] = {"without": [], "numbered": []}
            for _ in range(args.rounds):
                for name in rates:
                    # A new client id per run: every request a new key.
                    path = Path(f"/tmp/design_create_{os.getpid()}_{name}.lua")
                    path.write_text(f'NUMBERED = {str(name == "numbered").lower()}\nSPREAD = {str(args.spread).lower()}\n'
                                    f'math.randomseed({uuid.uuid4().int % 2**31})\nclient = "{uuid.uuid4()}"\n' + LUA)
                    pids = [server.pid, *database_pids(conn)]
                    before = cpu_seconds(pids)
                    before_server = cpu_seconds([server.pid])
                    out = subprocess.run(["wrk", "-t1", "-c20", f"-d{args.seconds}s", "-s", str(path),
                                          f"http://127.0.0.1:{port}/graphql"], capture_output=True, text=True).stdout
                    used = cpu_seconds(pids) - before
                    done = int(next(l for l in out.splitlines() if " requests in " in l).split()[0])
                    cpu[name].append(used / done * 1e6)
                    server_cpu[name].append((cpu_seconds([server.pid]) - before_server) / done * 1e6)
                    line = next(l for l in out.splitlines() if l.startswith("Requests/sec"))
                    errors = [l for l in out.splitlines() if "Non-2xx" in l or "errors" in l.lower()]
                    rates[name].append(float(line.split()[1]))
                    if errors:
                        print("  wrk:", name, errors)
            keyed = conn.execute("SELECT count(*), count(DISTINCT (client_id, seq)) FROM mutations").fetchone()
            print(f"mutations recorded: {keyed[0]} ({keyed[1]} distinct keys)")
            for name, r in rates.items():
                print(f"createTodo over HTTP, {name}: median {statistics.median(r):.0f} req/s {[round(v) for v in r]}")
            print(f"without / numbered: {statistics.median(rates['without']) / statistics.median(rates['numbered']):.2f}")
            for name, c in cpu.items():
                print(f"CPU per request (server process + its database backends), {name}:"
                      f" median {statistics.median(c):.0f} us {[round(v) for v in c]},"
                      f" of which the server {statistics.median(server_cpu[name]):.0f} us")
            print(f"numbered / without, CPU: {statistics.median(cpu['numbered']) / statistics.median(cpu['without']):.2f}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
