"""Lone writes in JOURNAL=decoded: one client, one REST POST at a time, the
load that met the walsender's missed wakeup (docs/design/journal-decoding.md,
"The walsender's missed wakeup"). Counts the replies over 1 s, those of 45
to 500 ms (a wakeup the sequencer's status update made up for) and the
DATABASE_UNAVAILABLE ones.

    .venv/bin/python -m bench.lone_writes [--writes 2500] [--rounds 3]

The embedded PostgreSQL in .data/bench, or DATABASE_URL's server (at
wal_level = logical); a fresh database for each round; ours with
JOURNAL=decoded on its bench port (BENCH_PORT_BASE moves it).
"""

from __future__ import annotations

import argparse
import time

import httpx
import psycopg

from .databases import ROOT, _create, _drop, _server
from .servers import LOGS, OURS_DECODED, PORTS, answers, started

DATABASE = "bench_lone_writes"


def _round(admin: str, writes: int) -> str:
    dsn = _create(admin, DATABASE)
    env = {"DATABASE_URL": dsn, "JOURNAL": "decoded", "PORT": str(PORTS[OURS_DECODED]), "HOST": "127.0.0.1",
           "WEB_DIST": "", "LOG_LEVEL": "warning"}
    serve = [str(ROOT / ".venv" / "bin" / "graphql-todos"), "serve"]
    unavailable = other = 0
    times: list[float] = []
    try:
        LOGS.mkdir(parents=True, exist_ok=True)
        with (
            started(OURS_DECODED, serve, env, ROOT, PORTS[OURS_DECODED], lambda url: answers(url, graphql=False),
                    LOGS / "lone_writes.log") as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            for n in range(writes):
                sent = time.monotonic()
                reply = client.post("/api/todos/", json={"title": f"lone {n}"})
                times.append(time.monotonic() - sent)
                if reply.status_code == 503 and "DATABASE_UNAVAILABLE" in reply.text:
                    unavailable += 1
                elif reply.status_code != 201:
                    other += 1
    finally:
        _drop(admin, DATABASE)
    late = sum(1 for t in times if t > 1)
    made_up = sum(1 for t in times if 0.045 <= t < 0.5)
    times.sort()
    return (
        f"{writes} lone POSTs: over 1 s {late}, DATABASE_UNAVAILABLE {unavailable}, other errors {other},"
        f" 45-500 ms {made_up}; p50 {times[len(times) // 2] * 1000:.1f} ms, max {times[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=2500, help="POSTs per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with _server() as admin, psycopg.connect(admin, autocommit=True) as conn:
        print(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}", flush=True)  # type: ignore[index]
        for n in range(args.rounds):
            print(f"round {n + 1}: {_round(admin, args.writes)}", flush=True)


if __name__ == "__main__":
    main()
