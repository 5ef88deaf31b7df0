"""The Error shape has one home (core/errors.py), which the app's answers
and the doors' answers before the app (internals/) both take."""

from __future__ import annotations

import http
import json

from graphql_todos.core import errors
from graphql_todos.edge import error_handlers
from graphql_todos.internals.uvicorn_websocket import error_json


def test_the_app_answers_in_cores_error_shape() -> None:
    assert error_handlers.error_body is errors.error_body


def test_an_answer_before_the_app_is_in_the_same_shape() -> None:
    status = http.HTTPStatus.BAD_REQUEST
    assert json.loads(error_json(status, "a “quoted” reason")) == errors.error_body(
        errors.ErrorCode.BAD_REQUEST, "a “quoted” reason"
    )
