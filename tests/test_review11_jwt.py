"""review11: a JWT names a person by username (JWT_USER_CLAIM), so what else
can claim that name, and what two first sights of one name at once do."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import psycopg
import pytest

from tests.helpers import Server, serving, wait_until
from tests.test_lists import CREATE, Caller

SECRET = "an-hs256-secret-for-the-tests-0123456789"


@pytest.fixture
def server(db_dsn: str) -> Iterator[Server]:
    with serving(db_dsn, auth="accounts", jwt_secret=SECRET) as srv:
        yield srv


def _me(server: Server, username: str) -> httpx.Response:
    token = jwt.encode({"sub": username, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    return httpx.get(server.url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)


# Not fixed here: the rule needs to know how a person was made (a JWT's
# first sight, a sign-up, `passwd`), which people does not record (a column
# and its migration, core/sql/). Refusing every JWT that names a person with
# a password was tried and breaks test_auth_matrix_accounts, whose JWT person
# is given a password by hand to exercise /api/auth/password.
@pytest.mark.xfail(strict=True, reason="sign-up takes a name a JWT will name: needs people's origin (a migration)")
def test_a_name_taken_by_a_password_sign_up_is_not_the_identity_provider_s(server: Server) -> None:
    # mallory signs up as the name the identity provider will one day give wendy:
    # wendy's JWT must not make her mallory, who knows the password.
    mallory = Caller(server, "wendy")
    mallory.data(CREATE, t="bait", l=None)
    answer = _me(server, "wendy")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "UNAUTHENTICATED")
    # A name first made by a JWT stays the JWT's: no one signs up as it.
    assert _me(server, "xavier").status_code == 200
    taken = httpx.post(server.url + "/api/auth/sign-up", json={"username": "xavier", "password": "correct horse battery"})
    assert taken.status_code == 409


def test_two_first_sights_of_one_name_at_once_are_one_person(server: Server) -> None:
    # Another request's insert of the name, not yet committed when ours runs:
    # ours waits for it on the unique index, then must find that person.
    with psycopg.connect(server.dsn) as other:
        made = other.execute("INSERT INTO people (username) VALUES ('yolanda') RETURNING id").fetchone()
        assert made is not None
        answers: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: answers.append(_me(server, "yolanda")))
        thread.start()
        wait_until(lambda: other.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone() == (1,))
        other.commit()
    thread.join(20)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["person"]["id"] == str(made[0])
