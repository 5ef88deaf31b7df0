"""People and sign-in (AUTH=accounts), end to end on the real server: sign
up, in and out, wrong passwords, the limits on failures, session expiry and
revocation, personal access tokens, the cookie's flags and the Origin check
on cookie writes; and AUTH=open, where none of it answers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from graphql_todos.core.passwords import Passwords, TooManyAttempts
from graphql_todos.core.people import LOCAL
from tests.helpers import BEARER, TOKEN, Server, serving, wait_until

PASSWORD = "correct horse battery"
JSON = {"content-type": "application/json"}


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", token=TOKEN, sign_in_failures_per_account=3) as srv:
        yield srv


def _client(server: Server, **headers: str) -> httpx.Client:
    """A browser-like client of the app's own pages: it keeps cookies and sends our Origin."""
    return httpx.Client(base_url=server.url, headers={"Origin": server.url, **headers}, timeout=10)


def _sign_up(server: Server, username: str, password: str = PASSWORD) -> httpx.Client:
    client = _client(server)
    response = client.post("/api/auth/sign-up", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return client


def _sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/sign-in", json={"username": username, "password": password})


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_sign_up_in_and_out(accounts: Server) -> None:
    client = _client(accounts)
    assert client.get("/api/todos/").status_code == 401
    signed_up = client.post("/api/auth/sign-up", json={"username": "alice", "password": PASSWORD})
    assert signed_up.status_code == 201
    alice = signed_up.json()["person"]
    assert alice["username"] == "alice"
    cookie = signed_up.headers["set-cookie"]
    assert cookie.startswith("todos_session=")
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= {part.strip() for part in cookie.split(";")}
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert client.get("/api/auth/me").json() == {"mode": "accounts", "person": alice}
    # In the interim (phase 1), a person sees today's todos, as the service token does.
    assert client.post("/api/todos/", json={"title": "hers"}).status_code == 201
    assert [t["title"] for t in client.get("/api/todos/").json()] == ["hers"]

    old = client.cookies["todos_session"]
    signed_out = client.post("/api/auth/sign-out")
    assert signed_out.status_code == 204
    assert "Max-Age=0" in signed_out.headers["set-cookie"]
    assert "todos_session" not in client.cookies
    assert _code(httpx.get(accounts.url + "/api/todos/", cookies={"todos_session": old})) == (
        401, "UNAUTHENTICATED"
    )

    assert _sign_in(client, "alice").status_code == 200
    assert client.get("/api/auth/me").json()["person"] == alice
    assert client.cookies["todos_session"] != old


def test_a_taken_username_is_a_conflict_and_names_are_checked(accounts: Server) -> None:
    _sign_up(accounts, "bob")
    again = _client(accounts).post("/api/auth/sign-up", json={"username": "bob", "password": PASSWORD})
    assert _code(again) == (409, "CONFLICT")
    for name in ("Bob", "b", "-bob", "bob smith", "x" * 40):
        refused = _client(accounts).post("/api/auth/sign-up", json={"username": name, "password": PASSWORD})
        assert _code(refused) == (422, "BAD_USER_INPUT"), name
    for password in ("short", "x" * 257):
        refused = _client(accounts).post("/api/auth/sign-up", json={"username": "carol", "password": password})
        assert _code(refused) == (422, "BAD_USER_INPUT")
    extra = _client(accounts).post("/api/auth/sign-up", json={"username": "carol", "password": PASSWORD, "admin": True})
    assert _code(extra) == (422, "BAD_USER_INPUT")


def test_a_wrong_password_and_an_unknown_name_answer_alike(accounts: Server) -> None:
    _sign_up(accounts, "dave")
    wrong = _sign_in(_client(accounts), "dave", "not the password")
    unknown = _sign_in(_client(accounts), "nobody", "not the password")
    assert _code(wrong) == _code(unknown) == (401, "UNAUTHENTICATED")
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


def test_passwords_are_argon2id_with_owasp_parameters(accounts: Server) -> None:
    _sign_up(accounts, "erin")
    with psycopg.connect(accounts.dsn) as conn:
        row = conn.execute("SELECT password_hash FROM people WHERE username = 'erin'").fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in row[0]


def test_failures_are_limited_per_account(accounts: Server) -> None:
    _sign_up(accounts, "frank")
    _sign_up(accounts, "grace")
    client = _client(accounts)
    for _ in range(3):  # SIGN_IN_FAILURES_PER_ACCOUNT
        assert _sign_in(client, "frank", "guessing-123").status_code == 401
    refused = _sign_in(client, "frank", PASSWORD)  # even the right password, for now
    assert _code(refused) == (429, "TOO_MANY_REQUESTS")
    assert 0 < int(refused.headers["retry-after"]) <= 900
    # Another account from the same address is not held up.
    assert _sign_in(client, "grace", PASSWORD).status_code == 200
    # The window over, the account is open again.
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        conn.execute("UPDATE sign_in_failures SET window_start = window_start - interval '1 hour'")
    assert _sign_in(client, "frank", PASSWORD).status_code == 200


def test_a_success_resets_the_account_failures(accounts: Server) -> None:
    _sign_up(accounts, "heidi")
    client = _client(accounts)
    for _ in range(2):
        assert _sign_in(client, "heidi", "guessing-123").status_code == 401
    assert _sign_in(client, "heidi", PASSWORD).status_code == 200
    for _ in range(2):
        assert _sign_in(client, "heidi", "guessing-123").status_code == 401
    assert _sign_in(client, "heidi", PASSWORD).status_code == 200


def test_failures_and_sign_ups_are_limited_per_address(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", sign_in_failures_per_address=3) as server:
        client = _client(server)
        _sign_up(server, "ivan")  # a sign-up counts against the address
        for name in ("x1", "x2"):  # unknown names count too
            assert _sign_in(client, name, "guessing-123").status_code == 401
        refused = _sign_in(client, "ivan", PASSWORD)
        assert _code(refused) == (429, "TOO_MANY_REQUESTS")
        assert "retry-after" in refused.headers
        assert _code(client.post("/api/auth/sign-up", json={"username": "judy", "password": PASSWORD})) == (
            429, "TOO_MANY_REQUESTS"
        )


def test_hashing_waits_for_a_turn_then_refuses() -> None:
    async def three_at_once() -> list[object]:
        passwords = Passwords(at_once=1, wait_seconds=0.001)
        return await asyncio.gather(*(passwords.hash(PASSWORD) for _ in range(3)), return_exceptions=True)

    results = asyncio.run(three_at_once())
    assert isinstance(results[0], str)
    assert any(isinstance(result, TooManyAttempts) for result in results[1:])


def _sessions(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/sessions/")
    assert response.status_code == 200, response.text
    sessions: list[dict[str, Any]] = response.json()
    return sessions


def test_sessions_are_listed_and_revoked_by_their_owner(accounts: Server) -> None:
    laptop = _sign_up(accounts, "kim")
    phone = _client(accounts, **{"User-Agent": "phone"})
    assert _sign_in(phone, "kim").status_code == 200
    listed = _sessions(laptop)
    assert len(listed) == 2
    assert [s["current"] for s in listed] == [True, False]
    assert listed[1]["user_agent"] == "phone"
    other = _sign_up(accounts, "lee")
    # Someone else's session is none of yours: as if it did not exist.
    assert _code(other.delete(f"/api/sessions/{listed[1]['id']}/")) == (404, "NOT_FOUND")
    assert _code(laptop.delete("/api/sessions/nope/")) == (400, "BAD_USER_INPUT")
    assert laptop.delete(f"/api/sessions/{listed[1]['id']}/").status_code == 204
    assert _code(phone.get("/api/todos/")) == (401, "UNAUTHENTICATED")
    assert laptop.get("/api/todos/").status_code == 200
    assert _code(laptop.delete(f"/api/sessions/{listed[1]['id']}/")) == (404, "NOT_FOUND")


def test_a_session_ends_when_idle_or_old(accounts: Server) -> None:
    client = _sign_up(accounts, "mallory")
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        seen = conn.execute("SELECT seen_time FROM sessions").fetchone()
        # A use (once the process's second of trust is over) counts as activity.
        wait_until(
            lambda: client.get("/api/todos/").status_code == 200
            and conn.execute("SELECT seen_time FROM sessions").fetchone() != seen
        )
        # Unused for longer than SESSION_IDLE_SECONDS: over.
        conn.execute("UPDATE sessions SET seen_time = now() - interval '15 days'")
        wait_until(lambda: client.get("/api/todos/").status_code == 401)
    again = _client(accounts)
    assert _sign_in(again, "mallory").status_code == 200
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        # Past SESSION_MAX_SECONDS, however recently used.
        conn.execute("UPDATE sessions SET expires_time = now() - interval '1 second'")
        wait_until(lambda: again.get("/api/todos/").status_code == 401)
        # A sign-in clears the person's dead sessions.
        assert _sign_in(again, "mallory").status_code == 200
        (count,) = conn.execute("SELECT count(*) FROM sessions").fetchone()  # type: ignore[misc]
    assert count == 1


def test_short_sessions_end_by_the_clock(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", session_idle_seconds=0.5) as server:
        client = _sign_up(server, "niaj")
        assert client.get("/api/auth/me").status_code == 200
        wait_until(lambda: client.get("/api/auth/me").status_code == 401, timeout=10)


def test_a_new_password_ends_every_other_session(accounts: Server) -> None:
    here = _sign_up(accounts, "olivia")
    there = _client(accounts)
    assert _sign_in(there, "olivia").status_code == 200
    change = {"current": "not the password", "new": "a new password"}
    assert _code(here.post("/api/auth/password", json=change)) == (401, "UNAUTHENTICATED")
    assert here.post("/api/auth/password", json={**change, "current": PASSWORD}).status_code == 204
    assert _code(there.get("/api/todos/")) == (401, "UNAUTHENTICATED")
    assert here.get("/api/todos/").status_code == 200
    assert _sign_in(_client(accounts), "olivia", PASSWORD).status_code == 401
    assert _sign_in(_client(accounts), "olivia", "a new password").status_code == 200


def test_personal_access_tokens(accounts: Server) -> None:
    client = _sign_up(accounts, "peggy")
    created = client.post("/api/tokens/", json={"name": "backup script", "expires_in_days": 30})
    assert created.status_code == 201
    secret = created.json()["secret"]
    token = created.json()["token"]
    assert secret.startswith("gt_") and len(secret) == 46
    assert token["name"] == "backup script" and token["expires_time"] is not None
    assert client.get("/api/tokens/").json() == [token]  # the secret is shown once only
    with psycopg.connect(accounts.dsn) as conn:
        rows = conn.execute("SELECT secret_hash, to_jsonb(t)::text FROM access_tokens t").fetchall()
    assert rows[0][0] == hashlib.sha256(secret.encode()).digest()
    assert secret not in rows[0][1]

    # A script: no cookie, no Origin needed.
    bearer = {"Authorization": f"Bearer {secret}"}
    me = httpx.get(accounts.url + "/api/auth/me", headers=bearer).json()
    assert me["person"]["username"] == "peggy"
    assert httpx.post(accounts.url + "/api/todos/", json={"title": "by script"}, headers=bearer).status_code == 201
    answer = httpx.post(accounts.url + "/graphql", json={"query": "{ todos { title } }"}, headers=bearer)
    assert answer.json() == {"data": {"todos": [{"title": "by script"}]}}
    assert client.get("/api/tokens/").json()[0]["used_time"] is not None

    assert _code(client.post("/api/tokens/", json={"name": " "})) == (422, "BAD_USER_INPUT")
    assert _code(client.post("/api/tokens/", json={"name": "x", "expires_in_days": 0})) == (422, "BAD_USER_INPUT")
    assert client.delete(f"/api/tokens/{token['id']}/").status_code == 204
    assert _code(httpx.get(accounts.url + "/api/todos/", headers=bearer)) == (401, "UNAUTHENTICATED")
    assert client.get("/api/tokens/").json() == []


def test_a_cookie_write_needs_our_origin(db_dsn: str) -> None:
    allowed = "https://app.example"
    with serving(db_dsn, auth="accounts", allowed_origins=(allowed,)) as server:
        client = _sign_up(server, "quinn")
        cookie = {"todos_session": client.cookies["todos_session"]}
        post: dict[str, Any] = {"json": {"title": "x"}, "cookies": cookie}
        assert _code(httpx.post(server.url + "/api/todos/", **post)) == (403, "FORBIDDEN")
        foreign = {"Origin": "https://evil.example"}
        assert _code(httpx.post(server.url + "/api/todos/", headers=foreign, **post)) == (403, "FORBIDDEN")
        mutation = {"query": 'mutation { createTodo(input: {title: "csrf"}) { id } }'}
        refused = httpx.post(server.url + "/graphql", json=mutation, headers=foreign, cookies=cookie)
        assert _code(refused) == (403, "FORBIDDEN")
        assert _code(httpx.post(server.url + "/api/auth/sign-out", headers=foreign, cookies=cookie)) == (
            403, "FORBIDDEN"
        )
        assert httpx.get(server.url + "/api/todos/", cookies=cookie).json() == []  # nothing ran; reads need none
        for origin in (server.url, allowed):
            answer = httpx.post(server.url + "/api/todos/", headers={"Origin": origin}, **post)
            assert answer.status_code == 201
        # A bearer credential is not ambient: no Origin needed.
        token = client.post("/api/tokens/", json={"name": "t"}).json()["secret"]
        answer = httpx.post(server.url + "/api/todos/", json={"title": "y"}, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201


@pytest.mark.parametrize("how", ["COOKIE_SECURE", "HTTPS behind a trusted proxy"])
def test_the_cookie_is_secure_and_host_only_over_https(db_dsn: str, how: str) -> None:
    if how == "COOKIE_SECURE":
        settings: dict[str, Any] = {"cookie_secure": True}
        headers: dict[str, str] = {}
    else:
        settings = {"forwarded_allow_ips": ("127.0.0.1",)}
        headers = {"X-Forwarded-Proto": "https"}
    with serving(db_dsn, auth="accounts", **settings) as server:
        body = {"username": "rupert", "password": PASSWORD}
        signed_up = httpx.post(server.url + "/api/auth/sign-up", json=body, headers=headers)
        cookie = signed_up.headers["set-cookie"]
        assert cookie.startswith("__Host-todos_session=") and "; Secure" in cookie
        secret = cookie.split(";")[0].split("=", 1)[1]
        assert httpx.get(server.url + "/api/auth/me", headers=headers, cookies={"__Host-todos_session": secret}).status_code == 200
        # The plain name is what another site could set over HTTP: not taken here.
        assert httpx.get(server.url + "/api/auth/me", headers=headers, cookies={"todos_session": secret}).status_code == 401


def test_the_service_token_is_no_person(accounts: Server) -> None:
    assert httpx.get(accounts.url + "/api/auth/me", headers=BEARER).json() == {"mode": "accounts", "person": None}
    assert httpx.post(accounts.url + "/api/todos/", json={"title": "svc"}, headers=BEARER).status_code == 201
    for path in ("/api/sessions/", "/api/tokens/"):
        assert _code(httpx.get(accounts.url + path, headers=BEARER)) == (403, "FORBIDDEN")


def test_open_mode_has_no_accounts(server: Server) -> None:
    me = httpx.get(server.url + "/api/auth/me")
    assert me.json() == {"mode": "open", "person": {"id": str(LOCAL.id), "username": "local"}}
    for path in ("/api/auth/sign-up", "/api/auth/sign-in"):
        response = httpx.post(server.url + path, json={"username": "local", "password": PASSWORD})
        assert _code(response) == (404, "NOT_FOUND")
    for path in ("/api/sessions/", "/api/tokens/"):
        assert _code(httpx.get(server.url + path)) == (404, "NOT_FOUND")
    assert httpx.get(server.url + "/api/todos/").status_code == 200


def test_passwd_lets_local_sign_in(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    run = subprocess.run(
        [sys.executable, "-m", "graphql_todos.cli", "passwd", "local"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, env=env, check=True,
    )
    assert run.stdout.strip() == "password set for local; their sessions ended"
    with serving(db_dsn, auth="accounts") as server:
        client = _client(server)
        assert _sign_in(client, "local").json() == {"person": {"id": str(LOCAL.id), "username": "local"}}
    short = subprocess.run(
        [sys.executable, "-m", "graphql_todos.cli", "passwd", "local"],
        input="short\n", capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert short.returncode == 2
    assert "password must be from 8 to 256 characters" in short.stderr


def test_a_proxy_naming_no_ip_address_still_signs_in(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts", forwarded_allow_ips=("127.0.0.1",)) as server:
        client = _client(server, **{"X-Forwarded-For": "unknown"})
        body = {"username": "sybil", "password": PASSWORD}
        assert client.post("/api/auth/sign-up", json=body).status_code == 201
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT address FROM sessions").fetchall() == [(None,)]


def test_numbered_mutations_are_each_persons_own(accounts: Server) -> None:
    # One Idempotency-Key, three principals: each applies its own, none gets
    # another's stored reply, and each reads back only its own verdicts.
    key = {"Idempotency-Key": '"6f1c2a52-1d0e-4c7b-9a57-3f1e0f0f0a01:1"'}
    alice, bob = _sign_up(accounts, "alice"), _sign_up(accounts, "bob")
    service = httpx.Client(base_url=accounts.url, headers=BEARER, timeout=10)
    created = {}
    for name, client in (("alice", alice), ("bob", bob), ("service", service)):
        first = client.post("/api/todos/", json={"title": name}, headers=key)
        again = client.post("/api/todos/", json={"title": name}, headers=key)
        assert first.status_code == again.status_code == 201, first.text
        assert first.content == again.content
        created[name] = first.json()["id"]
    assert len(set(created.values())) == 3
    verdicts = alice.get("/api/mutations/6f1c2a52-1d0e-4c7b-9a57-3f1e0f0f0a01/").json()
    assert [v["todo"]["title"] for v in verdicts] == ["alice"]


def test_a_wrong_bearer_credential_beside_a_session_cookie_is_refused(accounts: Server) -> None:
    """The first bearer credential decides (Authorization, then ?token=, then
    the cookie): a revoked token sent from a signed-in browser must not act
    as the cookie's person. Another scheme (a proxy's Basic) is not ours."""
    client = _sign_up(accounts, "ruth")
    created = client.post("/api/tokens/", json={"name": "old"}).json()
    assert client.delete(f"/api/tokens/{created['token']['id']}/").status_code == 204
    for wrong in (f"Bearer {created['secret']}", "Bearer gt_" + "x" * 43, "Bearer not-a-token"):
        refused = client.get("/api/todos/", headers={"Authorization": wrong})
        assert refused.status_code == 401 and _code(refused) == (401, "UNAUTHENTICATED"), wrong
    assert client.get("/api/todos/", headers={"Authorization": "Basic cnV0aDp4"}).status_code == 200
    assert client.get("/api/todos/").status_code == 200

    cookie = {"Cookie": f"todos_session={client.cookies['todos_session']}", "Origin": accounts.url}
    url = accounts.url.replace("http", "ws", 1) + "/api/todos/"
    with connect(url + "?token=wrong", additional_headers=cookie) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(url, additional_headers=cookie) as ws:  # the cookie alone: in
        assert client.post("/api/todos/", json={"title": "seen"}).status_code == 201
        assert json.loads(ws.recv(timeout=5))["todo"]["title"] == "seen"


def _answer(ws: Connection) -> dict[str, Any]:
    """The next message but keep-alives."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=5))
        if message["type"] not in ("ka", "ping", "pong"):
            return message


def _me(ws: Connection, protocol: str) -> str:
    """Whose socket it is: `me`'s username, asked over it."""
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    ws.send(json.dumps({"id": "me", "type": start, "payload": {"query": "{ me { username } }"}}))
    answer = _answer(ws)
    assert answer["type"] in ("next", "data"), answer
    return str(answer["payload"]["data"]["me"]["username"])


def _graphql_connect(server: Server, protocol: str, headers: dict[str, str]) -> Connection:
    return connect(server.ws_url + "/graphql", subprotocols=[Subprotocol(protocol)], additional_headers=headers)


def _graphql_socket(server: Server, protocol: str, headers: dict[str, str], payload: dict[str, str]) -> str:
    """Who a GraphQL socket with these upgrade headers and connection_init
    payload acts for, or how it is refused."""
    with _graphql_connect(server, protocol, headers) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        said = ""
        try:
            answer = _answer(ws)
            if answer["type"] == "connection_error":  # the legacy protocol's, before its close
                said = f"{answer['payload']['extensions']['code']}, "
                ws.recv(timeout=5)
            assert answer["type"] == "connection_ack", answer
        except ConnectionClosed as closed:
            return said + f"closed {closed.rcvd.code if closed.rcvd else None}"
        return _me(ws, protocol)


# Each GraphQL WebSocket protocol, and how it refuses a credential.
BOTH_PROTOCOLS = pytest.mark.parametrize(
    ("protocol", "refused"),
    [("graphql-transport-ws", "closed 4401"), ("graphql-ws", "UNAUTHENTICATED, closed 4403")],
)


@BOTH_PROTOCOLS
def test_a_graphql_socket_takes_the_first_bearer_credential_over_its_cookie(
    accounts: Server, protocol: str, refused: str
) -> None:
    """The first bearer credential decides on a GraphQL WebSocket too: one
    in connection_init's payload over the upgrade's cookie (a browser that
    sends a revoked token must not act as the cookie's person), the upgrade's
    Authorization over the payload. The socket is then held by the credential
    that decided: revoking it ends the socket, signing the cookie out does not."""
    ruth = _sign_up(accounts, "ruth")
    revoked = ruth.post("/api/tokens/", json={"name": "old"}).json()
    assert ruth.delete(f"/api/tokens/{revoked['token']['id']}/").status_code == 204
    sam = _sign_up(accounts, "sam")
    sams = sam.post("/api/tokens/", json={"name": "script"}).json()
    cookie = {"Cookie": f"todos_session={ruth.cookies['todos_session']}", "Origin": accounts.url}

    def bearer(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    for wrong in (revoked["secret"], "gt_" + "x" * 43, "not-a-token"):
        assert _graphql_socket(accounts, protocol, cookie, bearer(wrong)) == refused, wrong
    assert _graphql_socket(accounts, protocol, cookie, bearer(sams["secret"])) == "sam"
    # Without a bearer credential in the payload the cookie stands (a Basic one is not ours).
    assert _graphql_socket(accounts, protocol, cookie, {}) == "ruth"
    assert _graphql_socket(accounts, protocol, cookie, {"Authorization": "Basic cnV0aDp4"}) == "ruth"
    # The upgrade's Authorization comes first: the payload is passed over, even a valid one.
    assert _graphql_socket(accounts, protocol, {**cookie, **bearer(sams["secret"])}, bearer("junk")) == "sam"
    assert _graphql_socket(accounts, protocol, bearer(revoked["secret"]), bearer(sams["secret"])) == refused

    with _graphql_connect(accounts, protocol, cookie) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": bearer(sams["secret"])}))
        assert _answer(ws)["type"] == "connection_ack"
        assert ruth.post("/api/auth/sign-out").status_code == 204
        assert _me(ws, protocol) == "sam"  # the cookie's end is not this socket's
        assert sam.delete(f"/api/tokens/{sams['token']['id']}/").status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # past `me`'s complete
                _answer(ws)
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token revoked")


@BOTH_PROTOCOLS
def test_open_mode_s_graphql_socket_takes_the_token_in_the_upgrade_or_the_payload(
    db_dsn: str, protocol: str, refused: str
) -> None:
    """AUTH=open has no cookie and one token: either place lets a socket in, as before accounts."""
    junk = {"Authorization": "Bearer junk"}
    with serving(db_dsn, token=TOKEN) as server:
        assert _graphql_socket(server, protocol, BEARER, junk) == "local"
        assert _graphql_socket(server, protocol, junk, BEARER) == "local"
        assert _graphql_socket(server, protocol, {}, BEARER) == "local"
        assert _graphql_socket(server, protocol, junk, junk) == refused
