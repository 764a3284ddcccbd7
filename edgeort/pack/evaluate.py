"""Run a variant at build time: on the profile's EP where it is installed and has a
device, otherwise on the CPU EP -- and say which (``EpChoice.on_ep`` / ``reason``).

Where it runs (:func:`choose_ep`) and its session (:func:`make_session`) come from the EP
module, :mod:`edgeort.hardware.ep`; verification sessions take the profile's provider
options and session config, minus entries that write files (``ep.context_*``) or still
hold a ``{placeholder}``. This module runs the data and times it.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from edgeort.errors import PackageError
from edgeort.hardware.ep import (
    CPU_EP,
    EpChoice,
    SessionRefused,
    choose_ep,
    ep_node_counts,
    make_session,
    ort_reason,
)
from edgeort.pack.data import Dataset

__all__ = [
    "CPU",
    "EpChoice",
    "SessionRefused",
    "choose_ep",
    "ep_node_counts",
    "latency_ms",
    "latency_ms_interleaved",
    "make_session",
    "ort_reason",
    "run_dataset",
]

log = logging.getLogger(__name__)

CPU = CPU_EP
LATENCY_RUNS = 20  # timed runs behind a recorded median (the manifest's latency.runs)


def run_dataset(
    session: ort.InferenceSession,
    data: Dataset,
    *,
    fed: dict[str, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Run every sample; per output, the results stacked along a new samples axis
    (the batch axis when the model's batch is 1).

    With state pairs (``data.state``) the samples are steps run in order, as the model
    is used: each state input gets the previous step's state output (the data's value
    at the start of each sequence). ``fed`` (when given) receives, per state input, the
    values actually fed, stacked ``[N, *shape]``."""
    names = [o.name for o in session.get_outputs()]
    per_output: list[list[np.ndarray]] = [[] for _ in names]
    index = {name: i for i, name in enumerate(names)}
    pairs = [(i, o) for i, o in data.state if o in index]
    fed_steps: dict[str, list[np.ndarray]] = {i: [] for i, _ in pairs}
    previous: list[np.ndarray] = []
    for step, feed in enumerate(data.feeds()):
        if pairs and previous and not data.starts_sequence(step):
            for inp, out in pairs:
                feed[inp] = previous[index[out]]
        for inp, _ in pairs:
            fed_steps[inp].append(feed[inp])
        try:
            previous = [np.asarray(v) for v in session.run(names, feed)]
        except Exception as exc:  # ORT raises its own types; name the sample and inputs
            shapes = ", ".join(f"{k} {v.dtype.name}{list(v.shape)}" for k, v in feed.items())
            why = ort_reason(exc)[:300] or type(exc).__name__
            hint = (
                "; synthetic inputs can be outside what the model accepts: pass real "
                "inputs with --validation/--calibration"
                if data.synthetic
                else ""
            )
            raise PackageError(
                f"running sample {step} of {data.source} failed ({shapes}): {why}{hint}"
            ) from None
        for slot, value in zip(per_output, previous, strict=True):
            slot.append(value)
    if fed is not None:
        fed.update({inp: np.stack(values) for inp, values in fed_steps.items() if values})
    return [_stack(chunks) for chunks in per_output]


def _stack(chunks: Sequence[np.ndarray]) -> np.ndarray:
    if all(c.ndim >= 1 and c.shape[0] == 1 for c in chunks):
        return np.concatenate(chunks, axis=0)
    return np.stack(chunks, axis=0)


def latency_ms(
    session: ort.InferenceSession,
    feed: dict[str, np.ndarray],
    *,
    runs: int = LATENCY_RUNS,
    warmup: int = 3,
) -> float:
    """Median wall time of ``runs`` runs after ``warmup`` runs, in milliseconds."""
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))


def latency_ms_interleaved(
    sessions: Sequence[ort.InferenceSession],
    feed: dict[str, np.ndarray],
    *,
    runs: int = LATENCY_RUNS,
    rounds: int = 5,
    warmup: int = 3,
) -> list[float]:
    """Median wall time per session, in ms, of ``runs`` runs each, timed in ``rounds``
    interleaved rounds (a, b, a, b, ...): a load that comes and goes on the machine falls
    on every session alike, so the sessions compare fairly (timing them one after the
    other, minutes apart, does not)."""
    for session in sessions:
        for _ in range(warmup):
            session.run(None, feed)
    from edgeort.measure.bench import switch_to

    per_round = max(1, runs // rounds)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for session, slot in zip(sessions, times, strict=True):
            switch_to(session, feed)  # the other sessions' threads idle, this one's awake
            for _ in range(per_round):
                start = time.perf_counter()
                session.run(None, feed)
                slot.append((time.perf_counter() - start) * 1000.0)
    return [float(statistics.median(t)) for t in times]
