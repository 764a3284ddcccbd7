"""``edgeort bench``: latency, throughput, session-creation time and memory of each target.

Each target gets a fresh session (its creation is timed), ``warmup`` untimed runs, then
``runs`` timed runs or as many as fit in ``duration`` seconds. RSS is sampled with psutil
before the session exists and after every run (outside the timed region); the report
gives the peak and the growth over the pre-session baseline.

With a baseline (``--compare``), the original fp32 model also runs through a plain
``InferenceSession`` with default options, and each result carries its speed-up over it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from edgeort.errors import UsageError
from edgeort.feeds import generate_feeds, load_feeds
from edgeort.hardware.ep import ep_node_counts
from edgeort.measure.stats import Summary, ratio, summarize
from edgeort.measure.targets import CPU, Knobs, Target, create_session

__all__ = [
    "BenchReport",
    "BenchResult",
    "Progress",
    "baseline_target",
    "bench",
    "bench_target",
    "feeds_for",
    "switch_to",
    "time_runs",
]

Progress = Callable[[int, int | None, float], None]  # (runs done, total or None, elapsed s)

_MB = 1024.0 * 1024.0


@dataclass(frozen=True, slots=True)
class BenchResult:
    label: str
    ep: str
    simulated: bool
    knobs: Mapping[str, Any]
    session_create_ms: float
    warmup: int
    summary: Summary
    peak_rss_mb: float
    rss_growth_mb: float
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    placement: Mapping[str, int] = field(default_factory=dict)  # nodes per EP, as run

    @property
    def ep_label(self) -> str:
        """The EP column: what the nodes really ran on, not only what was asked for."""
        short = self.ep.replace("ExecutionProvider", "")
        sim = " (sim)" if self.simulated else ""
        total = sum(self.placement.values())
        took = self.placement.get(self.ep, 0)
        if not total or self.ep == CPU or took == total:
            return short + sim
        if took == 0:
            return f"CPU ({short}{sim} took no node)"
        return f"{short}{sim} {took}/{total} nodes, rest CPU"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ep": self.ep,
            "ep_label": self.ep_label,
            "placement": dict(self.placement),
            "simulated": self.simulated,
            "settings": dict(self.knobs),
            "session_create_ms": round(self.session_create_ms, 3),
            "warmup": self.warmup,
            "latency": self.summary.to_json(),
            "peak_rss_mb": round(self.peak_rss_mb, 2),
            "rss_growth_mb": round(self.rss_growth_mb, 2),
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
        }


@dataclass(frozen=True, slots=True)
class BenchReport:
    results: tuple[BenchResult, ...]
    baseline: BenchResult | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)  # label -> why not run

    def speedup(self, result: BenchResult) -> float | None:
        """Baseline median / result median (> 1: faster than plain fp32 ORT)."""
        if self.baseline is None:
            return None
        return ratio(result.summary.median_ms, self.baseline.summary.median_ms)

    def to_json(self) -> dict[str, Any]:
        rows = []
        for r in self.results:
            row = r.to_json()
            speed = self.speedup(r)
            if speed is not None:
                row["speedup_vs_baseline"] = round(speed, 3)
            rows.append(row)
        return {
            "results": rows,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "skipped": dict(self.skipped),
        }


def feeds_for(
    session: ort.InferenceSession,
    *,
    input_files: Mapping[str, str | Path] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Feeds for ``session``: the given ``.npy`` files, generated data for the rest."""
    inputs = session.get_inputs()
    feeds = load_feeds(input_files or {}, inputs)
    missing = [arg for arg in inputs if arg.name not in feeds]
    feeds.update(generate_feeds(missing, dims=dims, seed=seed))
    return feeds


SETTLE_S = 0.03  # longer than an idle ORT thread pool keeps spinning


def switch_to(session: Any, feeds: Mapping[str, np.ndarray], *, warmup: int = 1) -> None:
    """Before timing a block of runs of ``session`` among several sessions: wait until
    the thread pools of the sessions run before it stop spinning, then run it untimed so
    its own threads are awake. Without this, interleaved rounds on a 2-core machine time
    each session against the spinning workers of the previous one (measured: an int8
    variant at 7.8 ms right after the fp32 model's runs, 4.5 ms after a 30-50 ms pause,
    3.1 ms timed alone) and the comparison is of the order, not the sessions."""
    time.sleep(SETTLE_S)
    for _ in range(warmup):
        session.run(None, dict(feeds))


def time_runs(
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    *,
    runs: int | None = None,
    duration: float | None = None,
    on_progress: Progress | None = None,
    on_run: Callable[[], None] | None = None,
) -> list[float]:
    """Wall time of each ``session.run`` in seconds: ``runs`` of them, or until
    ``duration`` seconds have passed (at least one)."""
    if runs is None and duration is None:
        raise UsageError("give a number of runs or a duration", option="--runs")
    if runs is not None and runs < 1:
        raise UsageError(f"--runs {runs}: expected at least 1", option="--runs")
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t0)
        if on_run is not None:
            on_run()
        elapsed = time.perf_counter() - start
        if on_progress is not None:
            on_progress(len(times), runs, elapsed)
        if runs is not None and len(times) >= runs:
            return times
        if duration is not None and elapsed >= duration:
            return times


def bench_target(
    target: Target,
    *,
    knobs: Knobs | None = None,
    input_files: Mapping[str, str | Path] | None = None,
    dims: Mapping[str, int] | None = None,
    warmup: int = 5,
    runs: int | None = 50,
    duration: float | None = None,
    on_progress: Progress | None = None,
) -> BenchResult:
    """Benchmark one target; see the module docstring for what is measured."""
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = [rss0]

    def sample() -> None:
        peak[0] = max(peak[0], proc.memory_info().rss)

    t0 = time.perf_counter()
    session = create_session(target, knobs, record_placement=target.ep != CPU)
    create_ms = (time.perf_counter() - t0) * 1000.0
    counts = ep_node_counts(session) if target.ep != CPU else {}
    sample()
    feeds = feeds_for(session, input_files=input_files, dims=dims)
    for _ in range(max(0, warmup)):
        session.run(None, feeds)
    sample()
    times = time_runs(
        session, feeds, runs=runs, duration=duration, on_progress=on_progress, on_run=sample
    )
    settings = {**target.knobs.describe(), **(knobs.describe() if knobs else {})}
    return BenchResult(
        label=target.label,
        ep=target.ep,
        simulated=target.simulated,
        knobs=settings,
        session_create_ms=create_ms,
        warmup=max(0, warmup),
        summary=summarize(times),
        peak_rss_mb=peak[0] / _MB,
        rss_growth_mb=(peak[0] - rss0) / _MB,
        input_shapes={k: tuple(v.shape) for k, v in feeds.items()},
        placement=counts,
    )


def baseline_target(model_path: str | Path) -> Target:
    """The original fp32 model through a plain CPU session with ORT's default options."""
    path = Path(model_path)
    return Target(label=f"baseline: {path.name} (fp32, default options)", model_path=path, ep=CPU)


def bench(
    targets: Sequence[Target],
    *,
    compare: str | Path | None = None,
    skipped: Mapping[str, str] | None = None,
    knobs: Knobs | None = None,
    input_files: Mapping[str, str | Path] | None = None,
    dims: Mapping[str, int] | None = None,
    warmup: int = 5,
    runs: int | None = 50,
    duration: float | None = None,
    on_progress: Progress | None = None,
) -> BenchReport:
    """Benchmark every target (and the fp32 baseline when ``compare`` names it); the
    other arguments are :func:`bench_target`'s."""

    def one(target: Target) -> BenchResult:
        return bench_target(
            target,
            knobs=knobs,
            input_files=input_files,
            dims=dims,
            warmup=warmup,
            runs=runs,
            duration=duration,
            on_progress=on_progress,
        )

    results = tuple(one(t) for t in targets)
    baseline = one(baseline_target(compare)) if compare else None
    return BenchReport(results=results, baseline=baseline, skipped=dict(skipped or {}))
