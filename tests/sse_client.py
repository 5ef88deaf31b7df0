"""A small Server-Sent Events reader over httpx, for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


class Events:
    """The events of one response, each a dict of its fields (a comment is
    {"comment": text}). A block with no data is no event, as an EventSource
    dispatches none (a stream's opening `id:`)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def __iter__(self) -> Iterator[dict[str, str]]:
        fields: dict[str, str] = {}
        for line in self._lines:
            if line == "":
                if "data" in fields or "comment" in fields:
                    yield fields
                fields = {}
            elif line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    def next(self) -> dict[str, str]:
        """The next event, skipping heartbeats."""
        return next(e for e in self if "comment" not in e)


@contextmanager
def events(url: str, headers: dict[str, str] | None = None, json: Any = None) -> Iterator[Events]:
    """GET url (POST when json is given) as an event stream."""
    method = "GET" if json is None else "POST"
    headers = {"accept": "text/event-stream", **(headers or {})}
    with httpx.stream(method, url, json=json, headers=headers, timeout=10) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "text/event-stream"
        yield Events(response)
