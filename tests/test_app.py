"""What the app answers without its web client."""

from __future__ import annotations

import httpx

from tests.helpers import make_server


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
