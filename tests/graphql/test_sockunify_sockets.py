"""REQUESTS_IN_FLIGHT is the server's setting, on both protocols, through a
real server (README, "One socket's limits"): the bound and the refusal's
text are the setting's, and each refusal is counted in /metrics as
MAX_SUBSCRIPTIONS' are."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.core.test_metrics import scrape, value
from tests.graphql.test_socket_order import CHANGES_FROM_NOW, TITLES, _HeldNow, _Socket
from tests.helpers import serving, wait_until


def _refusals(url: str, limit: str) -> float:
    return value(scrape(url), "graphql_todos_limit_refusals_total", limit=limit)


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_queries_and_mutations_in_flight_are_bounded_by_the_setting_and_each_refusal_counted(
    db_dsn: str, protocol: str
) -> None:
    with serving(db_dsn, max_subscriptions=1, requests_in_flight=3) as server:
        ws = _Socket(server, protocol)
        try:
            before = _refusals(server.url, "requests_per_socket"), _refusals(server.url, "subscriptions_per_socket")
            with _HeldNow(server) as now:
                ws.send("s", CHANGES_FROM_NOW)
                wait_until(lambda: len(now.asks) == 1)
                for n in range(3):
                    ws.send(f"q{n}", TITLES)  # in flight: they wait behind the opening held
                ws.send("over", TITLES)
                refusal = ws.recv(5)
                assert refusal["id"] == "over" and refusal["type"] == "error", refusal
                payload = refusal["payload"]
                error = payload[0] if isinstance(payload, list) else payload
                assert error == {
                    "message": "More than 3 queries and mutations in flight on this socket",
                    "extensions": {"code": "TOO_MANY_REQUESTS"},
                }
                now.release()
                answered: set[str] = set()

                def every(message: Any) -> bool:
                    if message["type"] == ws.result and message["id"].startswith("q"):
                        answered.add(message["id"])
                    return len(answered) == 3

                assert ws.until(every, 10.0), answered
            ws.send("after", TITLES)
            assert "todos" in json.dumps(ws.result_of("after"))
            after = _refusals(server.url, "requests_per_socket"), _refusals(server.url, "subscriptions_per_socket")
            assert (after[0] - before[0], after[1] - before[1]) == (1.0, 0.0)
        finally:
            ws.close()
