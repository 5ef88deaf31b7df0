"""The front door (graphql/fast/front.py) with AUTH=accounts (docs/design/people.md,
section 7): a person's repeated read is answered from the replies kept, to
that person alone, and only while the process knows their credential to be
live: a revoked token, a signed-out or expired session gets the stack's 401
at once, and another process's revocation reaches the front door as it
reaches the stack. Whether the front door answered is read from its hit count."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import psycopg
import pytest

from graphql_todos.core.people import CACHE_SECONDS, Accounts, Principal
from tests.helpers import Server, serving, wait_until
from tests.leaks import Leaks, Wiretap, token
from tests.subscribers import Credential, new_token, revoke, sign_in

PASSWORD = "correct horse battery"
READ = {"query": "{ todos { id title } }"}
SLACK = 3.0  # what a loaded 2-core machine may add to a second


@pytest.fixture
def accounts(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts") as server:
        yield server


class Reader:
    """A signed-up person with one todo of their own, and a wiretap on all they are sent."""

    def __init__(self, server: Server, leaks: Leaks, name: str) -> None:
        self.server, self.name = server, name
        self.tap: Wiretap = leaks.tap(name)
        self.http = self.tap.client(server.url, headers={"Origin": server.url}, timeout=10)
        response = self.http.post("/api/auth/sign-up", json={"username": name, "password": PASSWORD})
        assert response.status_code == 201, response.text
        self.title = token(name)
        create = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }"
        made = self.http.post("/graphql", json={"query": create, "variables": {"t": self.title}})
        assert "errors" not in made.json(), made.text

    def credential(self, kind: str) -> Credential:
        return sign_in(self.server.url, self.tap, self.name, PASSWORD) if kind == "session" else new_token(self.http, "t")

    def read(self, credential: Credential, server: Server | None = None, rest: bool = False) -> httpx.Response:
        """The list read (GraphQL's, or REST's), the same bytes every time (a
        fresh client: no cookie jar), from our own origin (a cookie's POST must be)."""
        url = (server or self.server).url
        with self.tap.client(url, headers={**credential.headers(), "Origin": url}, timeout=10) as client:
            return client.get("/api/todos/") if rest else client.post("/graphql", json=READ)


def _hits(server: Server) -> int:
    return int(server.state("response_replies").hits)


def _read_twice(reader: Reader, credential: Credential, server: Server | None = None, rest: bool = False) -> bytes:
    """The second read is the front door's, with the first one's bytes, when
    both fell within the second the process trusts a lookup (CACHE_SECONDS):
    on a loaded machine a pair that took longer is read again, as its miss
    is the rule, not a fault. Each pair starts once the process has
    forgotten the credential, so that its first read looks it up (one
    remembered from before may expire between the two reads): no sooner,
    and no later than that (sleeping CACHE_SECONDS whole before each pair
    was some 20 s of this file)."""
    server = server or reader.server
    people: Accounts = server.state("accounts")
    for _ in range(5):
        wait_until(lambda: server.call(lambda: people.remembered(credential.secret)) is None, CACHE_SECONDS + SLACK)
        started = time.monotonic()
        first = reader.read(credential, server, rest)
        assert first.status_code == 200 and reader.title in first.text, first.text
        hits = _hits(server)
        again = reader.read(credential, server, rest)
        assert (again.status_code, again.content) == (200, first.content)
        if time.monotonic() - started < CACHE_SECONDS:
            assert _hits(server) == hits + 1, "the repeated read was not answered by the front door"
            return first.content
    raise AssertionError(f"no two reads within {CACHE_SECONDS} s in 5 tries: the machine is too busy to tell")


@pytest.mark.parametrize("rest", [False, True], ids=["graphql", "rest"])
@pytest.mark.parametrize("kind", ["session", "token"])
def test_a_persons_repeated_read_is_answered_from_the_front_to_them_alone(accounts: Server, kind: str, rest: bool) -> None:
    leaks = Leaks()
    ann, bob = Reader(accounts, leaks, "ann"), Reader(accounts, leaks, "bob")
    anns, bobs = ann.credential(kind), bob.credential(kind)
    for _ in range(2):
        _read_twice(ann, anns, rest=rest)
        _read_twice(bob, bobs, rest=rest)
    leaks.check({ann.title, bob.title}, {"ann": {ann.title}, "bob": {bob.title}})


def _unauthenticated(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("ending", ["token revoked", "session revoked", "signed out"])
def test_a_credential_ended_in_the_process_is_not_answered_from_the_front(accounts: Server, ending: str) -> None:
    ann = Reader(accounts, Leaks(), "ann")
    credential = ann.credential(ending.split()[0] if ending != "signed out" else "session")
    _read_twice(ann, credential)
    if ending == "signed out":
        with httpx.Client(base_url=accounts.url, headers={**credential.headers(), "Origin": accounts.url}) as client:
            assert client.post("/api/auth/sign-out").status_code == 204
    else:
        revoke(ann.http, credential)
    hits = _hits(accounts)
    answer = ann.read(credential)
    assert _unauthenticated(answer), answer.text
    assert _hits(accounts) == hits


def test_an_expired_session_is_not_answered_from_the_front(db_dsn: str) -> None:
    lifetime = 4.0  # long enough to read twice on a loaded machine
    with serving(db_dsn, auth="accounts", session_max_seconds=lifetime) as server:
        ann = Reader(server, Leaks(), "ann")
        hits = _hits(server)
        credential = ann.credential("session")
        # By then it has expired: the database's clock started it before now.
        expired = time.monotonic() + lifetime
        _read_twice(ann, credential)
        after = 0
        while time.monotonic() < expired + 1.5:
            sent = time.monotonic()
            answer = ann.read(credential)
            if sent > expired:
                assert _unauthenticated(answer), answer.text
                after += 1
            else:
                assert answer.status_code == 200 or _unauthenticated(answer), answer.text
            time.sleep(0.05)
        assert after, "no read was sent after the session expired"
        assert _hits(server) > hits + 1, "the reads up to its expiry were not answered by the front door"


@pytest.mark.parametrize("kind", ["session", "token"])
def test_a_credential_expired_in_the_database_is_not_answered_from_the_front(accounts: Server, kind: str) -> None:
    """No journal entry moves the mark: what ends the replies is the process's
    trust in its lookup, at most a second, as the stack's."""
    ann = Reader(accounts, Leaks(), "ann")
    credential = ann.credential(kind)
    _read_twice(ann, credential)
    table = "sessions" if kind == "session" else "access_tokens"
    with psycopg.connect(accounts.dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET expires_time = now() WHERE id = %s", (credential.id,))
    expired = time.monotonic()
    wait_until(lambda: _unauthenticated(ann.read(credential)), timeout=1.0 + SLACK, interval=0.02)
    assert time.monotonic() - expired < 1.0 + SLACK
    hits = _hits(accounts)
    for _ in range(5):
        assert _unauthenticated(ann.read(credential))
    assert _hits(accounts) == hits


def test_another_processs_revocation_reaches_the_front_as_it_reaches_the_stack(db_dsn: str) -> None:
    with serving(db_dsn, auth="accounts") as one, serving(db_dsn, auth="accounts") as two:
        ann = Reader(one, Leaks(), "ann")
        credential = ann.credential("token")
        _read_twice(ann, credential, two)
        revoke(ann.http, credential)
        revoked = time.monotonic()
        # Within a second on its own (the process trusts a lookup that long), at
        # once when its hub hears the revocation's journal entry.
        wait_until(lambda: _unauthenticated(ann.read(credential, two)), timeout=1.0 + SLACK, interval=0.02)
        assert time.monotonic() - revoked < 1.0 + SLACK
        hits = _hits(two)
        for _ in range(5):
            assert _unauthenticated(ann.read(credential, two))
        assert _hits(two) == hits


def test_a_revocation_heard_from_another_process_is_trusted_no_more_at_once(accounts: Server) -> None:
    """What the hub hands on from an access_revoked entry (app.py): the
    process forgets its lookup then, not at the end of the second it trusts it."""
    ann, bob = Reader(accounts, Leaks(), "ann"), Reader(accounts, Leaks(), "bob")
    anns, bobs = ann.credential("token"), bob.credential("token")
    people: Accounts = accounts.state("accounts")

    async def forgotten() -> tuple[Principal | None, Principal | None]:
        for credential in (anns, bobs):
            assert await people.authenticate(credential.secret) is not None
        people.revoked({"token": anns.id})
        return people.remembered(anns.secret), people.remembered(bobs.secret)

    theirs, others = accounts.run(forgotten())
    assert theirs is None
    assert others is not None and others.token_id is not None and str(others.token_id) == bobs.id


def test_a_jwt_is_left_to_the_stack(db_dsn: str) -> None:
    """The stack checks a JWT's signature and exp on every request: the
    front door neither keeps nor replays its answers."""
    secret = "an-hs256-secret-for-the-tests-0123456789"
    with serving(db_dsn, auth="accounts", jwt_secret=secret, sign_up="open") as server:
        bearer = jwt.encode({"sub": "wendy", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
        wendy = Credential("token", bearer, "")
        replies = server.state("response_replies")
        with httpx.Client(base_url=server.url, headers=wendy.headers(), timeout=10) as client:
            answers = [client.post("/graphql", json=READ) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200] * 3
        assert (replies.hits, len(replies)) == (0, 0)
