"""What a process trusts without a lookup (core/people.Accounts: a credential
looked up in the last CACHE_SECONDS), against a revocation that comes while a
lookup of that credential is out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.people import CACHE_SECONDS, REFRESH_AFTER, AccessToken, Accounts, Client, Principal
from graphql_todos.core.settings import Settings


def test_a_lookup_out_while_its_credential_is_revoked_is_not_kept(db_dsn: str) -> None:
    async def run() -> tuple[Principal | None, Principal | None]:
        async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
            accounts = Accounts(pool, Settings())
            person, _ = await accounts.sign_up("racer", "correct horse battery", Client("127.0.0.1", None))
            secret, token = await accounts.create_token(Principal(person), "t", None)
            looking = asyncio.create_task(accounts.authenticate(secret))
            await asyncio.sleep(0)  # the lookup's statement is sent
            # With the loop held (the lookup's answer waits unread), the
            # statement runs, then the token is deleted and the revocation
            # heard, as the hub hands on the journal's access_revoked.
            time.sleep(0.2)  # noqa: ASYNC251 - holding the loop is the point
            with psycopg.connect(db_dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM access_tokens WHERE id = %s", (token.id,))
            accounts.revoked({"token": str(token.id)})
            found = await looking
            return found, accounts.remembered(secret)

    found, remembered = asyncio.run(run())
    # The lookup answers what its statement saw (the request came before the
    # revocation), but keeps nothing: the next request looks again.
    assert found is not None and found.token_id is not None
    assert remembered is None


@asynccontextmanager
async def _signed_up(db_dsn: str, name: str) -> AsyncIterator[tuple[Accounts, str, str, AccessToken]]:
    """Accounts on a pool of their own, and a new person's (session secret,
    token secret, token), the token looked up once (so remembered)."""
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}) as pool:
        accounts = Accounts(pool, Settings())
        person, session = await accounts.sign_up(name, "correct horse battery", Client("127.0.0.1", None))
        secret, token = await accounts.create_token(Principal(person), "t", None)
        await accounts.authenticate(secret)
        yield accounts, session, secret, token


async def _refreshed(accounts: Accounts, secret: str) -> Principal | None:
    """remembered() past REFRESH_AFTER of its entry, which starts the background
    lookup; then once that lookup is done."""
    await asyncio.sleep(CACHE_SECONDS * REFRESH_AFTER + 0.05)
    assert accounts.remembered(secret, used=True) is not None  # still trusted while it is out
    while accounts._refreshing:
        await asyncio.sleep(0.01)
    return accounts.remembered(secret)


def test_a_credential_in_use_is_looked_up_again_before_it_runs_out(db_dsn: str) -> None:
    async def run() -> tuple[Principal | None, Principal | None]:
        async with _signed_up(db_dsn, "steady") as (accounts, _, secret, _):
            first = accounts.remembered(secret)
            # The same principal found again is the same object (front.py compares it per hit).
            assert await _refreshed(accounts, secret) is first
            # Past the first lookup's CACHE_SECONDS: the refresh's entry answers.
            await asyncio.sleep(CACHE_SECONDS * (1 - REFRESH_AFTER))
            return accounts.remembered(secret), await accounts.authenticate(secret)

    remembered, found = asyncio.run(run())
    assert remembered is not None and remembered == found


def test_a_background_lookup_forgets_a_credential_revoked_elsewhere(db_dsn: str) -> None:
    async def run() -> Principal | None:
        async with _signed_up(db_dsn, "revokee") as (accounts, _, secret, token):
            # Revoked by another process, its journal entry not heard here.
            async with accounts.pool.connection() as conn:
                await conn.execute("DELETE FROM access_tokens WHERE id = %s", (token.id,))
            return await _refreshed(accounts, secret)

    assert asyncio.run(run()) is None


def test_a_background_lookup_out_while_its_credential_is_revoked_keeps_nothing(db_dsn: str) -> None:
    async def run() -> Principal | None:
        async with _signed_up(db_dsn, "racer2") as (accounts, _, secret, token):
            await asyncio.sleep(CACHE_SECONDS * REFRESH_AFTER + 0.05)
            accounts.remembered(secret, used=True)  # the refresh starts; its statement is sent at the next await
            await asyncio.sleep(0)
            time.sleep(0.2)  # noqa: ASYNC251 - holding the loop: the statement runs before the delete
            with psycopg.connect(db_dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM access_tokens WHERE id = %s", (token.id,))
            accounts.revoked({"token": str(token.id)})
            while accounts._refreshing:
                await asyncio.sleep(0.01)
            return accounts.remembered(secret)

    assert asyncio.run(run()) is None


def test_no_background_lookup_of_a_session_or_of_a_secret_no_request_brought(db_dsn: str) -> None:
    async def run() -> tuple[bool, bool]:
        async with _signed_up(db_dsn, "idler") as (accounts, session, secret, _):
            await accounts.authenticate(session)
            await asyncio.sleep(CACHE_SECONDS * REFRESH_AFTER + 0.05)
            # A session's lookup is what marks it seen (its idle end): requests
            # the cache answered never moved that, nor does a refresh.
            accounts.remembered(session, used=True)
            session_refreshed = bool(accounts._refreshing)
            accounts.remembered(secret)  # asked, not used: a wait_until's poll
            return session_refreshed, bool(accounts._refreshing)

    assert asyncio.run(run()) == (False, False)
