"""tests/leaks.py can fail: what the service token (which sees every list)
is sent counts, here, as sent to people who may see none of it: once in a
RESTSocket's frames, once in an HTTP body; and in what every subscriber the
oracle follows with was sent, whatever its transport."""

from __future__ import annotations

import httpx

from tests.helpers import BEARER, TOKEN, serving
from tests.leaks import Leaks, token
from tests.subscribers import FEEDS, TRANSPORTS, Subscriber, new_token


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



def test_every_subscriber_of_the_oracle_is_tapped(db_dsn: str) -> None:
    """Each transport tests/subscribers.py follows, the feed's too, reaches
    the scanner: what it was sent is found in its own tap's bytes."""
    leaks = Leaks()
    secret, streams = token("t"), (*TRANSPORTS, *FEEDS)
    with serving(db_dsn, auth="accounts", token=TOKEN) as server, httpx.Client(base_url=server.url) as http:
        http.headers["Origin"] = server.url
        assert http.post("/api/auth/sign-up", json={"username": "tapped", "password": "correct horse battery"}).is_success
        credential = new_token(http, "streams")
        cursor = int(http.post("/graphql", json={"query": "{ todoList { cursor } }"}).json()["data"]["todoList"]["cursor"])
        assert http.post("/api/todos/", json={"title": secret}).is_success
        subscribers = [Subscriber(server.url, stream, credential, cursor, leaks.tap(stream)) for stream in streams]
        try:
            for subscriber in subscribers:
                subscriber.wait_for(cursor + 1)
        finally:
            for subscriber in subscribers:
                subscriber.close()
    assert [(s.transport, s.position > cursor, s.unexpected) for s in subscribers] == [(t, True, []) for t in streams]
    assert leaks.found({secret}, {}) == {stream: [secret] for stream in streams}
