"""WebSockets per client address, counted across the workers of one
`serve --workers N` (security.SocketGate's MAX_SOCKETS_PER_CLIENT), in files
the workers share in the directory the supervisor makes for them.

Each worker counts its own sockets in a file of its own: one counter per
bucket of addresses (a hash of the address keyed by a secret the workers
share), memory-mapped, written by that worker only. It holds an exclusive
lock on its file for as long as it lives, and the kernel drops that lock
when the process ends, however it ends: a file no process holds is a dead
worker's, counts no more and is removed. A handshake lists the files, tests
each lock and reads one counter of each, under a lock the workers share, so
that two workers admitting the same address at once cannot both take the
last place.

Addresses that share a bucket share a count: stricter, never looser. With
65,536 buckets that takes many busy addresses at once, and the key keeps
anyone from aiming at another's bucket.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

BUCKETS = 1 << 16
_COUNTER = struct.Struct("=I")
_SIZE = BUCKETS * _COUNTER.size
_PREFIX, _SUFFIX = "sockets-", ".bin"


class SharedCounts:
    """This worker's counts, and the sum of the other live workers'."""

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
        self._own = mmap.mmap(fd, _SIZE)
        self._others: dict[str, tuple[int, mmap.mmap]] = {}

    def bucket(self, address: str) -> int:
        digest = hashlib.blake2b(address.encode(), digest_size=4, key=self._key).digest()
        return int.from_bytes(digest) % BUCKETS

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No other worker counts or admits meanwhile (held for microseconds)."""
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def others(self, bucket: int) -> int:
        """The sockets in `bucket` that the other live workers hold."""
        names = {n for n in os.listdir(self.directory) if n.startswith(_PREFIX) and n.endswith(_SUFFIX)}
        names.discard(self.name)
        for gone in self._others.keys() - names:
            self._forget(gone)
        total = 0
        for name in names:
            if name not in self._others and not self._open(name):
                continue
            fd, counts = self._others[name]
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # its worker holds it: alive
                total += _COUNTER.unpack_from(counts, bucket * _COUNTER.size)[0]
                continue
            self._forget(name)
            with contextlib.suppress(FileNotFoundError):  # another worker was first
                os.unlink(self.directory / name)
        return total

    def add(self, bucket: int, delta: int) -> None:
        offset = bucket * _COUNTER.size
        _COUNTER.pack_into(self._own, offset, _COUNTER.unpack_from(self._own, offset)[0] + delta)

    def _open(self, name: str) -> bool:
        try:
            fd = os.open(self.directory / name, os.O_RDONLY)
        except FileNotFoundError:
            return False
        self._others[name] = (fd, mmap.mmap(fd, _SIZE, prot=mmap.PROT_READ))
        return True

    def _forget(self, name: str) -> None:
        fd, counts = self._others.pop(name)
        counts.close()
        os.close(fd)


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
