"""graphql-todos serve | migrate | passwd | vouch | export-schema"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import json
import logging.config
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from graphql_todos.app import create_app
from graphql_todos.core.embedded import embedded_postgres
from graphql_todos.core.errors import BadUserInput
from graphql_todos.core.journal_mode import JournalModeError, settle
from graphql_todos.core.metrics import MULTIPROC_DIR
from graphql_todos.core.migrations import NoMigrations, migrate
from graphql_todos.core.passwords import HASHER, check
from graphql_todos.core.people import clean_username
from graphql_todos.core.people_statements import SET_PASSWORD, VOUCH
from graphql_todos.core.settings import SettingError, Settings, documented, to_env
from graphql_todos.edge.guard import exposure
from graphql_todos.edge.logs import log_config
from graphql_todos.graphql.schema import build_schema
from graphql_todos.internals.uvicorn_http import http_protocol
from graphql_todos.internals.uvicorn_server import Server, Supervisor
from graphql_todos.internals.uvicorn_websocket import WebSocketProtocol
from graphql_todos.rest.openapi import DOCUMENT


def server_config(settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How uvicorn serves the app, for `serve` and the tests alike."""
    return uvicorn.Config(create_app(settings), **{**server_options(settings), **overrides})


def server_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # Streaming HTTP subscriptions never end by themselves: bound the
        # wait for them so a SIGTERM always reaches the lifespan shutdown.
        "timeout_graceful_shutdown": settings.shutdown_seconds,
        # Compressing each small frame for each subscriber cost more CPU
        # than anything else per message (bench/latency.py under py-spy).
        "ws_per_message_deflate": False,
        # The app is ASGI 3; its __call__ is no coroutine function (app.py's
        # TodoApp), which uvicorn's guess would take for ASGI 2.
        "interface": "asgi3",
        "log_config": log_config(settings),
        # uvicorn's websockets-sansio, closing with a reason on shutdown
        # (internals.uvicorn_websocket). Broadcast frames go straight to its transport
        # (uvicorn_websocket.direct_write); other protocols get ASGI sends.
        "ws": WebSocketProtocol,
        "ws_max_size": settings.ws_max_bytes,
        # uvicorn times out idle keep-alive connections only (edge/guard.py);
        # streams end on shutdown (internals.uvicorn_http).
        "http": http_protocol(settings.request_seconds),
        # The client's address is the connection's peer unless that is a
        # proxy we were told to trust (uvicorn's own default trusts
        # 127.0.0.1: anyone on the machine could name any address).
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
    }


def _serve(settings: Settings) -> None:
    warning = exposure(settings)
    if warning is not None:
        logging.getLogger("graphql_todos.cli").warning(warning)
    if settings.workers == 1:
        if settings.database_url is not None:
            # Checked before uvicorn runs (its lifespan would fail with a traceback); the lifespan settles it again.
            migrate(settings.database_url)
            settle(settings.database_url, settings.journal)
        # Migrations run in the app's lifespan, next to the embedded server.
        Server(server_config(settings)).run()
        return
    # Several processes: this one starts the embedded server (once) and
    # migrates, then uvicorn forks the workers and replaces any that dies.
    with contextlib.ExitStack() as stack:
        dsn = settings.database_url or stack.enter_context(embedded_postgres(settings.data_dir))
        migrate(dsn)
        settle(dsn, settings.journal)
        os.environ.update(to_env(dataclasses.replace(settings, database_url=dsn)))
        # Each worker writes its metrics here; /metrics adds up the live ones.
        os.environ[MULTIPROC_DIR] = stack.enter_context(tempfile.TemporaryDirectory(prefix="graphql-todos-metrics-"))
        # Workers are spawned processes: they build the app from the import
        # string, with the settings from the environment set just above.
        config = uvicorn.Config(
            "graphql_todos.app:app_from_env", factory=True, workers=settings.workers, **server_options(settings)
        )
        # As uvicorn.run runs workers, with a supervisor that tells /metrics
        # of the ones that died.
        Supervisor(config, sockets=[config.bind_socket()]).run()


def _migrate(settings: Settings) -> None:
    if settings.database_url is not None:
        applied = migrate(settings.database_url)
    else:
        with embedded_postgres(settings.data_dir) as dsn:
            applied = migrate(dsn)
    print("applied: " + (", ".join(applied) if applied else "nothing, up to date"))


def _passwd(settings: Settings, username: str) -> None:
    """Set a person's password (making the person if new), ending their
    sessions: how `local` signs in once AUTH=accounts."""
    name = clean_username(username)
    if sys.stdin.isatty():
        password = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise BadUserInput("password", "was not the same twice")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    hashed = HASHER.hash(check(password))
    with _database(settings) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(SET_PASSWORD, {"username": name, "hash": hashed}).fetchone()
    print(f"password set for {name}" + (" (a new person)" if row and row[0] else "; their sessions ended"))


def _vouch(settings: Settings, username: str) -> None:
    """Let a JWT naming USERNAME sign in as that person (one made by a
    sign-up, or local): the operator says they are the same human."""
    name = clean_username(username)
    with _database(settings) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(VOUCH, {"username": name}).fetchone()
    if row is None:
        raise BadUserInput("username", f"{name!r} is no one's (a JWT naming it makes the person)")
    print(f"a JWT naming {name} now signs in as them")


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or the embedded server's in DATA_DIR, migrated."""
    with contextlib.ExitStack() as stack:
        dsn = settings.database_url or stack.enter_context(embedded_postgres(settings.data_dir))
        migrate(dsn)
        yield dsn


def _export_schema(output: Path | None, openapi: bool) -> None:
    # Neither document depends on any setting.
    if openapi:
        text = json.dumps(DOCUMENT, indent=2) + "\n"
    else:
        text = build_schema(Settings().execution_cache_size).as_str() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="graphql-todos", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="migrate, then serve on HOST:PORT",
        description="Each flag overrides the environment variable named in its help.",
    )
    for variable, flag, default, doc in documented():
        # Checked by Settings, like the variable, so both fail the same way.
        serve.add_argument(flag, metavar=variable, help=f"{doc} (${variable}, default {default})")
    commands.add_parser("migrate", help="apply the SQL migrations shipped in the package")
    passwd = commands.add_parser(
        "passwd",
        help="set a person's password (AUTH=accounts), read from the terminal or one line of stdin",
        description="Makes the person if new; ends their sessions. Uses DATABASE_URL or DATA_DIR.",
    )
    passwd.add_argument("username")
    vouch = commands.add_parser(
        "vouch",
        help="let a JWT naming USERNAME sign in as that person, made by a sign-up (AUTH=accounts)",
        description="Only for the same human: a JWT never names a person made by a password sign-up, or local,"
        " otherwise. Uses DATABASE_URL or DATA_DIR.",
    )
    vouch.add_argument("username")
    export = commands.add_parser("export-schema", help="print the GraphQL SDL (or the REST OpenAPI document)")
    export.add_argument("--output", type=Path, help="write here instead of stdout")
    export.add_argument("--openapi", action="store_true", help="the OpenAPI document of /api/ instead")
    args = parser.parse_args(argv)

    try:
        if args.command == "export-schema":
            _export_schema(args.output, args.openapi)
            return
        overrides = {k: v for k, v in vars(args).items() if k not in ("command", "username")}
        settings = Settings.from_env(**overrides)
        logging.config.dictConfig(log_config(settings))
        if args.command == "serve":
            _serve(settings)
        elif args.command == "passwd":
            _passwd(settings, args.username)
        elif args.command == "vouch":
            _vouch(settings, args.username)
        else:
            _migrate(settings)
    except SettingError as exc:
        # A usage error: one line, no traceback, argparse's exit status.
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except BadUserInput as exc:
        parser.exit(2, f"{parser.prog}: error: {exc.message}\n")
    except (NoMigrations, JournalModeError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
