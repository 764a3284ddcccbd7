"""Doctor checks that run the model: thread contention, arena growth, host<->device copies.

They report findings from measured *ratios* (medians of interleaved runs, RSS deltas),
never absolute times, and each is bounded by a small time budget. The thread-contention
verdict is a pure function of its per-round ratios (:func:`contention_verdict`), so its
decision is tested on given numbers; the real measurement lives in
``benchmarks/doctor_contention.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeort.errors import ProviderError
from edgeort.measure.bench import feeds_for, switch_to, time_runs
from edgeort.measure.findings import Finding
from edgeort.measure.graphinfo import GraphInfo
from edgeort.measure.targets import CPU, DEVICE_EPS, Knobs, Target, create_session

__all__ = [
    "CONTENTION_CONFIDENCE",
    "CONTENTION_RATIO",
    "ContentionVerdict",
    "check_arena",
    "check_copies",
    "check_threads",
    "contention_finding",
    "contention_verdict",
    "median_interval",
]

CONTENTION_RATIO = 1.3  # N-thread over 1-thread latency above this is a finding...
CONTENTION_CONFIDENCE = 0.95  # ...when this interval of the median ratio lies wholly above it
ARENA_RETAINED_MB = 8.0  # memory kept after large shapes above this is a finding


@dataclass(frozen=True, slots=True)
class ContentionVerdict:
    """The thread-contention decision from per-round ratios (N-thread over 1-thread).

    ``status``: ``found`` when the whole confidence interval of the median ratio lies above
    the threshold, ``ok`` when it lies at or below it, ``inconclusive`` when it straddles
    the threshold (or too few rounds were measured to bound the median).
    """

    status: str
    median: float
    low: float
    high: float
    rounds: int
    threshold: float
    confidence: float


def median_interval(
    values: Sequence[float], confidence: float = CONTENTION_CONFIDENCE
) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``values``.

    Order statistics ``x(k)`` and ``x(n+1-k)`` with the largest ``k`` whose coverage,
    ``1 - 2 * P(Binomial(n, 1/2) < k)``, is at least ``confidence``. With too few values
    for that (fewer than 6 at 95 %), the interval is unbounded: ``(-inf, inf)``.
    """
    x = sorted(float(v) for v in values)
    n = len(x)
    alpha = 1.0 - confidence
    k, below = 0, 0.0  # below: P(B < k + 1) for the candidate k + 1
    while k < n // 2:
        below += math.comb(n, k) / 2.0**n
        if 2.0 * below > alpha:
            break
        k += 1
    if k == 0:
        return -math.inf, math.inf
    return x[k - 1], x[n - k]


def contention_verdict(
    ratios: Sequence[float],
    *,
    threshold: float = CONTENTION_RATIO,
    confidence: float = CONTENTION_CONFIDENCE,
) -> ContentionVerdict:
    """Decide on per-round ratios of N-thread over 1-thread latency (see ContentionVerdict).

    The margin is the interval: a median near the threshold, or rounds that disagree,
    give ``inconclusive`` rather than a verdict that flips from one run to the next.
    """
    low, high = median_interval(ratios, confidence)
    median = float(np.median(ratios)) if len(ratios) else math.nan
    if low > threshold:
        status = "found"
    elif high <= threshold:
        status = "ok"
    else:
        status = "inconclusive"
    return ContentionVerdict(status, median, low, high, len(ratios), threshold, confidence)


def _interleaved_round_ratios(
    one: ort.InferenceSession,
    many: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    *,
    budget_s: float,
    min_rounds: int,
    max_rounds: int = 200,
    runs: int = 5,
) -> list[float]:
    """Per-round ratio of the N-thread median over the 1-thread median. Each round times
    ``runs`` runs of each session back to back, alternating which goes first, so a change
    of load on the machine hits both sides of a round alike."""
    ratios: list[float] = []
    start = time.perf_counter()
    while len(ratios) < min_rounds or time.perf_counter() - start < budget_s:
        pair = (one, many) if len(ratios) % 2 == 0 else (many, one)
        times = {}
        for s in pair:
            switch_to(s, feeds)
            times[id(s)] = float(np.median(time_runs(s, feeds, runs=runs)))
        m1, mn = times[id(one)], times[id(many)]
        ratios.append(mn / m1 if m1 > 0 else 1.0)
        if len(ratios) >= max_rounds:
            break
    return ratios


def check_threads(
    target: Target, cores: int, *, budget_s: float = 2.0, min_rounds: int = 15
) -> Finding:
    """Does latency rise from 1 intra-op thread to ``cores``? Measured in interleaved
    rounds for ``budget_s`` (at least ``min_rounds``), decided by :func:`contention_verdict`."""
    label = target.label
    if cores < 2:
        return Finding("thread-contention", "skipped", label, "one core: nothing to compare")
    one = create_session(target, Knobs(threads=1))
    many = create_session(target, Knobs(threads=cores))
    feeds = feeds_for(one)
    for s in (one, many):
        for _ in range(3):
            s.run(None, feeds)
    ratios = _interleaved_round_ratios(one, many, feeds, budget_s=budget_s, min_rounds=min_rounds)
    return contention_finding(label, cores, ratios)


def contention_finding(label: str, cores: int, ratios: Sequence[float]) -> Finding:
    """The thread-contention Finding for measured per-round ``ratios``."""
    v = contention_verdict(ratios)
    pct = f"{v.confidence:.0%}"
    interval = f"{v.low:.2f}-{v.high:.2f}"
    evidence = {
        "threads": [1, cores],
        "rounds": v.rounds,
        "ratio_n_over_1": round(v.median, 3),
        # None when too few rounds bound the median (JSON has no infinity)
        "interval": [round(v.low, 3), round(v.high, 3)] if math.isfinite(v.low) else None,
        "confidence": v.confidence,
        "threshold": v.threshold,
        "round_ratios": [round(r, 3) for r in ratios],
    }
    if v.status == "ok":
        return Finding(
            "thread-contention",
            "ok",
            label,
            f"{cores} threads are not slower than 1 (ratio {v.median:.2f}, {pct} interval "
            f"{interval}, {v.rounds} rounds)",
            evidence=evidence,
        )
    if v.status == "inconclusive":
        return Finding(
            "thread-contention",
            "inconclusive",
            label,
            (
                f"no verdict: ratio {v.median:.2f}, but its {pct} interval {interval} over "
                f"{v.rounds} rounds straddles {v.threshold:g}"
                if evidence["interval"] is not None
                else f"no verdict: ratio {v.median:.2f} over {v.rounds} rounds, too few for "
                f"a {pct} interval"
            ),
            detail=(
                "The rounds disagree too much (a busy machine, or a ratio near the "
                "threshold) to call it either way; run doctor again on an idle machine."
            ),
            evidence=evidence,
        )
    return Finding(
        "thread-contention",
        "found",
        label,
        f"latency rises with threads: {cores} threads take {v.median:.2f}x the time of 1 "
        f"({pct} interval {interval}, {v.rounds} rounds)",
        detail=(
            "The median over interleaved rounds is higher with more intra-op threads: the "
            "model's nodes are too small to split, so every node pays a thread-pool "
            "dispatch and sync (and spinning threads compete with other work)."
        ),
        fix=(
            "Run it with intra_op_num_threads=1 (profile: [session] intra_op_threads = 1; "
            "edgeort.load(..., threads=1)), or let `edgeort tune` pick threads and "
            "spinning for this device; turning spinning off "
            "(session.intra_op.allow_spinning=0) helps when other work shares the cores."
        ),
        severity="warning",
        evidence=evidence,
    )


def _usable_dims(
    target: Target, dims_list: Sequence[Mapping[str, int]]
) -> tuple[list[Mapping[str, int]], str]:
    """The leading ``dims_list`` entries the model accepts (a model with, say, a fixed
    position table refuses longer sequences), and the first refusal."""
    session = create_session(target, Knobs(cpu_arena=False))
    usable: list[Mapping[str, int]] = []
    for dims in dims_list:
        try:
            session.run(None, feeds_for(session, dims=dims))
        except Exception as exc:  # ORT's own error types
            return usable, str(exc).splitlines()[0][:200]
        usable.append(dims)
    return usable, ""


def _arena_run(
    target: Target, dims_list: Sequence[Mapping[str, int]], shrink: bool
) -> tuple[float, float]:
    """(MB kept after the big shapes, MB of peak growth), measured in a fresh process
    (:mod:`edgeort.measure.arena_child` says why)."""
    job = {
        "model": str(target.model_path),
        "ep": target.ep,
        "provider_options": dict(target.provider_options),
        "dims_list": [dict(d) for d in dims_list],
        "shrink": shrink,
    }
    cmd = [sys.executable, "-m", "edgeort.measure.arena_child"]
    proc = subprocess.run(cmd, input=json.dumps(job), capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ProviderError(f"{target.label}: arena measurement failed: {why}", provider=target.ep)
    data = json.loads(lines[-1])
    return float(data["kept_mb"]), float(data["grew_mb"])


MAX_ELEMENTS = 1 << 24  # largest input check_arena feeds (64 MB of float32)


def check_arena(
    target: Target, graph: GraphInfo, *, sizes: Sequence[int] = (1, 128, 512, 2048)
) -> Finding:
    """Memory the arena keeps after larger dynamic shapes, and whether shrinkage helps."""
    label = target.label
    if not graph.dynamic_inputs:
        return Finding("arena-growth", "skipped", label, "all input shapes are fixed")
    inputs = create_session(target).get_inputs()
    if all(all(isinstance(d, int) for d in arg.shape) for arg in inputs):
        return Finding(
            "arena-growth",
            "skipped",
            label,
            "all input shapes are fixed (free dimension overrides)",
        )
    wanted = [d for d in (_dims_for(inputs, size) for size in sizes) if d is not None]
    dims_list, refused = _usable_dims(target, wanted)
    if len(dims_list) < 2:
        why = f"the model refuses larger shapes: {refused}" if refused else "memory cap"
        return Finding("arena-growth", "skipped", label, f"no larger shape to try ({why})")
    kept, grew = _arena_run(target, dims_list, shrink=False)
    kept_shrunk, _ = _arena_run(target, dims_list, shrink=True)
    evidence = {
        "dynamic_inputs": list(graph.dynamic_inputs),
        "sizes": [max(d.values()) for d in dims_list],
        "peak_growth_mb": round(grew, 2),
        "kept_mb": round(kept, 2),
        "kept_mb_with_shrinkage": round(kept_shrunk, 2),
    }
    if kept < ARENA_RETAINED_MB:
        return Finding(
            "arena-growth",
            "ok",
            label,
            f"memory returns after large shapes (kept {kept:.1f} MB)",
            evidence=evidence,
        )
    return Finding(
        "arena-growth",
        "found",
        label,
        f"the CPU arena keeps {kept:.1f} MB after inputs of larger shapes",
        detail=(
            f"Growing the dynamic dims to {evidence['sizes']} raised RSS by {grew:.1f} MB; back "
            f"at the smallest shape {kept:.1f} MB stayed allocated (the BFC arena keeps chunks "
            f"for reuse). With the run option memory.enable_memory_arena_shrinkage=cpu:0 it "
            f"kept {kept_shrunk:.1f} MB."
        ),
        fix=(
            "Pass RunOptions with add_run_config_entry('memory.enable_memory_arena_shrinkage', "
            "'cpu:0') on runs after a large input, or create the session with "
            "enable_cpu_mem_arena=False; enable_mem_pattern=False avoids per-shape memory "
            "plans when shapes keep changing. Fixing the shapes removes the growth."
        ),
        severity="warning",
        evidence=evidence,
    )


def _dims_for(inputs: Sequence[Any], size: int) -> dict[str, int] | None:
    """Dynamic dims for one step: a leading (batch) dim stays 1 when an input has other
    dynamic dims; the rest take ``size``. None when an input would exceed MAX_ELEMENTS."""
    dims: dict[str, int] = {}
    for arg in inputs:
        dynamic = [i for i, d in enumerate(arg.shape) if not isinstance(d, int)]
        for axis in dynamic:
            value = 1 if axis == 0 and len(dynamic) > 1 else size
            name = arg.shape[axis]
            dims[name if isinstance(name, str) else f"{arg.name}:{axis}"] = value
    for arg in inputs:
        n = 1
        for axis, d in enumerate(arg.shape):
            if isinstance(d, int):
                n *= max(d, 1)
            else:
                n *= dims.get(d if isinstance(d, str) else f"{arg.name}:{axis}", 1)
        if n > MAX_ELEMENTS:
            return None
    return dims


def check_copies(
    target: Target,
    subgraphs: Sequence[tuple[str, Sequence[tuple[str, str, str]]]] | None,
    session: Any = None,
) -> Finding:
    """Host<->device copies per run for a device EP: inputs in, outputs out, plus one
    pair per extra partition boundary and every Memcpy node ORT inserted."""
    label = target.label
    if target.ep == CPU or target.ep not in DEVICE_EPS:
        return Finding("io-copies", "skipped", label, f"{target.ep} works in host memory")
    session = session or create_session(target)
    feeds = feeds_for(session)
    in_bytes = sum(a.nbytes for a in feeds.values())
    out_bytes = sum(np.asarray(o).nbytes for o in session.run(None, feeds))
    memcpy = [n for _e, nodes in subgraphs or () for n in nodes if n[1].startswith("Memcpy")]
    device_parts = sum(1 for e, _n in subgraphs or () if e == target.ep)
    evidence = {
        "input_bytes": in_bytes,
        "output_bytes": out_bytes,
        "memcpy_nodes": [n[0] for n in memcpy],
        "device_partitions": device_parts,
        "simulated": target.simulated,
    }
    sim = " (simulated here: the EP runs on the host CPU)" if target.simulated else ""
    return Finding(
        "io-copies",
        "found",
        label,
        f"{target.ep} copies {in_bytes / 1024:.1f} KiB in and {out_bytes / 1024:.1f} KiB out "
        f"per run{sim}",
        detail=(
            f"Inputs are copied host->device and outputs device->host on every run; "
            f"{device_parts} device partition(s) and {len(memcpy)} Memcpy node(s) add more "
            f"copies at each boundary."
        ),
        fix=(
            "Use IO binding: session.io_binding(), bind inputs/outputs as OrtValues "
            "allocated on the device (OrtValue.ortvalue_from_numpy(x, device, id)) and "
            "reuse them across runs; edgeort's Model exposes run_with_binding. Keep "
            "one partition (see ep-fallback) so no copies happen mid-graph."
        ),
        # Copies on a simulator are host memcpy: information, not a problem. On a real
        # device EP they cost every run: a warning.
        severity="info" if target.simulated else "warning",
        evidence=evidence,
    )
