"""``edgeort tune``: find the fastest session settings for a target on this device.

The space (:func:`tuning_space`): intra-op threads 1..physical cores, intra-op spinning
on/off, graph optimisation level (basic/extended/all), execution mode
(sequential/parallel), and EP knobs -- OpenVINO ``num_of_threads``/``num_streams``, QNN
``htp_performance_mode``. The search (:mod:`edgeort.measure.search`) is coordinate
descent on median latencies of interleaved runs, then successive halving among the best
three, inside a time budget. The winner is written atomically to the tune cache
(:func:`save_tuning`) at :func:`edgeort.runtime.tuning.tuning_cache_path` -- keyed by the
variant's sha256, the device fingerprint and the ORT version -- which
:func:`edgeort.load` reads. The JSON schema is in ``docs/doctor.md`` ("Tune cache").
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import psutil

from edgeort._fs import atomic_write_text, os_error_text, sha256_file
from edgeort.errors import CacheError, ModelError, UsageError
from edgeort.hardware.device import DeviceInfo
from edgeort.measure.bench import feeds_for, switch_to, time_runs
from edgeort.measure.search import Dimension, SearchResult, Space, coordinate_descent, key
from edgeort.measure.targets import SPINNING, Knobs, Target, create_session

__all__ = [
    "TUNE_SCHEMA",
    "ModelFileVariant",
    "SessionMeasure",
    "TuneResult",
    "knobs_from_point",
    "physical_cores",
    "save_tuning",
    "tune_target",
    "tuning_record",
    "tuning_space",
]

log = logging.getLogger(__name__)

TUNE_SCHEMA = 1
QNN_PERF_MODES = ("burst", "sustained_high_performance", "high_performance", "balanced")


def physical_cores(device: DeviceInfo | None = None) -> int:
    """Physical cores: from a probed DeviceInfo when given, else psutil."""
    for value in (
        getattr(device, "physical_cores", None),
        psutil.cpu_count(logical=False),
        os.cpu_count(),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def tuning_space(ep: str, cores: int) -> Space:
    """The settings ``tune`` searches for an EP on a machine with ``cores`` cores."""
    threads = tuple(range(1, max(1, cores) + 1))
    dims = [
        Dimension("threads", threads, threads[-1]),
        Dimension("graph_opt", ("all", "extended", "basic"), "all"),
        Dimension("execution_mode", ("sequential", "parallel"), "sequential"),
        Dimension("spinning", (True, False), True),
    ]
    if ep == "OpenVINOExecutionProvider":
        dims.append(Dimension("ov.num_of_threads", threads, threads[-1]))
        dims.append(Dimension("ov.num_streams", (1, 2), 1))
    elif ep == "QNNExecutionProvider":
        dims.append(Dimension("qnn.htp_performance_mode", QNN_PERF_MODES, "burst"))
    return Space(tuple(dims))


_EP_KNOBS = {
    "ov.num_of_threads": "num_of_threads",
    "ov.num_streams": "num_streams",
    "qnn.htp_performance_mode": "htp_performance_mode",
}


def knobs_from_point(point: Mapping[str, Any]) -> Knobs:
    ep_options = {opt: str(point[name]) for name, opt in _EP_KNOBS.items() if name in point}
    return Knobs(
        threads=point.get("threads"),
        spinning=point.get("spinning"),
        graph_opt=point.get("graph_opt"),
        execution_mode=point.get("execution_mode"),
        ep_options=ep_options,
    )


class SessionMeasure:
    """The :data:`~edgeort.measure.search.GroupMeasure` of real sessions: one session per
    point (the last ``keep`` are kept, so re-measuring costs no new session); a group's
    runs are interleaved in up to ``rounds`` blocks (one run per block for slow models);
    each point gets ``n * 2**effort`` runs,
    where ``n`` is ``runs`` or more for fast models (a measurement lasts at least
    ``min_seconds``); the result is each point's median in ms."""

    def __init__(
        self,
        target: Target,
        *,
        input_files: Mapping[str, str | Path] | None = None,
        dims: Mapping[str, int] | None = None,
        runs: int = 15,
        warmup: int = 3,
        rounds: int = 40,
        min_seconds: float = 0.02,
        keep: int = 12,
    ) -> None:
        self.target, self.input_files, self.dims = target, input_files, dims
        self.runs, self.warmup, self.rounds = runs, warmup, rounds
        self.min_seconds, self.keep = min_seconds, keep
        self.sessions: OrderedDict[Any, tuple[ort.InferenceSession, dict[str, np.ndarray], int]] = (
            OrderedDict()
        )

    def _session(
        self, point: Mapping[str, Any]
    ) -> tuple[ort.InferenceSession, dict[str, np.ndarray], int]:
        k = key(point)
        if k in self.sessions:
            self.sessions.move_to_end(k)
            return self.sessions[k]
        session = create_session(self.target, knobs_from_point(point))
        feeds = feeds_for(session, input_files=self.input_files, dims=self.dims)
        warm = time_runs(session, feeds, runs=max(1, self.warmup))
        n = max(self.runs, min(2000, int(self.min_seconds / max(float(np.median(warm)), 1e-6))))
        self.sessions[k] = (session, feeds, n)
        while len(self.sessions) > self.keep:
            self.sessions.popitem(last=False)
        return self.sessions[k]

    def __call__(self, points: Sequence[Mapping[str, Any]], effort: int) -> list[float]:
        entries = [self._session(p) for p in points]
        totals = [n * (2**effort) for _s, _f, n in entries]
        rounds = max(1, min(self.rounds, max(totals)))
        times: list[list[float]] = [[] for _ in points]
        for _ in range(rounds):
            for i, (session, feeds, _n) in enumerate(entries):
                if len(entries) > 1:
                    switch_to(session, feeds)
                times[i] += time_runs(session, feeds, runs=max(1, -(-totals[i] // rounds)))
        return [float(np.median(t) * 1000.0) for t in times]


@dataclass(frozen=True, slots=True)
class TuneResult:
    label: str
    ep: str
    best: Mapping[str, Any]
    best_ms: float
    default_ms: float
    evaluated: int
    space_size: int
    strategy: str
    budget_s: float
    elapsed_s: float
    stopped_by_budget: bool
    cache_path: Path | None = None

    @property
    def speedup(self) -> float:
        return self.default_ms / self.best_ms if self.best_ms > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ep": self.ep,
            "best": dict(self.best),
            "best_ms": round(self.best_ms, 4),
            "default_ms": round(self.default_ms, 4),
            "speedup_vs_default": round(self.speedup, 3),
            "evaluated": self.evaluated,
            "space_size": self.space_size,
            "strategy": self.strategy,
            "budget_s": self.budget_s,
            "elapsed_s": round(self.elapsed_s, 2),
            "stopped_by_budget": self.stopped_by_budget,
            "cache": str(self.cache_path) if self.cache_path else None,
        }


def tune_target(
    target: Target,
    *,
    budget_s: float = 60.0,
    device: DeviceInfo | None = None,
    runs: int = 15,
    input_files: Mapping[str, str | Path] | None = None,
    dims: Mapping[str, int] | None = None,
) -> tuple[TuneResult, SearchResult]:
    """Search the tuning space of ``target`` within ``budget_s`` seconds."""
    if budget_s <= 0:
        raise UsageError(f"--budget {budget_s}: expected a positive number of seconds")
    space = tuning_space(target.ep, physical_cores(device))
    measure = SessionMeasure(target, input_files=input_files, dims=dims, runs=runs)
    search = coordinate_descent(space, measure, budget_s=budget_s)
    result = TuneResult(
        label=target.label,
        ep=target.ep,
        best=search.best,
        best_ms=search.best_ms,
        default_ms=search.default_ms,
        evaluated=len(search.evaluations),
        space_size=space.size(),
        strategy=search.strategy,
        budget_s=budget_s,
        elapsed_s=search.elapsed_s,
        stopped_by_budget=search.stopped_by_budget,
    )
    return result, search


@dataclass(frozen=True, slots=True)
class _FileEntry:
    path: str
    sha256: str


class ModelFileVariant:
    """Variant-like view of a plain model file on one EP, so its tune entry is keyed like
    a bundle variant's (:func:`edgeort.runtime.tuning.variant_sha256`): name, EP, options, file
    digest. ``edgeort.load`` reads entries of bundle variants only."""

    def __init__(self, target: Target) -> None:
        self.name = target.label
        self.profile, self.profile_version = "", ""
        self.ep, self.device = target.ep, ""
        self.model_file = target.model_path.name
        self.provider_options = dict(target.provider_options)
        self.session_options: dict[str, str] = {}
        sha = target.sha256 or sha256_file(target.model_path)
        self.files = (_FileEntry(self.model_file, sha),)

    def file(self, name: str) -> _FileEntry | None:
        return next((f for f in self.files if f.path == name), None)


def _variant(target: Target) -> Any:
    return target.variant if target.variant is not None else ModelFileVariant(target)


def tuning_record(result: TuneResult, target: Target, device: DeviceInfo) -> dict[str, Any]:
    """The JSON written to the tune cache (schema in ``docs/doctor.md``)."""
    from edgeort.runtime.tuning import device_fingerprint

    knobs = knobs_from_point(result.best)
    variant = _variant(target)
    entry = variant.file(variant.model_file)
    return {
        "schema": TUNE_SCHEMA,
        "latency_ms": round(result.best_ms, 6),
        "default_latency_ms": round(result.default_ms, 6),
        "intra_op_threads": knobs.threads,
        "graph_optimization_level": knobs.graph_opt,
        "execution_mode": knobs.execution_mode,
        "session_options": {SPINNING: "1" if knobs.spinning else "0"},
        "provider_options": dict(knobs.ep_options),
        "ep": target.ep,
        "variant": str(getattr(variant, "name", target.label)),
        "model_sha256": entry.sha256 if entry is not None else None,
        "device_fingerprint": device_fingerprint(device),
        "ort_version": ort.__version__,
        "search": {
            "strategy": result.strategy,
            "evaluated": result.evaluated,
            "space_size": result.space_size,
            "budget_s": result.budget_s,
            "elapsed_s": round(result.elapsed_s, 2),
        },
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def save_tuning(result: TuneResult, target: Target, device: DeviceInfo) -> Path:
    """Write the tune cache entry of ``target`` on ``device`` (atomically); its path."""
    from edgeort.runtime.tuning import tuning_cache_path

    try:  # a plain model file is read here for its digest (the cache key)
        path = tuning_cache_path(_variant(target), device)
        record = tuning_record(result, target, device)
    except OSError as exc:
        where = target.model_path
        raise ModelError(
            f"{where}: cannot read the model to key its tune cache entry: {os_error_text(exc)}",
            path=where,
        ) from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise CacheError(f"{path}: cannot write the tune cache: {exc}", path=path) from exc
    log.info("tuning for %s saved to %s", target.label, path)
    return path
