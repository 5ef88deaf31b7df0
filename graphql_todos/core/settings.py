"""Every setting in one place: its default, its environment variable (also a
`graphql-todos serve --flag`), its check and its meaning."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql_todos.core import setting_values as values

# Where `make web` (and so the wheel) puts the built client.
PACKAGED_WEB = Path(__file__).resolve().parent.parent / "web"
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


def _setting(
    default: Any, env: str, parse: Callable[[str], Any], doc: str, *, secret: bool = False
) -> Any:
    # A field like any other; its metadata drives from_env, the flags and the docs.
    # A secret stays out of repr(), and so out of logs and tracebacks.
    return field(default=default, repr=not secret, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    database_url: str | None = _setting(
        None, "DATABASE_URL", values.optional_url,
        "PostgreSQL to use; unset: start the embedded PostgreSQL in DATA_DIR",
    )
    data_dir: Path = _setting(  # noqa: RUF009 - a Path is immutable
        Path(".data"), "DATA_DIR", values.path, "where the embedded PostgreSQL keeps its data"
    )
    host: str = _setting("127.0.0.1", "HOST", values.nonempty_text, "address to listen on")
    port: int = _setting(8000, "PORT", values.int_in(1, 65535), "port to listen on")
    pool_size: int = _setting(
        10, "POOL_SIZE", values.int_in(1),
        "most pooled PostgreSQL connections (the listener takes one more)",
    )
    queue_size: int = _setting(
        1000, "QUEUE_SIZE", values.int_in(1),
        "changes queued per subscriber; one that falls further behind reads the journal instead",
    )
    heartbeat_seconds: float = _setting(
        5.0, "HEARTBEAT_SECONDS", values.seconds,
        "quiet time after which the listener checks its connection and the journal anyway",
    )
    reconnect_max_seconds: float = _setting(
        5.0, "RECONNECT_MAX_SECONDS", values.seconds,
        "longest wait between attempts to reach a lost database",
    )
    journal_batch: int = _setting(
        500, "JOURNAL_BATCH", values.int_in(1),
        "journal entries read per query (live and when replaying), and pruned per statement",
    )
    journal: str = _setting(
        "trigger", "JOURNAL", values.journal,
        "who writes the journal: trigger, each write's transaction at its commit; decoded, a sequencer"
        " reading the WAL after commit (faster writes; needs wal_level = logical and a role with"
        " REPLICATION: see The journal by logical decoding)",
    )
    journal_keep_seconds: float = _setting(
        604800.0, "JOURNAL_KEEP_SECONDS", values.seconds,
        "journal entries older than this are pruned (cursors before them expire)",
    )
    journal_keep_rows: int = _setting(
        1_000_000, "JOURNAL_KEEP_ROWS", values.int_in(1),
        "at most this many newest journal positions are kept",
    )
    mutations_keep_seconds: float = _setting(
        604800.0, "MUTATIONS_KEEP_SECONDS", values.seconds,
        "numbered mutations' verdicts older than this are pruned (a retry after that applies again)",
    )
    journal_prune_seconds: float = _setting(
        60.0, "JOURNAL_PRUNE_SECONDS", values.seconds, "how often each process prunes the journal"
    )
    database_timeout_seconds: float = _setting(
        5.0, "DATABASE_TIMEOUT_SECONDS", values.seconds,
        "longest wait for a database connection; then DATABASE_UNAVAILABLE (HTTP 503)",
    )
    keepalive_seconds: float = _setting(
        15.0, "KEEPALIVE_SECONDS", values.seconds,
        "keepalive interval on idle WebSockets and event streams (GraphQL, RESTSocket, SSE): proxies cut silent ones",
    )
    send_timeout_seconds: float = _setting(
        30.0, "SEND_TIMEOUT_SECONDS", values.seconds,
        "a WebSocket client (GraphQL or RESTSocket) that takes no message for this long is closed with 4408; an event stream, ended",
    )
    connection_init_seconds: float = _setting(
        10.0, "CONNECTION_INIT_SECONDS", values.seconds,
        "how long a GraphQL WebSocket client (either protocol) may take to send connection_init; then closed with 4408",
    )
    execution_cache_size: int = _setting(
        4096, "EXECUTION_CACHE_SIZE", values.int_in(1),
        "subscription results kept for sharing between subscribers of the same operation",
    )
    persisted_queries_size: int = _setting(
        1000, "PERSISTED_QUERIES_SIZE", values.int_in(1),
        "automatic persisted queries kept in memory (least recently used out first)",
    )
    trusted_documents: dict[str, str] | None = _setting(  # noqa: RUF009 - never mutated
        None, "TRUSTED_DOCUMENTS", values.trusted_documents,
        "a manifest {sha256: document} (web/src/gql/persisted-documents.json);"
        " set: /graphql runs only those documents",
    )
    response_cache_size: int = _setting(
        256, "RESPONSE_CACHE_SIZE", values.int_in(0),
        "query responses kept, each served only while the journal has not moved since it was read; 0: none",
    )
    shutdown_seconds: float = _setting(
        5.0, "SHUTDOWN_SECONDS", values.seconds,
        "on SIGTERM, how long open requests get to finish before they are cut (subscriptions end at once)",
    )
    token: str | None = _setting(
        None, "TODOS_TOKEN", values.token,
        "bearer token every route but /healthz and the web client requires (AUTH=accounts: the service"
        " token, which acts for no person and sees everything, beside people's credentials); unset: none",
        secret=True,
    )
    token_file: str | None = _setting(
        None, "TODOS_TOKEN_FILE", values.secret_file(values.token),
        "a file holding TODOS_TOKEN (read at start-up; TODOS_TOKEN wins)",
        secret=True,
    )
    auth: str = _setting(
        "open", "AUTH", values.auth,
        "open: every request acts as the one person, local (as before accounts); accounts: a request needs"
        " a session cookie, a personal access token or TODOS_TOKEN (see People and sign-in)",
    )
    session_idle_seconds: float = _setting(
        1209600.0, "SESSION_IDLE_SECONDS", values.seconds, "a session unused for this long ends (AUTH=accounts)"
    )
    session_max_seconds: float = _setting(
        2592000.0, "SESSION_MAX_SECONDS", values.seconds, "a session ends this long after sign-in, used or not"
    )
    cookie_secure: bool = _setting(
        False, "COOKIE_SECURE", values.boolean,
        "true: the session cookie is always Secure (__Host-todos_session); false: only when the request came over HTTPS",
    )
    sign_in_failures_per_account: int = _setting(
        5, "SIGN_IN_FAILURES_PER_ACCOUNT", values.int_in(1),
        "failed sign-ins to one account per SIGN_IN_WINDOW_SECONDS; more get 429 TOO_MANY_REQUESTS",
    )
    sign_in_failures_per_address: int = _setting(
        50, "SIGN_IN_FAILURES_PER_ADDRESS", values.int_in(1),
        "failed sign-ins and sign-ups from one client address per SIGN_IN_WINDOW_SECONDS; more get 429",
    )
    sign_in_window_seconds: float = _setting(
        900.0, "SIGN_IN_WINDOW_SECONDS", values.seconds, "the window the sign-in failure limits count in"
    )
    jwt_secret: str | None = _setting(
        None, "JWT_SECRET", values.jwt_secret,
        "AUTH=accounts: take JSON Web Tokens (Authorization: Bearer) signed with this HS256 secret"
        " (32 bytes at least); unset: none",
        secret=True,
    )
    jwt_secret_file: str | None = _setting(
        None, "JWT_SECRET_FILE", values.secret_file(values.jwt_secret), "a file holding JWT_SECRET (read at start-up; JWT_SECRET wins)",
        secret=True,
    )
    jwt_jwks_file: str | None = _setting(
        None, "JWT_JWKS_FILE", values.jwks_file,
        "AUTH=accounts: take JSON Web Tokens signed (RS256 or ES256) by a key of this JSON Web Key Set file",
    )
    jwt_user_claim: str = _setting(
        "sub", "JWT_USER_CLAIM", values.nonempty_text,
        "the JWT claim that names the person (their username; an unknown one is made, with no password)",
    )
    sign_up: str | None = _setting(
        None, "SIGN_UP", values.sign_up,
        "AUTH=accounts: open, anyone may sign up with a password; closed, sign-up answers 403 FORBIDDEN"
        " (people the operator made, and JWTs, still sign in); unset: closed when a JWT key"
        " (JWT_SECRET, JWT_SECRET_FILE, JWT_JWKS_FILE) is set, else open",
    )
    jwt_audience: str | None = _setting(
        None, "JWT_AUDIENCE", values.optional_text, "a JWT must name this audience (aud); unset: not checked"
    )
    jwt_issuer: str | None = _setting(
        None, "JWT_ISSUER", values.optional_text, "a JWT must come from this issuer (iss); unset: not checked"
    )
    allowed_origins: tuple[str, ...] = _setting(
        (), "ALLOWED_ORIGINS", values.origins,
        "comma-separated origins besides the server's own that may open WebSockets and read by CORS",
    )
    allowed_hosts: tuple[str, ...] = _setting(
        (), "ALLOWED_HOSTS", values.hosts,
        "comma-separated host names this server answers to besides localhost, 127.0.0.1 and [::1]"
        " (and any IP address when HOST is not loopback): example.org, .example.org for it and its"
        " subdomains, * for any; other Host headers get 421",
    )
    max_body_bytes: int = _setting(
        65536, "MAX_BODY_BYTES", values.int_in(1), "largest HTTP request body; larger ones get 413 unread"
    )
    ws_max_bytes: int = _setting(
        65536, "WS_MAX_BYTES", values.int_in(1), "largest WebSocket message; larger ones close the socket (1009)"
    )
    request_seconds: float = _setting(
        10.0, "REQUEST_SECONDS", values.seconds,
        "how long a client may take to send a request's headers, and then its body",
    )
    max_tokens: int = _setting(
        1000, "MAX_TOKENS", values.int_in(1), "most lexical tokens in a GraphQL document"
    )
    max_depth: int = _setting(
        10, "MAX_DEPTH", values.int_in(1),
        "most levels of GraphQL selections below a root field (introspection not counted)",
    )
    max_aliases: int = _setting(30, "MAX_ALIASES", values.int_in(0), "most aliases in a GraphQL document")
    max_fields: int = _setting(
        2000, "MAX_FIELDS", values.int_in(1), "most fields a GraphQL document selects, its fragments expanded"
    )
    max_list_rows: int = _setting(
        10_000, "MAX_LIST_ROWS", values.int_in(1),
        "most rows in one list answer; a larger page is refused, a whole list over it is LIST_TOO_LARGE",
    )
    introspection: bool = _setting(
        True, "INTROSPECTION", values.boolean, "whether GraphQL introspection (__schema, __type) is allowed"
    )
    max_subscriptions: int = _setting(
        20, "MAX_SUBSCRIPTIONS", values.int_in(1), "most subscriptions open on one GraphQL WebSocket"
    )
    requests_in_flight: int = _setting(
        100, "REQUESTS_IN_FLIGHT", values.int_in(1),
        "most queries and mutations in flight on one GraphQL WebSocket; one more gets an error TOO_MANY_REQUESTS,"
        " the socket kept",
    )
    max_sockets_per_client: int = _setting(
        256, "MAX_SOCKETS_PER_CLIENT", values.int_in(1),
        "most WebSockets open from one client address, all workers together"
        " (behind a proxy not in FORWARDED_ALLOW_IPS: all its clients)",
    )
    forwarded_allow_ips: tuple[str, ...] = _setting(
        (), "FORWARDED_ALLOW_IPS", values.proxies,
        "comma-separated addresses or networks (10.0.0.0/8) of reverse proxies whose X-Forwarded-For names the"
        " client (for MAX_SOCKETS_PER_CLIENT and the logs) and X-Forwarded-Proto the scheme, * for any;"
        " unset: none, the client is the connection's peer",
    )
    statement_timeout_seconds: float = _setting(
        5.0, "STATEMENT_TIMEOUT_SECONDS", values.seconds, "longest a PostgreSQL statement of a request may run"
    )
    log_level: str = _setting("info", "LOG_LEVEL", values.log_level, "uvicorn's log level")
    log_format: str = _setting(
        "text", "LOG_FORMAT", values.log_format, "text, or json: one JSON object per line"
    )
    workers: int = _setting(
        1, "WORKERS", values.int_in(1),
        "processes serving the one port, each with its own listener (see Several processes)",
    )
    web_dist: Path | None = _setting(  # noqa: RUF009 - a Path is immutable
        None, "WEB_DIST", values.web_dist,
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
                raise SettingError(source, text if spec.repr else "(secret)", str(exc)) from None
        if "web_dist" not in values and (PACKAGED_WEB / "index.html").is_file():
            values["web_dist"] = PACKAGED_WEB
        return cls(**values)

    @property
    def bearer_token(self) -> str | None:
        """TODOS_TOKEN, else the one in TODOS_TOKEN_FILE."""
        return self.token or (values.read_secret(self.token_file, values.token) if self.token_file else None)

    @property
    def sign_up_open(self) -> bool:
        """SIGN_UP; unset, closed beside JWTs: a sign-up would take a name
        the identity provider may give someone else (docs/security.md)."""
        if self.sign_up is not None:
            return self.sign_up == "open"
        return not (self.jwt_secret or self.jwt_secret_file or self.jwt_jwks_file)

    @property
    def jwt_key(self) -> str | None:
        """JWT_SECRET, else the one in JWT_SECRET_FILE."""
        return self.jwt_secret or (values.read_secret(self.jwt_secret_file, values.jwt_secret) if self.jwt_secret_file else None)


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes Settings.from_env() give `settings` back
    (how `serve --workers` hands its settings to each worker)."""
    values = {s.metadata["env"]: getattr(settings, s.name) for s in dataclasses.fields(Settings)}
    return {env: _env_text(value) for env, value in values.items()}


def _env_text(value: Any) -> str:
    """A value as its variable spells it, the inverse of the parsers above."""
    if value is None:
        return ""  # unset: no DATABASE_URL (embedded), no WEB_DIST (no web client)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def documented() -> list[tuple[str, str, str, str]]:
    """(variable, flag, default, meaning) of each setting, for --help and the README."""
    return [
        (
            s.metadata["env"],
            "--" + s.name.replace("_", "-"),
            "unset" if s.default in (None, ()) else str(s.default).lower(),
            s.metadata["doc"],
        )
        for s in dataclasses.fields(Settings)
    ]
