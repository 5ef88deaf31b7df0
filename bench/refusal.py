"""Server CPU per refused GraphQL request: the 2,000-alias query of issue 9
(50 kB, over MAX_TOKENS) POSTed again and again over one keep-alive
connection to one `graphql-todos serve`, its CPU read from /proc; beside it
a small valid query and a document over MAX_FIELDS, for scale.

    python -m bench.refusal --database-url postgresql://... [--checkout DIR] [--requests 400]

CPU time, not wall time: the server may share the machine with others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from .procstat import cpu_seconds

ALIASES = "{ " + " ".join(f"a{i}: todos {{ id title }}" for i in range(2000)) + " }"
FIELDS = "{ todos { ...F9 } } fragment F0 on Todo { id title completed createdTime updatedTime } " + " ".join(
    f"fragment F{n} on Todo {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 10)
)
DOCUMENTS = {"2000 aliases (50 kB)": ALIASES, "5 * 2**9 fields": FIELDS, "valid { todos { id } }": "{ todos { id } }"}


def _cpu_ms_per_request(pid: int, client: httpx.Client, query: str, count: int) -> float:
    for _ in range(20):  # warm up: caches, first-call imports
        client.post("/graphql", json={"query": query})
    before = cpu_seconds(pid)
    for _ in range(count):
        client.post("/graphql", json={"query": query})
    # The last answers were sent before the server was done with them.
    time.sleep(0.1)
    return (cpu_seconds(pid) - before) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", default=".")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--port", type=int, default=18123)
    args = parser.parse_args()
    name = f"bench_refusal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    checkout = Path(args.checkout).resolve()
    server = subprocess.Popen(
        [
            str(checkout / ".venv/bin/graphql-todos"), "serve", "--port", str(args.port), "--log-level", "warning",
            "--database-url", make_conninfo(args.database_url, dbname=name),
        ],
        cwd=checkout,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            result = {
                label: round(_cpu_ms_per_request(server.pid, client, query, args.requests), 2)
                for label, query in DOCUMENTS.items()
            }
        print(json.dumps({"checkout": str(checkout), "server_cpu_ms_per_request": result}))
    finally:
        server.terminate()
        server.wait()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
