"""internals/strawberry_view.parse_content_type: Strawberry's media type
parser (email.message's), which its views run on every GraphQL POST's
Content-Type and every Accept of a request it parses, in time linear in the
header, and with the same answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.http import async_base_view, streaming
from strawberry.http.parse_content_type import parse_content_type as strawberrys

from graphql_todos.internals import strawberry_view
from tests.edge.test_slowparse_headers import GROWTH, exchange, growth, server_cpu
from tests.helpers import TOKEN, Server, errors_logged, serving

_PIECES = [";", '"', "\\", "=", " ", "*", "0", "1", "'", "%", "41", "a", "A", "application/json", "multipart/mixed",
           "boundary", "subscriptionSpec"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
def test_media_types_are_read_as_strawberry_reads_them(text: str) -> None:
    try:
        expected = strawberrys(text)
    except (ValueError, TypeError):  # a parameter email cannot decode: the media type alone
        expected = (strawberry_view.parse_content_type(text)[0], {})
    assert strawberry_view.parse_content_type(text) == expected


def test_strawberry_parses_its_media_types_with_the_doors_parser() -> None:
    """Assumes: Strawberry's view (the body's Content-Type) and its multipart
    transport (the Accept) look parse_content_type up in their modules at each call."""
    assert async_base_view.parse_content_type is strawberry_view.parse_content_type
    assert streaming.parse_content_type is strawberry_view.parse_content_type
    assert "parse_content_type" in async_base_view.AsyncBaseHTTPView.parse_http_body.__code__.co_names
    assert "parse_content_type" in streaming.MultipartSubscriptionTransport.accepts.__code__.co_names


def test_a_media_type_is_read_in_time_linear_in_its_length() -> None:
    # email counted the quotes again from the parameter's start at each `;` inside them.
    assert growth(lambda n: async_base_view.parse_content_type('application/json; a="' + ";" * n), 4096) < GROWTH


@pytest.mark.parametrize("text", ["text/plain; a*" + "9" * 5000 + "=x", "text/plain; a*=x; a*0=y"])
def test_a_parameter_email_cannot_decode_leaves_the_media_type(text: str) -> None:
    assert strawberry_view.parse_content_type(text) == ("text/plain", {})


@pytest.fixture(scope="module")
def server(module_db_dsn: str) -> Iterator[Server]:
    with serving(module_db_dsn, token=TOKEN) as srv:
        yield srv


def _post(content_type: str) -> bytes:
    body = b'{"query":"{todos{id}}"}'
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def test_a_graphql_posts_content_type_is_refused_in_time_linear_in_its_length(server: Server) -> None:
    def refused(n: int) -> None:
        assert exchange(server, _post('text/plain; a="' + ";" * n)).startswith(b"HTTP/1.1 400 ")

    assert growth(refused, 12_000, clock=server_cpu(server)) < GROWTH


def test_a_content_type_email_cannot_decode_is_refused_not_a_500(server: Server) -> None:
    with errors_logged() as errors:
        answer = exchange(server, _post("text/plain; a*" + "9" * 5000 + "=x"))
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"Unsupported content type" in answer
    assert errors == []
