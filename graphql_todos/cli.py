"""graphql-todos serve | migrate | export-schema"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .config import SettingError, Settings, documented
from .embedded import embedded_postgres
from .migrations import NoMigrations, migrate
from .openapi import DOCUMENT
from .schema import build_schema


def server_config(settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How uvicorn serves the app, for `serve` and the tests alike."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # Streaming HTTP subscriptions never end by themselves: bound the
        # wait for them so a SIGTERM always reaches the lifespan shutdown.
        "timeout_graceful_shutdown": settings.shutdown_seconds,
        # Compressing each small frame for each subscriber cost more CPU
        # than anything else per message (bench/latency.py under py-spy).
        "ws_per_message_deflate": False,
    }
    return uvicorn.Config(create_app(settings), **{**options, **overrides})


def _serve(settings: Settings) -> None:
    # Migrations run in the app's lifespan, next to the embedded server.
    uvicorn.Server(server_config(settings)).run()


def _migrate(settings: Settings) -> None:
    if settings.database_url is not None:
        applied = migrate(settings.database_url)
    else:
        with embedded_postgres(settings.data_dir) as dsn:
            applied = migrate(dsn)
    print("applied: " + (", ".join(applied) if applied else "nothing, up to date"))


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
    export = commands.add_parser("export-schema", help="print the GraphQL SDL (or the REST OpenAPI document)")
    export.add_argument("--output", type=Path, help="write here instead of stdout")
    export.add_argument("--openapi", action="store_true", help="the OpenAPI document of /api/ instead")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Its INFO lines dump whole initdb transcripts.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            _serve(Settings.from_env(**{k: v for k, v in vars(args).items() if k != "command"}))
        elif args.command == "migrate":
            _migrate(Settings.from_env())
        else:
            _export_schema(args.output, args.openapi)
    except SettingError as exc:
        # A usage error: one line, no traceback, argparse's exit status.
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    except NoMigrations as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
