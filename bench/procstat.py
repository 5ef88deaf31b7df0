"""Server CPU time and resident memory, read from /proc: a server's own and
its children's (`serve --workers` is a supervisor with one worker per core)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    for child, parent in _read_live(pids, lambda p: (p, int(stat_fields(p)[1]))):
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo += children.get(current, [])
    return found


def _read_live(pids: list[int], read: Callable[[int], T]) -> list[T]:
    """read(pid) of each pid still there: a child (a database backend) may
    end between _tree and the read, and its time is then no longer ours."""
    found = []
    for pid in pids:
        try:
            found.append(read(pid))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime so far, summed over the process and its live
    descendants, with the time of the children they have reaped (cutime +
    cstime): a child that ends between two readings (an autovacuum worker, a
    backend whose client closed) keeps its time in the difference, where the
    live processes alone took its whole lifetime's off it."""
    fields = _read_live(_tree(pid), stat_fields)
    return sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]) for f in fields) / _TICKS


def rss_bytes(pid: int) -> int:
    """VmRSS summed over the process and its children."""
    total = 0
    for status in _read_live(_tree(pid), lambda p: Path(f"/proc/{p}/status").read_text()):
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
