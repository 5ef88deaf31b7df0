"""Numbered mutations (docs/design/offline.md, section 1): a mutation may
carry a client id and a sequence number; the service applies it once, records
its verdict in the same transaction as the change, and answers a retry from
that record. Every mutation's receipt carries the journal cursor at which its
effect (or its no-op) is visible.

Here: the key and its checks, the fingerprint, and the receipt a transport
hands the service and reads back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from graphql_todos.core.errors import BadUserInput

# Within PostgreSQL's bigint (the column's type), and 18 digits without a
# leading zero: a pattern the REST header's OpenAPI schema can state exactly.
MAX_SEQ = 10**18 - 1


class Verdict(Enum):
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Key:
    """A numbered mutation: who acted, which client, which of its mutations,
    and the fingerprint of what it asked (a retry must ask the same)."""

    principal: uuid.UUID
    client: uuid.UUID
    seq: int
    fingerprint: bytes

    @property
    def text(self) -> str:
        """The key as the journal entries it makes carry it."""
        return f"{self.principal}:{self.client}:{self.seq}"


@dataclass(slots=True)
class Receipt:
    """One mutation's: the transport makes it (with the key, if numbered), the
    service fills in the verdict and the cursor."""

    key: Key | None = None
    verdict: Verdict | None = None
    cursor: int | None = None

    def settle(self, verdict: Verdict, cursor: int) -> None:
        self.verdict = verdict
        self.cursor = cursor


def fingerprint(request: dict[str, Any]) -> bytes:
    """sha256 of the request as canonical JSON (keys sorted), less its key."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).digest()


def parse_client(value: object, field: str = "client") -> uuid.UUID:
    """A client id: a UUID in its usual spelling."""
    if isinstance(value, str):
        try:
            client = uuid.UUID(value)
        except ValueError:
            client = None
        if client is not None and str(client) == value.lower():
            return client
    raise BadUserInput(field, f"must be a UUID, not {value!r}")


def parse_seq(value: object, field: str = "seq") -> int:
    """A sequence number: 1 to MAX_SEQ."""
    if type(value) is int and 1 <= value <= MAX_SEQ:
        return value
    raise BadUserInput(field, f"must be an integer from 1 to {MAX_SEQ}, not {value!r}")


def from_extension(value: object, principal: uuid.UUID, request: dict[str, Any]) -> Key:
    """GraphQL's `extensions.mutation`: {"client": "<uuid>", "seq": <int>}."""
    if not isinstance(value, dict) or value.keys() != {"client", "seq"}:
        raise BadUserInput("extensions.mutation", 'must be {"client": "<uuid>", "seq": <integer>}')
    client = parse_client(value["client"], "extensions.mutation.client")
    seq = parse_seq(value["seq"], "extensions.mutation.seq")
    return Key(principal, client, seq, fingerprint(request))


def from_header(value: str, principal: uuid.UUID, request: dict[str, Any]) -> Key:
    """REST's `Idempotency-Key: "<client>:<seq>"` (an sf-string, quotes included)."""
    inner = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else None
    client, _, seq = (inner or "").partition(":")
    if inner is None or not seq.isascii() or not seq.isdigit() or len(seq) > 18 or seq.startswith("0"):
        raise BadUserInput("Idempotency-Key", f'must be "<client uuid>:<seq>" (quotes included), not {value!r}')
    return Key(principal, parse_client(client, "Idempotency-Key"), parse_seq(int(seq), "Idempotency-Key"),
               fingerprint(request))
