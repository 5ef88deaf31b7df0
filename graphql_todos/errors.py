"""Domain errors: what the service refuses, with a code every transport maps."""

from __future__ import annotations


class DomainError(Exception):
    """An error the client caused; `extensions` is picked up by graphql-core."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {"code": self.code}


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"
