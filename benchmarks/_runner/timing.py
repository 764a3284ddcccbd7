"""Latency in interleaved rounds, and cold load time in fresh processes.

Latency: every contender is warmed up, then all contenders run in ``rounds`` rounds, each
round running every contender for its share of runs (the order rotates each round), so
slow drifts of the machine (frequency, noisy neighbours) hit all of them alike. A
contender whose runs are slow (a simulator) gets fewer runs, as many as fit its time
budget, never fewer than ``min_runs``. Each contender's share of a round starts with
untimed runs (at least ``rewarm`` and ``rewarm_s`` seconds): right after a switch the
previous contender's weights fill the caches and its session's threads may still be
spinning, which penalised whichever contender ran first after a switch (measured: 1.5x on
MiniLM int8 between ``Model.run`` and the ``session.run`` timed right after it on the same
session; 4x on the simulated QNN HTP).

Load: a fresh Python process per repetition imports onnxruntime (and edgeort), then times
the session creation (plain ORT) or ``open_bundle`` + ``edgeort.load`` (with an empty
edgeort cache, so every file of the bundle is hashed as on a first load; the hashing is
also reported alone as ``verify_ms``), then the first run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cold_loads", "interleaved", "summary"]

Step = Callable[[int], object]  # run one inference on sample i


def _estimate(step: Step, warmup: int) -> float:
    """Warm up; the median seconds of one run (at least one warm-up run)."""
    times = []
    for i in range(max(1, warmup)):
        t0 = time.perf_counter_ns()
        step(i)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return statistics.median(times)


def interleaved(
    steps: Mapping[str, Step],
    *,
    runs: int,
    rounds: int,
    budget_s: float,
    warmup: int,
    min_runs: int = 20,
    rewarm: int = 3,
    rewarm_s: float = 0.05,
    log: Callable[[str], None] = lambda _m: None,
) -> dict[str, dict[str, Any]]:
    """Per contender: the wall time of every run in ns, by round, and the plan used."""
    plan: dict[str, int] = {}
    for key, step in steps.items():
        one = _estimate(step, warmup)
        fits = int(budget_s / one) if one > 0 else runs
        plan[key] = max(min(runs, fits), min(min_runs, runs))
        log(f"  warm {key}: {one * 1e3:.3f} ms/run -> {plan[key]} runs")
    times: dict[str, list[list[int]]] = {k: [] for k in steps}
    keys = list(steps)
    for r in range(rounds):
        order = keys[r % len(keys) :] + keys[: r % len(keys)]
        for key in order:
            share = math.ceil(plan[key] / rounds)
            done = sum(len(x) for x in times[key])
            todo = min(share, plan[key] - done)
            step, got = steps[key], []
            t_end, n = time.perf_counter() + (rewarm_s if todo else 0.0), 0
            while todo and (n < rewarm or time.perf_counter() < t_end):  # untimed re-warm
                step(done + n)
                n += 1
            for i in range(todo):
                t0 = time.perf_counter_ns()
                step(done + i)
                got.append(time.perf_counter_ns() - t0)
            times[key].append(got)
    return {k: {"rounds_ns": v, "planned_runs": plan[k]} for k, v in times.items()}


def summary(rounds_ns: Sequence[Sequence[int]]) -> dict[str, Any]:
    """median, p95, mean, min, max (ms) over all runs, plus the median of each round."""
    flat = np.asarray([t for r in rounds_ns for t in r], dtype=np.float64) / 1e6
    if flat.size == 0:
        return {"runs": 0}
    return {
        "runs": int(flat.size),
        "median_ms": round(float(np.median(flat)), 4),
        "p95_ms": round(float(np.percentile(flat, 95)), 4),
        "mean_ms": round(float(flat.mean()), 4),
        "min_ms": round(float(flat.min()), 4),
        "max_ms": round(float(flat.max()), 4),
        "round_medians_ms": [round(float(np.median(r)) / 1e6, 4) for r in rounds_ns if len(r)],
    }


CHILD = r"""
import json, os, sys, time
spec = json.loads(sys.argv[1])
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
if spec["how"] == "edgeort":
    import edgeort
t1 = time.perf_counter()
feeds = {k: v for k, v in np.load(spec["feeds"]).items()}
ep = spec.get("ep") or "CPUExecutionProvider"
t2 = time.perf_counter()
verify_ms = None
if spec["how"] == "edgeort":
    from edgeort.bundle import open_bundle
    bundle = open_bundle(spec["path"])  # hashes every file (the cache dir is empty)
    verify_ms = (time.perf_counter() - t2) * 1e3
    model = edgeort.load(bundle, profile=spec["profile"])
    run = model.run
    used = model.providers[0]
else:
    if ep == "CPUExecutionProvider":
        sess = ort.InferenceSession(spec["path"])
    else:
        from edgeort.hardware.plugins import ensure_registered, ep_devices
        ensure_registered(ep)
        devs = [d for d in ep_devices(ep) if d.device.type.name.lower() == spec["device"]]
        so = ort.SessionOptions()
        so.add_provider_for_devices(devs, spec.get("options") or {})
        sess = ort.InferenceSession(spec["path"], so)
    run = lambda f: sess.run(None, f)
    used = sess.get_providers()[0]
t3 = time.perf_counter()
run(feeds)
t4 = time.perf_counter()
import psutil
print("\n" + json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t3 - t2) * 1e3,
                        "first_run_ms": (t4 - t3) * 1e3, "ep": used, "verify_ms": verify_ms,
                        "rss_mb": psutil.Process().memory_info().rss / 2**20}))
"""


def _child(spec: Mapping[str, Any], cwd: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeort-bench-cache-") as cache:
        env = {**os.environ, "EDGEORT_CACHE_DIR": cache}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(dict(spec))],
            capture_output=True, text=True, cwd=cwd, env=env, timeout=900,
        )  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"load child failed ({done.returncode}): {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold_loads(spec: Mapping[str, Any], reps: int, cwd: Path) -> dict[str, Any]:
    """Median load / first-run ms over ``reps`` fresh processes (each number kept)."""
    got = [_child(spec, cwd) for _ in range(reps)]

    def med(key: str) -> float:
        return round(statistics.median(g[key] for g in got), 2)

    return {
        "reps": reps,
        "load_ms": med("load_ms"),
        "first_run_ms": med("first_run_ms"),
        "import_ms": med("import_ms"),
        "rss_mb": med("rss_mb"),
        "ep": got[0]["ep"],
        "verify_ms": None if got[0]["verify_ms"] is None else med("verify_ms"),
        "load_ms_each": [round(g["load_ms"], 2) for g in got],
    }
