"""Revocation reaches the open sockets and streams (docs/design/people.md
section 8): deleting a session or a personal access token journals
`access_revoked`; every process's hub hands its detail here, and whatever
this process holds open with that credential ends at once (a WebSocket
closes 4401, an HTTP stream sends its error and ends). Each is registered
when it starts and released when it ends. Expiry likewise: once a second,
one statement asks which held credentials are still live (and marks their
sessions as in use); what expired ends with "session expired". It asks only
about those that may have ended since it last asked: the statement says
how long each stays live at most (a session until it must be seen again, a
token until its expiry, or forever), so a thousand open sockets of tokens
that never expire cost one statement, not one a second."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from graphql_todos.core.people import Accounts, Principal

# How often held credentials are checked for expiry.
SWEEP_SECONDS = 1.0

logger = logging.getLogger(__name__)

# Ends one socket or stream, with the reason its close or error carries.
End = Callable[[str], None]


def _nothing() -> None:
    return None


def _at_expiry(expires_at: float, end: End) -> Callable[[], None]:
    """A JWT's socket or stream (nothing to revoke): it ends at the token's exp."""
    timer = asyncio.get_running_loop().call_later(max(0.0, expires_at - time.time()), end, "token expired")
    return timer.cancel


class Revocations:
    """This process's open sockets and streams by the session or token they came with."""

    def __init__(self) -> None:
        self._held: dict[uuid.UUID, set[End]] = {}
        # "session" or "token", for what ends them.
        self._kinds: dict[uuid.UUID, str] = {}
        # When (time.monotonic) a held credential may have ended, as the
        # sweep last learnt it; not here: at the next sweep.
        self._due: dict[uuid.UUID, float] = {}
        # Held credentials the sweep has not asked about yet, and the earliest
        # of _due: a sweep with neither due looks at no credential (a thousand
        # sockets of tokens that never expire cost nothing a second).
        self._unasked: set[uuid.UUID] = set()
        self._next_due = math.inf
        # Sockets and streams ended by a revocation, since start.
        self.ended = 0

    def hold(self, principal: Principal | None, end: End) -> Callable[[], None]:
        """Register a socket or stream of `principal` (nothing for open mode's
        or the service token's); returns its release."""
        credential = None if principal is None else principal.session_id or principal.token_id
        if principal is not None and principal.expires_at is not None:
            return _at_expiry(principal.expires_at, end)
        if credential is None:
            return _nothing
        if credential not in self._held:
            self._unasked.add(credential)
        ends = self._held.setdefault(credential, set())
        ends.add(end)
        self._kinds[credential] = "session" if principal is not None and principal.session_id else "token"

        def release() -> None:
            held = self._held.get(credential)
            if held is not None:
                held.discard(end)
                if not held:
                    del self._held[credential]
                    self._forget(credential)

        return release

    def revoke(self, detail: dict[str, Any] | None) -> None:
        """An access_revoked entry's detail ({"session": id} or {"token": id}):
        end what holds that credential."""
        for kind in ("session", "token"):
            value = (detail or {}).get(kind)
            if value is not None:
                self._end(uuid.UUID(str(value)), f"{kind} revoked")

    def _forget(self, credential: uuid.UUID) -> None:
        self._kinds.pop(credential, None)
        self._due.pop(credential, None)
        self._unasked.discard(credential)

    def _end(self, credential: uuid.UUID, reason: str) -> None:
        self._forget(credential)
        for end in self._held.pop(credential, set()):
            self.ended += 1
            try:
                end(reason)
            except Exception:
                logger.exception("ending a stream (%s) failed", reason)

    async def sweep(self, accounts: Accounts) -> None:
        """End what holds a credential that expired, once a second, until cancelled."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            asked = time.monotonic()
            due = list(self._unasked)
            if asked >= self._next_due:
                due += [credential for credential, at in self._due.items() if at <= asked]
            if not due:
                continue
            try:
                live = await accounts.live(due)
            except Exception as exc:  # noqa: BLE001 - the database may be away: try again
                logger.warning("checking open sessions for expiry failed: %r", exc)
                continue
            for credential in due:
                if credential not in self._held:
                    continue  # released meanwhile
                if credential not in live:
                    self._end(credential, f"{self._kinds.get(credential, 'session')} expired")
                    continue
                left = live[credential]
                self._due[credential] = math.inf if left is None else asked + left
            self._unasked.difference_update(due)
            self._next_due = min(self._due.values(), default=math.inf)
