"""docs/benchmarks.md from one run's results: machine, commands, tables with ratios, plots.

Every ratio of ours is taken against the best peer for that measure (the
faster of PostGraphile 5 and 4), and names it. A section whose case did not
run (`--cases`) is left out.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fanout import median, percentile
from .people_report import people_section
from .servers import (
    FLOOR,
    LIVE_FEED,
    OURS,
    OURS_DECODED,
    OURS_WORKERS,
    PEER5,
    PEERS,
    POSTGRAPHILE,
    POSTGRAPHILE5,
)
from .units import ms, paired, ratio, us
from .writes import DECODED_INSERTS, INSERT_TABLES

SERVERS = (OURS, POSTGRAPHILE5, POSTGRAPHILE, FLOOR)
# Ours in another mode, measured in the same run: each of its figures a row
# of its own, in ours' column beside the same peers' figures, so ours' rows
# (and the plots, of SERVERS) stay as they are.
VARIANTS = (OURS_DECODED,)
# Where a table has a column or a row per server.
ORDER = (OURS, *VARIANTS, POSTGRAPHILE5, POSTGRAPHILE, FLOOR)
# A statistic of a fan-out result, and whether more of it is better.
Stat = tuple[Callable[[dict[str, Any]], float], bool]
# Each server's figures by round (req/s), for paired ratios.
Runs = dict[str, list[float]]


def versus_best(values: dict[str, float], more_is_better: bool, runs: Runs | None = None) -> str:
    """Ours / the best peer's value, naming that peer: "1.40 (PostGraphile 5)";
    with each server's `runs` (rounds), the paired ratio of ours' and that peer's."""
    peers = {p: v for p, v in values.items() if p in PEERS and not math.isnan(v)}
    if OURS not in values or not peers:
        return "-"
    best = (max if more_is_better else min)(peers, key=peers.__getitem__)
    if runs is not None and OURS in runs and best in runs:
        shown = paired_ratio(runs[OURS], runs[best])
    else:
        shown = ratio(values[OURS], peers[best])
    return shown if shown == "-" else f"{shown} ({best})"


def paired_ratio(a: list[float], b: list[float]) -> str:
    """paired(a, b), shown; "-" when b has no rate to divide by, as ratio()
    shows a division by 0: every round of it failed (wrk reports 0 req/s,
    and exits 0, for a server that drops each connection)."""
    return "-" if statistics.median(b) == 0 else f"{paired(a, b):.2f}"


def as_ours(values: dict[str, Any], variant: str) -> dict[str, Any]:
    """`values` with the variant's in ours' place: its row, beside the same peers."""
    return values | {OURS: values[variant]}


def _machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.machine(),
    )
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))

    def version(node: str) -> str:
        # A peer not installed (a run of ours' cases only) has no version to give.
        try:
            return subprocess.run([node, "--version"], check=False, capture_output=True, text=True).stdout.strip()
        except FileNotFoundError:
            return "not installed"

    return (
        f"{os.cpu_count()} cores ({model}), {mem_kb / 2**20:.0f} GiB memory, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Node {version('node')} (PostGraphile 4), "
        f"{version(str(PEER5 / 'node_modules' / '.bin' / 'node'))} (PostGraphile 5)"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=False, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def _compared(label: str, cells: dict[str, tuple[str, float]], more_is_better: bool, runs: Runs | None = None) -> str:
    """A table row: each server's cell, then ours / the best peer and ours / floor
    of the cells' values (paired by round, given the `runs`)."""
    value = {server: v for server, (_, v) in cells.items()}
    shown = " | ".join(cells[s][0] if s in cells else "-" for s in SERVERS)
    if runs is not None and OURS in runs and FLOOR in runs:
        floor = paired_ratio(runs[OURS], runs[FLOOR])
    else:
        floor = ratio(value.get(OURS, math.nan), value.get(FLOOR, math.nan))
    return f"| {label} | {shown} | {versus_best(value, more_is_better, runs)} | {floor} |"


HEAD = "| ours | PostGraphile 5 | PostGraphile 4 | floor |"


def _http_table(http: list[dict[str, Any]]) -> list[str]:
    lines = [f"| test {HEAD} ours / best peer | ours / floor |", "|---|---|---|---|---|---|---|"]
    for test in dict.fromkeys(h["test"] for h in http):
        cells, runs = {}, {}
        for h in http:
            if h["test"] == test:
                rps = statistics.median(h["rps"])
                rounds = ", ".join(f"{r:.0f}" for r in h["rps"])
                errors = f", {h['errors']} errors" if h["errors"] else ""
                cells[h["server"]] = (f"{rps:.0f} req/s ({rounds}){errors}", rps)
                runs[h["server"]] = h["rps"]
        lines.append(_compared(test, cells, True, runs))
        lines += [_compared(f"{test}, {v}", as_ours(cells, v), True, as_ours(runs, v)) for v in VARIANTS if v in cells]
    return lines


def _latency(samples: list[float]) -> str:
    return f"p50 {ms(median(samples))}, p99 {ms(percentile(samples, 0.99))}"


def _arrival(r: dict[str, Any]) -> str:
    lost = r["expected"] - r["delivered"]
    return _latency(r["last_arrival"]) + (f", **{lost} not delivered**" if lost else "")


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


def _costs_table(runs: list[dict[str, Any]]) -> list[str]:
    """Per run: CPU per delivery, memory, time and CPU to open, the clients' CPU."""
    lines = [
        "| subscribers | server | CPU per delivered event | RSS per open subscription | time to open all | CPU per open | clients' CPU per frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["subscribers"], ORDER.index(r["server"]))):
        failed = f" ({r['failed_connections']} failed)" if r["failed_connections"] else ""
        lines.append(
            f"| {r['subscribers']:,} | {r['server']} | {us(r['cpu_per_delivery'])} "
            f"| {r['rss_per_subscription'] / 1024:.1f} kB | {r['open_seconds']:.2f} s{failed} "
            f"| {ms(r['open_cpu_per_subscription'])} | {us(r['client_cpu_per_delivery'])} |"
        )
    return lines


def _fanout_tables(fanout: list[dict[str, Any]]) -> list[str]:
    lines = [f"| subscribers {HEAD} ours / best peer (p50) | ours / floor (p50) |", "|---|---|---|---|---|---|---|"]
    for n in sorted({r["subscribers"] for r in fanout}):
        cells = {r["server"]: (_arrival(r), median(r["last_arrival"])) for r in fanout if r["subscribers"] == n}
        lines.append(_compared(f"{n:,}", cells, more_is_better=False))
    return [*lines, "", *_costs_table(fanout)]


def _per_server_table(runs: list[dict[str, Any]], stats: dict[str, Stat]) -> list[str]:
    """One column per server that ran, one row per statistic, and ours (and
    each variant of ours that ran) / the best peer."""
    servers = [s for s in ORDER if any(r["server"] == s for r in runs)]
    variants = [v for v in VARIANTS if v in servers]
    ratios = " | ".join(f"{s} / best peer" for s in (OURS, *variants))
    lines = [f"| | {' | '.join(servers)} | {ratios} |", "|---|" + "---|" * (len(servers) + 1 + len(variants))]
    by_server = {r["server"]: r for r in runs}
    for label, (stat, more_is_better) in stats.items():
        values = {s: stat(by_server[s]) for s in servers}
        shown = " | ".join(_shown(label, v) for v in values.values())
        compared = " | ".join(versus_best(as_ours(values, s), more_is_better) for s in (OURS, *variants))
        lines.append(f"| {label} | {shown} | {compared} |")
    return lines


def _shown(label: str, value: float) -> str:
    if "CPU per" in label:
        return us(value) if "open" not in label else ms(value)
    if "time to open" in label:
        return f"{value:.2f} s"
    return ms(value)


ROW_STATS: dict[str, Stat] = {
    "last arrival, p50": (lambda r: median(r["last_arrival"]), False),
    "last arrival, p99": (lambda r: percentile(r["last_arrival"], 0.99), False),
    # The UPDATE returns once committed, as its NOTIFYs go out: the last
    # arrival is the database's part, then the server's.
    "the UPDATE (sent -> committed), p50": (lambda r: median(_committed(r)), False),
    "last arrival after the commit, p50": (lambda r: median(r["after_response"]), False),
    "server CPU per delivered event": (lambda r: r["cpu_per_delivery"], False),
    "time to open all": (lambda r: r["open_seconds"], False),
    "server CPU per open": (lambda r: r["open_cpu_per_subscription"], False),
}


def _committed(run: dict[str, Any]) -> list[float]:
    """How long each timed UPDATE took to commit (none from a run that did not time it)."""
    lasts, afters = run["last_arrival"], run["after_response"]
    return [last - after for last, after in zip(lasts, afters, strict=True)] if len(lasts) == len(afters) else []


def _delivered(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['server']} {r['delivered']:,} of {r['expected']:,}" for r in runs)


def _live_pairs(live: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each live-list run, with the change feed's run of its size (the same case's) if any."""
    feeds = {r["subscribers"]: r for r in live if r["server"] == LIVE_FEED}
    return [(r, feeds.get(r["subscribers"])) for r in live if r["server"] != LIVE_FEED]


def _live_table(live: list[dict[str, Any]]) -> list[str]:
    """Ours' live list beside ours' change feed, with the same changes, in the same case."""
    lines = [
        "| watchers | last arrival | CPU per delivered list | change feed: last arrival | change feed: CPU per delivered event | list / change feed (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for r, feed in _live_pairs(live):
        feed_cpu = feed["cpu_per_delivery"] if feed else math.nan
        lines.append(
            f"| {r['subscribers']:,} | {_arrival(r)} | {us(r['cpu_per_delivery'])} | {_arrival(feed) if feed else '-'} "
            f"| {us(feed_cpu)} | {ratio(r['cpu_per_delivery'], feed_cpu)} |"
        )
    return lines


# The workers case's servers, as its tables show them.
WORKERS_SERVERS = (OURS, OURS_WORKERS, POSTGRAPHILE5)
FANOUT_STATS: dict[str, Stat] = {
    "last arrival, p50": (lambda r: median(r["last_arrival"]), False),
    "server CPU per delivered event": (lambda r: r["cpu_per_delivery"], False),
    "time to open all": (lambda r: r["open_seconds"], False),
    "server CPU per open": (lambda r: r["open_cpu_per_subscription"], False),
}
# Each table's ratios: (numerator, denominator), shown in this order.
WORKERS_RATIOS = ((OURS, POSTGRAPHILE5), (OURS_WORKERS, POSTGRAPHILE5), (OURS_WORKERS, OURS))


def _ratio_head(servers: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in WORKERS_RATIOS if a in servers and b in servers]


def _workers_runs(runs: list[dict[str, Any]], stats: dict[str, Stat]) -> list[str]:
    """One column per server, one row per statistic, then the ratios."""
    by_server = {r["server"]: r for r in runs}
    servers = [s for s in WORKERS_SERVERS if s in by_server]
    pairs = _ratio_head(servers)
    head = " | ".join([*servers, *(f"{a} / {b}" for a, b in pairs)])
    lines = [f"| | {head} |", "|---|" + "---|" * (len(servers) + len(pairs))]
    for label, (stat, _) in stats.items():
        values = {s: stat(by_server[s]) for s in servers}
        cells = [_shown(label, values[s]) for s in servers] + [ratio(values[a], values[b]) for a, b in pairs]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def _workers_writes(writes: list[dict[str, Any]]) -> list[str]:
    """req/s per server (median, and its rounds), then the ratios paired by round."""
    servers = [s for s in WORKERS_SERVERS if any(w["server"] == s for w in writes)]
    pairs = _ratio_head(servers)
    head = " | ".join([*servers, *(f"{a} / {b}" for a, b in pairs)])
    lines = [f"| test | {head} |", "|---|" + "---|" * (len(servers) + len(pairs))]
    for test in dict.fromkeys(w["test"] for w in writes):
        runs = {w["server"]: w for w in writes if w["test"] == test}
        cells = []
        for s in servers:
            errors = f", {runs[s]['errors']} errors" if s in runs and runs[s]["errors"] else ""
            cells.append(f"{_rates(runs[s]['rps'])} req/s{errors}" if s in runs else "-")
        cells += [paired_ratio(runs[a]["rps"], runs[b]["rps"]) if a in runs and b in runs else "-" for a, b in pairs]
        lines.append(f"| {test} | {' | '.join(cells)} |")
    return lines


def _workers_tables(workers: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    """One process, `--workers 2` and PostGraphile 5, run back to back: the
    shared fan-out, each subscriber on its own row, the writes (a list: a
    run from before the case measured more than the shared fan-out)."""
    measured = {"fanout": workers} if isinstance(workers, list) else workers
    lines: list[str] = []
    if fanout := measured.get("fanout"):
        n = fanout[0]["subscribers"]
        lines += [f"{n:,} subscribers of one shared document, one INSERT per change:", "", *_workers_runs(fanout, FANOUT_STATS), ""]
    if rows := measured.get("rows"):
        n = rows[0]["subscribers"]
        lines += [
            (f"{n:,} subscribers each on its own row, one UPDATE of every row per change "
             f"(each worker's hub hears every row's NOTIFY; its sockets watch about half the rows). "
             f"Delivered: {_delivered(rows)}."),
            "",
            *_workers_runs(rows, ROW_STATS),
            "",
        ]
    if writes := measured.get("writes"):
        rounds = len(writes[0]["rps"])
        lines += [
            f"Writes, wrk as in the HTTP section, {rounds} round{'s' if rounds != 1 else ''} (servers alternating within each), all three running:",
            "",
            *_workers_writes(writes),
            "",
        ]
    return lines


def _database_table(db: dict[str, Any]) -> list[str]:
    lines = ["| path | latency |", "|---|---|"]
    lines += [f"| {name} | {_latency(samples)} (n={len(samples)}) |" for name, samples in db["notify"].items()]
    lines += [
        "",
        (
            "| single-row INSERTs/s: median (runs) | ours (journal triggers) | the peers' table (two NOTIFY triggers) "
            "| the same, no trigger | ours / peers' | ours / no trigger |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for case in db["inserts"]:
        runs = [case["rates"][k] for k in INSERT_TABLES]
        ours, peers, none = (statistics.median(r) for r in runs)
        cells = " | ".join(_rates(r) for r in runs)
        lines.append(f"| {case['writers']} writers | {cells} | {ratio(ours, peers)} | {ratio(ours, none)} |")
    if decoded := [case for case in db["inserts"] if DECODED_INSERTS in case["rates"]]:
        lines += [
            "",
            (f"| single-row INSERTs/s: median (runs) | {OURS_DECODED}, its sequencer journaling (commits: it may lag) "
             "| decoded / peers' "
             "| decoded / ours (journal triggers) | decoded / no trigger |"),
            "|---|---|---|---|---|",
        ]
        for case in decoded:
            ours, peers, none, rates = (statistics.median(case["rates"][k]) for k in (*INSERT_TABLES, DECODED_INSERTS))
            lines.append(
                f"| {case['writers']} writers | {_rates(case['rates'][DECODED_INSERTS])} | {ratio(rates, peers)} "
                f"| {ratio(rates, ours)} | {ratio(rates, none)} |"
            )
    return lines


def _rates(runs: list[float]) -> str:
    """A rate's median and its runs: "1200 (1190, 1200, 1250)"."""
    return f"{statistics.median(runs):.0f} ({', '.join(f'{x:.0f}' for x in runs)})"


def _summary(results: dict[str, Any]) -> list[str]:
    """Issue 21's measures in one table, from whichever cases ran."""
    rows: list[str] = []

    def add(
        label: str, values: dict[str, float], shown: Callable[[float], str], more_is_better: bool, runs: Runs | None = None
    ) -> None:
        if not math.isnan(values.get(OURS, math.nan)):
            cells = " | ".join(shown(values[s]) if s in values else "-" for s in (OURS, POSTGRAPHILE5, POSTGRAPHILE))
            rows.append(f"| {label} | {cells} | {versus_best(values, more_is_better, runs)} |")

    rps: dict[str, dict[str, float]] = {}
    rounds: dict[str, Runs] = {}
    for h in results.get("http", []) + results.get("growing", []):
        rps.setdefault(h["test"], {})[h["server"]] = statistics.median(h["rps"])
        rounds.setdefault(h["test"], {})[h["server"]] = h["rps"]

    def per_second(v: float) -> str:
        return f"{v:,.0f} req/s"

    # Reads, the grown table's page, then writes.
    grown = {g["test"] for g in results.get("growing", [])}
    order = sorted(rps, key=lambda t: (t.startswith(("createTodo", "updateTodo")), t in grown))
    for test in order:
        by_server = rps[test]
        if "cache" in test or "REST GET" in test:
            continue
        values, by_round, peers = dict(by_server), dict(rounds[test]), ""
        if test.startswith(("createTodo (REST", "updateTodo (REST")):
            # Compared with the peers' GraphQL mutation: they have no REST.
            mutation = test.split(" ")[0]
            values |= {p: v for p, v in rps.get(mutation, {}).items() if p in PEERS}
            by_round |= {p: v for p, v in rounds.get(mutation, {}).items() if p in PEERS}
            peers = f" (peers: GraphQL {mutation})"
        add(test + peers, values, per_second, True, by_round)
        for v in VARIANTS:
            if v in values:
                add(f"{test}, {v}{peers}", as_ours(values, v), per_second, True, as_ours(by_round, v))
    for key, label in (("fanout", "one shared document"), ("rows", "each on its own row, one UPDATE of every row")):
        if not (sizes := {r["subscribers"] for r in results.get(key, [])}):
            continue
        # 1,000, issue 21's size (or the nearest that ran).
        n = min(sizes, key=lambda size: abs(size - 1000))
        runs = {r["server"]: r for r in results[key] if r["subscribers"] == n}
        arrival = {s: median(r["last_arrival"]) for s, r in runs.items()}
        cpu = {s: r["cpu_per_delivery"] for s, r in runs.items()}
        add(f"{n:,} subscribers, {label}: last arrival p50", arrival, ms, False)
        add("same, server CPU per delivered event", cpu, us, False)
        add(f"same, time to open the {n:,}", {s: r["open_seconds"] for s, r in runs.items()}, lambda v: f"{v:.2f} s", False)
        add("same, server CPU per open", {s: r["open_cpu_per_subscription"] for s, r in runs.items()}, ms, False)
        for v in VARIANTS:
            if v in runs:
                add(f"same, {v}: last arrival p50", as_ours(arrival, v), ms, False)
                add(f"same, {v}: server CPU per delivered event", as_ours(cpu, v), us, False)
    # The workers case: `--workers 2` against its own run of PostGraphile 5.
    workers = results.get("workers")
    measured = workers if isinstance(workers, dict) else {}
    label = f"{OURS_WORKERS} (workers case)"
    for test in dict.fromkeys(w["test"] for w in measured.get("writes", [])):
        by_round = {OURS if w["server"] == OURS_WORKERS else w["server"]: w["rps"] for w in measured["writes"]
                    if w["test"] == test and w["server"] in (OURS_WORKERS, POSTGRAPHILE5)}
        add(f"{test}, {label}", {s: statistics.median(r) for s, r in by_round.items()}, per_second, True, by_round)
    for key, what, stats in (("fanout", "one shared document", FANOUT_STATS), ("rows", "each on its own row", ROW_STATS)):
        worker_runs = {OURS if r["server"] == OURS_WORKERS else r["server"]: r for r in measured.get(key, [])
                     if r["server"] in (OURS_WORKERS, POSTGRAPHILE5)}
        if OURS not in worker_runs:
            continue
        n = worker_runs[OURS]["subscribers"]
        for stat in ("last arrival, p50", "server CPU per delivered event", "time to open all"):
            value = stats[stat][0]
            add(f"{n:,} subscribers, {what}, {label}: {stat}", {s: value(r) for s, r in worker_runs.items()},
                functools.partial(_shown, stat), False)
    for r, feed in _live_pairs(results.get("live", [])):
        times = ratio(r["cpu_per_delivery"], feed["cpu_per_delivery"]) if feed else "-"
        times = "" if times == "-" else f" ({times}x ours' change feed)"
        rows.append(
            f"| {r['subscribers']:,} watchers of one live `todos` list: CPU per delivered list "
            f"| {us(r['cpu_per_delivery'])}{times} | no live queries | needs wal2json | |"
        )
    if not rows:
        return []
    return [
        "## Summary",
        "",
        ("Ours / best peer: for req/s, above 1 is ours ahead; for times and CPU, below 1 is ours ahead. "
         "The sections below have every run and the commands."),
        "",
        "| measure | ours | PostGraphile 5 | PostGraphile 4 | ours / best peer |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    colors = {OURS: "tab:blue", POSTGRAPHILE5: "tab:green", POSTGRAPHILE: "tab:orange", FLOOR: "tab:gray"}
    if results.get("fanout"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for server in SERVERS:
            runs = sorted((r for r in results["fanout"] if r["server"] == server), key=lambda r: r["subscribers"])
            xs = [r["subscribers"] for r in runs]
            ax.plot(xs, [median(r["last_arrival"]) * 1000 for r in runs], "o-", color=colors[server], label=f"{server} p50")
            ax.plot(xs, [percentile(r["last_arrival"], 0.99) * 1000 for r in runs], "x--", color=colors[server], label=f"{server} p99")
        ax.set(xscale="log", yscale="log", xlabel="subscribers", ylabel="INSERT -> last arrival (ms)")
        ax.set_title("One change fanned out to N WebSocket subscribers")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "bench-fanout.png", dpi=100)
        plt.close(fig)
        shown += ["![last arrival vs subscribers](bench-fanout.png)", ""]
    http = results.get("http", []) + results.get("growing", [])
    if http:
        tests = list(dict.fromkeys(h["test"] for h in http))
        fig, ax = plt.subplots(figsize=(11, 5))
        width = 0.2
        for i, server in enumerate(SERVERS):
            by = {h["test"]: statistics.median(h["rps"]) for h in http if h["server"] == server}
            xs = [t + (i - 1.5) * width for t in range(len(tests))]
            ax.bar(xs, [by.get(t, 0) for t in tests], width, color=colors[server], label=server)
        ax.set_xticks(range(len(tests)), [t.replace(" (", "\n(").replace(", ", ",\n") for t in tests], fontsize=7)
        ax.set(ylabel="requests/s (median of runs)", title=f"HTTP throughput, wrk -t1 -c{results['args']['connections']}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "bench-http.png", dpi=100)
        plt.close(fig)
        shown += ["![HTTP req/s](bench-http.png)"]
    return shown


def started() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def _sections(results: dict[str, Any]) -> list[str]:
    """Each measured case's section."""
    args = results["args"]
    lines: list[str] = []
    http = results.get("http", []) + results.get("growing", [])
    if http:
        lines += [
            "## HTTP throughput",
            "",
            (f"`wrk -t1 -c{args['connections']} -d{args['seconds']:g}s`, {args['rounds']} alternating runs each, "
             "50 rows of `id title completed` (PostGraphile 5: `id: rowId`, the uuid). Each update test of each "
             "server goes round 50 rows of its own, added after the reads (ours' REST PATCH does not follow its "
             "updateTodo onto rows with thousands of dead versions, nor PostGraphile 4 PostGraphile 5's), one row per "
             "request, each with a title of its own (`{n}`, the request's number): a write "
             "that changes nothing would be no change for ours (nothing journaled or notified) but still one for "
             "the peers' triggers. Commands (the body is in BENCH_BODY, sent by `bench/post.lua`):"),
            "",
            *[f"    {h['command']}" for h in http],
            "",
            *_http_table(http),
            "",
        ]
    if results.get("growing"):
        writes = ", ".join(f"{h['server']} {statistics.median(h['writes']):.0f}" for h in results["growing"])
        lines += [
            ("The page of a grown table (issue 16, item 9; `bench/growing.py`): each server's table had 1,000 "
             "rows, never analyzed (autovacuum off on it), while the server's connections prepared their "
             f"statements; then it grew to {args['grown_rows']:,} rows, and the page was read while 4 writers "
             f"inserted rows (rows/s written, median: {writes}). A plan made for the small table (a scan "
             "of every row and a sort) would show as a rate far below the 50-row list's."),
            "",
        ]
    if results.get("single"):
        lines += [
            "## One subscriber: HTTP mutation to event",
            "",
            ("`createTodo` over HTTP (httpx), one graphql-transport-ws subscriber (`bench/fanout_client.c`) "
             "(ours and PostGraphile 5 `todoChanges`, PostGraphile 4 `listen(topic: \"todos\") { relatedNodeId }`)."),
            "",
            *_single_table(results["single"]),
            "",
        ]
    if results.get("fanout"):
        lines += [
            "## One change fanned out to N subscribers",
            "",
            ("A psycopg INSERT into the server's `todos`, timed from just before it is sent until the last "
             "subscriber has it. Subscribers: WebSocket clients in C (`bench/fanout_client.c`, epoll: its CPU per "
             "frame is in the table below; Node's `ws` took 13-18 us), one "
             f"process per 250 sockets, at most {args['client_processes']}; a fresh server per size. Ours and "
             "PostGraphile 5 subscribe to `todoChanges { op todo { id title completed } }` (graphql-transport-ws; "
             "the row from the NOTIFY, no read per subscriber); PostGraphile 4 "
             "to `listen(topic: \"todos\") { relatedNodeId }` (graphql-transport-ws; the row's node id, no read per "
             "subscriber); the floor to raw NOTIFY payloads. CPU and RSS are the server process's, from /proc: "
             "CPU per delivered event = CPU over the timed changes / deliveries; RSS and CPU per open = "
             "(after the first change reached all) - (before opening), / N; time to open = until every socket "
             "is acknowledged and subscribed."),
            "",
            *_fanout_tables(results["fanout"]),
            "",
        ]
    if results.get("rows"):
        n = results["rows"][0]["subscribers"]
        lines += [
            "## Each subscriber on its own row",
            "",
            (f"{n:,} subscribers, each on its own row of a {n:,}-row table: ours `todo(id: $id) {{ title completed }}`, "
             "PostGraphile 5 the same (`id: UUID!`; the row from the NOTIFY payload of the row's own channel), "
             "PostGraphile 4 `listen(topic: \"todo:<id>\") { relatedNodeId }`. Each change is one UPDATE of every "
             f"row, {args['row_events']} of them; last arrival = until every subscriber has its row's event, "
             "timed from just before the UPDATE is sent, and from its return (committed). "
             "Ours (JOURNAL=decoded), where it runs, is measured once its sequencer has journaled the commits "
             "made while no server of it ran (the write cases'), so its open costs are the opens'. "
             f"Delivered: {_delivered(results['rows'])}."),
            "",
            *_per_server_table(results["rows"], ROW_STATS),
            "",
            *_costs_table(results["rows"]),
            "",
        ]
    if results.get("live"):
        lines += [
            "## A live list",
            "",
            ("Ours only (PostGraphile has no live queries; PostGraphile 4's need wal2json): watchers of "
             "`subscription { todos { title } }` on the 50-row table, each change one row's new title "
             f"({args['live_events']} of them); each watcher gets the whole list again. Beside it, run just "
             "before it with the same changes, as many subscribers of ours' change feed "
             "(`todoChanges { op todo { title id completed } }`)."),
            "",
            *_live_table(results["live"]),
            "",
        ]
    if results.get("workers"):
        lines += [
            "## Several processes",
            "",
            ("Ours as one process, then as `graphql-todos serve --workers 2` (WORKERS=2: a supervisor and two "
             "workers on one port, sharing its listening socket; each worker has its own LISTEN connection and hub), "
             "then PostGraphile 5, back to back, measured as above. CPU is summed over the supervisor and its "
             "workers. Ratios: for req/s above 1 is the first named ahead; for times and CPU below 1 is."),
            "",
            *_workers_tables(results["workers"]),
        ]
    if results.get("database"):
        lines += [
            "## The database floor and writes",
            "",
            ("Latency from sending a statement to a plain psycopg listener having its NOTIFY (no server, but "
             f"{OURS_DECODED} during its database's turns: its sequencer journals and notifies), and "
             "single-row autocommit INSERTs from "
             f"{' and '.join(str(c['writers']) for c in results['database']['inserts'])} psycopg connections at "
             f"once for {args['write_seconds']:g} s, {args['write_rounds']} alternating runs per table."),
            "",
            *_database_table(results["database"]),
            "",
        ]
    return lines + people_section(results)


def _decoded_server(results: dict[str, Any]) -> str:
    if reason := results.get("no_decoded"):
        return f"- {OURS_DECODED}: not measured, this server cannot run it: {reason}"
    return (f"- {OURS_DECODED}: the same with JOURNAL=decoded (its sequencer journals the commits it reads by "
            "logical decoding, in the app's process), on a database of its own; in the writes and the per-row "
            "case, its rows named so, set beside the same peers' figures")


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
        "absolute figures. A case during which PostgreSQL restarted is run again (`bench/restarts.py`)."),
        "",
        "Servers, each its own process, started by `bench/servers.py`:",
        "- ours: `graphql-todos serve` (POOL_SIZE=10, logs to .data/bench-logs)",
        _decoded_server(results),
        ("- PostGraphile 5.1 (`bench/peer5-package.json`, on its own Node 22): `postgraphile -C bench/peer5.config.mjs`, "
         "the amber preset, a pool of 10, NODE_ENV=production, no GraphiQL; `todoChanges` and `todo(id)` subscriptions "
         "from a small plugin that takes the row from the NOTIFY payload"),
        ("- PostGraphile 4.14 (`bench/peer-package.json`): `postgraphile --plugins @graphile/pg-pubsub --subscriptions "
        "--simple-subscriptions --max-pool-size 10 --disable-graphiql --disable-query-log`, NODE_ENV=production"),
        ("- the PostGraphiles take turns on one database with the same `todos` table as ours (its foreign key "
         "to `lists` and its `updated_time` trigger included) and two NOTIFY triggers with the row (every "
         "change; each row's own; `bench/peer.sql`)"),
        ("- floor: `python -m bench.floor`, bare Starlette + psycopg: one prepared autocommit query encoded with "
        "orjson; one psycopg LISTEN forwarding each NOTIFY payload as a text frame to every WebSocket"),
        "",
        *_summary(results),
        *_sections(results),
        "## Reading these figures",
        "",
        ("- Every ratio is ours / the best peer for that measure, named beside it. For req/s above 1 is ours "
         "ahead, for times and CPU below 1."),
        ("- A req/s ratio is the median of the rounds' ratios: each round runs every server in turn, seconds "
         "apart, so a round's ratio is measured under one load, where the machine's drift between rounds could "
         "make a ratio of two medians of whichever round of either side fell slow."),
        ("- PostGraphile 4's simple subscription delivers the row's node id only (the `__node__` of "
        "`bench/peer.sql`'s payload); asking it for `relatedNode { ... }` would read the row once per subscriber. "
        "Ours and PostGraphile 5 deliver the whole changed row, which the NOTIFY carries, to every subscriber."),
        ("- Ours runs as `graphql-todos serve` with `LOG_LEVEL=warning` (no access log), as PostGraphile "
        "runs with `--disable-query-log`."),
        ("- REST has no peer: its writes are set beside the peers' GraphQL mutations."),
        ("- Subscribers that never got a change are counted, not hidden: a size with losses says "
        "\"not delivered\" in its cell and leaves those changes out of the percentiles."),
        "- The ratios are the result; absolute figures drift by about 30% between runs on this shared machine.",
    ]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        plots = _plots(results, out.parent)
        if plots:
            lines += ["", "## Plots", "", *plots]
        (out.parent / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    text = "\n".join(lines) + "\n"
    if out is not None:
        out.write_text(text)
    return text
