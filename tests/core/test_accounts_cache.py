"""What a process trusts without a lookup (core/people.Accounts: a credential
looked up in the last CACHE_SECONDS), against a revocation that comes while a
lookup of that credential is out."""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg_pool import AsyncConnectionPool

from graphql_todos.core.people import Accounts, Client, Principal
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
