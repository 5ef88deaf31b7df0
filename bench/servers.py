"""The servers under test, each started as its own process on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .databases import Databases

BENCH = Path(__file__).resolve().parent
PEER = BENCH / "peer"
# PostGraphile 5 and the Node 22 it needs, from bench/peer5-package.json.
PEER5 = BENCH / "peer5"
# Servers log here, never to a pipe nobody reads (a full pipe would stall them).
LOGS = BENCH.parent / ".data" / "bench-logs"
OURS, POSTGRAPHILE5, POSTGRAPHILE, FLOOR = "ours", "PostGraphile 5", "PostGraphile 4", "floor"
# The peers a ratio of ours is taken against: the best of them.
PEERS = (POSTGRAPHILE5, POSTGRAPHILE)
# Ours again, with its response cache on: `ours` itself runs without it, so
# that every read it answers goes to PostgreSQL, as PostGraphile's do.
OURS_CACHED = "ours, response cache"
# Ours as `serve --workers 2`: one process per core, on one port.
OURS_WORKERS = "ours, 2 workers"
# Ours with AUTH=accounts (people, lists, sharing: bench/people.py), without
# and with the response cache.
OURS_ACCOUNTS = "ours, accounts"
OURS_ACCOUNTS_CACHED = "ours, accounts, response cache"
# Ours with JOURNAL=decoded (the sequencer journals commits read by logical
# decoding), on a database of its own: the mode switch leaves ours' alone.
OURS_DECODED = "ours (JOURNAL=decoded)"
# Not a server of its own: ours, measured with its change feed beside its live list (the live case).
LIVE_FEED = f"{OURS}, change feed"
# BENCH_PORT_BASE moves every server's port, so two benches (two worktrees) can
# run side by side on one machine.
_BASE = int(os.environ.get("BENCH_PORT_BASE", "18765"))
PORTS = {
    name: _BASE + offset
    for offset, name in enumerate(
        (
            OURS, POSTGRAPHILE, FLOOR, OURS_CACHED, OURS_WORKERS, POSTGRAPHILE5, OURS_ACCOUNTS, OURS_ACCOUNTS_CACHED,
            OURS_DECODED,
        )
    )
}
_OURS = (OURS, OURS_CACHED, OURS_WORKERS, OURS_ACCOUNTS, OURS_ACCOUNTS_CACHED, OURS_DECODED)


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    pid: int

    @property
    def ws_url(self) -> str:
        path = "/ws" if self.name == FLOOR else "/graphql"
        return self.url.replace("http", "ws", 1) + path


def _command(name: str, dbs: Databases, port: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    if name in _OURS:
        serve = str(Path(sys.executable).parent / "graphql-todos")
        # No web client, and no per-request access log (PostGraphile runs
        # with --disable-query-log).
        dsn = dbs.ours_decoded() if name == OURS_DECODED else dbs.ours
        settings = {"DATABASE_URL": dsn, "POOL_SIZE": "10", "WEB_DIST": "", "LOG_LEVEL": "warning"}
        # Every subscriber connects from this one address.
        settings["MAX_SOCKETS_PER_CLIENT"] = "100000"
        cache = {} if name in (OURS_CACHED, OURS_ACCOUNTS_CACHED) else {"RESPONSE_CACHE_SIZE": "0"}
        workers = {"WORKERS": "2"} if name == OURS_WORKERS else {}
        auth = {"AUTH": "accounts"} if name in (OURS_ACCOUNTS, OURS_ACCOUNTS_CACHED) else {}
        journal = {"JOURNAL": "decoded" if name == OURS_DECODED else "trigger"}
        return [serve, "serve"], {**env, **settings, **cache, **workers, **auth, **journal}
    if name == POSTGRAPHILE:
        cli = str(PEER / "node_modules" / "postgraphile" / "cli.js")
        args = [
            "node", cli, "--plugins", "@graphile/pg-pubsub", "--subscriptions", "--simple-subscriptions",
            "-c", dbs.peer_url, "--host", "127.0.0.1", "--port", str(port), "--max-pool-size", "10",
            "--disable-graphiql", "--disable-query-log",
        ]
        return args, {**env, "NODE_ENV": "production"}
    if name == POSTGRAPHILE5:
        node = str(PEER5 / "node_modules" / ".bin" / "node")
        cli = str(PEER5 / "node_modules" / "postgraphile" / "dist" / "cli-run.js")
        config = str(BENCH / "peer5.config.mjs")
        args = [node, cli, "-C", config, "--host", "127.0.0.1", "--port", str(port)]
        return args, {**env, "NODE_ENV": "production", "DATABASE_URL": dbs.peer_url}
    return [sys.executable, "-m", "bench.floor"], {**env, "DATABASE_URL": dbs.ours, "LISTEN_URL": dbs.peer}


def _ready(name: str, url: str) -> bool:
    """Whether the server answers: a peer its GraphQL endpoint, ours and the floor /healthz."""
    return answers(url, graphql=name in PEERS)


def answers(url: str, graphql: bool) -> bool:
    try:
        if graphql:
            r = httpx.post(url + "/graphql", json={"query": "{ __typename }"}, timeout=2)
        else:
            r = httpx.get(url + "/healthz", timeout=2)
    except httpx.TransportError:
        return False
    return r.status_code == 200


_CWD = {POSTGRAPHILE: PEER, POSTGRAPHILE5: PEER5}


@contextmanager
def running(name: str, dbs: Databases) -> Iterator[Server]:
    """Start one server, wait (at most 60 s) until it answers, stop it afterwards."""
    port = PORTS[name]
    # Another bench (or a server left behind) on the port would answer in
    # this one's place and be measured instead.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is taken: is another bench running?")
    args, env = _command(name, dbs, port)
    LOGS.mkdir(parents=True, exist_ok=True)
    ready = functools.partial(_ready, name)
    with started(name, args, env, _CWD.get(name, BENCH.parent), port, ready, LOGS / f"{name}.log") as server:
        yield server


@contextmanager
def started(
    name: str, args: list[str], env: dict[str, str], cwd: Path, port: int, ready: Callable[[str], bool], log: Path,
    wait: float = 60,
) -> Iterator[Server]:
    """Run one server process (its output to `log`), wait at most `wait` seconds
    until `ready(url)`, stop it afterwards (bench/ab.py starts its own through this)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait
        while not ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}")
            time.sleep(0.1)
        yield Server(name, url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
