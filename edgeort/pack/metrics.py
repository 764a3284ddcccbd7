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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Metrics", "compare", "is_classifier", "padding_mask", "top1_accuracy"]

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
) -> Metrics:
    """Compare per-output arrays (first axis = samples) of a variant with the reference;
    ``mask`` (from :func:`padding_mask`) leaves padded positions out."""
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
        agreement = float(np.mean(np.argmax(reference[0], -1) == np.argmax(outputs[0], -1)))
        if labels is not None:
            accuracy = top1_accuracy(outputs[0], labels)
    return Metrics(
        samples=samples,
        cosine_mean=float(np.mean(cos)),
        cosine_min=float(np.min(cos)),
        rel_error=float(np.sqrt(diff_sq) / max(np.sqrt(ref_sq), _EPS)),
        max_abs=max_abs,
        top1_agreement=agreement,
        top1_accuracy=accuracy,
        masked_by=mask[0] if mask is not None and masked else None,
    )
