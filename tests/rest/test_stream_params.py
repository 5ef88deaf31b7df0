"""The change stream of /api/todos/ (an event stream, a RESTSocket) carries
every change: it refuses the list read's filter and page (?completed=,
?limit=, ?offset=) with the reason, as the list read refuses a malformed one,
rather than stream every change to a client that asked for some."""

from __future__ import annotations

import httpx
import pytest
from websockets.sync.client import connect

from tests.helpers import Server, wait_until
from tests.rest.test_resources import TODOS, close_frame

LIST_READ_ONLY = ["completed=true", "completed=false", "completed=junk", "limit=5", "offset=0", "after=0&completed=true"]


@pytest.mark.parametrize("query", LIST_READ_ONLY)
def test_the_event_stream_refuses_a_list_read_s_parameters(server: Server, query: str) -> None:
    name = query.rpartition("&")[2].partition("=")[0]
    response = httpx.get(f"{server.url}{TODOS}?{query}", headers={"accept": "text/event-stream"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert response.json()["error"]["message"].startswith(f"{name} ")
    wait_until(lambda: server.subscriber_count() == 0)


@pytest.mark.parametrize("query", LIST_READ_ONLY)
def test_the_changes_socket_refuses_a_list_read_s_parameters(server: Server, query: str) -> None:
    name = query.rpartition("&")[2].partition("=")[0]
    with connect(f"{server.ws_url}{TODOS}?{query}", open_timeout=5) as ws:
        code, reason = close_frame(ws)
    assert (code, reason.partition(" ")[0]) == (4400, name)
    wait_until(lambda: server.subscriber_count() == 0)


def test_the_list_read_still_takes_them(client: httpx.Client) -> None:
    assert client.get(f"{TODOS}?completed=true&limit=5&offset=0").status_code == 200
