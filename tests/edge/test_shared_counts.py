"""edge/shared_counts.py: the sockets per address bucket across workers, as
several SharedCounts on one directory (each a worker's)."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from graphql_todos.edge.shared_counts import SharedCounts


def _fill(workers: list[SharedCounts], bucket: int, limit: int) -> list[int]:
    """Each worker takes places until every one is refused: their counts."""
    taken = [0] * len(workers)
    while True:
        admitted = [worker.take(bucket, limit) for worker in workers]
        if not any(admitted):
            return taken
        taken = [n + a for n, a in zip(taken, admitted, strict=True)]


@pytest.mark.parametrize("limit", [1, 3, 64, 256, 1000])
def test_workers_together_hold_the_limit_exactly_whatever_the_order(tmp_path: Path, limit: int) -> None:
    # Sockets opening and closing at random over three workers: never more
    # than the limit together; and whenever all three refuse, exactly it.
    workers = [SharedCounts(tmp_path) for _ in range(3)]
    bucket = workers[0].bucket("10.0.0.1")
    rng = random.Random(limit)
    held = [0, 0, 0]
    for _ in range(limit * 20):
        i = rng.randrange(3)
        if held[i] and rng.random() < 0.3:
            workers[i].give(bucket, limit)
            held[i] -= 1
        elif workers[i].take(bucket, limit):
            held[i] += 1
        assert sum(held) <= limit
    held = [n + more for n, more in zip(held, _fill(workers, bucket, limit), strict=True)]
    assert sum(held) == limit
    # Given back, the places can be taken again, by any worker.
    for _ in range(held[0]):
        workers[0].give(bucket, limit)
    assert sum(_fill(workers[1:], bucket, limit)) + held[1] + held[2] == limit


def test_another_bucket_is_not_counted(tmp_path: Path) -> None:
    one, two = SharedCounts(tmp_path), SharedCounts(tmp_path)
    assert sum(_fill([one, two], 1, 4)) == 4
    assert sum(_fill([one, two], 2, 4)) == 4


def test_far_from_the_limit_a_worker_admits_without_the_shared_lock(tmp_path: Path) -> None:
    # The lock held by someone else: a worker admits into the places it has
    # reserved; the one that must reserve more waits for the lock.
    limit = 256  # reserved 4 at a time far from it (SPARE_SHARE)
    worker = SharedCounts(tmp_path)
    assert worker.take(0, limit)
    lock = os.open(tmp_path / "sockets.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        assert [worker.take(0, limit) for _ in range(3)] == [True] * 3
        waiting = threading.Thread(target=worker.take, args=(0, limit))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    waiting.join(5)
    assert not waiting.is_alive()


def test_near_the_limit_places_are_reserved_one_at_a_time(tmp_path: Path) -> None:
    # Two workers, the limit 256 (a share of 4): one worker's 250 sockets
    # leave 6 places, fewer than a share each, so the other reserves them
    # one by one and the first can still take every one of them.
    one, two = SharedCounts(tmp_path), SharedCounts(tmp_path)
    assert all(one.take(0, 256) for _ in range(250))
    assert two.take(0, 256)
    assert sum(_fill([one], 0, 256)) == 256 - 251


def test_a_closing_worker_keeps_a_share_at_most_and_none_once_it_holds_none(tmp_path: Path) -> None:
    one, two = SharedCounts(tmp_path), SharedCounts(tmp_path)
    limit = 256
    assert all(one.take(0, limit) for _ in range(100))
    for _ in range(99):
        one.give(0, limit)
    # One socket left in `one`, its spare 3 places at most: 252 for `two`.
    assert _fill([two], 0, limit) == [252]
    for _ in range(252):
        two.give(0, limit)
    one.give(0, limit)
    assert _fill([two], 0, limit) == [limit]


def test_a_killed_workers_places_come_back(tmp_path: Path) -> None:
    # A worker that dies outright (SIGKILL: no cleanup) still reserves its
    # places in its file; the others stop counting them at once.
    code = (
        "import sys; from pathlib import Path;"
        "from graphql_todos.edge.shared_counts import SharedCounts;"
        "w = SharedCounts(Path(sys.argv[1]));"
        "print(sum(w.take(0, 10) for _ in range(7)), flush=True);"
        "sys.stdin.read()"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "7\n"
        survivor = SharedCounts(tmp_path)
        assert _fill([survivor], 0, 10) == [3]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert _fill([survivor], 0, 10) == [7]
        assert sorted(p.name for p in tmp_path.glob("sockets-*.bin")) == [survivor.name]
    finally:
        worker.kill()
        worker.wait(10)
