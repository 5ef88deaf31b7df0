"""Subscribers in separate client processes, and what one change costs to reach all of them."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .procstat import cpu_seconds, rss_bytes
from .servers import FLOOR, Server

BENCH = Path(__file__).resolve().parent
# Built by the Makefile from fanout_client.c.
CLIENT = BENCH / "fanout_client"
GAP_SECONDS = 0.05


@dataclass(frozen=True)
class Change:
    """A change the bench made: the row's uuid, when it was sent, when its HTTP answer came (if any)."""

    token: str
    sent: float
    answered: float | None = None


@dataclass(frozen=True)
class Arrival:
    received: int
    first: float
    last: float


@dataclass
class FanoutResult:
    server: str
    subscribers: int
    open_seconds: float = 0.0
    open_cpu_per_subscription: float = 0.0
    rss_per_subscription: float = 0.0
    failed_connections: int = 0
    last_arrival: list[float] = field(default_factory=list)
    first_arrival: list[float] = field(default_factory=list)
    after_response: list[float] = field(default_factory=list)
    delivered: int = 0
    expected: int = 0
    cpu_per_delivery: float = 0.0
    # The subscriber processes', summed: what the clients took of the shared cores.
    client_cpu_per_delivery: float = 0.0


@dataclass(frozen=True)
class Got:
    """One frame one socket got (Clients started with `each`)."""

    socket: int
    at: float


class Clients:
    """Several client processes, each holding a share of the sockets."""

    def __init__(self, procs: list[asyncio.subprocess.Process], files: list[Path], firsts: list[int]) -> None:
        self._procs = procs
        self._files = files
        self._arrivals: dict[str, list[Arrival]] = {}
        self._complete: dict[str, asyncio.Event] = {}
        self._ready: list[tuple[int, int]] = []
        self._ready_event = asyncio.Event()
        # With `each`: every frame, by token, and an event set at each.
        self.got: dict[str, list[Got]] = {}
        self.got_more = asyncio.Event()
        self._readers = [asyncio.create_task(self._read(p, f)) for p, f in zip(procs, firsts, strict=True)]

    @classmethod
    async def start(
        cls,
        url: str,
        protocol: str,
        count: int,
        processes: int,
        query: str,
        variables: Sequence[str] = (),
        inits: Sequence[str] = (),
        each: bool = False,
    ) -> Clients:
        """`variables`, `inits`: each socket's subscription variables and
        connection_init payload, as JSON, in turn (none: every socket the
        same document, no payload). `each`: every frame is reported, in
        `got`, by the socket's index (an event is never complete)."""
        shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
        procs, files, firsts, first = [], [], [], 0
        for share in filter(None, shares):
            options = ["-e"] if each else []
            if inits:
                files.append(_lines(inits[first : first + share]))
                options += ["-i", str(files[-1])]
            args = [str(CLIENT), *options, url, protocol, str(share), query]
            if variables:
                files.append(_lines(variables[first : first + share]))
                args.append(str(files[-1]))
            firsts.append(first)
            first += share
            procs.append(
                await asyncio.create_subprocess_exec(
                    *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
            )
        return cls(procs, files, firsts)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self._procs)

    async def _read(self, proc: asyncio.subprocess.Process, offset: int) -> None:
        """`offset`: the index of proc's first socket among all."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            kind, *rest = raw.decode().split()
            if kind == "got":
                self.got.setdefault(rest[0], []).append(Got(offset + int(rest[1]), float(rest[2]) / 1000))
                self.got_more.set()
            elif kind == "ready":
                self._ready.append((int(rest[0]), int(rest[1])))
                if len(self._ready) == len(self._procs):
                    self._ready_event.set()
            elif kind == "event":
                token, n, first, last = rest[0], int(rest[1]), float(rest[2]) / 1000, float(rest[3]) / 1000
                arrivals = self._arrivals.setdefault(token, [])
                arrivals.append(Arrival(n, first, last))
                if len(arrivals) == len(self._procs):
                    self._complete.setdefault(token, asyncio.Event()).set()

    async def ready(self, timeout: float) -> tuple[int, int]:
        """Opened and failed sockets, once every process has settled them all."""
        await asyncio.wait_for(self._ready_event.wait(), timeout)
        return sum(r[0] for r in self._ready), sum(r[1] for r in self._ready)

    async def arrival(self, token: str, timeout: float) -> Arrival:
        """When the last socket got the change; on timeout, what arrived so far."""
        done = self._complete.setdefault(token, asyncio.Event())
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            await self._send("flush")
            await asyncio.sleep(0.5)
        arrivals = self._arrivals.pop(token, [])
        self._complete.pop(token, None)
        if not arrivals:
            return Arrival(0, float("nan"), float("nan"))
        return Arrival(sum(a.received for a in arrivals), min(a.first for a in arrivals), max(a.last for a in arrivals))

    async def round(self, token: str) -> None:
        """From now on, each socket's next frame counts as `token`'s (bench/fanout_client.c)."""
        await self._send(f"round {token}")

    async def _send(self, line: str) -> None:
        for proc in self._procs:
            if proc.stdin is not None and proc.returncode is None:
                proc.stdin.write(line.encode() + b"\n")
                await proc.stdin.drain()

    async def close(self) -> None:
        await self._send("close")
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for reader in self._readers:
            reader.cancel()
        for file in self._files:
            file.unlink(missing_ok=True)


def _lines(values: Sequence[str]) -> Path:
    """A file of one line per value, for a client process to read (removed by Clients.close)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("".join(v + "\n" for v in values))
    return Path(f.name)


def client_processes(subscribers: int, most: int) -> int:
    """About 250 sockets per process, but no more processes than `most`.

    One Node process spends about as long taking a frame as the servers spend
    sending one: at 1,000 sockets in one process, the client set the last
    arrival (the bare floor was no faster than the servers). Spread over
    processes, each server's own cost shows, alike for all three."""
    return max(1, min(most, -(-subscribers // 250)))


async def fan_out(
    server: Server,
    query: str,
    subscribers: int,
    events: int,
    change: Callable[[int], Awaitable[Change]],
    processes: int,
    event_timeout: float = 30.0,
    variables: Sequence[str] = (),
    rounds: bool = False,
) -> FanoutResult:
    """Open `subscribers` subscriptions (with `variables`, each its own; see
    Clients.start), then time `events` changes one after another. With
    `rounds`, each change reaches each subscriber once, in a frame of its
    own (a statement changing every row, each subscriber watching one)."""
    result = FanoutResult(server.name, subscribers)
    protocol = "raw" if server.name == FLOOR else "graphql-transport-ws"
    rss0, cpu0, t0 = rss_bytes(server.pid), cpu_seconds(server.pid), time.monotonic()
    clients = await Clients.start(server.ws_url, protocol, subscribers, processes, query, variables)

    async def made(i: int) -> tuple[str, Change]:
        """A change, and the token its frames are counted under."""
        if not rounds:
            done = await change(i)
            return done.token, done
        token = str(uuid.uuid4())
        await clients.round(token)
        return token, await change(i)

    try:
        opened, result.failed_connections = await clients.ready(60 + subscribers / 50)
        result.open_seconds = time.monotonic() - t0
        # A subscription is live once a change reaches it: warm up until one reaches all.
        for attempt in range(3):
            token, _ = await made(-1 - attempt)
            if (await clients.arrival(token, event_timeout)).received == opened:
                break
        result.open_cpu_per_subscription = (cpu_seconds(server.pid) - cpu0) / subscribers
        result.rss_per_subscription = (rss_bytes(server.pid) - rss0) / subscribers
        cpu1, client_cpu1 = cpu_seconds(server.pid), clients.cpu_seconds()
        for i in range(events):
            token, done = await made(i)
            got = await clients.arrival(token, event_timeout)
            result.expected += opened
            result.delivered += got.received
            if got.received == opened:
                result.last_arrival.append(got.last - done.sent)
                result.first_arrival.append(got.first - done.sent)
                if done.answered is not None:
                    result.after_response.append(got.last - done.answered)
            await asyncio.sleep(GAP_SECONDS)
        result.cpu_per_delivery = (cpu_seconds(server.pid) - cpu1) / max(1, result.delivered)
        result.client_cpu_per_delivery = (clients.cpu_seconds() - client_cpu1) / max(1, result.delivered)
    finally:
        await clients.close()
    return result


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")
