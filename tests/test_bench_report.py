"""docs/benchmarks.md's tables (bench/report.py) with ours in JOURNAL=decoded
beside ours: its figures get rows of their own, set against the same peers,
and ours' rows stay as they were."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import people_report, report, units
from bench.fanout import FanoutResult
from bench.servers import OURS, OURS_ACCOUNTS, OURS_DECODED, OURS_WORKERS, POSTGRAPHILE, POSTGRAPHILE5
from bench.writes import DECODED_INSERTS

ARGS = {"smoke": True, "connections": 20, "seconds": 2, "rounds": 1, "row_events": 3, "write_seconds": 1, "write_rounds": 1}


def _http(test: str, rps: dict[str, float]) -> list[dict[str, Any]]:
    return [{"test": test, "server": s, "rps": [v], "errors": 0, "command": f"wrk {s}"} for s, v in rps.items()]


def _row(server: str, last: float, cpu: float) -> dict[str, Any]:
    run = FanoutResult(server, 1000, last_arrival=[last], after_response=[last / 2], cpu_per_delivery=cpu)
    return dataclasses.asdict(dataclasses.replace(run, delivered=1000, expected=1000, open_seconds=0.5))


def _results(decoded: bool) -> dict[str, Any]:
    create = {OURS: 1500.0, POSTGRAPHILE5: 2000.0, POSTGRAPHILE: 1000.0} | ({OURS_DECODED: 3000.0} if decoded else {})
    post = {OURS: 1200.0} | ({OURS_DECODED: 2600.0} if decoded else {})
    rows = [_row(OURS, 0.2, 170e-6), _row(POSTGRAPHILE5, 0.08, 120e-6), _row(POSTGRAPHILE, 0.1, 100e-6)]
    return {
        "args": ARGS, "started": "now", "commit": "abc", "embedded": True, "postgres": "18", "no_decoded": "",
        "http": _http("createTodo", create) + _http("createTodo (REST POST /api/todos/)", post),
        "rows": rows + ([_row(OURS_DECODED, 0.1, 150e-6)] if decoded else []),
        "database": {
            "notify": {"INSERT -> our journal trigger -> listener": [0.002]}
            | ({f"INSERT -> {OURS_DECODED}'s sequencer -> listener": [0.004]} if decoded else {}),
            "inserts": [{"writers": 4, "rates": {"ours": [800.0], "peers": [1000.0], "none": [1250.0]}
                         | ({DECODED_INSERTS: [900.0, 1100.0, 1000.0]} if decoded else {})}],
        },
    }


def test_the_decoded_rows_stand_beside_ours_against_the_best_peer() -> None:
    text = report.render(_results(decoded=True), None)
    assert "| createTodo, ours (JOURNAL=decoded) | 3000 req/s (3000) | 2000 req/s (2000) | 1000 req/s (1000) | - | 1.50 (PostGraphile 5) | - |" in text
    # REST set beside the peers' GraphQL mutation, as ours' own REST row is.
    assert "| createTodo (REST POST /api/todos/), ours (JOURNAL=decoded) (peers: GraphQL createTodo) | 2,600 req/s | 2,000 req/s | 1,000 req/s | 1.30 (PostGraphile 5) |" in text
    assert "| same, ours (JOURNAL=decoded): last arrival p50 | 100 ms | 80.0 ms | 100 ms | 1.25 (PostGraphile 5) |" in text
    assert "| same, ours (JOURNAL=decoded): server CPU per delivered event | 150 us | 120 us | 100 us | 1.50 (PostGraphile 4) |" in text
    # The per-row table: a column of its own, and its ratio beside ours'.
    assert "| | ours | ours (JOURNAL=decoded) | PostGraphile 5 | PostGraphile 4 | ours / best peer | ours (JOURNAL=decoded) / best peer |" in text
    assert "| last arrival, p50 | 200 ms | 100 ms | 80.0 ms | 100 ms | 2.50 (PostGraphile 5) | 1.25 (PostGraphile 5) |" in text


def test_the_decoded_insert_rates_have_a_table_of_their_own() -> None:
    text = report.render(_results(decoded=True), None)
    assert f"| INSERT -> {OURS_DECODED}'s sequencer -> listener | p50 4.00 ms, p99 4.00 ms (n=1) |" in text
    assert "| 4 writers | 1000 (900, 1100, 1000) | 1.00 | 1.25 | 0.80 |" in text


def test_ours_rows_are_the_same_with_and_without_the_decoded_server() -> None:
    without = report.render(_results(decoded=False), None).splitlines()
    with_decoded = report.render(_results(decoded=True), None).splitlines()
    # Every line of the run without it is in the run with it, but for the
    # per-row table's (a column more; its separator is another table's too)
    # and the sentence before it (one more server delivered to).
    header, _, *stats = report._per_server_table(_results(decoded=False)["rows"], report.ROW_STATS)
    sentence = next(line for line in without if line.startswith("1,000 subscribers, each"))
    assert [line for line in without if line not in with_decoded] == [sentence, header, *stats]
    assert "| createTodo | 1500 req/s (1500) | 2000 req/s (2000) | 1000 req/s (1000) | - | 0.75 (PostGraphile 5) | - |" in with_decoded


def test_a_server_that_cannot_decode_is_said_in_the_report() -> None:
    results = _results(decoded=False) | {"no_decoded": "JOURNAL=decoded needs wal_level = logical"}
    assert f"- {OURS_DECODED}: not measured, this server cannot run it: JOURNAL=decoded needs wal_level = logical" in report.render(results, None)


def test_a_req_s_ratio_is_the_median_of_the_rounds_ratios() -> None:
    # Round 1 slowed ours, round 3 the peer: the medians' ratio (2,900 /
    # 2,200 = 1.32) sets ours' round 3 against the peer's round 1; the
    # rounds' own ratios are 0.84, 1.33, 1.61.
    ours, peer5 = [1853.0, 3000.0, 2900.0], [2200.0, 2250.0, 1800.0]
    http = [
        {"test": "updateTodo", "server": OURS, "rps": ours, "errors": 0, "command": "wrk"},
        {"test": "updateTodo", "server": POSTGRAPHILE5, "rps": peer5, "errors": 0, "command": "wrk"},
        {"test": "updateTodo (REST PATCH /api/todos/{id}/)", "server": OURS, "rps": ours, "errors": 0, "command": "wrk"},
    ]
    text = report.render(_results(decoded=False) | {"http": http}, None)
    assert "| updateTodo | 2900 req/s (1853, 3000, 2900) | 2200 req/s (2200, 2250, 1800) | - | - | 1.33 (PostGraphile 5) | - |" in text
    assert "| updateTodo | 2,900 req/s | 2,200 req/s | - | 1.33 (PostGraphile 5) |" in text
    # REST against the peers' mutation, paired by round as well.
    assert "| updateTodo (REST PATCH /api/todos/{id}/) (peers: GraphQL updateTodo) | 2,900 req/s | 2,200 req/s | - | 1.33 (PostGraphile 5) |" in text


def test_rounds_that_do_not_pair_fall_back_to_the_medians_ratio() -> None:
    assert units.paired([3.0, 1.0, 2.0], [1.0, 1.0]) == 2.0
    assert units.paired([3.0, 1.0], [1.0, 0.0]) == 2.0 / 0.5


def test_the_people_reads_ratio_pairs_the_rounds_too() -> None:
    # Medians 200 / 100 = 2.00 (over the target); the rounds' ratios 1, 3, 0.8.
    entry = {"test": "without the response cache", "errors": 0}
    reads = [entry | {"server": OURS, "rps": [100.0, 300.0, 200.0]}, entry | {"server": OURS_ACCOUNTS, "rps": [100.0, 100.0, 250.0]}]
    row = people_report._reads_table(reads, [])[2]
    assert row == "| without the response cache | 200 req/s (100, 300, 200) | 100 req/s (100, 100, 250) | 1.00 | - |"


def test_the_people_reads_ratio_of_a_person_at_0_req_s_is_a_dash() -> None:
    entry = {"test": "without the response cache", "errors": 0}
    reads = [entry | {"server": OURS, "rps": [100.0, 300.0]}, entry | {"server": OURS_ACCOUNTS, "rps": [0.0, 0.0]}]
    row = people_report._reads_table(reads, [])[2]
    assert row == "| without the response cache | 200 req/s (100, 300) | 0 req/s (0, 0) | - | - |"


def _workers() -> dict[str, Any]:
    """The workers case: ours, `--workers 2` and PostGraphile 5, back to back."""
    fanout = [_row(s, last, cpu) | {"subscribers": 10_000} for s, last, cpu in
              ((OURS, 0.1, 20e-6), (OURS_WORKERS, 0.05, 25e-6), (POSTGRAPHILE5, 0.2, 30e-6))]
    rows = [_row(OURS, 0.2, 170e-6), _row(OURS_WORKERS, 0.1, 180e-6), _row(POSTGRAPHILE5, 0.08, 120e-6)]
    entry = {"test": "updateTodo", "errors": 0, "command": "wrk"}
    writes = [entry | {"server": OURS, "rps": [1000.0, 1200.0, 1100.0]},
              entry | {"server": OURS_WORKERS, "rps": [1500.0, 1500.0, 1800.0]},
              entry | {"server": POSTGRAPHILE5, "rps": [1000.0, 1000.0, 1200.0]}]
    return {"fanout": fanout, "rows": rows, "writes": writes}


def test_the_workers_case_names_its_ratios_against_postgraphile_5() -> None:
    text = report.render(_results(decoded=False) | {"workers": _workers()}, None)
    head = "| ours | ours, 2 workers | PostGraphile 5 | ours / PostGraphile 5 | ours, 2 workers / PostGraphile 5 | ours, 2 workers / ours |"
    assert f"| {head}" in text
    assert "| last arrival, p50 | 100 ms | 50.0 ms | 200 ms | 0.50 | 0.25 | 0.50 |" in text
    # The per-row table: the UPDATE's own time (sent -> committed) beside the arrival.
    assert "| last arrival, p50 | 200 ms | 100 ms | 80.0 ms | 2.50 | 1.25 | 0.50 |" in text
    assert "| the UPDATE (sent -> committed), p50 | 100 ms | 50.0 ms | 40.0 ms | 2.50 | 1.25 | 0.50 |" in text
    # req/s paired by round: ours / PostGraphile 5's rounds are 1.00, 1.20,
    # 0.92, whose median is 1.00 (the medians' ratio would say 1.10).
    assert f"| test {head}" in text
    assert ("| updateTodo | 1100 (1000, 1200, 1100) req/s | 1500 (1500, 1500, 1800) req/s | 1000 (1000, 1000, 1200) req/s "
            "| 1.00 | 1.50 | 1.50 |") in text
    # The summary: `--workers 2` against the PostGraphile 5 of its own case.
    label = f"{OURS_WORKERS} (workers case)"
    assert f"| updateTodo, {label} | 1,500 req/s | 1,000 req/s | - | 1.50 (PostGraphile 5) |" in text
    assert f"| 1,000 subscribers, each on its own row, {label}: last arrival, p50 | 100 ms | 80.0 ms | - | 1.25 (PostGraphile 5) |" in text


def test_a_workers_run_that_measured_the_fan_out_alone_still_renders() -> None:
    fanout = _workers()["fanout"][:2]
    text = report.render(_results(decoded=False) | {"workers": fanout}, None)
    assert "| last arrival, p50 | 100 ms | 50.0 ms | 0.50 |" in text
    assert "updateTodo |" not in text.split("## Several processes")[1]


def test_a_server_whose_every_round_failed_renders_without_a_ratio() -> None:
    """wrk reports 0 req/s (and exits 0) for a server that drops each
    connection: its ratios are "-", as a division by 0 is anywhere in the
    report, and the report is still written at the end of the run."""
    workers = _workers()
    for entry in workers["writes"]:
        if entry["server"] == POSTGRAPHILE5:
            entry |= {"rps": [0.0, 0.0, 0.0], "errors": 3000}
    results = _results(decoded=False) | {"workers": workers}
    results["http"] += _http("createTodo", {"floor": 0.0})
    text = report.render(results, None)
    assert ("| updateTodo | 1100 (1000, 1200, 1100) req/s | 1500 (1500, 1500, 1800) req/s "
            "| 0 (0, 0, 0) req/s, 3000 errors | - | - | 1.50 |") in text
    assert f"| updateTodo, {OURS_WORKERS} (workers case) | 1,500 req/s | 0 req/s | - | - |" in text
    assert "| createTodo | 1500 req/s (1500) | 2000 req/s (2000) | 1000 req/s (1000) | 0 req/s (0) | 0.75 (PostGraphile 5) | - |" in text
