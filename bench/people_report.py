"""The people case's section of docs/benchmarks.md (bench/people.py): each
figure beside the single-person one it is held to, and the ratio (target:
at most 1.2). An error of the case takes the place of its figures."""

from __future__ import annotations

import statistics
from typing import Any

from .fanout import median, percentile
from .servers import OURS, OURS_ACCOUNTS, OURS_ACCOUNTS_CACHED, OURS_CACHED
from .units import ms, paired, ratio, us

TARGET = 1.2


def _times(a: float, b: float, target: bool = True) -> str:
    """a / b, against the target if it is one: "1.05", or "**1.31** (over 1.2)"."""
    shown = ratio(a, b)
    return shown if not target or shown == "-" or a / b <= TARGET else f"**{shown}** (over {TARGET})"


def _fanout_row(label: str, r: dict[str, Any], compared: str) -> str:
    arrival = f"p50 {ms(median(r['last_arrival']))}, p99 {ms(percentile(r['last_arrival'], 0.99))}"
    delivered = f"{r['delivered']:,} of {r['expected']:,}"
    # CPU is read in clock ticks (10 ms): ten opens may all fall within one.
    cpu = r["open_cpu_per_subscription"]
    opened = f"{r['open_seconds']:.2f} s, " + (f"{ms(cpu)} CPU each" if cpu > 0 else "CPU below one clock tick")
    return f"| {label} | {arrival} | {us(r['cpu_per_delivery'])} | {delivered} | {opened} | {compared} |"


def _fanout_table(people: dict[str, Any]) -> list[str]:
    """The members' fan-out, then each single-person figure with the members' / it."""
    members, (single, many) = people["members"], people["single"]
    n, lists = members["subscribers"], members["lists"]
    lines = [
        ("| one INSERT into one list | last arrival | server CPU per delivered event | deliveries "
         "| time to open all, server CPU per open | people / this (last arrival p50; CPU per delivery) |"),
        "|---|---|---|---|---|---|",
    ]
    label = f"{n:,} people in {lists:,} lists of {n // lists}, each signed in (AUTH=accounts, a token each)"
    failed = people["errors"]
    if failed:
        lines.append(f"| {label} | **ERROR: {'; '.join(failed)}** | - | - | - | - |")
    else:
        lines.append(_fanout_row(label, members, ""))

    def versus(r: dict[str, Any], target: bool) -> str:
        if failed:
            return "**ERROR**"
        p50 = _times(median(members["last_arrival"]), median(r["last_arrival"]), target)
        return f"{p50}; {_times(members['cpu_per_delivery'], r['cpu_per_delivery'], target)}"

    beside = people.get("beside_idle")
    # The yardstick holds as many sockets as the people (people.md, section
    # 11): what people add, not what holding 1,000 sockets costs.
    alone = f"{single['subscribers']:,} single-person subscribers alone (AUTH=open)"
    if beside is None:
        lines.append(_fanout_row(f"{alone}: the yardstick, target at most {TARGET}", single, versus(single, True)))
    else:
        held = beside["subscribers"] + beside["idle"]
        lines.append(_fanout_row(f"{alone}: no target (the yardstick before 2026-12-05)", single, versus(single, False)))
        label = (f"{beside['subscribers']:,} single-person subscribers beside {beside['idle']:,} quiet sockets "
                 f"(AUTH=open, {held:,} sockets held, as the people's): the yardstick, target at most {TARGET}")
        lines.append(_fanout_row(label, beside, versus(beside, True)))
    lines += [
        _fanout_row(f"{many['subscribers']:,} single-person subscribers (AUTH=open): no target", many, versus(many, False)),
    ]
    return lines


def _rps(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    errors = f", **{entry['errors']} errors**" if entry["errors"] else ""
    return f"{statistics.median(entry['rps']):.0f} req/s ({', '.join(f'{r:.0f}' for r in entry['rps'])}){errors}"


def _reads_table(reads: list[dict[str, Any]], http: list[dict[str, Any]]) -> list[str]:
    by = {(r["test"], r["server"]): r for r in reads}
    today = {h["test"]: h for h in http if h["server"] == OURS}
    lines = [
        ("| 50-row list (GraphQL) | open mode (local), this table | signed-in person (a token) "
         "| open / signed-in (target at most 1.2) | open mode, the http case's table |"),
        "|---|---|---|---|---|",
    ]
    for test, (open_server, person_server), http_test in (
        ("without the response cache", (OURS, OURS_ACCOUNTS), "50-row list (GraphQL)"),
        ("with the response cache", (OURS_CACHED, OURS_ACCOUNTS_CACHED), "50-row list (GraphQL), ours with its response cache"),
    ):
        opened, person = by.get((test, open_server)), by.get((test, person_server))
        # "-" too for a person's side at 0 req/s (every round failed: wrk exits 0).
        compared = _times(paired(opened["rps"], person["rps"]), 1.0) if opened and person and statistics.median(person["rps"]) else "-"
        lines.append(f"| {test} | {_rps(opened)} | {_rps(person)} | {compared} | {_rps(today.get(http_test))} |")
    return lines


def people_section(results: dict[str, Any]) -> list[str]:
    """The section, or nothing if the case did not run."""
    people = results.get("people")
    if not people:
        return []
    args = results["args"]
    return [
        "## People, lists and sharing",
        "",
        (f"Issue 19 (`bench/people.py`; docs/design/people.md, section 11): a database of its own, "
         f"{people['people']:,} people in lists of 10 (person p in list p div 10: a list's members in one "
         "client process, as the yardstick's 10 are), each with a "
         "personal access token; 50 todos, all in person 0's default list. Every person holds one "
         "graphql-transport-ws `todoChanges { op todo { id title completed } }` subscriber "
         "(`bench/fanout_client.c -e -i`: the token in connection_init's payload, every frame reported with its "
         f"socket). A warm-up INSERT into each list, then {args['people_events']} INSERTs (psycopg, autocommit), "
         "each into the next list, each timed until its 10 members have it; the case checks that every member "
         "got each change once and nobody else got any (an error otherwise, here and in `make bench`'s exit "
         "status). Beside it, from the same run and database, as many deliveries in open mode: 10 subscribers "
         f"and one INSERT each; the {people['people']:,} single-person subscribers share a change's fixed cost over "
         f"{people['people'] // 10:,} times the deliveries, so they are shown, with no target (people.md, section "
         f"12). And the same 10 while {people['people'] - 10:,} more open-mode sockets are held in "
         "client processes of their own, each acknowledged and holding a `todo(id)` subscription to a row no "
         "INSERT touches (as each person's subscription is one no other list's change visits): the people's "
         f"{people['people']:,} sockets without the people. That row is the yardstick (people.md, section 11): "
         "the 10 alone do not pay for holding the other sockets (uvicorn's keep-alive ping of each, the wake-ups), "
         "which is no cost of people. A fresh server per row, run in "
         f"this order: the 10 alone, the 10 beside the quiet sockets, the people, the {people['people']:,} "
         "single-person subscribers."),
        "",
        *_fanout_table(people),
        "",
        (f"The 50-row list read in open mode (local reads every list) and by person 0 with its token "
         f"(`Authorization: Bearer`; person 0's two lists: its default one with the 50 rows and an empty shared one), "
         f"`wrk -t1 -c{args['connections']} -d{args['seconds']:g}s`, {args['rounds']} alternating runs, on this "
         "case's database; beside them, open mode's figure from the http case's 50-row table, if it ran. Commands:"),
        "",
        *[f"    {r['command']}" for r in people["reads"]],
        "",
        *_reads_table(people["reads"], results.get("http", [])),
        "",
    ]
