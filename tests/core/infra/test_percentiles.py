"""The benchmarks' percentile: nearest rank, a value that was measured."""

from __future__ import annotations

import random

import pytest

from core.infra.percentiles import median, percentile


def test_p99_of_a_hundred_samples_is_the_99th_smallest_not_the_maximum() -> None:
    samples = [float(n) for n in range(1, 101)]
    random.Random(1).shuffle(samples)
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 95) == 95.0


@pytest.mark.parametrize(
    ("n", "p", "rank"),
    [(1, 99, 1), (10, 99, 10), (200, 99, 198), (125, 99, 124), (300, 95, 285), (7, 50, 4)],
)
def test_rank_is_ceil_of_p_times_n(n: int, p: float, rank: int) -> None:
    samples = [float(value) for value in range(1, n + 1)]
    assert percentile(list(reversed(samples)), p) == float(rank)


def test_median_of_an_even_count_averages_the_middle_pair() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([5.0]) == 5.0


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_outside_the_range_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0, 2.0], p)


def test_no_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="no samples"):
        median([])
