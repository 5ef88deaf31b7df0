"""A RESTSocket client that stops reading: the server stops waiting for it
after SEND_TIMEOUT_SECONDS, closes it with 4408, and it resumes by cursor;
meanwhile the others get every change."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from graphql_todos.errors import ErrorCode
from tests.helpers import Server, make_server, wait_until

# Enough 512-character changes to fill the kernel's buffers (the server's
# send buffer grows to 4 MiB here; the client's receive buffer is kept small).
CHANGES = 10_000


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    srv = make_server(db_dsn, send_timeout_seconds=1.0)
    srv.start()
    yield srv
    srv.stop()


def test_a_stalled_client_is_closed_with_4408_and_resumes_by_cursor(server: Server) -> None:
    # max_queue=1: the client takes one message and then stops reading from
    # its socket, as a stalled client does; the kernel buffers fill up.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(("127.0.0.1", server.port))
    with connect(server.ws_url + "/api/todos/?after=0", sock=sock, max_queue=1) as stalled, connect(
        server.ws_url + "/api/todos/?after=0"
    ) as healthy:
        wait_until(lambda: server.subscriber_count() == 2)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO todos (title) SELECT repeat('x', 507) || n FROM generate_series(1, %s) n", (CHANGES,)
            )
        # The one that reads gets everything, while the other is stalled.
        cursors = [json.loads(healthy.recv(timeout=30))["cursor"] for _ in range(CHANGES)]
        assert cursors == [str(n) for n in range(1, CHANGES + 1)]
        # The stalled one is let go of, and its subscription with it.
        wait_until(lambda: server.subscriber_count() == 1, timeout=30)
        got: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                got.append(json.loads(stalled.recv(timeout=30))["cursor"])
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == ErrorCode.CLIENT_STALLED.close_code
        assert 0 < len(got) < CHANGES
    # It resumes from its last cursor and misses nothing.
    with connect(server.ws_url + f"/api/todos/?after={got[-1]}") as resumed:
        rest = [json.loads(resumed.recv(timeout=30))["cursor"] for _ in range(CHANGES - len(got))]
    assert got + rest == cursors
