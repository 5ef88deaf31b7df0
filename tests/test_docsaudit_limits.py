"""docs/security.md's limits match the code (the README sends readers there
for "each limit with its default"): every limit setting is in its "Limits and
defaults" table with its default, each fixed limit with its value, and every
refusal /metrics counts in its "Refusals in the metrics" table."""

from __future__ import annotations

import dataclasses
import re

from graphql_todos.core.metrics import LIMITS
from graphql_todos.core.service import MAX_TITLE_LENGTH
from graphql_todos.core.settings import Settings
from graphql_todos.edge.json_intake import MAX_NESTING
from graphql_todos.graphql.limits import OVERLAP_BUDGET
from graphql_todos.internals.graphql_core import PRINTED_LENGTH
from graphql_todos.internals.uvicorn_http import MAX_HEAD_BYTES, VERSIONS
from tests.helpers import ROOT

SECURITY = (ROOT / "docs" / "security.md").read_text()
DEFAULTS = {s.metadata["env"]: s.default for s in dataclasses.fields(Settings)}


def _table(heading: str) -> str:
    """The first table after `heading`, its rows as they are written."""
    after = SECURITY.split(f"\n{heading}\n", 1)[1]
    rows = re.search(r"^\|.*?(?=\n\n|\n#|\Z)", after, re.MULTILINE | re.DOTALL)
    assert rows is not None, heading
    return rows.group(0)


LIMITS_TABLE = _table("## Limits and defaults")
REFUSALS_TABLE = _table("### Refusals in the metrics")


def _spelled(value: object) -> str:
    """A default as the table writes it: 10 for 10.0 seconds, true for True."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _named(table: str) -> set[str]:
    return {name for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", table) if name in DEFAULTS}


# The limits no name gives away (neither MAX_ nor _BYTES, and no refusal
# /metrics counts): a row each in the table too. Every other setting is named
# in NOT_LIMITS, so a new one is put on one side or the other.
UNCOUNTED_LIMITS = {
    "SEND_TIMEOUT_SECONDS", "INTROSPECTION",
    "SIGN_IN_FAILURES_PER_ACCOUNT", "SIGN_IN_FAILURES_PER_ADDRESS", "SIGN_IN_WINDOW_SECONDS",
}
NOT_LIMITS = {
    "DATABASE_URL", "DATA_DIR", "HOST", "PORT", "POOL_SIZE", "QUEUE_SIZE", "HEARTBEAT_SECONDS",
    "RECONNECT_MAX_SECONDS", "JOURNAL_BATCH", "JOURNAL", "JOURNAL_KEEP_SECONDS", "JOURNAL_KEEP_ROWS",
    "MUTATIONS_KEEP_SECONDS", "JOURNAL_PRUNE_SECONDS", "KEEPALIVE_SECONDS", "EXECUTION_CACHE_SIZE",
    "PERSISTED_QUERIES_SIZE", "TRUSTED_DOCUMENTS", "RESPONSE_CACHE_SIZE", "SHUTDOWN_SECONDS", "TODOS_TOKEN",
    "TODOS_TOKEN_FILE", "AUTH", "SESSION_IDLE_SECONDS", "SESSION_MAX_SECONDS", "COOKIE_SECURE", "JWT_SECRET",
    "JWT_SECRET_FILE", "JWT_JWKS_FILE", "JWT_USER_CLAIM", "SIGN_UP", "JWT_AUDIENCE", "JWT_ISSUER",
    "ALLOWED_ORIGINS", "ALLOWED_HOSTS", "FORWARDED_ALLOW_IPS", "LOG_LEVEL", "LOG_FORMAT", "WORKERS", "WEB_DIST",
}


def _limits() -> set[str]:
    """The limit settings: a MAX_ or a _BYTES one, one whose refusals /metrics counts, or UNCOUNTED_LIMITS."""
    named = {name for name in DEFAULTS if name.startswith("MAX_") or name.endswith("_BYTES")}
    return named | _named(REFUSALS_TABLE) | UNCOUNTED_LIMITS


def test_each_setting_in_the_limits_table_has_its_default() -> None:
    found = re.findall(r"`([A-Z][A-Z0-9_]+)` \(([^;,:) ]+)", LIMITS_TABLE)
    written = {name: default for name, default in found if name in DEFAULTS}
    assert written, "no `SETTING` (default) in the limits table"
    assert {name: _spelled(DEFAULTS.get(name)) for name in written} == written
    # Each limit written so: named without its default, a wrong one went unseen.
    assert sorted(_limits() - set(written)) == []


def test_every_limit_setting_is_in_the_limits_table() -> None:
    assert sorted(_limits() - _named(LIMITS_TABLE)) == []


def test_every_setting_is_a_limit_or_not() -> None:
    assert sorted(set(DEFAULTS) - _limits() - NOT_LIMITS) == []
    assert sorted((_limits() | NOT_LIMITS) - set(DEFAULTS)) == []
    assert sorted(_limits() & NOT_LIMITS) == []


def test_every_refusal_counted_is_in_the_metrics_table() -> None:
    # The first column of each row below the header: `label`, or several.
    first_cells = [row.split("|")[1] for row in REFUSALS_TABLE.splitlines()[2:]]
    written = {label for cell in first_cells for label in re.findall(r"`([a-z_]+)`", cell)}
    assert sorted(set(LIMITS) - written) == []
    assert sorted(written - set(LIMITS)) == []


def test_the_fixed_limits_are_written_with_their_values() -> None:
    for claim in (
        f"{MAX_HEAD_BYTES // 1024} KiB (fixed: `internals.uvicorn_http.MAX_HEAD_BYTES`)",
        f"`VERSIONS` {' and '.join(VERSIONS)}",
        f"{MAX_NESTING:,} levels of nesting",
        f"{OVERLAP_BUDGET:,} units of graphql-core's overlap rule (about {OVERLAP_BUDGET // 2:,} pairs compared",
        f"more than {OVERLAP_BUDGET // 2:,} comparisons",
        f"cut at {PRINTED_LENGTH} characters",
        f"{MAX_TITLE_LENGTH} characters (`service.MAX_TITLE_LENGTH`)",
    ):
        assert claim in LIMITS_TABLE, claim
