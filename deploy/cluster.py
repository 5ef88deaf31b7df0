"""Several `graphql-todos serve` instances on one database, behind nginx on one address.

    make cluster    (or: .venv/bin/python -m deploy.cluster [--instances N])

nginx (Debian's package) listens on HOST:PORT (default 127.0.0.1:8000) with
deploy/nginx.conf and deploy/graphql-todos.conf, and spreads the clients over
the instances, each a `graphql-todos serve` on a free port of 127.0.0.1. With
no DATABASE_URL the embedded PostgreSQL in DATA_DIR is started once and
shared; the other settings pass to every instance as they are. An instance
that exits (kill one: its clients resume on the others) is started again.
Ctrl-C or SIGTERM stops nginx, then the instances, then PostgreSQL.
tests/test_cluster.py drives the same classes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.migrations import migrate
from graphql_todos.core.settings import SettingError, Settings

HERE = Path(__file__).resolve().parent
# Debian puts nginx in /usr/sbin, which a user's PATH may lack.
NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin") or "/usr/sbin/nginx"
# The console script beside this Python: the command a user runs.
SERVE = [str(Path(sys.executable).parent / "graphql-todos"), "serve"]
# How long a process may take to answer, or to go, on a loaded machine.
START_SECONDS = 60.0
STOP_SECONDS = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Instance:
    """One `graphql-todos serve` on 127.0.0.1:port, started and stopped at will
    (always again on the same port: nginx knows it by it)."""

    def __init__(self, env: Mapping[str, str], port: int, log: Path | None = None) -> None:
        self.env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it; return once it answers /healthz."""
        output = self.log.open("ab") if self.log is not None else None
        try:
            # A session of its own: a Ctrl-C reaches the launcher only, which
            # stops nginx first, then the instances.
            self.process = subprocess.Popen(
                SERVE, env=self.env, stdout=output, stderr=output, start_new_session=True
            )
        finally:
            if output is not None:
                output.close()  # the child has its own copy
        deadline = time.monotonic() + START_SECONDS
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"instance on port {self.port} exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"instance on port {self.port} did not answer within {START_SECONDS} s")
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send sig; its exit status once it is gone."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        return self.process.wait(STOP_SECONDS)


class Nginx:
    """nginx in run_dir (its prefix: configuration, pid, logs, temporary
    files), listening on host:port, in front of the instances' ports."""

    def __init__(self, run_dir: Path, host: str, port: int, upstream_ports: Sequence[int]) -> None:
        self.run_dir = run_dir
        self.host = host
        self.port = port
        self.url = f"http://{_url_host(host)}:{port}"
        self.ws_url = "ws" + self.url.removeprefix("http")
        self.process: subprocess.Popen[bytes] | None = None
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(HERE / "nginx.conf", run_dir / "nginx.conf")
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=0;" for p in upstream_ports)
        (run_dir / "graphql-todos.conf").write_text(site_config(f"{_url_host(host)}:{port}", servers))

    def start(self) -> None:
        """Start it; return once it accepts connections."""
        self.process = subprocess.Popen(
            [NGINX, "-p", f"{self.run_dir}/", "-c", str(self.run_dir / "nginx.conf"), "-e", "error.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_SECONDS
        while not _accepts(self.host, self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start:\n" + self.error_log())
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown: open connections are closed at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(STOP_SECONDS)

    def error_log(self) -> str:
        path = self.run_dir / "error.log"
        return path.read_text() if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.run_dir / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def site_config(listen: str, servers: str) -> str:
    """graphql-todos.conf with its two blanks filled in."""
    return string.Template((HERE / "graphql-todos.conf").read_text()).safe_substitute(LISTEN=listen, SERVERS=servers)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


class Cluster:
    """The instances on one database, and nginx in front of them."""

    def __init__(
        self, env: Mapping[str, str], run_dir: Path, host: str, port: int, instances: int, log_instances: bool
    ) -> None:
        # nginx connects from 127.0.0.1: its X-Forwarded-For names the client.
        proxies = ",".join(filter(None, (env.get("FORWARDED_ALLOW_IPS"), "127.0.0.1")))
        env = {**env, "FORWARDED_ALLOW_IPS": proxies}
        logs = [run_dir / f"instance-{n}.log" if log_instances else None for n in range(instances)]
        self.instances = [Instance(env, free_port(), log) for log in logs]
        self.nginx = Nginx(run_dir / "nginx", host, port, [i.port for i in self.instances])

    def start(self) -> None:
        threads = [threading.Thread(target=i.start) for i in self.instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not all(i.running for i in self.instances):
            raise RuntimeError("an instance did not start")
        self.nginx.start()

    def stop(self) -> None:
        self.nginx.stop()
        for instance in self.instances:
            if instance.running:
                assert instance.process is not None
                instance.process.terminate()
        for instance in self.instances:
            if instance.process is not None:
                instance.process.wait(STOP_SECONDS)


@contextlib.contextmanager
def database(env: Mapping[str, str]) -> Iterator[str]:
    """DATABASE_URL, or the embedded PostgreSQL in DATA_DIR for the block;
    migrated once, before any instance starts."""
    settings = Settings.from_env(env)
    with contextlib.ExitStack() as stack:
        dsn = settings.database_url or stack.enter_context(embedded_postgres(settings.data_dir))
        migrate(dsn)
        yield dsn


@contextlib.contextmanager
def cluster(
    env: Mapping[str, str],
    run_dir: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    instances: int = 3,
    log_instances: bool = False,
) -> Iterator[Cluster]:
    """A Cluster on env's database (DATABASE_URL, or the embedded one),
    running for the block; each instance's output to run_dir/instance-N.log
    with log_instances, else to ours."""
    with database(env) as dsn:
        running = Cluster({**env, "DATABASE_URL": dsn}, run_dir, host, port or free_port(host), instances, log_instances)
        try:
            running.start()
            yield running
        finally:
            running.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=3, help="how many `serve` instances (default 3)")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    try:
        settings = Settings.from_env()
    except SettingError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    run_dir = settings.data_dir / "cluster"
    with cluster(os.environ, run_dir, settings.host, settings.port, args.instances) as running:
        print(f"serving on {running.nginx.url}/ through nginx ({running.nginx.run_dir}), instances:", flush=True)
        for instance in running.instances:
            print(f"  {instance.url} (pid {instance.process.pid if instance.process else '?'})", flush=True)
        while not stopping.wait(0.5):
            if running.nginx.process is None or running.nginx.process.poll() is not None:
                raise SystemExit("nginx exited:\n" + running.nginx.error_log())
            for instance in running.instances:
                if not instance.running and not stopping.is_set():
                    print(f"instance {instance.url} exited: starting it again", flush=True)
                    try:
                        instance.start()
                    except RuntimeError as exc:  # tried again on the next turn
                        print(exc, flush=True)


if __name__ == "__main__":
    main()
