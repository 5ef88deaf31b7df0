"""What internals/prometheus_client.py assumes of prometheus_client's histogram."""

from __future__ import annotations

import inspect
import math

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from graphql_todos.internals.prometheus_client import observe

# Below, on and above the bounds, the first and the last, negative, and past the last.
_AMOUNTS = (-1.0, 0.0, 0.004, 0.005, 0.0051, 0.3, 1.0, 9.99, 10.0, 11.0, 1e9, math.inf)


def _histograms(registry: CollectorRegistry) -> tuple[Histogram, Histogram]:
    plain = Histogram("plain_seconds", "A histogram.", registry=registry)
    labelled = Histogram("labelled_seconds", "By route.", ["route"], registry=registry, buckets=(0.1, 1.0))
    return plain, labelled


def test_observe_counts_as_the_histograms_own_observe() -> None:
    # The same exposition (every bucket, count and sum), amount by amount.
    theirs_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    theirs, ours = _histograms(theirs_registry), _histograms(ours_registry)
    for amount in _AMOUNTS:
        theirs[0].observe(amount)
        theirs[1].labels("/a").observe(amount)
        observe(ours[0], amount)
        observe(ours[1].labels("/a"), amount)
        assert _exposed(ours_registry) == _exposed(theirs_registry)


def _exposed(registry: CollectorRegistry) -> list[bytes]:
    """What /metrics shows of `registry`, but when each histogram was made."""
    return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]


def test_histogram_observe_adds_to_the_sum_and_the_first_bucket_at_or_above() -> None:
    source = inspect.getsource(Histogram.observe)
    assert "self._sum.inc(amount)" in source
    assert "for i, bound in enumerate(self._upper_bounds):\n            if amount <= bound:\n                self._buckets[i].inc(1)" in source
    histogram = Histogram("h_seconds", "A histogram.", registry=CollectorRegistry(), buckets=(1.0, 2.0))
    assert histogram._upper_bounds == [1.0, 2.0, math.inf]  # type: ignore[attr-defined]
