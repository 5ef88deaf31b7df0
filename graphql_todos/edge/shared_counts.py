"""WebSockets per client address, counted across the workers of one
`serve --workers N` (guard.SocketGate's MAX_SOCKETS_PER_CLIENT), in files
the workers share in the directory the supervisor makes for them.

Each worker publishes, in a file of its own, the places it has reserved: one
counter per bucket of addresses (a hash of the address keyed by a secret the
workers share), memory-mapped, written by that worker only. It admits a
socket into a place it has reserved with no lock and no system call, and
reserves more under a lock the workers share, after listing the files and
adding up the other live workers' reservations: the reservations of one
bucket never add up to more than the limit, so no address ever holds more
sockets than the limit. Far from the limit (a share, the limit //
SPARE_SHARE, still free for every live worker) a worker reserves a share at
once; nearer, one place at a time. A worker gives its spare places back
(without the lock: a smaller reservation is never wrong) as its sockets
close, all of a bucket's when its last one there closes.

A worker holds an exclusive lock on its file for as long as it lives, and
the kernel drops that lock when the process ends, however it ends: a file
no process holds is a dead worker's, reserves no more, and is removed by the
next worker that reserves.

Addresses that share a bucket share a count: stricter, never looser. With
65,536 buckets that takes many busy addresses at once, and the key keeps
anyone from aiming at another's bucket. The spare places a worker keeps
(a share less one at most, while it holds sockets of the bucket) are
stricter too: an address with sockets in several workers can be refused up
to (workers - 1) x (share - 1) places short of its limit, never more.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

BUCKETS = 1 << 16
# A worker far from an address's limit reserves a 64th of it at a time.
SPARE_SHARE = 64
_SIZE = BUCKETS * 4
_PREFIX, _SUFFIX = "sockets-", ".bin"


class SharedCounts:
    """This worker's sockets and reserved places per bucket, and the other live workers' reservations."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key = _shared_key(directory)
        self._lock = os.open(directory / "sockets.lock", os.O_RDWR | os.O_CREAT, 0o600)
        # Locked before it has its name: no other worker ever sees it unlocked.
        fd, hidden = tempfile.mkstemp(dir=directory, prefix="." + _PREFIX, suffix=_SUFFIX)
        os.ftruncate(fd, _SIZE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.name = Path(hidden).name.removeprefix(".")
        os.rename(hidden, directory / self.name)
        self._fd = fd  # open for as long as this worker lives: its lock with it
        self._reserved = _counters(mmap.mmap(fd, _SIZE))
        self._held: dict[int, int] = {}  # this worker's sockets, by bucket
        self._others: dict[str, tuple[int, mmap.mmap, memoryview[int]]] = {}

    def bucket(self, address: str) -> int:
        digest = hashlib.blake2b(address.encode(), digest_size=4, key=self._key).digest()
        return int.from_bytes(digest) % BUCKETS

    def take(self, bucket: int, limit: int) -> bool:
        """Count a socket in `bucket`, or say False: the workers' sockets there are at `limit`."""
        held = self._held.get(bucket, 0)
        if held >= self._reserved[bucket] and not self._reserve(bucket, limit):
            return False
        self._held[bucket] = held + 1
        return True

    def give(self, bucket: int, limit: int) -> None:
        """A socket in `bucket` closed: its place, and the spare ones past a share, back."""
        held = self._held.pop(bucket) - 1
        if held:
            self._held[bucket] = held
        kept = held + _share(limit) - 1 if held else 0
        self._reserved[bucket] = min(self._reserved[bucket], kept)

    def _reserve(self, bucket: int, limit: int) -> bool:
        """More places in `bucket` for this worker, if the limit leaves any."""
        with self._exclusive():
            free = limit - self._reserved[bucket] - self._others_reserved(bucket)
            if free <= 0:
                return False
            share = _share(limit)
            self._reserved[bucket] += share if free >= share * (len(self._others) + 1) else 1
            return True

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """No other worker reserves meanwhile (held for microseconds)."""
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _others_reserved(self, bucket: int) -> int:
        """The places in `bucket` that the other live workers reserve."""
        names = {n for n in os.listdir(self.directory) if n.startswith(_PREFIX) and n.endswith(_SUFFIX)}
        names.discard(self.name)
        for gone in self._others.keys() - names:
            self._forget(gone)
        total = 0
        for name in names:
            if name not in self._others and not self._open(name):
                continue
            fd, _, reserved = self._others[name]
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # its worker holds it: alive
                total += reserved[bucket]
                continue
            self._forget(name)
            with contextlib.suppress(FileNotFoundError):  # another worker was first
                os.unlink(self.directory / name)
        return total

    def _open(self, name: str) -> bool:
        try:
            fd = os.open(self.directory / name, os.O_RDONLY)
        except FileNotFoundError:
            return False
        mapped = mmap.mmap(fd, _SIZE, prot=mmap.PROT_READ)
        self._others[name] = (fd, mapped, _counters(mapped))
        return True

    def _forget(self, name: str) -> None:
        fd, mapped, reserved = self._others.pop(name)
        reserved.release()
        mapped.close()
        os.close(fd)


def _counters(mapped: mmap.mmap) -> memoryview[int]:
    """A file's counters, each read and written whole (one aligned 4-byte
    access: another worker never sees half of a store)."""
    return memoryview(mapped).cast("I")


def _share(limit: int) -> int:
    """The places a worker far from `limit` reserves at a time."""
    return max(1, limit // SPARE_SHARE)


def _shared_key(directory: Path) -> bytes:
    """The workers' hash key: the first worker's, written whole before it has
    its name (a link fails when the name is taken)."""
    path = directory / "sockets.key"
    fd, temp = tempfile.mkstemp(dir=directory)
    try:
        os.write(fd, os.urandom(16))
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.unlink(temp)
    return path.read_bytes()
