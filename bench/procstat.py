"""Server CPU time and resident memory, read from /proc: a server's own and
its children's (`serve --workers` is a supervisor with one worker per core)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(stat_fields(int(entry.name))[1]), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass  # gone while we looked
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime so far, summed over the process and its children."""
    fields = [stat_fields(p) for p in _tree(pid)]
    return sum(int(f[11]) + int(f[12]) for f in fields) / _TICKS


def rss_bytes(pid: int) -> int:
    """VmRSS summed over the process and its children."""
    total = 0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total
