"""prometheus_client's histogram, observed without its walk over the buckets
in Python (observe): a request's time went through up to fifteen bounds
compared one by one, a tenth of what a write's own request cycle runs."""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import Histogram


def observe(histogram: Histogram, amount: float) -> None:
    """`histogram.observe(amount)`, with no exemplar, for a histogram that
    can be observed (one without labels, or a labelled one's child).

    Assumes (tests/internals/test_prometheus_client.py pins it): observe adds
    the amount to `_sum` and 1 to the first of `_buckets` whose bound in
    `_upper_bounds` (ascending, +Inf last) is at or above it, each by `inc`,
    which takes the value's own lock (or writes the worker's file)."""
    histogram._sum.inc(amount)  # type: ignore[attr-defined]
    histogram._buckets[bisect_left(histogram._upper_bounds, amount)].inc(1)  # type: ignore[attr-defined]
