"""Numeric comparison of a variant's outputs with the fp32 reference.

For any model: cosine similarity per sample and output (mean and min), relative error
(``||got - ref|| / ||ref||`` over everything) and max absolute error. For classifiers
(heuristic: the first output is float, rank 2 and its last dimension > 1, i.e.
``[batch, classes]`` logits or probabilities): top-1 agreement with the reference and,
when labels are given, top-1 accuracy.

Padding is not accuracy: when the validation data has an integer attention mask
(``[samples, seq]``, an input whose name contains ``mask``), outputs shaped
``[samples, seq, ...]`` are compared on the unmasked positions only. Hidden states at
padded positions are never read downstream, and quantization moves them far more than
the real tokens (all-MiniLM-L6-v2, dynamic int8 per-channel on the fused graph,
``benchmarks/results/models.md``: hidden-state cosine 0.958 over all positions, 0.990
over real tokens, 0.991 for the mean-pooled sentence embedding).

Task metrics (the gate's metric follows the model's family, :mod:`edgeort.pack.family`),
each a score in [0, 1] where 1.0 means the variant does what fp32 does: ``top1`` (argmax
agreement), ``boxes`` (a detector's confident boxes after NMS matched at IoU >= 0.9 with
the same class, over the larger of the two box counts), ``map_iou`` (IoU of the
thresholded map), ``ctc`` (greedy-CTC strings identical), ``decision`` (scores on the same
side of the threshold), ``embedding`` (cosine of the sentence embedding: a
``[samples, seq, hidden]`` output mean-pooled over the attention mask's real tokens, as a
sentence encoder is used; any other output as it is; mean over samples, and the minimum
kept as ``task_min``) and ``cosine``. A user metric is any callable
``(reference, outputs) -> float`` on the per-output arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "TASK_METRICS",
    "MetricFn",
    "Metrics",
    "box_agreement",
    "compare",
    "ctc_agreement",
    "decision_agreement",
    "embedding_cosines",
    "is_classifier",
    "map_iou",
    "padding_mask",
    "task_value",
    "top1_accuracy",
    "top1_agreement",
]

# A user metric: (fp32 reference outputs, variant outputs) -> score, 1.0 = identical.
MetricFn = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], float]

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Metrics:
    samples: int
    cosine_mean: float
    cosine_min: float
    rel_error: float
    max_abs: float
    top1_agreement: float | None = None
    top1_accuracy: float | None = None
    masked_by: str | None = None  # the input whose padding was left out, if any
    task_metric: str | None = None  # the family's metric (or the user's), see task_value
    task_value: float | None = None
    task_min: float | None = None  # the worst sample's score, for metrics that gate it

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def is_classifier(outputs: Sequence[np.ndarray]) -> bool:
    """First output float with shape ``[samples, classes > 1]`` (see module docstring)."""
    if not outputs:
        return False
    first = outputs[0]
    return first.dtype.kind == "f" and first.ndim == 2 and first.shape[-1] > 1


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def _cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    r = ref.reshape(ref.shape[0], -1).astype(np.float64)
    g = got.reshape(got.shape[0], -1).astype(np.float64)
    dot = np.sum(r * g, axis=1)
    nr, ng = np.linalg.norm(r, axis=1), np.linalg.norm(g, axis=1)
    cos = dot / np.maximum(nr * ng, _EPS)
    # Two (near) zero vectors agree perfectly; one zero and one not do not.
    both_zero = (nr < _EPS) & (ng < _EPS)
    return np.where(both_zero, 1.0, cos)


def padding_mask(arrays: Mapping[str, np.ndarray], samples: int) -> tuple[str, np.ndarray] | None:
    """The attention mask of the data as ``[samples, seq]`` booleans, if it has one."""
    for name, arr in arrays.items():
        if "mask" in name.lower() and arr.dtype.kind in "iub" and arr.size:
            flat = arr.reshape(samples, -1) if arr.shape[0] == samples else None
            if flat is not None and flat.shape[1] > 1:
                return name, flat != 0
    return None


def _unpadded(arr: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None or arr.shape[:2] != mask.shape:
        return arr
    return np.asarray(arr * mask.reshape(mask.shape + (1,) * (arr.ndim - 2)))


def compare(
    reference: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    labels: np.ndarray | None = None,
    mask: tuple[str, np.ndarray] | None = None,
    *,
    task: str | None = None,
    layout: str | None = None,
    custom: MetricFn | None = None,
) -> Metrics:
    """Compare per-output arrays (first axis = samples) of a variant with the reference;
    ``mask`` (from :func:`padding_mask`) leaves padded positions out. ``task`` (one of
    :data:`TASK_METRICS`) or ``custom`` (named by its ``__name__``) adds the task metric."""
    if len(reference) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs, reference has {len(reference)}")
    cosines, diff_sq, ref_sq, max_abs = [], 0.0, 0.0, 0.0
    keep = mask[1] if mask is not None else None
    masked = False
    for ref, got in zip(reference, outputs, strict=True):
        if ref.shape != got.shape:
            raise ValueError(f"output shape {got.shape} differs from reference {ref.shape}")
        masked = masked or (keep is not None and ref.shape[:2] == keep.shape)
        r = _unpadded(ref.astype(np.float64), keep)
        g = _unpadded(got.astype(np.float64), keep)
        cosines.append(_cosines(r, g))
        diff = r - g
        diff_sq += float(np.sum(diff * diff))
        ref_sq += float(np.sum(r * r))
        max_abs = max(max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
    cos = np.concatenate(cosines) if cosines else np.ones(1)
    samples = int(reference[0].shape[0]) if reference else 0
    agreement = accuracy = None
    if is_classifier(reference):
        agreement = top1_agreement(reference, outputs)
        if labels is not None:
            accuracy = top1_accuracy(outputs[0], labels)
    # embedding: the per-sample cosines give both the gate's mean and its minimum
    emb = (
        embedding_cosines(reference, outputs, keep)
        if task == "embedding" and custom is None and reference
        else None
    )
    return Metrics(
        samples=samples,
        cosine_mean=float(np.mean(cos)),
        cosine_min=float(np.min(cos)),
        rel_error=float(np.sqrt(diff_sq) / max(np.sqrt(ref_sq), _EPS)),
        max_abs=max_abs,
        top1_agreement=agreement,
        top1_accuracy=accuracy,
        masked_by=mask[0] if mask is not None and masked else None,
        task_metric=_custom_name(custom) if custom is not None else task,
        task_value=(
            float(np.mean(emb))
            if emb is not None
            else _task(task, custom, reference, outputs, layout, float(np.mean(cos)), keep)
        ),
        task_min=float(np.min(emb)) if emb is not None else None,
    )


def _task(
    task: str | None,
    custom: MetricFn | None,
    reference: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    layout: str | None,
    cosine_mean: float,
    mask: np.ndarray | None = None,
) -> float | None:
    if custom is not None:
        return float(custom(reference, outputs))
    if task == "cosine":
        return cosine_mean  # every output, padding left out: the same figure as cosine_mean
    return task_value(task, reference, outputs, layout, mask) if task else None


def _custom_name(fn: MetricFn) -> str:
    return str(getattr(fn, "__name__", "custom"))


# -- task metrics: each a score in [0, 1], 1.0 = the variant does what fp32 does ------------

TASK_METRICS = ("top1", "boxes", "map_iou", "ctc", "decision", "embedding", "cosine")
CONFIDENCE = 0.25  # a detector's box counts from this score (YOLO's default)
NMS_IOU = 0.45  # overlapping boxes of one class above this IoU are one detection
MATCH_IOU = 0.9  # a variant's box matches fp32's at this IoU, with the same class
MAX_BOXES = 300


def _per_sample(arr: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(a) for a in arr]


def top1_agreement(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Share of samples whose argmax over the last axis of the first output agrees."""
    r = np.asarray(reference[0]).reshape(len(reference[0]), -1, reference[0].shape[-1])
    g = np.asarray(outputs[0]).reshape(r.shape)
    return float(np.mean(np.argmax(r, -1) == np.argmax(g, -1)))


def _boxes(arr: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xyxy [n, 4], score [n], class [n]) of one sample's confident boxes after NMS."""
    a = np.asarray(arr, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    a = a.reshape(-1, a.shape[-1]) if a.ndim != 2 else a
    if layout == "yolov8":
        a = a.T  # [4 + classes, boxes] -> [boxes, 4 + classes]
        cls_scores = a[:, 4:] if a.shape[1] > 4 else np.ones((a.shape[0], 1))
        score = cls_scores.max(axis=1)
    else:  # yolov5/yolox: [boxes, 5 + classes]; objectness x class score
        if layout == "yolox":
            a = _yolox_decode(a)
        cls_scores = a[:, 5:] if a.shape[1] > 5 else np.ones((a.shape[0], 1))
        score = a[:, 4] * cls_scores.max(axis=1)
    cls = cls_scores.argmax(axis=1)
    keep = np.flatnonzero(score >= CONFIDENCE)
    keep = keep[np.argsort(-score[keep], kind="stable")][: MAX_BOXES * 10]
    cx, cy, w, h = (a[keep, i] for i in range(4))
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    chosen: list[int] = []
    for i in range(len(keep)):
        if len(chosen) >= MAX_BOXES:
            break
        same = [j for j in chosen if cls[keep[j]] == cls[keep[i]]]
        if not same or np.max(_iou(xyxy[i], xyxy[same])) <= NMS_IOU:
            chosen.append(i)
    idx = keep[chosen]
    return xyxy[chosen], score[idx], cls[idx]


def _yolox_decode(a: np.ndarray) -> np.ndarray:
    """YOLOX raw outputs -> pixel boxes: the boxes are the cells of strides 8, 16, 32 over a
    square input of side S, so len(a) = S^2 * 21/1024 gives S."""
    side = round(float(np.sqrt(a.shape[0] * 1024 / 21)))
    grids, strides = [], []
    for stride in (8, 16, 32):
        n = side // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((n * n, 1), stride))
    grid, stride_col = np.concatenate(grids), np.concatenate(strides)
    if len(grid) != len(a):
        return a  # not the YOLOX grid: compare the raw values
    out = a.copy()
    out[:, :2] = (a[:, :2] + grid) * stride_col
    out[:, 2:4] = np.exp(np.clip(a[:, 2:4], None, 20)) * stride_col
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.asarray(inter / np.maximum(area + areas - inter, _EPS))


def box_counts(ref: np.ndarray, got: np.ndarray, layout: str) -> tuple[int, int, int]:
    """(fp32 boxes, variant boxes, matched) for one sample: confident boxes after NMS,
    matched greedily (fp32's most confident first) at IoU >= MATCH_IOU, same class."""
    rb, _, rc = _boxes(ref, layout)
    gb, _, gc = _boxes(got, layout)
    used = np.zeros(len(gb), dtype=bool)
    matched = 0
    for i in range(len(rb)):
        cand = np.flatnonzero((gc == rc[i]) & ~used)
        if cand.size == 0:
            continue
        ious = _iou(rb[i], gb[cand])
        best = int(np.argmax(ious))
        if ious[best] >= MATCH_IOU:
            used[cand[best]] = True
            matched += 1
    return len(rb), len(gb), matched


def box_agreement(
    reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray], layout: str = "yolov8"
) -> float:
    """Matched boxes / max(fp32 boxes, variant boxes), summed over samples (so a lost box
    and an extra box both count); 1.0 when neither finds any."""
    total = matched = 0
    for r, g in zip(_per_sample(reference[0]), _per_sample(outputs[0]), strict=True):
        nr, ng, m = box_counts(r, g, layout)
        total += max(nr, ng)
        matched += m
    return 1.0 if total == 0 else matched / total


def _threshold(ref: np.ndarray) -> float:
    """0.5 for probabilities, 0 for logits (any value outside [0, 1])."""
    return 0.5 if ref.size == 0 or (ref.min() >= 0.0 and ref.max() <= 1.0) else 0.0


def map_iou(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """IoU of the thresholded first output (one channel), or the mean IoU over classes of
    the per-pixel argmax (``[samples, batch, classes > 1, H, W]``)."""
    ref, got = np.asarray(reference[0]), np.asarray(outputs[0])
    if ref.ndim >= 4 and ref.shape[-3] > 1:
        rl, gl = np.argmax(ref, axis=-3), np.argmax(got, axis=-3)
        ious = []
        for c in np.union1d(np.unique(rl), np.unique(gl)):
            inter = np.sum((rl == c) & (gl == c))
            ious.append(inter / max(np.sum((rl == c) | (gl == c)), 1))
        return float(np.mean(ious)) if ious else 1.0
    thr = _threshold(ref)
    rm, gm = ref > thr, got > thr
    union = int(np.sum(rm | gm))
    return 1.0 if union == 0 else float(np.sum(rm & gm) / union)


def _ctc(steps: np.ndarray, blank: int = 0) -> tuple[int, ...]:
    """Greedy CTC of one sample: per-step scores ``[..., steps, classes]``, or class ids
    (an integer array: the model took the argmax itself)."""
    if steps.dtype.kind in "iu":
        best = steps.reshape(-1)
    else:
        best = np.argmax(steps.reshape(-1, steps.shape[-1]), axis=-1)
    out, prev = [], -1
    for k in best.tolist():
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def ctc_agreement(
    reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray], blank: int = 0
) -> float:
    """Share of samples whose greedy-CTC decode (argmax per step over the last axis,
    repeats collapsed, ``blank`` dropped) of the first output is the same string."""
    pairs = list(zip(_per_sample(reference[0]), _per_sample(outputs[0]), strict=True))
    same = [_ctc(r, blank) == _ctc(g, blank) for r, g in pairs]
    return float(np.mean(same)) if same else 1.0


def decision_agreement(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Share of the first output's scores on the same side of the threshold (0.5 for
    probabilities, 0 for logits)."""
    ref, got = np.asarray(reference[0]), np.asarray(outputs[0])
    thr = _threshold(ref)
    return float(np.mean((ref >= thr) == (got >= thr))) if ref.size else 1.0


def embedding_cosines(
    reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray], mask: np.ndarray | None
) -> np.ndarray:
    """Per-sample cosine of the first output's sentence embedding: a ``[samples, seq,
    hidden]`` output mean-pooled over ``mask``'s real tokens (``[samples, seq]``; all
    positions without one), any other output flattened per sample."""
    ref = np.asarray(reference[0], dtype=np.float64)
    got = np.asarray(outputs[0], dtype=np.float64)
    if ref.ndim == 3:
        m = np.ones(ref.shape[:2]) if mask is None or mask.shape != ref.shape[:2] else mask
        w = m.astype(np.float64)[..., None]
        count = np.maximum(w.sum(axis=1), 1.0)
        ref, got = (ref * w).sum(axis=1) / count, (got * w).sum(axis=1) / count
    return _cosines(ref, got)


def task_value(
    metric: str,
    reference: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    layout: str | None = None,
    mask: np.ndarray | None = None,
) -> float:
    """The named task metric (:data:`TASK_METRICS`) of ``outputs`` against ``reference``
    (``mask``: the attention mask, ``[samples, seq]``, for ``embedding``)."""
    if metric == "top1":
        return top1_agreement(reference, outputs)
    if metric == "boxes":
        return box_agreement(reference, outputs, layout or "yolov8")
    if metric == "map_iou":
        return map_iou(reference, outputs)
    if metric == "ctc":
        return ctc_agreement(reference, outputs)
    if metric == "decision":
        return decision_agreement(reference, outputs)
    if metric == "embedding":
        return float(np.mean(embedding_cosines(reference, outputs, mask)))
    if metric == "cosine":
        return float(np.mean(_cosines(np.asarray(reference[0]), np.asarray(outputs[0]))))
    raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(TASK_METRICS)}")
