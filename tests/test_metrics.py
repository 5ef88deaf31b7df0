"""/metrics in Prometheus text format: per process, and summed over the
workers of `serve --workers 2`."""

from __future__ import annotations

import json
import os
import signal

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.gql import CHANGES, create, subscribed
from tests.helpers import Serve, Server, wait_until


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_streams_deliveries_lag_and_requests(server: Server, client: httpx.Client) -> None:
    # The counters are per process, and the tests run many apps in one: compare.
    before = scrape(server.url)
    events = {"accept": "text/event-stream"}
    with (
        subscribed(server, CHANGES) as ws,
        connect(server.ws_url + "/api/todos/") as rest,
        httpx.stream("GET", server.url + "/api/todos/", headers=events, timeout=10) as stream,
    ):
        assert stream.status_code == 200
        wait_until(lambda: server.subscriber_count() >= 3)
        during = scrape(server.url)
        assert value(during, "graphql_todos_open_connections", transport="graphql-ws") >= 1
        assert value(during, "graphql_todos_open_connections", transport="restsocket") >= 1
        assert value(during, "graphql_todos_open_connections", transport="sse") >= 1
        create(client, "counted")
        ws.next_data()
        assert json.loads(rest.recv(timeout=5))["op"] == "created"
        after = scrape(server.url)
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert value(delta, "graphql_todos_events_delivered_total") >= 2
    assert value(delta, "graphql_todos_commit_to_delivery_seconds_count") >= 2
    assert value(delta, "graphql_todos_http_request_seconds_count", route="/graphql", method="POST") == 1
    assert value(after, "graphql_todos_journal_entries") == 1
    assert value(after, "graphql_todos_journal_oldest_cursor") == 0
    assert ("graphql_todos_pool_in_use", ()) in after


def test_listener_reconnects_are_counted(server: Server) -> None:
    before = value(scrape(server.url), "graphql_todos_listener_reconnects_total")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (server.hub.backend_pid,))
    wait_until(lambda: value(scrape(server.url), "graphql_todos_listener_reconnects_total") == before + 1, timeout=10)


def test_workers_metrics_add_up(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "WEB_DIST": ""}
    serve = Serve(env, args=["--workers", "2"])
    try:
        # No keep-alive: each request may land on either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=serve.url, limits=limits, timeout=10) as client:
            for n in range(10):
                response = client.post("/graphql", json={"query": f'mutation {{ createTodo(input: {{title: "{n}"}}) {{ id }} }}'})
                assert "errors" not in response.json()
        samples = scrape(serve.url)
        assert value(samples, "graphql_todos_http_request_seconds_count", route="/graphql", method="POST") == 10
        assert value(samples, "graphql_todos_journal_entries") == 10
    finally:
        serve.stop(signal.SIGTERM)
