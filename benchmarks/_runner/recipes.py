"""Quantization recipes built directly with ``onnxruntime.quantization`` (no edgeort gate).

They reproduce (or refute) the recipe figures quoted in issue 3: per-tensor vs
per-channel dynamic int8 and static int8 QDQ on every op for the transformer, dynamic and
static int8 for the CNN. Each recipe records the exact call it made.

Bases for the transformer: ``export`` (the exported graph after ``quant_pre_process``, as
ORT recommends before quantizing) and ``fused`` (``onnxruntime.transformers``
``optimize_model(model_type="bert", num_heads, hidden_size, opt_level=0)``: Attention,
SkipLayerNormalization, BiasGelu, EmbedLayerNormalization fused).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _runner.models import ModelSpec, load_samples

__all__ = ["Built", "build_recipes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Built:
    key: str
    label: str
    path: Path | None
    call: dict[str, Any]
    build_s: float
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class _Reader:
    """``CalibrationDataReader``: the calibration samples, batch 1 each."""

    def __init__(self, path: Path) -> None:
        self._samples = load_samples(path).feeds
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._samples)


QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
             "DynamicQuantizeMatMul", "ConvInteger", "QAttention", "QLinearConv",
             "QLinearMatMul")  # fmt: skip


def _op_counts(path: Path) -> dict[str, int]:
    """How many quantization ops the recipe produced (shows what it really quantized)."""
    import onnx

    ops = [n.op_type for n in onnx.load_model(str(path), load_external_data=False).graph.node]
    return {op: ops.count(op) for op in QUANT_OPS if op in ops} | {"nodes": len(ops)}


def _timed(
    key: str, label: str, out: Path, call: dict[str, Any], make: Callable[[], None]
) -> Built:
    t0 = time.perf_counter()
    try:
        make()
    except Exception as exc:  # a recipe that cannot be built is a result too
        log.warning("recipe %s failed: %s", key, exc)
        why = f"{type(exc).__name__}: {exc}"
        return Built(key, label, None, call, round(time.perf_counter() - t0, 2), why)
    call["op_counts"] = _op_counts(out)
    return Built(key, label, out, call, round(time.perf_counter() - t0, 2))


def _prepared(spec: ModelSpec, work: Path) -> Built:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "export-pre.onnx"
    call: dict[str, Any] = {"fn": "quant_pre_process", "skip_symbolic_shape": False}

    def make() -> None:
        try:
            # On incomplete inference ORT's symbolic_shape_infer dumps sym_shape_infer_temp.onnx
            # (+ a 90 MB .data file for MiniLM) into the working directory: keep it in ours.
            with contextlib.chdir(work):
                quant_pre_process(str(spec.onnx), str(out))
        except Exception as exc:  # e.g. "Incomplete symbolic shape inference" on MiniLM
            call.update(skip_symbolic_shape=True, symbolic_shape_error=str(exc))
            quant_pre_process(str(spec.onnx), str(out), skip_symbolic_shape=True)

    return _timed("fp32-pre", "fp32 export after quant_pre_process", out, call, make)


def _fused(spec: ModelSpec, work: Path) -> Built:
    from onnxruntime.transformers.optimizer import optimize_model

    assert spec.bert is not None
    heads, hidden = spec.bert
    out = work / "fused.onnx"
    call = {"fn": "optimize_model", "model_type": "bert", "num_heads": heads,
            "hidden_size": hidden, "opt_level": 0}  # fmt: skip
    stats: dict[str, int] = {}

    def make() -> None:
        opt = optimize_model(str(spec.onnx), model_type="bert", num_heads=heads,
                             hidden_size=hidden, opt_level=0)  # fmt: skip
        stats.update({k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v})
        opt.save_model_to_file(str(out))

    built = _timed("fp32-fused", "fp32 fused (transformers optimizer)", out, call, make)
    call["fused_ops"] = stats
    return built


def _dynamic(base: Built, tag: str, per_channel: bool, work: Path) -> Built:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kind = "per-channel" if per_channel else "per-tensor"
    out = work / f"{tag}-dyn-{kind}.onnx"
    # Tensors made by contrib ops (fused graph) have no inferred type: ORT's documented
    # way out is DefaultTensorType (the quantizer otherwise refuses the model).
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    call = {"fn": "quantize_dynamic", "base": base.key, "weight_type": "QInt8",
            "per_channel": per_channel, "reduce_range": False,
            "extra_options": {"DefaultTensorType": "FLOAT"}}  # fmt: skip
    return _timed(f"{tag}-dynamic-int8-{kind}", f"dynamic int8 {kind} ({tag})", out, call,
                  lambda: quantize_dynamic(str(base.path), str(out), weight_type=QuantType.QInt8,
                                           per_channel=per_channel,
                                           extra_options=extra))  # fmt: skip


def _static(base: Built, tag: str, spec: ModelSpec, work: Path) -> Built:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out = work / f"{tag}-static-qdq.onnx"
    call = {"fn": "quantize_static", "base": base.key, "quant_format": "QDQ",
            "op_types_to_quantize": "all (None)", "activation_type": "QUInt8",
            "weight_type": "QInt8", "per_channel": True, "calibrate_method": "MinMax",
            "calibration": spec.calibration.name}  # fmt: skip
    return _timed(f"{tag}-static-int8-qdq", f"static int8 QDQ, all ops ({tag})", out, call,
                  lambda: quantize_static(
                      str(base.path), str(out), _Reader(spec.calibration),
                      quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                      weight_type=QuantType.QInt8, per_channel=True,
                      calibrate_method=CalibrationMethod.MinMax))  # fmt: skip


def build_recipes(spec: ModelSpec, work: Path, *, quick: bool) -> list[Built]:
    """Every recipe for ``spec`` (quick: the transformer's ``export`` base is skipped)."""
    work.mkdir(parents=True, exist_ok=True)
    if spec.kind == "classifier":
        pre = _prepared(spec, work)
        if pre.path is None:
            return [pre]
        return [_dynamic(pre, "cnn", True, work), _static(pre, "cnn", spec, work)]
    out: list[Built] = []
    bases = [("fused", _fused(spec, work))]
    if not quick:
        bases.append(("export", _prepared(spec, work)))
    for tag, base in bases:
        out.append(base)
        if base.path is None:
            continue
        out += [_dynamic(base, tag, False, work), _dynamic(base, tag, True, work)]
        out.append(_static(base, tag, spec, work))
    return out
