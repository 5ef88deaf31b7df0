"""A walsender held by gdb where PostgreSQL 16 to 18 lose a flush's wakeup:
at ConditionVariablePrepareToSleep, after WalSndWaitForWal has read the
flushed position and before WalSndWait has joined the condition variable a
flush broadcasts on (graphql_todos/internals/psycopg2_replication.py,
NUDGE_SECONDS). A commit made while it is held is the stall a lone write
met by chance, made on purpose. make test installs gdb; the tests run as
root or as the server's own user (gdb attaches to a process that is not
its child)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Exported by the server (extensions call it), so gdb finds it without symbols.
SLEEP_STEP = "ConditionVariablePrepareToSleep"


@contextlib.contextmanager
def held_before_its_sleep(pid: int, workdir: Path, wake: Callable[[], object]) -> Iterator[None]:
    """Attach gdb to walsender `pid`, call `wake` once, yield once the
    walsender stops on its way to sleep, then let it go on."""
    attached, held, go = workdir / "attached", workdir / "held", workdir / "go"
    # gdb stops at a SIGUSR1 by default, and PostgreSQL sends its backends
    # many (catching up on invalidations, barriers): `continue` ended there,
    # the walsender asleep with the status update unread, was taken for the
    # hold. On a loaded machine every try proved nothing that way (5 of 5, so
    # the tests failed). Passed on without a stop, they wake it as they would.
    gdb = subprocess.Popen(
        ["gdb", "-q", "-batch", "-nx", "-p", str(pid), "-ex", "set pagination off",
         "-ex", "handle SIGUSR1 SIGUSR2 nostop noprint pass",
         "-ex", f"break {SLEEP_STEP}", "-ex", f"shell touch {attached}", "-ex", "continue",
         "-ex", f"shell touch {held}; while [ ! -e {go} ]; do sleep 0.01; done",
         "-ex", "delete", "-ex", "detach"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not attached.exists():
            assert gdb.poll() is None and time.monotonic() < deadline, f"gdb did not attach: {gdb.communicate()[0]}"
            time.sleep(0.02)
        # Asleep, the walsender passes the breakpoint only once something wakes it. Once: a
        # second status update, sent while gdb is slow to say it holds the walsender, would wait
        # unread in its socket and wake it at once when let go, the wakeup the tests must not give.
        wake()
        while not held.exists():
            assert time.monotonic() < deadline, f"the walsender did not reach {SLEEP_STEP} (PostgreSQL 15 has no such step)"
            time.sleep(0.02)
        yield
    finally:
        go.touch()
        try:
            gdb.wait(timeout=20)
        finally:
            if gdb.poll() is None:
                gdb.kill()
