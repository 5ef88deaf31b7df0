"""Settings come from the environment or `serve` flags, and a bad one stops
start-up with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphql_todos.core.settings import SettingError, Settings, documented, to_env
from tests.helpers import ROOT

README = ROOT / "README.md"


def test_every_variable_is_read() -> None:
    env = {
        "DATABASE_URL": "postgresql://db/app",
        "DATA_DIR": "/var/lib/todos",
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "POOL_SIZE": "3",
        "QUEUE_SIZE": "7",
        "HEARTBEAT_SECONDS": "0.5",
        "RECONNECT_MAX_SECONDS": "2",
        "JOURNAL": "decoded",
        "JOURNAL_BATCH": "50",
        "JOURNAL_KEEP_SECONDS": "3600",
        "JOURNAL_KEEP_ROWS": "1000",
        "MUTATIONS_KEEP_SECONDS": "86400",
        "JOURNAL_PRUNE_SECONDS": "30",
        "DATABASE_TIMEOUT_SECONDS": "2.5",
        "KEEPALIVE_SECONDS": "30",
        "SEND_TIMEOUT_SECONDS": "3",
        "CONNECTION_INIT_SECONDS": "4",
        "EXECUTION_CACHE_SIZE": "16",
        "RESPONSE_CACHE_SIZE": "0",
        "SHUTDOWN_SECONDS": "1.5",
        "TODOS_TOKEN": "a-token-of-16-chars",
        "TODOS_TOKEN_FILE": "",
        "AUTH": "accounts",
        "SESSION_IDLE_SECONDS": "60",
        "SESSION_MAX_SECONDS": "120",
        "COOKIE_SECURE": "true",
        "SIGN_IN_FAILURES_PER_ACCOUNT": "3",
        "SIGN_IN_FAILURES_PER_ADDRESS": "9",
        "SIGN_IN_WINDOW_SECONDS": "30",
        "JWT_SECRET": "a-jwt-secret-of-at-least-32-bytes",
        "JWT_SECRET_FILE": "",
        "JWT_JWKS_FILE": "",
        "JWT_USER_CLAIM": "preferred_username",
        "SIGN_UP": "open",
        "JWT_AUDIENCE": "todos",
        "JWT_ISSUER": "",
        "ALLOWED_ORIGINS": "https://A.example, http://b.example:8080/",
        "ALLOWED_HOSTS": "Todos.example., .lan, [::2]",
        "MAX_BODY_BYTES": "1024",
        "WS_MAX_BYTES": "2048",
        "REQUEST_SECONDS": "3",
        "MAX_TOKENS": "100",
        "MAX_DEPTH": "4",
        "MAX_ALIASES": "0",
        "MAX_FIELDS": "60",
        "MAX_LIST_ROWS": "50",
        "INTROSPECTION": "False",
        "MAX_SUBSCRIPTIONS": "2",
        "REQUESTS_IN_FLIGHT": "7",
        "MAX_SOCKETS_PER_CLIENT": "5",
        "FORWARDED_ALLOW_IPS": "127.0.0.1, 10.0.0.0/8,::1",
        "STATEMENT_TIMEOUT_SECONDS": "0.5",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "WORKERS": "2",
        "WEB_DIST": "",
        "PERSISTED_QUERIES_SIZE": "5",
        "TRUSTED_DOCUMENTS": "",
    }
    assert set(env) == {variable for variable, *_ in documented()}
    assert Settings.from_env(env) == Settings(
        database_url="postgresql://db/app",
        data_dir=Path("/var/lib/todos"),
        host="0.0.0.0",
        port=9000,
        pool_size=3,
        queue_size=7,
        heartbeat_seconds=0.5,
        reconnect_max_seconds=2.0,
        journal="decoded",
        journal_batch=50,
        journal_keep_seconds=3600.0,
        journal_keep_rows=1000,
        mutations_keep_seconds=86400.0,
        journal_prune_seconds=30.0,
        database_timeout_seconds=2.5,
        keepalive_seconds=30.0,
        send_timeout_seconds=3.0,
        connection_init_seconds=4.0,
        execution_cache_size=16,
        response_cache_size=0,
        shutdown_seconds=1.5,
        token="a-token-of-16-chars",
        token_file=None,
        auth="accounts",
        session_idle_seconds=60.0,
        session_max_seconds=120.0,
        cookie_secure=True,
        sign_in_failures_per_account=3,
        sign_in_failures_per_address=9,
        sign_in_window_seconds=30.0,
        jwt_secret="a-jwt-secret-of-at-least-32-bytes",
        jwt_secret_file=None,
        jwt_jwks_file=None,
        jwt_user_claim="preferred_username",
        sign_up="open",
        jwt_audience="todos",
        jwt_issuer=None,
        allowed_origins=("https://a.example", "http://b.example:8080"),
        allowed_hosts=("todos.example", ".lan", "[::2]"),
        max_body_bytes=1024,
        ws_max_bytes=2048,
        request_seconds=3.0,
        max_tokens=100,
        max_depth=4,
        max_aliases=0,
        max_fields=60,
        max_list_rows=50,
        introspection=False,
        max_subscriptions=2,
        requests_in_flight=7,
        max_sockets_per_client=5,
        forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8", "::1"),
        statement_timeout_seconds=0.5,
        log_level="warning",
        log_format="json",
        workers=2,
        web_dist=None,
        persisted_queries_size=5,
        trusted_documents=None,
    )


def test_a_flag_overrides_its_variable_and_is_named_when_bad() -> None:
    assert Settings.from_env({"PORT": "9000"}, port="9001").port == 9001
    with pytest.raises(SettingError) as error:
        Settings.from_env({"PORT": "9000"}, port="0")
    assert (error.value.source, error.value.value) == ("--port", "0")


def test_auth_is_open_unless_accounts_are_asked_for() -> None:
    assert Settings.from_env({}).auth == "open"
    assert Settings.from_env({}, auth="accounts").auth == "accounts"
    with pytest.raises(SettingError, match="must be open or accounts"):
        Settings.from_env({"AUTH": "Accounts"})


def test_the_journal_is_the_triggers_unless_decoding_is_asked_for() -> None:
    assert Settings.from_env({}).journal == "trigger"
    assert Settings.from_env({}, journal="decoded").journal == "decoded"
    assert Settings.from_env({"JOURNAL": "decoded"}).journal == "decoded"
    with pytest.raises(SettingError, match="JOURNAL='logical': must be trigger or decoded"):
        Settings.from_env({"JOURNAL": "logical"})


def test_a_jwt_secret_has_at_least_32_bytes() -> None:
    with pytest.raises(SettingError, match="JWT_SECRET='\\(secret\\)': must be at least 32 bytes"):
        Settings.from_env({"JWT_SECRET": "x" * 31})
    assert Settings.from_env({"JWT_SECRET": "x" * 32}).jwt_key == "x" * 32


def test_the_token_comes_from_the_variable_or_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-the-file-0123456789\n")
    assert Settings.from_env({"TODOS_TOKEN_FILE": str(secret)}).bearer_token == "from-the-file-0123456789"
    both = {"TODOS_TOKEN_FILE": str(secret), "TODOS_TOKEN": "from-the-variable-0123"}
    assert Settings.from_env(both).bearer_token == "from-the-variable-0123"
    assert Settings.from_env({}).bearer_token is None
    with pytest.raises(SettingError, match="TODOS_TOKEN_FILE"):
        Settings.from_env({"TODOS_TOKEN_FILE": str(tmp_path / "missing")})


def test_a_secret_is_never_shown() -> None:
    with pytest.raises(SettingError) as error:
        Settings.from_env({"TODOS_TOKEN": "short-secret"})
    assert "short-secret" not in str(error.value)
    assert "must be at least 16 characters" in str(error.value)
    assert "a-token-of-16-chars" not in repr(Settings(token="a-token-of-16-chars"))


@pytest.mark.parametrize("origins", ["example.org", "ftp://example.org", "https://example.org/path"])
def test_allowed_origins_must_be_origins(origins: str) -> None:
    with pytest.raises(SettingError, match="ALLOWED_ORIGINS"):
        Settings.from_env({"ALLOWED_ORIGINS": origins})


@pytest.mark.parametrize("hosts", ["http://example.org", "example.org:8000", "example.org/", "[::1", "*.example.org"])
def test_allowed_hosts_must_be_host_names(hosts: str) -> None:
    with pytest.raises(SettingError, match="ALLOWED_HOSTS"):
        Settings.from_env({"ALLOWED_HOSTS": hosts})


@pytest.mark.parametrize("proxies", ["localhost", "10.0.0.1/8", "1.2.3", "127.0.0.1:8000"])
def test_forwarded_allow_ips_must_be_addresses_or_networks(proxies: str) -> None:
    # uvicorn would take each for a name that no address matches.
    with pytest.raises(SettingError, match="FORWARDED_ALLOW_IPS"):
        Settings.from_env({"FORWARDED_ALLOW_IPS": proxies})


def test_trusted_documents_must_be_a_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "persisted-documents.json"
    for text in ("{", '["{ todos { id } }"]', '{"abc": 1}'):
        manifest.write_text(text)
        with pytest.raises(SettingError, match="TRUSTED_DOCUMENTS"):
            Settings.from_env({"TRUSTED_DOCUMENTS": str(manifest)})
    manifest.write_text('{"abc": "{ todos { id } }"}')
    assert Settings.from_env({"TRUSTED_DOCUMENTS": str(manifest)}).trusted_documents == {"abc": "{ todos { id } }"}


def test_web_dist_must_hold_a_built_client(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="WEB_DIST"):
        Settings.from_env({"WEB_DIST": str(tmp_path)})
    (tmp_path / "index.html").write_text("<!doctype html>")
    assert Settings.from_env({"WEB_DIST": str(tmp_path)}).web_dist == tmp_path


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        ([], {"PORT": "abc"}, "graphql-todos: error: PORT='abc': must be an integer"),
        ([], {"POOL_SIZE": "0"}, "graphql-todos: error: POOL_SIZE='0': must be at least 1"),
        (
            [],
            {"HEARTBEAT_SECONDS": "-1"},
            "graphql-todos: error: HEARTBEAT_SECONDS='-1': must be a positive number of seconds",
        ),
        (
            ["--port", "70000"],
            {},
            "graphql-todos: error: --port='70000': must be from 1 to 65535",
        ),
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line(
    args: list[str], env: dict[str, str], line: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "graphql_todos.cli", "serve", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert (result.returncode, result.stderr, result.stdout) == (2, line + "\n", "")


def test_the_readme_table_lists_every_setting_with_its_default() -> None:
    readme = README.read_text()
    for variable, flag, default, meaning in documented():
        assert f"| `{variable}` | `{flag}` | `{default}` | {meaning} |" in readme, variable


def test_to_env_gives_the_same_settings_back() -> None:
    # How `serve --workers` hands its settings to each worker.
    settings = Settings(
        port=9001,
        allowed_origins=("https://a.example", "http://b.example:8080"),
        allowed_hosts=(".example.org", "*"),
        forwarded_allow_ips=("127.0.0.1", "10.0.0.0/8"),
        introspection=False,
        web_dist=None,
        database_url="postgresql://db/app",
    )
    assert Settings.from_env(to_env(settings)) == settings
    assert Settings.from_env(to_env(Settings())) == Settings()


def test_a_secret_from_a_file_reaches_every_worker(tmp_path: Path) -> None:
    # `serve --workers` hands each worker the file's path, not the secret in it.
    token, secret = tmp_path / "token", tmp_path / "jwt"
    token.write_text("a-token-from-a-file\n")
    secret.write_text("s" * 32 + "\n")
    settings = Settings.from_env({"TODOS_TOKEN_FILE": str(token), "JWT_SECRET_FILE": str(secret)})
    worker = Settings.from_env(to_env(settings))
    assert worker == settings
    assert (worker.bearer_token, worker.jwt_key) == ("a-token-from-a-file", "s" * 32)
