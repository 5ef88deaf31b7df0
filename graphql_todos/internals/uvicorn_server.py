"""uvicorn's server and its supervisor of workers: exiting cleanly on SIGTERM, and telling
/metrics of the workers that died."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Generator, Iterator

import uvicorn
from uvicorn.supervisors import Multiprocess

from graphql_todos.core import metrics


class Server(uvicorn.Server):
    """uvicorn's server of a single process, whose clean shutdown on SIGTERM
    exits with status 0: uvicorn raises the signal again once shut down, so
    the process died of it and `make run` reported "Terminated". Ctrl-C
    (SIGINT) is still raised again, as a shell expects.

    Assumes: `capture_signals` records each signal in `_captured_signals`
    and raises them again after its `yield` returns."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals = [sig for sig in self._captured_signals if sig != signal.SIGTERM]


class Supervisor(Multiprocess):
    """uvicorn's supervisor of `serve --workers N` (started as uvicorn.run
    starts it), marking each worker it replaces or retires dead for
    /metrics: prometheus_client sums a `livesum` gauge's files until their
    pid is marked dead, so a SIGKILLed worker's open connections would be
    counted forever.

    Assumes: the workers are `processes` (each with its `pid`), replaced
    only by `keep_subprocess_alive` (a dead or hung worker killed, joined and
    started anew) and by the handlers `handle_signals` calls (SIGHUP restarts
    them, SIGTTOU retires one), which `run` calls in turn."""

    def keep_subprocess_alive(self) -> None:
        with self._marking_gone():
            super().keep_subprocess_alive()

    def handle_signals(self) -> None:
        with self._marking_gone():
            super().handle_signals()

    @contextlib.contextmanager
    def _marking_gone(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        try:
            yield
        finally:
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    metrics.worker_gone(pid)
