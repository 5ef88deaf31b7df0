"""tests/test_auth_matrix.py again with AUTH=accounts: every route of the
app's table and every method, every way of sending GraphQL over HTTP and
every WebSocket way, with no credential, wrong ones (a token, a cookie, a
JWT), a session cookie, a personal access token, a JWT and the service token
(TODOS_TOKEN).
Without a valid credential: 401 (close 4401) and nothing runs; a cookie
write without our Origin: 403 and nothing runs; with a valid one, what the
route answers (the service token is no person: 403 for a person's own)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import psycopg
import pytest

from graphql_todos.core.models import LOCAL_LIST_ID
from graphql_todos.core.passwords import HASHER
from tests.helpers import BEARER, TOKEN, WEB_DIST, Server, serving
from tests.test_auth_matrix import (
    BODIES,
    HTTP_ROUTES,
    HTTP_WAYS,
    METHODS,
    MUTATION,
    PUBLIC,
    QUERY,
    REFUSED,
    SOCKET_WAYS,
    SSE,
    SUBSCRIPTION,
    _ask,
    _hash,
    _table,
    _url,
    _work,
)

PASSWORD = "matrix password"
# Every credential, by how it is sent; VALID are the ones that let a request in.
REFUSED_CREDENTIALS = ("none", "wrong token", "wrong cookie", "wrong jwt")
VALID = ("session", "token", "jwt", "service")
JWT_SECRET = "the-matrix-jwt-secret-0123456789abcdef"
# What each route answers a person (session or token); public ones, anyone.
ROUTES: dict[str, dict[str, int]] = {
    **HTTP_ROUTES,
    "/api/auth/sign-up": {"POST": 409},  # the name is taken: nothing made
    "/api/auth/sign-in": {"POST": 200},
    "/api/auth/sign-out": {"POST": 204},
    "/api/auth/password": {"POST": 204},
    "/api/sessions/": {"GET": 200, "HEAD": 200},
    "/api/sessions/{id}/": {"DELETE": 404},  # no session of yours has a todo's id
    "/api/tokens/": {"GET": 200, "HEAD": 200, "POST": 201},
    "/api/tokens/{id}/": {"DELETE": 404},
}
# A person's own, which the service token may not ask for.
PERSONS_OWN = {
    ("/api/auth/password", "POST"),
    ("/api/sessions/", "GET"),
    ("/api/sessions/", "HEAD"),
    ("/api/sessions/{id}/", "DELETE"),
    ("/api/tokens/", "GET"),
    ("/api/tokens/", "HEAD"),
    ("/api/tokens/", "POST"),
    ("/api/tokens/{id}/", "DELETE"),
    # Lists: the service token is no member of any.
    *(
        (path, method)
        for path, methods in HTTP_ROUTES.items()
        if path.startswith("/api/lists/")
        for method in methods
    ),
}
# Requests that end the credential they come with (or a person's other
# sessions): each is sent with a fresh session or token of another person.
ENDING = {("/api/auth/sign-out", "POST"), ("/api/auth/password", "POST")}
ACCOUNT_BODIES = {
    **BODIES,
    ("/api/auth/sign-up", "POST"): {"json": {"username": "alice", "password": PASSWORD}},
    ("/api/auth/sign-in", "POST"): {"json": {"username": "alice", "password": PASSWORD}},
    ("/api/auth/password", "POST"): {"json": {"current": PASSWORD, "new": PASSWORD}},
    ("/api/tokens/", "POST"): {"json": {"name": "matrix"}},
}
# Ways that cannot carry a cookie (connection_init's payload, ?token=): a
# session signs in through the upgrade only.
NO_COOKIE = {
    "graphql-transport-ws, token in connection_init",
    "legacy graphql-ws, token in connection_init",
    "RESTSocket, collection, ?token=",
    "RESTSocket, item, ?token=",
    "RESTSocket, feed, ?token=",
}


@dataclass
class Matrix:
    server: Server
    credentials: dict[str, dict[str, str]]
    todo_id: str

    def credential(self, auth: str, path: str, method: str) -> dict[str, str]:
        if (path, method) in ENDING and auth in ("session", "token"):
            return _person(self.server, "bob")[auth]
        return self.credentials[auth]


def _person(server: Server, username: str) -> dict[str, dict[str, str]]:
    """A new session and a new token of `username` (signed up if new)."""
    with httpx.Client(base_url=server.url, headers={"Origin": server.url}) as client:
        body = {"username": username, "password": PASSWORD}
        if client.post("/api/auth/sign-in", json=body).status_code != 200:
            assert client.post("/api/auth/sign-up", json=body).status_code == 201
        secret = client.cookies["todos_session"]
        token = client.post("/api/tokens/", json={"name": "matrix"}).json()["secret"]
    return {
        "session": {"Cookie": f"todos_session={secret}", "Origin": server.url},
        "token": {"Authorization": f"Bearer {token}"},
    }


@pytest.fixture(scope="module")
def matrix(module_db_dsn: str) -> Iterator[Matrix]:
    assert (WEB_DIST / "index.html").exists(), "the route table includes the web client: make web"
    with serving(module_db_dsn, auth="accounts", token=TOKEN, jwt_secret=JWT_SECRET, sign_up="open") as server:
        claims = {"sub": "carol", "exp": int(time.time()) + 3600}
        credentials = {
            "none": {},
            "wrong token": {"Authorization": "Bearer gt_" + "A" * 43},
            "wrong cookie": {"Cookie": "todos_session=" + "A" * 43, "Origin": server.url},
            "wrong jwt": {"Authorization": "Bearer " + jwt.encode(claims, "not-the-secret-0123456789abcdefghij", "HS256")},
            **_person(server, "alice"),
            "jwt": {"Authorization": "Bearer " + jwt.encode(claims, JWT_SECRET, "HS256")},
            "service": BEARER,
        }
        # The JWT's person, made on first sight, with a password to change.
        assert httpx.get(server.url + "/api/auth/me", headers=credentials["jwt"]).status_code == 200
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("UPDATE people SET password_hash = %s WHERE username = 'carol'", (HASHER.hash(PASSWORD),))
            # The service's todos are in local's default list: alice and
            # carol edit it, so each way reads and writes them.
            conn.execute(
                "INSERT INTO list_members SELECT %s, id, 'editor' FROM people WHERE username IN ('alice', 'carol')",
                (LOCAL_LIST_ID,),
            )
        with httpx.Client(base_url=server.url, headers=BEARER) as client:
            todo = client.post("/api/todos/", json={"title": "seen"}).json()
            for document in (QUERY, MUTATION):
                sent = client.post("/graphql", json={"query": document, "extensions": _hash(document)})
                assert "errors" not in sent.json(), sent.text
        learn = {"query": SUBSCRIPTION, "extensions": _hash(SUBSCRIPTION)}
        assert _ask(server, "POST", "/graphql", BEARER, json=learn, headers=SSE) == (200, "data")
        yield Matrix(server, credentials, todo["id"])


def test_the_matrix_covers_the_whole_app(matrix: Matrix) -> None:
    table = list(_table(matrix.server.app.routes))
    assert {path: set(methods) for kind, path, methods in table if kind == "http"} == {
        path: set(statuses) for path, statuses in ROUTES.items()
    }


@pytest.mark.parametrize("way", list(SOCKET_WAYS))
def test_every_way_over_a_websocket(matrix: Matrix, way: str) -> None:
    # First in the module: the subscriptions replay the journal from 0, and
    # a client that leaves with a long backlog unread waits out its close.
    run, ran, refused = SOCKET_WAYS[way]
    for auth, credential in matrix.credentials.items():
        before = _work(matrix.server)
        said = run(matrix.server, matrix.todo_id, credential)
        if auth in VALID and not (auth == "session" and way in NO_COOKIE):
            assert said == ran, auth
        else:
            assert said == refused, auth
            assert _work(matrix.server) == before


@pytest.mark.parametrize("auth", [*REFUSED_CREDENTIALS, *VALID])
@pytest.mark.parametrize("path", list(ROUTES))
def test_every_route_and_method(matrix: Matrix, path: str, auth: str) -> None:
    server = matrix.server
    for method in METHODS:
        url = _url(server, path, method, matrix.todo_id)
        credential = matrix.credential(auth, path, method)
        before = _work(server)
        status, said = _ask(server, method, url, credential, **ACCOUNT_BODIES.get((path, method), {}))
        if (path, method) in PUBLIC:
            assert status == ROUTES[path][method], (method, said)
            assert said != "data" and _work(server) == before, "a public answer ran something"
        elif auth in REFUSED_CREDENTIALS:
            assert (status, said) == REFUSED, method
            assert _work(server) == before
        elif auth == "service" and (path, method) in PERSONS_OWN:
            assert status == 403 and said in ("FORBIDDEN", "application/json"), method  # HEAD: no body
        else:
            assert status == ROUTES[path].get(method, 405), (method, said)


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_cookie_write_without_our_origin_runs_nothing(matrix: Matrix, path: str) -> None:
    cookie = {"Cookie": matrix.credentials["session"]["Cookie"]}
    for origin in (None, "http://evil.example"):
        headers = cookie if origin is None else {**cookie, "Origin": origin}
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            if (path, method) in PUBLIC:
                continue  # no credential needed: the cookie is not what lets it in
            url = _url(matrix.server, path, method, matrix.todo_id)
            before = _work(matrix.server)
            outcome = _ask(matrix.server, method, url, headers, **ACCOUNT_BODIES.get((path, method), {}))
            assert outcome == (403, "FORBIDDEN"), (method, origin)
            assert _work(matrix.server) == before


@pytest.mark.parametrize("way", list(HTTP_WAYS))
def test_every_way_over_http(matrix: Matrix, way: str) -> None:
    method, path, kwargs, ran = HTTP_WAYS[way]
    path = path.replace("{id}", matrix.todo_id)
    # The service token first (twice): a reply the front door keeps for it
    # is not given to anyone else.
    for auth in ("service", "service", *VALID, *REFUSED_CREDENTIALS):
        before = _work(matrix.server)
        outcome = _ask(matrix.server, method, path, matrix.credentials[auth], **kwargs)
        if auth in VALID:
            assert outcome == ran, auth
        else:
            assert outcome == REFUSED, auth
            assert _work(matrix.server) == before
