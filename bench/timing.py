"""Percentiles and the summary lines every benchmark prints (stdlib only).

Benchmarks import it as `timing` (bench/ is on sys.path when a bench file runs as a script).
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated between the two nearest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95.0)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def summary(label: str, seconds: Sequence[float], width: int = 44) -> str:
    """`label  n=N  median X ms  p95 Y ms  min Z ms  max W ms` on one line."""
    return (
        f"{label:<{width}} n={len(seconds):<3} median {ms(median(seconds))}  "
        f"p95 {ms(p95(seconds))}  min {ms(min(seconds, default=math.nan))}  "
        f"max {ms(max(seconds, default=math.nan))}"
    )


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.inf


def machine() -> str:
    """Cores and load average: numbers from a busy machine are noisier and slower."""
    one, five, fifteen = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {one:.1f} / {five:.1f} / {fifteen:.1f}"
