"""Percentiles of measured samples: the one definition every benchmark reports with.

Nearest rank: the p-th percentile of n samples is the ceil(p / 100 * n)-th smallest (counting
from 1). It is always a value that was measured, never an interpolation between two, and it
only reaches the maximum when p demands it: with n = 100, p99 is the 99th smallest and p100
the largest. The median is the usual one (the mean of the two middle values of an even count).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank `p`-th percentile (0 < p <= 100) of `samples`, in any order."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is outside (0, 100]")
    ordered = sorted(samples)
    # round() first: 0.99 * 100 is 99.00000000000001 in floating point, and ceil would say 100.
    rank = math.ceil(round(p / 100 * len(ordered), 9))
    return ordered[max(1, rank) - 1]


def median(samples: Sequence[float]) -> float:
    """The median of `samples` (the mean of the two middle values of an even count)."""
    if not samples:
        raise ValueError("no samples")
    return float(statistics.median(samples))
