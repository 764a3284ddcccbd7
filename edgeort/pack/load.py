"""Load and check the source model: one :class:`ModelError` naming the file and problem.

Checks, in order: the file exists and parses (truncated or random bytes fail here),
``onnx.checker`` (full check with strict shape inference where the model is small
enough), opsets no newer than this onnx and onnxruntime know, and that onnxruntime can
build a CPU session from it (unsupported operators or types fail here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from edgeort._fs import sha256_file
from edgeort.bundle import TensorSpec
from edgeort.errors import ModelError
from edgeort.hardware.ep import cpu_session

__all__ = [
    "SourceModel",
    "graphs_in",
    "io_info",
    "load_model",
    "optional_inputs",
    "save_model",
]

log = logging.getLogger(__name__)

_FULL_CHECK_LIMIT = 256 * 1024 * 1024  # bytes; full_check (strict shape inference) below this
_PROTO_LIMIT = 1_800_000_000  # save with external data at or above this size


@dataclass(frozen=True, slots=True)
class SourceModel:
    path: Path
    proto: onnx.ModelProto
    sha256: str
    size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ir_version: int
    opsets: dict[str, int]
    optional: tuple[TensorSpec, ...] = ()  # graph inputs with an initializer as default


def _dtype_name(elem_type: int) -> str:
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name)
    except (KeyError, TypeError, ValueError):
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()


def _info(vi: onnx.ValueInfoProto) -> TensorSpec:
    tensor = vi.type.tensor_type
    dims: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(int(d.dim_value))  # (some exporters write -1 for "dynamic")
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return TensorSpec(vi.name, _dtype_name(tensor.elem_type), tuple(dims))


def graphs_in(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every graph nested in it (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from graphs_in(attr.g)
            for sub in attr.graphs:
                yield from graphs_in(sub)


def io_info(model: onnx.ModelProto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Real inputs (initializers excluded) and outputs of ``model``."""
    inits = {i.name for i in model.graph.initializer}
    inputs = tuple(_info(v) for v in model.graph.input if v.name not in inits)
    return inputs, tuple(_info(v) for v in model.graph.output)


def optional_inputs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    """Graph inputs that have an initializer (a default the caller may override)."""
    inits = {i.name for i in model.graph.initializer}
    return tuple(_info(v) for v in model.graph.input if v.name in inits)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model``; large models keep their weights in ``<name>.data`` beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    large = model.ByteSize() >= _PROTO_LIMIT
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=large,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data" if large else None,
    )


def _check_opsets(path: Path, model: onnx.ModelProto) -> None:
    newest = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > newest:
            raise ModelError(
                f"{path}: opset {op.version} of the default ONNX domain is not supported "
                f"(onnx {onnx.__version__} knows up to {newest}); re-export the model "
                f"with opset {newest} or lower",
                path=path,
            )
    if model.ir_version > onnx.IR_VERSION:
        raise ModelError(
            f"{path}: IR version {model.ir_version} is newer than this onnx supports "
            f"({onnx.IR_VERSION})",
            path=path,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for marker in ("[ONNXRuntimeError] : ", "] "):
        if marker in text:
            text = text.split(marker)[-1]
    return text.splitlines()[0][:400]


def load_model(path: str | Path) -> SourceModel:
    """Read, check and describe the model at ``path`` (external data supported)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found", path=path)
    try:
        model = onnx.load_model(str(path), load_external_data=True)
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise ModelError(
            f"{path}: not a readable ONNX model (truncated or corrupt?): {_first_line(exc)}",
            path=path,
        ) from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path}: not a readable ONNX model (empty graph)", path=path)
    _check_opsets(path, model)
    size = path.stat().st_size
    try:
        onnx.checker.check_model(str(path), full_check=size < _FULL_CHECK_LIMIT)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"{path}: onnx.checker: {_first_line(exc)}", path=path) from None
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.log_severity_level = 3
        cpu_session(path, so)
    except Exception as exc:  # ORT raises its own exception types
        raise ModelError(
            f"{path}: onnxruntime {ort.__version__} cannot load it: {_first_line(exc)}",
            path=path,
        ) from None
    inferred = _infer(model)
    inputs, outputs = io_info(inferred)
    opsets = {op.domain or "ai.onnx": int(op.version) for op in model.opset_import}
    return SourceModel(
        path, inferred, sha256_file(path), size, inputs, outputs, int(model.ir_version), opsets,
        optional_inputs(inferred),
    )  # fmt: skip


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    if model.ByteSize() >= _PROTO_LIMIT:
        return model
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # inference is a nicety here; the checker already passed
        log.info("shape inference failed (%s); using the model as is", _first_line(exc))
        return model
