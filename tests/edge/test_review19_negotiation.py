"""review19: an Accept header whose quoted value is never closed. Splitting
the list at commas outside quoted values re-scanned the rest of the header
from every opening quote that found no closing one: `"\\"\\"\\"...` cost time
quadratic in its length, about 1 s of the event loop for 8 KB and 19 s for
32 KB on a JSON-only REST GET (JsonOnly reads every GET's Accept). An
unclosed quoted value now runs to the end of the header, as the
quoted-string grammar reads it, so each character is looked at about once."""

from __future__ import annotations

import time

import httpx
import pytest

from graphql_todos.edge.negotiation import JSON, MAX_PARAMETERS, MULTIPART, _ranges, choose
from tests.helpers import Server

HOSTILE = '"\\' * 16000


def test_an_unclosed_quoted_value_runs_to_the_end_of_the_header() -> None:
    # Its comma is inside it: one element, which does not parse; the rest is ignored with it.
    assert choose('multipart/mixed;boundary="a, application/json', (MULTIPART, JSON)) is None
    assert choose('application/json, text/html;level="1, */*', (JSON,)) == JSON
    # A lone backslash at its end, and one before its last character.
    assert choose('application/json, text/html;x="\\', (JSON,)) == JSON
    assert choose('application/json, text/html;x="a\\"', (JSON,)) == JSON


def test_a_hostile_header_is_split_in_one_pass() -> None:
    """Counted, not timed: the elements found (one per unclosed quoted
    value), where the re-scanning split found one per backslash."""
    assert len(_ranges.__wrapped__(HOSTILE)) == 0
    import re

    from graphql_todos.edge import negotiation

    assert len(negotiation._ELEMENT.findall(HOSTILE)) == 1
    assert len(negotiation._ELEMENT.findall('a, "b\\", c')) == 2
    assert re.fullmatch(negotiation._ELEMENT, '"' * 3) is not None


def test_a_json_only_get_with_a_hostile_accept_is_refused_at_once(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        began = time.monotonic()
        answer = client.get("/api/openapi.json", headers={"accept": HOSTILE})
        assert answer.status_code == 406
        assert answer.json()["error"]["code"] == "NOT_ACCEPTABLE"
        # 19 s before (quadratic); a few milliseconds now.
        assert time.monotonic() - began < 3.0


def test_a_range_with_more_parameters_than_any_real_one_is_ignored_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """mimeparse copies the rest of a range at each `;` it splits at: 64 KB of
    `;a` was 210 ms of the loop (quadratic). Counted, not timed: such a range
    never reaches mimeparse, and is ignored as one that does not parse."""
    from graphql_todos.edge import negotiation

    parsed: list[str] = []
    parse = negotiation.mimeparse.parse_media_range

    def counted(text: str) -> tuple[str, str, dict[str, str]]:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(negotiation.mimeparse, "parse_media_range", counted)
    most = "application/json" + ";q=1" * MAX_PARAMETERS
    assert choose(most, (JSON,)) == JSON
    assert parsed == [most]
    hostile = "application/json" + ";a" * 32000
    assert _ranges.__wrapped__(hostile) == ()
    assert choose(hostile + ", text/html", (JSON,)) is None
    assert choose(hostile + ", */*;q=0.5", (JSON,)) == JSON
    assert parsed == [most, "text/html", "*/*;q=0.5"]
