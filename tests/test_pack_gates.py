"""Metrics against fp32, the accuracy gate, the fallback plan and the speed gate."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from edgeort.pack.gates import accuracy_gate, fallback_recipes, speed_gate
from edgeort.pack.metrics import Metrics, compare, is_classifier
from edgeort.profiles import Recipe, Verify


def test_compare_numbers_by_hand() -> None:
    ref = [np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)]
    got = [np.array([[1.0, 1.0], [0.0, 2.0]], np.float32)]
    m = compare(ref, got, labels=np.array([0, 1]))
    assert m.samples == 2
    assert m.cosine_min == pytest.approx(1 / math.sqrt(2))
    assert m.cosine_mean == pytest.approx((1 / math.sqrt(2) + 1.0) / 2)
    assert m.rel_error == pytest.approx(1 / math.sqrt(5))
    assert m.max_abs == pytest.approx(1.0)
    # argmax of [1, 1] is 0 (first): agreement 1.0; labels [0, 1] -> accuracy 1.0
    assert m.top1_agreement == 1.0 and m.top1_accuracy == 1.0


def test_identical_outputs_and_zero_vectors() -> None:
    ref = [np.zeros((3, 4), np.float32), np.arange(6, dtype=np.float32).reshape(3, 2)]
    m = compare(ref, [r.copy() for r in ref])
    assert m.cosine_mean == pytest.approx(1.0) and m.cosine_min == pytest.approx(1.0)
    assert m.rel_error == 0.0 and m.max_abs == 0.0
    zero_vs_one = compare([np.zeros((1, 3))], [np.ones((1, 3))])
    assert zero_vs_one.cosine_min == 0.0


def test_classifier_heuristic() -> None:
    assert is_classifier([np.zeros((5, 10), np.float32)])
    assert not is_classifier([np.zeros((5, 1), np.float32)])  # one logit: regression-like
    assert not is_classifier([np.zeros((5, 16, 64), np.float32)])  # hidden states
    assert not is_classifier([np.zeros((5, 10), np.int64)])
    m = compare([np.zeros((2, 4, 3))], [np.zeros((2, 4, 3))])
    assert m.top1_agreement is None and m.top1_accuracy is None


def _m(
    cos: float, agree: float | None = None, acc: float | None = None, n: int = 10_000
) -> Metrics:
    """Metrics over ``n`` samples (default large: differences of 0.005 are resolved)."""
    return Metrics(n, cos, cos, 0.0, 0.0, agree, acc)


def test_cosine_gate_and_override() -> None:
    verify = Verify(metric="cosine", max_drop=0.01)
    assert accuracy_gate(_m(0.995), verify).passed
    failed = accuracy_gate(_m(0.98), verify)
    assert not failed.passed and failed.bound == pytest.approx(0.99)
    assert "0.9800 < bound 0.9900" in failed.reason
    assert accuracy_gate(_m(0.98), verify, max_drop=0.05).passed


def test_top1_gate_with_labels_uses_fp32_accuracy() -> None:
    verify = Verify(metric="top1", max_drop=0.005)
    reference = _m(1.0, 1.0, 0.98)
    assert accuracy_gate(_m(0.99, 0.99, 0.976), verify, reference=reference).passed
    gate = accuracy_gate(_m(0.99, 0.99, 0.97), verify, reference=reference)
    assert not gate.passed and gate.bound == pytest.approx(0.975)


def test_top1_gate_without_labels_uses_agreement_and_falls_back_for_non_classifiers() -> None:
    verify = Verify(metric="top1", max_drop=0.01)
    assert not accuracy_gate(_m(0.999, 0.98), verify).passed
    gate = accuracy_gate(_m(0.995), verify)  # no top-1: not a classifier
    assert gate.metric == "cosine" and gate.passed and "not a classifier" in gate.reason


def test_cosine_gate_also_holds_classifiers_to_top1() -> None:
    verify = Verify(metric="cosine", max_drop=0.01, top1_max_drop=0.005)
    reference = _m(1.0, 1.0, 0.98)
    gate = accuracy_gate(_m(0.999, 0.99, 0.96), verify, reference=reference)
    assert not gate.passed and "top-1 accuracy" in gate.reason


def test_top1_gate_does_not_reject_on_a_difference_its_sample_cannot_resolve() -> None:
    # The case: cosine 0.9999, one disagreement in 100 samples, bound 0.995.
    verify = Verify(metric="cosine", max_drop=0.01, top1_max_drop=0.005)
    gate = accuracy_gate(_m(0.9999, 0.99, n=100), verify)
    assert gate.passed, gate.reason
    assert "cannot resolve" in gate.reason and "n=100" in gate.reason
    lo, hi = gate.interval or (0.0, 0.0)
    assert lo < 0.99 < 0.995 < hi and gate.to_json()["top1_samples"] == 100
    # The same agreement on 10,000 samples resolves it: rejected, with the interval.
    big = accuracy_gate(_m(0.9999, 0.99, n=10_000), verify)
    assert not big.passed and "95% interval" in big.reason
    # Three in 100 is beyond what 100 samples leave open: rejected.
    assert not accuracy_gate(_m(0.9999, 0.97, n=100), verify).passed


def test_fallback_plan_follows_the_profile_order() -> None:
    order = ("per_channel", "exclude_sensitive", "fp16", "fp32")
    static = Recipe(precision="int8", mode="static")
    plan = fallback_recipes(static, order)
    assert [step for step, _ in plan] == list(order)
    assert plan[0][1] == Recipe(precision="int8", mode="static", per_channel=True)
    assert plan[1][1] is None  # nodes found by measuring
    assert plan[2][1] == Recipe(precision="fp16", keep_io_types=True)
    assert plan[3][1] == Recipe()
    per_channel = Recipe(precision="int8", mode="dynamic", per_channel=True)
    assert [s for s, _ in fallback_recipes(per_channel, ("per_channel", "fp32"))] == ["fp32"]
    assert [s for s, _ in fallback_recipes(Recipe(precision="fp16"), order)] == ["fp32"]
    assert fallback_recipes(Recipe(), order) == []


def test_w16a16_fallback_keeps_the_qdq_recipe_with_16_bit_weights() -> None:
    order = ("per_channel", "exclude_sensitive", "w16a16", "fp16", "fp32")
    qnn = Recipe(precision="w8a16", mode="qnn", activation_type="uint16", weight_type="uint8",
                 symmetric_weights=False)  # fmt: skip
    plan = fallback_recipes(qnn, order)
    assert [step for step, _ in plan] == list(order)
    assert plan[2][1] == replace(
        qnn, precision="w16a16", weight_type="int16", symmetric_weights=True
    )  # per-tensor, as the failed recipe: per_channel is its own step
    static = Recipe(precision="int8", mode="static", activation_type="int8")
    w16 = dict(fallback_recipes(static, ("w16a16",)))["w16a16"]
    assert w16 is not None
    assert (w16.precision, w16.activation_type, w16.weight_type) == ("w16a16", "uint16", "int16")
    # not a QDQ recipe, or already 16-bit: no w16a16 step
    dynamic = Recipe(precision="int8", mode="dynamic", activation_type="uint8")
    qoperator = replace(static, format="qoperator")
    for recipe in (dynamic, qoperator, Recipe(precision="fp16"), w16):
        assert "w16a16" not in dict(fallback_recipes(recipe, order)), recipe


def test_speed_gate() -> None:
    assert speed_gate("int8", 2.0, 1.0).decision == "replace"
    assert speed_gate("int8", 0.5, 1.0).decision == "keep"
    assert speed_gate("int8", None, 1.0).decision == "skip"
    assert speed_gate("fp32", 3.0, 1.0).decision == "keep"
