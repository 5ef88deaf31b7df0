"""tests/leaks.py can fail: what the service token (which sees every list)
is sent counts, here, as sent to people who may see none of it: once in a
RESTSocket's frames, once in an HTTP body."""

from __future__ import annotations

import httpx

from tests.helpers import BEARER, TOKEN, serving
from tests.leaks import Leaks, token


def test_the_leak_scanner_finds_what_a_person_was_shown(db_dsn: str) -> None:
    leaks = Leaks()
    first, second, unsent = token("t"), token("t"), token("t")
    with serving(db_dsn, auth="accounts", token=TOKEN) as server, httpx.Client(base_url=server.url, headers=BEARER) as service:
        cursor = service.post("/graphql", json={"query": "{ todoList { cursor } }"}).json()["data"]["todoList"]["cursor"]
        service.post("/api/todos/", json={"title": first})
        socket = leaks.tap("socket").websocket(f"{server.ws_url}/api/todos/?token={TOKEN}&after={cursor}")
        try:
            while first not in str(socket.recv(timeout=10)):
                pass
        finally:
            socket.close()
        with leaks.tap("http").client(server.url, headers=BEARER) as client:
            client.post("/api/todos/", json={"title": second})
    assert leaks.found({first, second, unsent}, {}) == {"socket": [first], "http": [second]}
    assert leaks.found({first, second, unsent}, {"socket": {first}, "http": {second}}) == {}
