"""The accuracy gate, the fallback plan and the speed gate (pure decisions, no I/O).

Accuracy gate (``profile.verify``):

- ``cosine``: value = mean cosine vs fp32; bound = 1 - max_drop.
- ``top1``: with labels, value = top-1 accuracy, bound = fp32 accuracy - max_drop;
  without labels, value = top-1 agreement with fp32, bound = 1 - max_drop. A model that
  is not a classifier is gated on ``cosine`` instead (recorded).
- Classifiers are also held to ``top1_max_drop`` on top-1 when the metric is ``cosine``.
- Top-1 values gated through the profile's ``top1``/``cosine`` metric are proportions
  over ``n`` samples, so each carries its 95% Wilson score interval (recorded as
  ``interval``/``samples``; the classifier family's task metric ``top1`` below is
  compared as is, without one). Such a top-1 check fails only when the whole
  interval lies below the bound: one disagreement in 100 samples (0.99, interval
  0.946-0.998) does not reject a variant against a 0.995 bound -- the sample cannot
  resolve that difference, and the record says so. Cosine is a mean of per-sample
  values and is compared as is.

``max_drop`` given to ``package()`` (``--max-drop``) replaces the profile's bound for
its metric.

Task metrics (the family's, or the user's ``--metric``/``metric=``; see
:mod:`edgeort.pack.metrics`): value = the metric's score, bound = 1 - max_drop with
:data:`TASK_MAX_DROP` for its default (``top1``: the profile's ``top1_max_drop``; a
user's callable and ``cosine``: the profile's ``max_drop``). ``embedding`` also bounds its
worst sample (:data:`TASK_MIN_DROP`). With labels, ``top1`` gates
accuracy against fp32's instead of agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from edgeort.pack.metrics import Metrics
from edgeort.profiles import Recipe, Verify

__all__ = [
    "TASK_MAX_DROP",
    "TASK_MIN_DROP",
    "Gate",
    "GateRecord",
    "accuracy_gate",
    "fallback_recipes",
    "gate_record",
    "speed_gate",
]

_TOL = 1e-9
QUANTIZED_MODES = ("dynamic", "static", "qnn")
# Default bounds (1 - score) of the task metrics; issue targets: a detector keeps >= 95%
# of its confident boxes; an encoder's sentence embeddings keep cosine >= 0.997 on average
# and >= 0.99 for the worst sentence (TASK_MIN_DROP bounds the worst sample).
TASK_MAX_DROP = {"boxes": 0.05, "map_iou": 0.05, "ctc": 0.02, "decision": 0.01, "embedding": 0.003}
TASK_MIN_DROP = {"embedding": 0.01}
_TASK_WHAT = {
    "boxes": "confident boxes matched at IoU >= 0.9, same class",
    "map_iou": "IoU of the thresholded map",
    "ctc": "greedy-CTC strings identical",
    "decision": "threshold decisions identical",
    "embedding": "mean sentence-embedding cosine vs fp32",
    "cosine": "mean cosine vs fp32",
}


@dataclass(frozen=True, slots=True)
class Gate:
    metric: str
    value: float
    bound: float
    passed: bool
    reason: str
    interval: tuple[float, float] | None = None  # 95% interval of a top-1 proportion
    samples: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "bound": self.bound,
            "passed": self.passed,
        }
        if self.interval is not None:
            out["top1_interval"] = [round(self.interval[0], 6), round(self.interval[1], 6)]
            out["top1_samples"] = self.samples
        return out


Z95 = 1.959963984540054


def wilson_interval(value: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``value`` observed on ``n`` samples."""
    if n <= 0:
        return 0.0, 1.0
    centre = (value + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(value * (1 - value) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _top1_verdict(
    value: float, bound: float, what: str, n: int
) -> tuple[bool, str, tuple[float, float]]:
    """(passed, words, interval) of a top-1 proportion against ``bound``."""
    lo, hi = wilson_interval(value, n)
    ci = f"95% interval {lo:.4f}-{hi:.4f}, n={n}"
    if value >= bound - _TOL:
        return True, f"{what} {value:.4f} >= bound {bound:.4f} ({ci})", (lo, hi)
    if hi >= bound - _TOL:
        return (
            True,
            (
                f"{what} {value:.4f} < bound {bound:.4f}, but the bound lies inside its {ci}: "
                f"{n} samples cannot resolve that difference, so it does not reject"
            ),
            (lo, hi),
        )
    return False, f"{what} {value:.4f} < bound {bound:.4f} ({ci})", (lo, hi)


@dataclass(frozen=True, slots=True)
class GateRecord:
    """One gate decision, as recorded in the manifest."""

    gate: str  # accuracy | speed | data | recipe
    decision: str  # pass | fail | skip | keep | replace | fallback
    reason: str
    recipe: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"gate": self.gate, "decision": self.decision, "reason": self.reason}
        if self.recipe:
            out["recipe"] = self.recipe
        return out


def _top1(metrics: Metrics, reference: Metrics | None, max_drop: float) -> tuple[float, float, str]:
    if metrics.top1_accuracy is not None and reference and reference.top1_accuracy is not None:
        ref = reference.top1_accuracy
        return metrics.top1_accuracy, ref - max_drop, f"top-1 accuracy vs fp32 {ref:.4f}"
    agreement = metrics.top1_agreement if metrics.top1_agreement is not None else 0.0
    return agreement, 1.0 - max_drop, "top-1 agreement with fp32"


def _verdict(value: float, bound: float, what: str) -> tuple[bool, str]:
    """(passed, words) of a score against its bound (no interval: cosine, task metrics)."""
    passed = value >= bound - _TOL
    return passed, f"{what} {value:.4f} {'>=' if passed else '<'} bound {bound:.4f}"


def accuracy_gate(
    metrics: Metrics,
    verify: Verify,
    *,
    reference: Metrics | None = None,
    max_drop: float | None = None,
) -> Gate:
    """Gate one variant's ``metrics`` (``reference``: fp32's own, for labelled accuracy)."""
    task = metrics.task_metric
    if task is not None and task != "top1" and metrics.task_value is not None:
        drop = max_drop if max_drop is not None else TASK_MAX_DROP.get(task, verify.max_drop)
        value, bound = metrics.task_value, 1.0 - drop
        passed, reason = _verdict(value, bound, _TASK_WHAT.get(task, f"{task} (user metric)"))
        if task in TASK_MIN_DROP and metrics.task_min is not None:
            # the worst sample's bound: the task's, or the user's max_drop when looser
            floor = 1.0 - max(TASK_MIN_DROP[task], drop)
            ok, words = _verdict(metrics.task_min, floor, "worst sample")
            passed, reason = passed and ok, f"{reason}; {words}"
        return Gate(task, float(value), float(bound), passed, reason)
    if task == "top1" and metrics.task_value is not None:
        drop = max_drop if max_drop is not None else verify.top1_max_drop
        agreement = replace(metrics, top1_agreement=metrics.task_value)
        value, bound, what = _top1(agreement, reference, drop)
        passed, reason = _verdict(value, bound, what)
        return Gate("top1", float(value), float(bound), passed, reason)
    classifier = metrics.top1_agreement is not None
    metric = verify.metric
    note = ""
    if metric == "top1" and not classifier:
        metric, note = "cosine", "not a classifier: gated on cosine; "
    drop = verify.max_drop if max_drop is None else max_drop
    n = int(metrics.samples)
    interval = None
    if metric == "top1":
        value, bound, what = _top1(metrics, reference, drop)
        passed, words, interval = _top1_verdict(value, bound, what, n)
        reason = f"{note}{words}"
    else:
        value, bound = metrics.cosine_mean, 1.0 - drop
        passed, reason = _verdict(value, bound, "mean cosine vs fp32")
        reason = f"{note}{reason}"
    if passed and classifier and metric == "cosine":
        t_value, t_bound, t_what = _top1(metrics, reference, verify.top1_max_drop)
        t_passed, words, interval = _top1_verdict(t_value, t_bound, t_what, n)
        if not t_passed:
            passed = False
            reason += f"; but {words}"
        elif t_value < t_bound - _TOL:
            reason += f"; {words}"
    return Gate(
        metric, float(value), float(bound), passed, reason, interval, n if interval else None
    )


def fallback_recipes(recipe: Recipe, order: Sequence[str]) -> list[tuple[str, Recipe | None]]:
    """The fallbacks to try after ``recipe`` failed, in ``order``. ``exclude_sensitive``
    is returned with ``None``: its nodes are only known after measuring. ``w16a16`` is
    ``recipe`` (a QDQ one: static QDQ or qnn) with 16-bit weights and activations."""
    plan: list[tuple[str, Recipe | None]] = []
    quantized = recipe.mode in QUANTIZED_MODES
    current = recipe
    for step in order:
        if step == "per_channel" and quantized and not recipe.per_channel:
            current = replace(current, per_channel=True)
            plan.append((step, current))
        elif step == "exclude_sensitive" and quantized:
            plan.append((step, None))
        elif step == "w16a16" and _qdq(recipe) and recipe.precision != "w16a16":
            plan.append((step, _w16a16(recipe)))
        elif step == "fp16" and recipe.precision not in ("fp16", "fp32"):
            plan.append((step, Recipe(precision="fp16", keep_io_types=True)))
        elif step == "fp32" and recipe.precision != "fp32":
            plan.append((step, Recipe()))
    return plan


def _qdq(recipe: Recipe) -> bool:
    return recipe.mode == "qnn" or (recipe.mode == "static" and recipe.format == "qdq")


def _w16a16(recipe: Recipe) -> Recipe:
    """``recipe`` (a QDQ one) with 16-bit activations and 16-bit symmetric signed weights:
    every quantized op stays quantized (on an NPU, on the accelerator) at finer steps than
    8-bit weights, and than the fp16 an NPU computes a float graph in."""
    act = recipe.activation_type if recipe.activation_type in ("int16", "uint16") else "uint16"
    return replace(
        recipe, precision="w16a16", activation_type=act, weight_type="int16",
        symmetric_weights=True,
    )  # fmt: skip


def speed_gate(precision: str, latency: float | None, fp32_latency: float | None) -> GateRecord:
    """A quantized/fp16 variant slower than fp32 on its EP is replaced by fp32."""
    if precision == "fp32":
        return GateRecord("speed", "keep", "the variant is fp32")
    if latency is None or fp32_latency is None:
        return GateRecord("speed", "skip", "latency not measured")
    if latency > fp32_latency:
        return GateRecord(
            "speed",
            "replace",
            f"{precision} {latency:.3f} ms is slower than fp32 {fp32_latency:.3f} ms on its EP: "
            "fp32 shipped instead",
        )
    return GateRecord(
        "speed", "keep", f"{precision} {latency:.3f} ms <= fp32 {fp32_latency:.3f} ms on its EP"
    )


def gate_record(gate: Gate, recipe: str) -> GateRecord:
    return GateRecord("accuracy", "pass" if gate.passed else "fail", gate.reason, recipe)
