"""What becomes of a GraphQL document's errors and limits: an error's code
(from its type or tag, never its message), what a client is shown of an
unexpected one, and the limits a document is checked against before it runs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import orjson
from graphql import ASTValidationRule, GraphQLError, GraphQLSyntaxError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension

from graphql_todos.core.errors import DomainError, ErrorCode
from graphql_todos.core.settings import Settings
from graphql_todos.graphql.limits import LimitExceeded, limits_rule
from graphql_todos.internals.strawberry import CheapMaskErrors, over_token_limit, tag


def error_code(error: GraphQLError) -> ErrorCode:
    """What an error is, from its type or the tag its maker gave it, never
    from its message."""
    if isinstance(error.original_error, DomainError):
        return error.original_error.code
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    tagged = (error.extensions or {}).get("code")
    if isinstance(tagged, str) and tagged in ErrorCode.__members__:
        return ErrorCode[tagged]
    return ErrorCode.INTERNAL_SERVER_ERROR


def refused_limit(error: GraphQLError) -> str | None:
    """The document limit (metrics.LIMITS) an error refuses a document for, if any."""
    if isinstance(error, LimitExceeded):
        return error.limit
    return "tokens" if over_token_limit(error) else None


def is_unexpected(error: GraphQLError) -> bool:
    return error_code(error) is ErrorCode.INTERNAL_SERVER_ERROR


def validation_failed(errors: Iterable[GraphQLError]) -> None:
    """Whatever validation reports is a validation failure."""
    for error in errors:
        tag(error, ErrorCode.GRAPHQL_VALIDATION_FAILED)


class TagValidationErrors(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        validation_failed(self.execution_context.pre_execution_errors or ())


class MaskUnexpected(CheapMaskErrors):
    """Errors the client did not cause lose their message and details."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        tag(masked, ErrorCode.INTERNAL_SERVER_ERROR)
        return masked


@dataclass(frozen=True)
class QueryLimits:
    """What a document may be: at most `max_tokens` tokens (the parser stops
    there), and valid under `rules` besides the schema's. The compiled fast
    path parses and validates with the same."""

    max_tokens: int | None = None
    rules: tuple[type[ASTValidationRule], ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        """Documents over the limits are refused before anything runs: the token
        limit stops the parser itself, the others are validation rules."""
        rules: list[type[ASTValidationRule]] = [
            limits_rule(settings.max_depth, settings.max_aliases, settings.max_fields),
        ]
        if not settings.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        return cls(settings.max_tokens, tuple(rules))

    def extensions(self) -> list[Callable[[], SchemaExtension]]:
        limits: list[Callable[[], SchemaExtension]] = [functools.partial(AddValidationRules, list(self.rules))]
        if self.max_tokens is not None:
            limits.append(functools.partial(MaxTokensLimiter, max_token_count=self.max_tokens))
        return limits


NO_LIMITS = QueryLimits()


def revoked_result(reason: str) -> bytes:
    """The last result of a subscription whose session or token was revoked
    (edge/revocation.py): an UNAUTHENTICATED error, as a stream that fails."""
    error = {"message": reason, "extensions": {"code": ErrorCode.UNAUTHENTICATED.name}}
    return orjson.dumps({"data": None, "errors": [error]})
