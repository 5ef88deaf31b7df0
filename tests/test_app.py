"""What the app answers without its web client, and how it runs."""

from __future__ import annotations

import gc

import httpx

from graphql_todos.app import GC_THRESHOLDS
from tests.helpers import Server, make_server


def test_without_the_web_client_the_pages_say_how_to_get_it(db_dsn: str) -> None:
    server = make_server(db_dsn, web_dist=None)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for page in (client.get("/"), client.get("/graphql", headers={"accept": "text/html"})):
                assert (page.status_code, page.headers["content-type"]) == (
                    503, "text/html; charset=utf-8"
                )
                assert "<code>make web</code>" in page.text
                assert "<code>make wheel</code>" in page.text
    finally:
        server.stop()


def test_the_server_collects_garbage_with_its_own_thresholds(server: Server) -> None:
    # Set once the lifespan has started (the test server runs in this process).
    assert gc.get_threshold() == GC_THRESHOLDS
