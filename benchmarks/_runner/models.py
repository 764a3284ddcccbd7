"""The real models the benchmark runs, their real data, and how accuracy is judged.

* ``digits``: the trained CNN of ``examples/digits`` (360 held-out labelled images):
  top-1 accuracy against the labels and top-1 agreement with fp32.
* ``minilm``: all-MiniLM-L6-v2 exported by ``benchmarks/export_minilm.py`` (103 real
  validation sentences): the sentence embedding as sentence-transformers computes it
  (mean of ``last_hidden_state`` over the real tokens, then L2 normalisation), cosine
  with the fp32 embedding (mean and min over sentences).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ModelSpec", "Samples", "accuracy", "load_samples", "specs"]

ROOT = Path(__file__).resolve().parents[2]
LABELS = "__labels__"

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    title: str
    onnx: Path
    calibration: Path
    validation: Path
    kind: str  # classifier | embedding
    quick_samples: int
    fixed_shapes: bool  # give package() the validation shapes (for fixed-shape profiles)
    bert: tuple[int, int] | None = None  # (num_heads, hidden_size) for the fusion recipe


def specs() -> dict[str, ModelSpec]:
    digits = ROOT / "examples" / "digits"
    minilm = ROOT / "benchmarks" / "models" / "minilm"
    bert = None
    if (minilm / "config.json").exists():
        cfg = json.loads((minilm / "config.json").read_text(encoding="utf-8"))
        bert = (int(cfg["num_attention_heads"]), int(cfg["hidden_size"]))
    return {
        "digits": ModelSpec(
            "digits", "digits CNN (examples/digits, 8x8 images, 10 classes)",
            digits / "model.onnx", digits / "calibration.npz", digits / "validation.npz",
            "classifier", 120, fixed_shapes=False,
        ),
        "minilm": ModelSpec(
            "minilm", "all-MiniLM-L6-v2 sentence encoder (6 layers, hidden 384, seq 39)",
            minilm / "model.onnx", minilm / "calibration.npz", minilm / "validation.npz",
            "embedding", 24, fixed_shapes=True, bert=bert,
        ),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Samples:
    feeds: tuple[Feeds, ...]  # batch 1 each
    labels: np.ndarray | None
    shapes: dict[str, tuple[int, ...]]  # per input, batch 1


def load_samples(path: Path, limit: int | None = None) -> Samples:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    labels = arrays.pop(LABELS, None)
    count = min(len(v) for v in arrays.values())
    count = min(count, limit) if limit else count
    feeds = tuple(
        {k: np.ascontiguousarray(v[i : i + 1]) for k, v in arrays.items()} for i in range(count)
    )
    shapes = {k: (1, *v.shape[1:]) for k, v in arrays.items()}
    return Samples(feeds, None if labels is None else labels[:count], shapes)


def run_all(run: Callable[[Feeds], Sequence[np.ndarray]], samples: Samples) -> list[np.ndarray]:
    """First output of every sample (batch 1 each)."""
    return [np.asarray(run(f)[0]) for f in samples.feeds]


def _embedding(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.float64)[..., None]
    pooled = (hidden.astype(np.float64) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def accuracy(
    kind: str, samples: Samples, ref: Sequence[np.ndarray], got: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Accuracy of ``got`` (first outputs per sample) against fp32 ``ref`` and labels."""
    if kind == "classifier":
        r, g = np.concatenate(ref), np.concatenate(got)
        out: dict[str, Any] = {
            "samples": len(g),
            "top1_agreement": round(float(np.mean(r.argmax(-1) == g.argmax(-1))), 6),
            "max_abs_logit_diff": round(float(np.max(np.abs(r - g))), 6),
        }
        if samples.labels is not None:
            out["top1_accuracy"] = round(float(np.mean(g.argmax(-1) == samples.labels)), 6)
        return out
    cos, flat, tokens = [], [], []
    for feeds, r, g in zip(samples.feeds, ref, got, strict=True):
        mask = feeds["attention_mask"]
        cos.append(float(np.sum(_embedding(r, mask) * _embedding(g, mask))))
        flat.append(_cosine(r.ravel(), g.ravel()))
        real = mask[0].astype(bool)
        tokens.append(_cosine(r[0, real].ravel(), g[0, real].ravel()))
    arr = np.asarray(cos)
    return {
        "samples": int(arr.size),
        "embedding_cosine_mean": round(float(arr.mean()), 6),
        "embedding_cosine_min": round(float(arr.min()), 6),
        "embedding_cosine_p05": round(float(np.percentile(arr, 5)), 6),
        # edgeort's gate metric: cosine of the whole last_hidden_state, padding included
        "hidden_state_cosine_mean": round(float(np.mean(flat)), 6),
        "hidden_state_cosine_real_tokens_mean": round(float(np.mean(tokens)), 6),
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
