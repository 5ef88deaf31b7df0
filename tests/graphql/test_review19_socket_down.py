"""review19: a subscription whose start fails because the database is away
(connections refused, every backend ended) keeps no later operation on its
socket waiting: both are answered DATABASE_UNAVAILABLE within the database's
timeout, with nothing logged at ERROR, and the socket keeps its order once the
database is back. Both protocols, both journal modes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.decoded import Journaled
from tests.graphql.test_socket_order import CHANGES_FROM_NOW, CREATE, _Socket
from tests.helpers import Server, errors_logged, serving


@pytest.fixture
def hasty_journaled(journaled_db: Journaled) -> Iterator[Server]:
    with serving(journaled_db.dsn, journal=journaled_db.journal, database_timeout_seconds=1.0) as server:
        yield server


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_an_opening_refused_with_the_database_away_keeps_no_one_waiting(hasty_journaled: Server, admin_dsn: str, protocol: str) -> None:
    name = conninfo_to_dict(hasty_journaled.dsn)["dbname"]
    ws = _Socket(hasty_journaled, protocol)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            with errors_logged() as errors:
                began = time.monotonic()
                ws.send("s", CHANGES_FROM_NOW)
                ws.send("m", CREATE, {"t": "down"})
                got: dict[str, Any] = {}
                while len(got) < 2 and time.monotonic() - began < 15:
                    message = ws.recv(15)
                    if message.get("id") in ("s", "m") and message["id"] not in got:
                        got[message["id"]] = message
                assert time.monotonic() - began < 4.0
                assert "DATABASE_UNAVAILABLE" in json.dumps(got["s"]), got
                assert "DATABASE_UNAVAILABLE" in json.dumps(got["m"]), got
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    # Back: the socket works again.
    time.sleep(3)
    ws.send("s2", CHANGES_FROM_NOW)
    ws.send("m2", CREATE, {"t": "back"})
    seen: set[str] = set()

    def both(message: Any) -> bool:
        if message.get("id") == "m2" or (message.get("id") == "s2" and "back" in json.dumps(message)):
            seen.add(message["id"])
        return len(seen) == 2

    assert ws.until(both, 10)
    ws.close()
    assert errors == [], errors
