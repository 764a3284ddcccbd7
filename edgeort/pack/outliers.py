"""Activation outliers before dynamic int8: a few input channels kept out of the int8 range.

``quantize_dynamic`` quantizes each MatMul's input per tensor (``DynamicQuantizeLinear``,
uint8): one channel far larger than the rest sets the scale, and every other channel is
left with a few int8 steps. Transformers have such channels (all-MiniLM-L6-v2, measured on
its calibration sentences: the FFN inputs reach 28 in one channel against a median
channel maximum of 1.5; ``benchmarks/results/models.md``). Weight granularity cannot fix
it; what this module does, from the per-channel maxima ``|x|`` of each input measured on
the calibration data:

- **MatMul with a constant weight**: input channels whose maximum is at least
  :data:`SPLIT_RATIO` times the median channel's (at most :data:`MAX_SPLIT` of them) are
  split off: ``x @ W = (x * keep) @ W_keep + x[..., J] @ W[J]``. The first product is
  quantized (its range no longer holds the outliers), the second is a small float MatMul
  (``|J|`` rows) left out of quantization, added back (an ``Add``).
- **Fused ``Attention``** (com.microsoft; its QKV projection cannot be split): when its
  input's maximum is at least :data:`SMOOTH_RATIO` times the median channel's, the input is
  smoothed (SmoothQuant): ``x @ W = (x / s) @ (s * W)`` with
  ``s_j = max|x_j| ** ALPHA / max|W_j| ** (1 - ALPHA)`` -- exact in float, and the
  quantized input's range is flatter.

Both rewrites are exact in float (``tests/test_pack_outliers.py``); they cost a few
elementwise ops per rewritten node. Which nodes get them is measured, never named: the
same thresholds apply to any model with ``MatMul``/``Attention`` nodes. Issue 9 measured
all-MiniLM-L6-v2 (sentence cosine of the mean-pooled embedding, 103 real sentences): plain
dynamic per-channel 0.9914 mean / 0.959 min; with this rewrite 0.9989 / 0.994.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeort.pack.data import Dataset
from edgeort.pack.load import save_model

__all__ = [
    "ALPHA",
    "MAX_SPLIT",
    "SMOOTH_RATIO",
    "SPLIT_RATIO",
    "Rewritten",
    "channel_maxima",
    "rewrite",
    "rewrite_model",
]

log = logging.getLogger(__name__)

SPLIT_RATIO = 6.0  # a MatMul input channel this many times the median channel's max is split
MAX_SPLIT = 8  # channels split off per MatMul, at most
SMOOTH_RATIO = 4.0  # an Attention input this outlying (max / median channel max) is smoothed
ALPHA = 0.7  # SmoothQuant's migration strength
CALIBRATION_SAMPLES = 64
_SCALE_LIMIT = 100.0  # smoothing scales stay within [1/100, 100]
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Rewritten:
    """The rewritten model, the float side nodes the quantizer must leave alone, and
    what was done (for the variant's notes)."""

    path: Path
    float_nodes: tuple[str, ...]
    notes: tuple[str, ...]


def _targets(
    model: onnx.ModelProto, exclude: Iterable[str], op_types: Iterable[str]
) -> list[onnx.NodeProto]:
    """MatMul/Attention nodes with a 2-D float initializer as weight (input 1)."""
    inits = {i.name: i for i in model.graph.initializer}
    skip, only = set(exclude), set(op_types)
    found = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Attention") or node.name in skip:
            continue
        if only and node.op_type not in only:
            continue
        if node.op_type == "Attention" and node.domain != "com.microsoft":
            continue
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != onnx.TensorProto.FLOAT:
            continue
        found.append(node)
    return found


def channel_maxima(
    model: onnx.ModelProto, tensors: list[str], data: Dataset, work: Path
) -> dict[str, np.ndarray]:
    """Per-channel (last axis) maximum of ``|x|`` of each tensor over ``data``."""
    from edgeort.pack.sensitivity import run_with_outputs

    maxima: dict[str, np.ndarray] = {}
    for name, values in run_with_outputs(model, tensors, data, work / "outliers.calib.onnx"):
        flat = np.abs(values.reshape(-1, values.shape[-1])) if values.ndim else values
        if flat.ndim != 2:
            continue
        seen = flat.max(axis=0) if flat.shape[0] else np.zeros(flat.shape[1], np.float32)
        maxima[name] = np.maximum(maxima[name], seen) if name in maxima else seen
    return maxima


def _init(model: onnx.ModelProto, array: np.ndarray, name: str) -> str:
    model.graph.initializer.append(numpy_helper.from_array(array.astype(np.float32), name))
    return name


def rewrite_model(
    model: onnx.ModelProto, maxima: dict[str, np.ndarray], nodes: list[onnx.NodeProto]
) -> tuple[list[str], list[str]]:
    """Rewrite ``nodes`` of ``model`` in place given their inputs' channel ``maxima``.
    Returns (float side nodes to keep out of quantization, notes)."""
    inits = {i.name: i for i in model.graph.initializer}
    added: dict[str, list[onnx.NodeProto]] = {}  # node name -> nodes inserted before it
    after: dict[str, list[onnx.NodeProto]] = {}  # node name -> nodes inserted after it
    float_nodes: list[str] = []
    smoothed = split = channels = 0
    for node in nodes:
        a = maxima.get(node.input[0])
        w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        if a is None or a.shape[0] != w.shape[0]:
            continue
        median = max(float(np.median(a)), _EPS)
        base = node.name
        if node.op_type == "Attention":
            if float(a.max()) < SMOOTH_RATIO * median:
                continue
            wmax = np.maximum(np.abs(w).max(axis=1), _EPS)
            s = np.maximum(a, _EPS) ** ALPHA / wmax ** (1 - ALPHA)
            s = np.clip(s, 1 / _SCALE_LIMIT, _SCALE_LIMIT)
            inv = _init(model, 1 / s, f"{base}/outlier_inv_scale")
            x = f"{node.input[0]}/smoothed_for/{base}"
            added[base] = [
                helper.make_node("Mul", [node.input[0], inv], [x], name=f"{base}/smooth")
            ]
            node.input[0] = x
            node.input[1] = _init(model, w * s[:, None], f"{base}/outlier_smoothed_weight")
            smoothed += 1
            continue
        order = np.argsort(-a, kind="stable")[:MAX_SPLIT]
        picked = sorted(int(j) for j in order if a[j] >= SPLIT_RATIO * median)
        if not picked:
            continue
        keep = np.ones(a.shape[0])
        keep[picked] = 0.0
        kept_w = w.copy()
        kept_w[picked] = 0.0
        x, y = node.input[0], node.output[0]
        mask = _init(model, keep, f"{base}/outlier_keep")
        idx = f"{base}/outlier_channels"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(picked, np.int64), idx))
        side_w = _init(model, w[picked], f"{base}/outlier_weight")
        masked, gathered = f"{x}/inliers_for/{base}", f"{x}/outliers_for/{base}"
        side_y, main_y = f"{y}/outlier_part", f"{y}/inlier_part"
        added[base] = [
            helper.make_node("Mul", [x, mask], [masked], name=f"{base}/outlier_mask"),
            helper.make_node(
                "Gather", [x, idx], [gathered], name=f"{base}/outlier_gather", axis=-1
            ),
            helper.make_node("MatMul", [gathered, side_w], [side_y], name=f"{base}/outlier_matmul"),
        ]
        after[base] = [helper.make_node("Add", [main_y, side_y], [y], name=f"{base}/outlier_add")]
        float_nodes += [f"{base}/outlier_gather", f"{base}/outlier_matmul"]
        node.input[0] = masked
        node.input[1] = _init(model, kept_w, f"{base}/outlier_inlier_weight")
        node.output[0] = main_y
        split += 1
        channels += len(picked)
    if added:
        ordered: list[onnx.NodeProto] = []
        for node in model.graph.node:
            ordered += [*added.get(node.name, ()), node, *after.get(node.name, ())]
        del model.graph.node[:]
        model.graph.node.extend(ordered)
        _drop_unused(model)
    notes = []
    if smoothed:
        notes.append(f"{smoothed} Attention input(s) smoothed (SmoothQuant, alpha {ALPHA})")
    if split:
        notes.append(f"{channels} outlier channel(s) of {split} MatMul input(s) kept float")
    return float_nodes, notes


def _drop_unused(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def rewrite(
    source: Path,
    out: Path,
    data: Dataset,
    *,
    exclude: Iterable[str] = (),
    op_types: Iterable[str] = (),
) -> Rewritten:
    """Measure ``source``'s MatMul/Attention inputs on ``data`` and write the rewritten
    model to ``out`` (``source`` itself, with a note, when nothing outlies)."""
    model = onnx.load_model(str(source))
    nodes = _targets(model, exclude, op_types)
    if not nodes:
        return Rewritten(source, (), ("outliers: no MatMul/Attention with a constant weight",))
    tensors = list(dict.fromkeys(n.input[0] for n in nodes))
    maxima = channel_maxima(model, tensors, data.head(CALIBRATION_SAMPLES), out.parent)
    float_nodes, notes = rewrite_model(model, maxima, nodes)
    if not notes:
        return Rewritten(source, (), ("outliers: no input channel outlies",))
    save_model(model, out)
    log.info("outliers: %s", "; ".join(notes))
    return Rewritten(out, tuple(float_nodes), tuple(f"outliers: {n}" for n in notes))
