"""Password hashing: Argon2id with OWASP's minimum parameters (m=19,456 KiB,
t=2, p=1: about 20 ms of CPU a hash here, where the library's default took
ten times that), in a thread (argon2 releases the GIL), at most two at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from graphql_todos.core.errors import BadUserInput, DomainError, ErrorCode

MIN_LENGTH = 8
MAX_LENGTH = 256
MEMORY_KIB = 19_456
TIME_COST = 2
PARALLELISM = 1
HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM, type=Type.ID)
# Hashes running at once per process: each takes 19 MiB and a core's 20 ms.
AT_ONCE = 2
# How long a sign-in waits for a turn before it is told to come back.
WAIT_SECONDS = 5.0


class TooManyAttempts(DomainError):
    """Refused for now; `retry_after` seconds later it may pass (HTTP Retry-After)."""

    code = ErrorCode.TOO_MANY_REQUESTS

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check(password: object, field: str = "password") -> str:
    """A password the rules take: a string of 8 to 256 characters."""
    if not isinstance(password, str):
        raise BadUserInput(field, "must be a string")
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise BadUserInput(field, f"must be from {MIN_LENGTH} to {MAX_LENGTH} characters")
    if "\x00" in password:
        raise BadUserInput(field, "must not contain NUL characters")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise BadUserInput(field, "must be valid Unicode text") from None
    return password


@functools.cache
def _dummy_hash() -> str:
    # Unknown usernames are verified against this: a sign-in takes as long
    # whoever it names, so its time tells no one which names exist.
    return HASHER.hash("graphql-todos: nobody has this password")


def _verify(hashed: str | None, password: str) -> bool:
    try:
        return HASHER.verify(hashed or _dummy_hash(), password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


class Passwords:
    """Hashes and verifies in a worker thread, AT_ONCE at a time (per process)."""

    def __init__(self, at_once: int = AT_ONCE, wait_seconds: float = WAIT_SECONDS) -> None:
        self._turns = asyncio.Semaphore(at_once)
        self._wait_seconds = wait_seconds

    async def hash(self, password: str) -> str:
        async with self._turn():
            return await anyio.to_thread.run_sync(HASHER.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether password matches hashed; None (no such person, or no
        password set) never matches, and takes as long."""
        async with self._turn():
            return await anyio.to_thread.run_sync(_verify, hashed, password)

    def needs_rehash(self, hashed: str) -> bool:
        """A hash made with other parameters than today's: hash again at sign-in."""
        return HASHER.check_needs_rehash(hashed)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._turns.acquire()
        except TimeoutError:
            raise TooManyAttempts("too many sign-ins at once: try again in a second", 1) from None
        try:
            yield
        finally:
            self._turns.release()
