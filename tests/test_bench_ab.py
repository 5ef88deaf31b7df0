"""bench.ab's rounds (docs/bench-ab-harness.md): the order of A, B and
PostGraphile 5, and the CPU count a child that ends mid-run leaves; and
bench.opening's `rest-sse` client against the real app."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys

from bench import servers
from bench.ab import order
from bench.opening import _open_streams
from bench.procstat import cpu_seconds
from tests.helpers import Server


def test_every_order_once_in_six_rounds() -> None:
    orders = [tuple(order(["A", "B", "P"], r)) for r in range(6)]
    assert sorted(orders) == sorted(itertools.permutations("ABP"))


def test_a_and_b_later_alike_in_every_two_rounds() -> None:
    # The later of A and B pays for what the earlier left behind: each is
    # the later one in one round of every two, from the first round on.
    for start in range(0, 12, 2):
        later = ["".join(order(["A", "B", "P"], r)).replace("P", "")[1] for r in (start, start + 1)]
        assert sorted(later) == ["A", "B"]


def test_the_old_rotation_put_b_later_in_three_rounds_running() -> None:
    # What order replaced: rotated, reversed every other round.
    def rotated(r: int) -> list[str]:
        runs = ["A", "B", "P"]
        got = runs[r % 3 :] + runs[: r % 3]
        return got[::-1] if r % 2 else got

    later = ["".join(rotated(r)).replace("P", "")[1] for r in range(6)]
    assert later == ["B", "B", "B", "A", "A", "A"]


def test_cpu_seconds_keeps_a_reaped_childs_time() -> None:
    # A child that burns 0.3 s of CPU and ends: its time stays in its
    # parent's count (cutime) rather than leaving the difference with it.
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    before = cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert cpu_seconds(os.getpid()) - before >= 0.25


def test_rest_sse_opens_every_stream_and_one_change_reaches_each(server: Server) -> None:
    result = asyncio.run(_open_streams(servers.Server("ours", server.url, os.getpid()), server.dsn, 40))
    assert (result.failed_connections, result.expected, result.delivered) == (0, 40, 40)
    assert result.open_seconds > 0 and result.open_cpu_per_subscription > 0


def test_rest_sse_counts_a_refused_stream_as_failed(guarded: Server) -> None:
    # No token: each stream is answered 401, counted, and not waited for.
    result = asyncio.run(_open_streams(servers.Server("ours", guarded.url, os.getpid()), guarded.dsn, 5))
    assert (result.failed_connections, result.expected, result.delivered) == (5, 0, 0)
