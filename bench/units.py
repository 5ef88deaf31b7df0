"""How the report shows times and ratios."""

from __future__ import annotations

import math


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    digits = 2 if abs(seconds) < 0.01 else 1 if abs(seconds) < 0.1 else 0
    return f"{seconds * 1000:,.{digits}f} ms"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f} us"


def ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}"
