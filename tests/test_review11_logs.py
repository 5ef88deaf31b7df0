"""review11: a RESTSocket takes its credential as `?token=` (browsers cannot
set headers on a WebSocket), so no line the server logs may carry a query
string: uvicorn logs each WebSocket handshake with its target."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.helpers import TOKEN, Serve


def test_no_log_line_holds_a_rest_socket_s_token(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": "", "TODOS_TOKEN": TOKEN, "LOG_LEVEL": "info"}
    serve = Serve(env)
    try:
        with connect(f"{serve.ws_url}/api/todos/?after=0&token={TOKEN}", open_timeout=10):
            pass
        # Refused before the upgrade (another origin): logged with its target too.
        with pytest.raises(InvalidStatus):
            connect(f"{serve.ws_url}/api/todos/?token={TOKEN}", origin="http://evil.example", open_timeout=10)  # type: ignore[arg-type]
        # An HTTP request's query string is left out of its access line.
        assert httpx.get(f"{serve.url}/api/todos/?token={TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        serve.stop(signal.SIGTERM)
    assert '"WebSocket /api/todos/" 403' in serve.output  # the lines are there ...
    assert '"GET /api/todos/ HTTP/1.1" 200' in serve.output
    assert TOKEN not in serve.output  # ... without the token
