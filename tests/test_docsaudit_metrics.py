"""Every metric /metrics serves is explained in docs/reliability.md's
"Observability" (the README sends readers there for the figures)."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import graphql_todos.core.metrics  # noqa: F401 - registers every metric
from tests.helpers import ROOT

OBSERVABILITY = (ROOT / "docs" / "reliability.md").read_text().split("\n## 7. Observability\n", 1)[1].split("\n## ", 1)[0]


def test_every_metric_is_in_the_observability_section() -> None:
    # A counter is served with _total after the name it is registered under.
    written = {name.removesuffix("_total") for name in re.findall(r"`(graphql_todos_\w+)`", OBSERVABILITY)}
    served = {metric.name for metric in REGISTRY.collect() if metric.name.startswith("graphql_todos_")}
    assert served, "no graphql_todos metric registered"
    assert sorted(served - written) == []
