"""How the report shows times and ratios."""

from __future__ import annotations

import math
import statistics


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    digits = 2 if abs(seconds) < 0.01 else 1 if abs(seconds) < 0.1 else 0
    return f"{seconds * 1000:,.{digits}f} ms"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f} us"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}"


def paired(a: list[float], b: list[float]) -> float:
    """a / b as the median of the per-round ratios. Each round runs the servers
    back to back, so the machine's drift between rounds (30% on this shared
    one) cancels within a round's ratio, where one slow round of either side
    can decide a ratio of the medians. The medians' ratio when rounds do not pair."""
    if len(a) != len(b) or not all(b):
        return statistics.median(a) / statistics.median(b)
    return statistics.median(x / y for x, y in zip(a, b, strict=True))
