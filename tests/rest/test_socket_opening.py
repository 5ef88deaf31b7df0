"""A RESTSocket from now sends no cursor before its first change, so its
opening is its only mark: once the client's connect has returned, every
change committed after it is the socket's. The change stream's start ("now")
is fixed before the upgrade is accepted (rest/sockets.relay), for the
collection's socket and the feed's; a write made the moment the connect
returns comes first."""

from __future__ import annotations

import json

import psycopg
import pytest
from websockets.sync.client import connect

from tests.helpers import Server
from tests.rest.test_resources import TODOS

# Each a chance for the write to land between the accept and the start: the
# hub's round trip for "now" is paced (live/now.py), a window of a few ms.
ATTEMPTS = 25


@pytest.mark.parametrize("path", [TODOS, "/api/feed/"])
def test_a_write_made_as_the_connect_returns_is_the_socket_s_first_change(
    server: Server, db_dsn: str, path: str
) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for attempt in range(ATTEMPTS):
            with connect(server.ws_url + path, open_timeout=5) as ws:
                conn.execute("INSERT INTO todos (title) VALUES (%s)", (f"t{attempt}",))
                while (message := json.loads(ws.recv(timeout=5))).get("op") == "keepalive":
                    pass
            assert message["todo"]["title"] == f"t{attempt}", message
