"""Latency statistics: one :class:`Summary` per list of timings (seconds in, ms out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgeort.errors import UsageError

__all__ = ["Summary", "ratio", "summarize"]


@dataclass(frozen=True, slots=True)
class Summary:
    """Latency over ``n`` runs, in milliseconds; ``throughput`` is inferences per second."""

    n: int
    median_ms: float
    mean_ms: float
    stdev_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    throughput: float

    def to_json(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(seconds: Sequence[float], *, batch: int = 1) -> Summary:
    """Statistics of per-run wall times in seconds. ``batch`` samples per run."""
    if len(seconds) == 0:
        raise UsageError("no timings to summarise: run at least once")
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p90, p95, p99 = np.percentile(ms, [90, 95, 99])
    mean = float(ms.mean())
    return Summary(
        n=int(ms.size),
        median_ms=float(np.median(ms)),
        mean_ms=mean,
        stdev_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        throughput=1000.0 * batch / mean if mean > 0 else float("inf"),
    )


def ratio(value: float, baseline: float) -> float:
    """``baseline / value``: how many times faster ``value`` is (> 1 means faster)."""
    if value <= 0:
        return float("inf")
    return baseline / value
