"""Latency statistics on known samples."""

from __future__ import annotations

import math

import pytest

from edgeort.errors import UsageError
from edgeort.measure.stats import ratio, summarize


def test_summary_of_1_to_100_ms() -> None:
    s = summarize([i / 1000.0 for i in range(1, 101)])
    assert s.n == 100
    assert s.median_ms == pytest.approx(50.5)
    assert s.mean_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p95_ms == pytest.approx(95.05)
    assert s.p99_ms == pytest.approx(99.01)
    assert (s.min_ms, s.max_ms) == (pytest.approx(1.0), pytest.approx(100.0))
    assert s.throughput == pytest.approx(1000.0 / 50.5)
    assert s.stdev_ms == pytest.approx(math.sqrt(sum((i - 50.5) ** 2 for i in range(1, 101)) / 99))


def test_single_sample_and_batch_throughput() -> None:
    s = summarize([0.004], batch=8)
    assert s.stdev_ms == 0.0 and s.median_ms == pytest.approx(4.0)
    assert s.throughput == pytest.approx(2000.0)
    assert s.to_json()["median_ms"] == 4.0


def test_empty_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        summarize([])


def test_ratio() -> None:
    assert ratio(2.0, 4.0) == 2.0
    assert ratio(0.0, 1.0) == math.inf
