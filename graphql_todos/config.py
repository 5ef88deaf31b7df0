"""Every setting in one place: its default, its environment variable (also a
`graphql-todos serve --flag`), its check and its meaning."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Where `make web` (and so the wheel) puts the built client.
PACKAGED_WEB = Path(__file__).resolve().parent / "web"
# What / and GraphiQL's GET /graphql answer without it.
NO_WEB_CLIENT = """<!doctype html><title>graphql-todos: no web client</title>
<p>This install has no built web client (the TodoMVC page and GraphiQL). The API works:
POST /graphql, /api/todos/.</p>
<p>To get the client: in a checkout, run <code>make web</code> (or <code>make run</code>);
or install a wheel built by <code>make wheel</code>; or point <code>WEB_DIST</code> at a
built <code>web/dist</code>.</p>"""


class SettingError(ValueError):
    """A setting's value is unusable; `source` names it (PORT, or --port)."""

    def __init__(self, source: str, value: str, reason: str) -> None:
        super().__init__(f"{source}={value!r}: {reason}")
        self.source = source
        self.value = value
        self.reason = reason


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be from {low} to {high}" if high else f"must be at least {low}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _path(text: str) -> Path:
    return Path(_text(text))


def _optional_url(text: str) -> str | None:
    # Empty as unset: `DATABASE_URL= graphql-todos serve` means embedded.
    return text or None


def _web_dist(text: str) -> Path | None:
    if not text:
        return None  # empty: serve no web client
    path = Path(text)
    if not (path / "index.html").is_file():
        raise ValueError("must be a directory holding a built web client (index.html)")
    return path


def _trusted_documents(text: str) -> dict[str, str] | None:
    if not text:
        return None
    try:
        manifest = json.loads(Path(text).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"must be a readable JSON file ({exc})") from None
    if not isinstance(manifest, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
    ):
        raise ValueError('must hold a JSON object {"<sha256>": "<document>"}')
    return manifest


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _log_level(text: str) -> str:
    if text.lower() not in _LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))
    return text.lower()


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError("must be text or json")
    return text


def _setting(default: Any, env: str, parse: Callable[[str], Any], doc: str) -> Any:
    # A field like any other; its metadata drives from_env, the flags and the docs.
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    database_url: str | None = _setting(
        None, "DATABASE_URL", _optional_url,
        "PostgreSQL to use; unset: start the embedded PostgreSQL in DATA_DIR",
    )
    data_dir: Path = _setting(  # noqa: RUF009 - a Path is immutable
        Path(".data"), "DATA_DIR", _path, "where the embedded PostgreSQL keeps its data"
    )
    host: str = _setting("127.0.0.1", "HOST", _text, "address to listen on")
    port: int = _setting(8000, "PORT", _int(1, 65535), "port to listen on")
    pool_size: int = _setting(
        10, "POOL_SIZE", _int(1),
        "most pooled PostgreSQL connections (the listener takes one more)",
    )
    queue_size: int = _setting(
        1000, "QUEUE_SIZE", _int(1),
        "changes queued per subscriber; one that falls further behind reads the journal instead",
    )
    heartbeat_seconds: float = _setting(
        5.0, "HEARTBEAT_SECONDS", _seconds,
        "quiet time after which the listener checks its connection and the journal anyway",
    )
    reconnect_max_seconds: float = _setting(
        5.0, "RECONNECT_MAX_SECONDS", _seconds,
        "longest wait between attempts to reach a lost database",
    )
    journal_batch: int = _setting(
        500, "JOURNAL_BATCH", _int(1),
        "journal entries read per query (live and when replaying), and pruned per statement",
    )
    journal_keep_seconds: float = _setting(
        604800.0, "JOURNAL_KEEP_SECONDS", _seconds,
        "journal entries older than this are pruned (cursors before them expire)",
    )
    journal_keep_rows: int = _setting(
        1_000_000, "JOURNAL_KEEP_ROWS", _int(1),
        "at most this many newest journal positions are kept",
    )
    journal_prune_seconds: float = _setting(
        60.0, "JOURNAL_PRUNE_SECONDS", _seconds, "how often each process prunes the journal"
    )
    database_timeout_seconds: float = _setting(
        5.0, "DATABASE_TIMEOUT_SECONDS", _seconds,
        "longest wait for a database connection; then DATABASE_UNAVAILABLE (HTTP 503)",
    )
    keepalive_seconds: float = _setting(
        15.0, "KEEPALIVE_SECONDS", _seconds,
        "keepalive interval on idle WebSockets and event streams (GraphQL, RESTSocket, SSE): proxies cut silent ones",
    )
    send_timeout_seconds: float = _setting(
        30.0, "SEND_TIMEOUT_SECONDS", _seconds,
        "a WebSocket client (GraphQL or RESTSocket) that takes no message for this long is closed with 4408; an event stream, ended",
    )
    connection_init_seconds: float = _setting(
        10.0, "CONNECTION_INIT_SECONDS", _seconds,
        "how long a graphql-transport-ws client may take to send connection_init",
    )
    execution_cache_size: int = _setting(
        4096, "EXECUTION_CACHE_SIZE", _int(1),
        "subscription results kept for sharing between subscribers of the same operation",
    )
    persisted_queries_size: int = _setting(
        1000, "PERSISTED_QUERIES_SIZE", _int(1),
        "automatic persisted queries kept in memory (least recently used out first)",
    )
    trusted_documents: dict[str, str] | None = _setting(  # noqa: RUF009 - never mutated
        None, "TRUSTED_DOCUMENTS", _trusted_documents,
        "a manifest {sha256: document} (web/src/gql/persisted-documents.json);"
        " set: /graphql runs only those documents",
    )
    response_cache_size: int = _setting(
        256, "RESPONSE_CACHE_SIZE", _int(0),
        "query responses kept, each served only while the journal has not moved since it was read; 0: none",
    )
    shutdown_seconds: float = _setting(
        5.0, "SHUTDOWN_SECONDS", _seconds,
        "on SIGTERM, how long open requests and subscriptions get before they are cut",
    )
    log_level: str = _setting("info", "LOG_LEVEL", _log_level, "uvicorn's log level")
    log_format: str = _setting(
        "text", "LOG_FORMAT", _log_format, "text, or json: one JSON object per line"
    )
    workers: int = _setting(
        1, "WORKERS", _int(1),
        "processes serving the one port, each with its own listener (see Several processes)",
    )
    web_dist: Path | None = _setting(  # noqa: RUF009 - a Path is immutable
        None, "WEB_DIST", _web_dist,
        "the built web client to serve; unset: the one in the package, if built; empty: none",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: str | None) -> Settings:
        """Settings from env, then overrides by field name (from the command line);
        a SettingError names the variable or flag whose value is unusable."""
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            source, text = spec.metadata["env"], env.get(spec.metadata["env"])
            if overrides.get(spec.name) is not None:
                source, text = "--" + spec.name.replace("_", "-"), overrides[spec.name]
            if text is None:
                continue
            try:
                values[spec.name] = spec.metadata["parse"](text)
            except ValueError as exc:
                raise SettingError(source, text, str(exc)) from None
        if "web_dist" not in values and (PACKAGED_WEB / "index.html").is_file():
            values["web_dist"] = PACKAGED_WEB
        return cls(**values)


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes Settings.from_env() give `settings` back
    (how `serve --workers` hands its settings to each worker)."""
    values = {s.metadata["env"]: getattr(settings, s.name) for s in dataclasses.fields(Settings)}
    # Unset is empty: no DATABASE_URL (embedded), no WEB_DIST (no web client).
    return {env: "" if value is None else str(value) for env, value in values.items()}


def documented() -> list[tuple[str, str, str, str]]:
    """(variable, flag, default, meaning) of each setting, for --help and the README."""
    return [
        (
            s.metadata["env"],
            "--" + s.name.replace("_", "-"),
            "unset" if s.default is None else str(s.default),
            s.metadata["doc"],
        )
        for s in dataclasses.fields(Settings)
    ]
