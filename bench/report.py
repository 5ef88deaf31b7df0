"""docs/benchmarks.md from one run's results: machine, commands, tables with ratios, plots."""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fanout import median, percentile
from .servers import FLOOR, OURS, OURS_WORKERS, POSTGRAPHILE

SERVERS = (OURS, POSTGRAPHILE, FLOOR)


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    digits = 2 if abs(seconds) < 0.01 else 1 if abs(seconds) < 0.1 else 0
    return f"{seconds * 1000:,.{digits}f} ms"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f} us"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}"


def _machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.machine(),
    )
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    node = subprocess.run(["node", "--version"], check=False, capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({model}), {mem_kb / 2**20:.0f} GiB memory, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {node}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=False, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def _compared(label: str, cells: dict[str, tuple[str, float]]) -> str:
    """A table row: each server's cell, then ours / PostGraphile and ours / floor of the cells' values."""
    value = {server: v for server, (_, v) in cells.items()}
    shown = " | ".join(cells[s][0] if s in cells else "-" for s in SERVERS)
    ours, nan = value.get(OURS, math.nan), math.nan
    return f"| {label} | {shown} | {ratio(ours, value.get(POSTGRAPHILE, nan))} | {ratio(ours, value.get(FLOOR, nan))} |"


def _http_table(http: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| test | ours | PostGraphile | floor | ours / PostGraphile | ours / floor |",
        "|---|---|---|---|---|---|",
    ]
    for test in dict.fromkeys(h["test"] for h in http):
        cells = {}
        for h in http:
            if h["test"] == test:
                rps = statistics.median(h["rps"])
                runs = ", ".join(f"{r:.0f}" for r in h["rps"])
                errors = f", {h['errors']} errors" if h["errors"] else ""
                cells[h["server"]] = (f"{rps:.0f} req/s ({runs}){errors}", rps)
        lines.append(_compared(test, cells))
    return lines


def _latency(samples: list[float]) -> str:
    return f"p50 {ms(median(samples))}, p99 {ms(percentile(samples, 0.99))}"


def _single_table(single: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| server | HTTP mutation sent -> event at the subscriber | event minus HTTP response (negative: before it) | changes |",
        "|---|---|---|---|",
    ]
    for r in single:
        lines.append(
            f"| {r['server']} | {_latency(r['last_arrival'])} | p50 {ms(median(r['after_response']))} "
            f"| {len(r['last_arrival'])} of {r['expected']} |"
        )
    return lines


def _fanout_tables(fanout: list[dict[str, Any]]) -> list[str]:
    sizes = sorted({r["subscribers"] for r in fanout})
    lines = [
        "| subscribers | ours | PostGraphile | floor | ours / PostGraphile (p50) | ours / floor (p50) |",
        "|---|---|---|---|---|---|",
    ]
    for n in sizes:
        cells = {}
        for r in fanout:
            if r["subscribers"] == n:
                lost = r["expected"] - r["delivered"]
                shown = _latency(r["last_arrival"]) + (f", **{lost} not delivered**" if lost else "")
                cells[r["server"]] = (shown, median(r["last_arrival"]))
        lines.append(_compared(f"{n:,}", cells))
    lines += [
        "",
        "| subscribers | server | CPU per delivered event | RSS per open subscription | time to open all | CPU per open | clients' CPU per frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(fanout, key=lambda r: (r["subscribers"], SERVERS.index(r["server"]))):
        failed = f" ({r['failed_connections']} failed)" if r["failed_connections"] else ""
        lines.append(
            f"| {r['subscribers']:,} | {r['server']} | {us(r['cpu_per_delivery'])} "
            f"| {r['rss_per_subscription'] / 1024:.1f} kB | {r['open_seconds']:.2f} s{failed} "
            f"| {ms(r['open_cpu_per_subscription'])} | {us(r['client_cpu_per_delivery'])} |"
        )
    return lines


def _workers_table(workers: list[dict[str, Any]]) -> list[str]:
    """One process beside `--workers 2`, run back to back at one size."""
    lines = [
        "| subscribers | server | last arrival | CPU per delivered event (all processes) | 2 workers / 1 process (p50) |",
        "|---|---|---|---|---|",
    ]
    p50 = {r["server"]: median(r["last_arrival"]) for r in workers}
    for r in workers:
        lost = r["expected"] - r["delivered"]
        shown = _latency(r["last_arrival"]) + (f", **{lost} not delivered**" if lost else "")
        compared = ratio(p50[OURS_WORKERS], p50[OURS]) if r["server"] == OURS_WORKERS else ""
        lines.append(f"| {r['subscribers']:,} | {r['server']} | {shown} | {us(r['cpu_per_delivery'])} | {compared} |")
    return lines


def _database_table(db: dict[str, Any]) -> list[str]:
    lines = ["| path | latency |", "|---|---|"]
    lines += [f"| {name} | {_latency(samples)} (n={len(samples)}) |" for name, samples in db["notify"].items()]
    ours, plain = (statistics.median(db["inserts"][k]) for k in (OURS, POSTGRAPHILE))
    runs = {k: ", ".join(f"{r:.0f}" for r in v) for k, v in db["inserts"].items()}
    lines += [
        "",
        f"| single-row INSERTs/s, {db['writers']} writers | ours (journal triggers) | plain NOTIFY trigger (PostGraphile's table) | ours / plain |",
        "|---|---|---|---|",
        f"| median (runs) | {ours:.0f} ({runs[OURS]}) | {plain:.0f} ({runs[POSTGRAPHILE]}) | {ratio(ours, plain)} |",
    ]
    return lines


def _plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {OURS: "tab:blue", POSTGRAPHILE: "tab:orange", FLOOR: "tab:gray"}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for server in SERVERS:
        runs = sorted((r for r in results["fanout"] if r["server"] == server), key=lambda r: r["subscribers"])
        xs = [r["subscribers"] for r in runs]
        ax.plot(xs, [median(r["last_arrival"]) * 1000 for r in runs], "o-", color=colors[server], label=f"{server} p50")
        ax.plot(xs, [percentile(r["last_arrival"], 0.99) * 1000 for r in runs], "x--", color=colors[server], label=f"{server} p99")
    ax.set(xscale="log", yscale="log", xlabel="subscribers", ylabel="INSERT -> last arrival (ms)")
    ax.set_title("One change fanned out to N WebSocket subscribers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "bench-fanout.png", dpi=100)
    plt.close(fig)

    tests = list(dict.fromkeys(h["test"] for h in results["http"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.27
    for i, server in enumerate(SERVERS):
        by = {h["test"]: statistics.median(h["rps"]) for h in results["http"] if h["server"] == server}
        xs = [t + (i - 1) * width for t in range(len(tests))]
        ax.bar(xs, [by.get(t, 0) for t in tests], width, color=colors[server], label=server)
    ax.set_xticks(range(len(tests)), [t.replace(" (", "\n(") for t in tests], fontsize=8)
    ax.set(ylabel="requests/s (median of runs)", title=f"HTTP throughput, wrk -t1 -c{results['args']['connections']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "bench-http.png", dpi=100)
    plt.close(fig)
    return ["![last arrival vs subscribers](bench-fanout.png)", "", "![HTTP req/s](bench-http.png)"]


def started() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def render(results: dict[str, Any], out: Path | None) -> str:
    """The report as Markdown; with `out`, also written there with its plots and raw results beside it."""
    args = results["args"]
    command = "make bench" if not args["smoke"] else "make bench-smoke"
    lines = [
        "# Benchmarks",
        "",
        (f"The latest `{command}` run (`{shlex.join([sys.executable.split('/')[-1], '-m', 'bench', *sys.argv[1:]])}`), "
        f"started {results['started']}, commit {results['commit']}."),
        "",
        (f"Machine: {_machine()}; PostgreSQL: {results['postgres']}"
        f" ({'embedded' if results['embedded'] else 'DATABASE_URL'}). "
        "Everything (PostgreSQL, the server under test, wrk and the WebSocket clients) shares these cores, "
        "and the machine is shared with other work: compare the ratios, measured minutes apart, not the "
        "absolute figures."),
        "",
        "Servers, each its own process, started by `bench/servers.py`:",
        "- ours: `graphql-todos serve` (POOL_SIZE=10, logs to .data/bench-logs)",
        ("- PostGraphile 4.14 (`bench/peer-package.json`): `postgraphile --plugins @graphile/pg-pubsub --subscriptions "
        "--simple-subscriptions --max-pool-size 10 --disable-graphiql --disable-query-log`, NODE_ENV=production, "
        "on its own database with the same `todos` table and a plain NOTIFY trigger (`bench/peer.sql`)"),
        ("- floor: `python -m bench.floor`, bare Starlette + psycopg: one prepared autocommit query encoded with "
        "orjson; one psycopg LISTEN forwarding each NOTIFY payload as a text frame to every WebSocket"),
        "",
        "## HTTP throughput",
        "",
        (f"`wrk -t1 -c{args['connections']} -d{args['seconds']:g}s`, {args['rounds']} alternating runs each, "
        "50 rows of `id title completed`. Commands (the body is in BENCH_BODY, POSTed by `bench/post.lua`):"),
        "",
        *[f"    {h['command']}" for h in results["http"]],
        "",
        *_http_table(results["http"]),
        "",
        "## One subscriber: HTTP mutation to event",
        "",
        ("`createTodo` over HTTP (httpx), one graphql-transport-ws subscriber (`bench/fanout_client.c`) "
        "(ours `todoChanges`, PostGraphile `listen(topic: \"todos\") { relatedNodeId }`)."),
        "",
        *_single_table(results["single"]),
        "",
        "## One change fanned out to N subscribers",
        "",
        ("A psycopg INSERT into the server's `todos`, timed from just before it is sent until the last "
        "subscriber has it. Subscribers: WebSocket clients in C (`bench/fanout_client.c`, epoll: its CPU per frame is in the table below; Node's `ws` took 13-18 us), one "
        f"process per 250 sockets, at most {args['client_processes']}; a fresh server per size. Ours "
        "subscribes to `todoChanges { op todo { id title completed } }` (graphql-transport-ws); PostGraphile "
        "to `listen(topic: \"todos\") { relatedNodeId }` (graphql-transport-ws; the row's node id, no read per "
        "subscriber); the floor to raw NOTIFY payloads. CPU and RSS are the server process's, from /proc: "
        "CPU per delivered event = CPU over the timed changes / deliveries; RSS and CPU per open = "
        "(after the first change reached all) - (before opening), / N; time to open = until every socket "
        "is acknowledged and subscribed."),
        "",
        *_fanout_tables(results["fanout"]),
        "",
        "## Several processes",
        "",
        ("Ours as one process, then as `graphql-todos serve --workers 2` (WORKERS=2: two processes on one "
        "port, each with its own LISTEN connection; the kernel spreads the sockets over them), back to back "
        "at the largest size, measured as above. CPU is summed over the supervisor and its workers."),
        "",
        *_workers_table(results["workers"]),
        "",
        "## The database floor and writes",
        "",
        ("Latency from sending a statement to a plain psycopg listener having its NOTIFY (no server), and "
        f"single-row autocommit INSERTs from {results['database']['writers']} psycopg connections at once for "
        f"{args['write_seconds']:g} s, {args['write_rounds']} alternating runs."),
        "",
        *_database_table(results["database"]),
        "",
        "## Reading these figures",
        "",
        ("- PostGraphile's simple subscription delivers the row's node id only (the `__node__` payload of "
        "`bench/peer.sql`); asking it for `relatedNode { ... }` would read the row once per subscriber. "
        "Ours delivers the whole changed row, which the NOTIFY carries, to every subscriber."),
        ("- Ours runs as `graphql-todos serve` with `LOG_LEVEL=warning` (no access log), as PostGraphile "
        "runs with `--disable-query-log`."),
        ("- Subscribers that never got a change are counted, not hidden: a size with losses says "
        "\"not delivered\" in its cell and leaves those changes out of the percentiles."),
        "- The ratios are the result; absolute figures drift by about 30% between runs on this shared machine.",
    ]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        lines += ["", "## Plots", "", *_plots(results, out.parent)]
        (out.parent / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    text = "\n".join(lines) + "\n"
    if out is not None:
        out.write_text(text)
    return text
