"""Subscription events executed once per distinct subscription, not once per
subscriber.

The hub gives every subscriber the same Change (and the same Todo inside it).
Subscribers whose operations are the same document (the same object, thanks
to the parser cache) with the same variables get the same result for the
same event, so the first one executes it and serializes the data once
(an orjson Fragment); the rest reuse those bytes. This holds because no
resolver below a subscription reads per-connection context: a field that
does (a viewer, permissions) must add that to the key.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from typing import Any, ClassVar, cast

import orjson
from graphql import ExecutionResult, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from .models import Change, Todo
from .streams import LiveRows

_SHARED_ROOTS = (Change, Todo, LiveRows)


class _Done:
    """A per-event executor whose result is already known."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> Any:
        return self.result


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    # Shared by every executor of one schema (see bounded()): that is the point.
    results: ClassVar[OrderedDict[tuple[int, int, bytes], tuple[Any, Any, Any]]]
    # Big enough for every distinct subscription of one burst of changes.
    cache_size: ClassVar[int]
    # Executions that went into the cache, in the whole process.
    executions: ClassVar[int] = 0

    @classmethod
    def bounded(cls, cache_size: int) -> type[SharedEventExecutor]:
        """An executor class with a cache of its own: Strawberry takes a class,
        and makes an instance of it per operation."""
        return type(cls.__name__, (cls,), {"results": OrderedDict(), "cache_size": cache_size})

    def build_per_event_executor(self, payload: Any) -> Any:
        # A hit needs no per-event copy of the executor at all.
        if (key := self._shared_key(payload)) is not None:
            cached = self.results.get(key)
            # The entry holds root and operation, so their ids cannot be
            # reused by other objects while it lives.
            if cached is not None and cached[0] is payload and cached[1] is self.operation:
                self.results.move_to_end(key)
                return _Done(cached[2])
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        key = self._shared_key(self.root_value)
        result = super().execute_operation(serially)
        if key is None:
            return result
        if inspect.isawaitable(result):
            return self._store_later(key, result)
        return self._store(key, cast(ExecutionResult, result))

    def _shared_key(self, root: Any) -> tuple[int, int, bytes] | None:
        if self.operation.operation is not OperationType.SUBSCRIPTION or not isinstance(
            root, _SHARED_ROOTS
        ):
            return None
        return (id(root), id(self.operation), self._variables_key)

    @functools.cached_property
    def _variables_key(self) -> bytes:
        # Computed once per subscription: per-event executors are copies of
        # this one and inherit the cached value.
        return orjson.dumps(self.variable_values.coerced, option=orjson.OPT_SORT_KEYS, default=str)

    async def _store_later(self, key: tuple[int, int, bytes], pending: Any) -> Any:
        return self._store(key, await pending)

    def _store(self, key: tuple[int, int, bytes], result: ExecutionResult) -> ExecutionResult:
        SharedEventExecutor.executions += 1
        if not result.errors:
            result = ExecutionResult(data=orjson.Fragment(orjson.dumps(result.data)))  # type: ignore[arg-type]
        self.results[key] = (self.root_value, self.operation, result)
        if len(self.results) > self.cache_size:
            self.results.popitem(last=False)
        return result

