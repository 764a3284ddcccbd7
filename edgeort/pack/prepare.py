"""Prepare the fp32 model for a target: fixed input shapes, unique node names, and
``quant_pre_process`` before quantization.

Fixed shapes (profiles with ``model.fixed_shapes``): ``--shape name=d1,d2,...`` first
(``make_input_shape_fixed``); a remaining dynamic first dimension is the batch and
becomes 1 (recorded); any other dynamic dimension is a :class:`UsageError` naming the
input and the option.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.tools.onnx_model_utils import (
    fix_output_shapes,
    make_dim_param_fixed,
    make_input_shape_fixed,
)

from edgeort._fs import scratch_cwd
from edgeort.bundle import TensorSpec
from edgeort.errors import PackageError, UsageError
from edgeort.pack.load import graphs_in, io_info, save_model

__all__ = [
    "PER_CHANNEL_QDQ_OPSET",
    "Prepared",
    "check_fixed",
    "check_shapes",
    "constants_to_initializers",
    "default_opset",
    "fix_shapes",
    "name_nodes",
    "parse_shape",
    "pre_process",
    "upgrade_opset",
]

PER_CHANNEL_QDQ_OPSET = 13  # DequantizeLinear's axis (per-channel QDQ) needs opset 13

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    path: Path
    notes: tuple[str, ...] = ()


def default_opset(model: onnx.ModelProto) -> int:
    """The model's ``ai.onnx`` opset (0 when it imports none)."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade_opset(model: Path, out: Path, version: int) -> Prepared | str:
    """``model`` converted to ``ai.onnx`` opset ``version`` with
    ``onnx.version_converter`` and checked (onnx checker, an onnxruntime CPU session);
    or the reason it cannot be (a string)."""
    import onnxruntime as ort
    from onnx import version_converter

    from edgeort.hardware.ep import cpu_session

    proto = onnx.load_model(str(model))
    current = default_opset(proto)
    try:
        converted = version_converter.convert_version(proto, version)
        onnx.checker.check_model(converted)
        save_model(converted, out)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        cpu_session(out, so)
    except Exception as exc:  # the converter and ORT raise many types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return f"onnx.version_converter {current} -> {version} failed: {type(exc).__name__} {first}"
    note = f"opset {current} -> {version} (onnx.version_converter)"
    return Prepared(out, (note,))


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``"name=1,3,224,224"`` -> ``("name", (1, 3, 224, 224))``."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise UsageError(
            f"--shape {text!r}: expected NAME=D1,D2,... with positive integers, "
            "e.g. --shape input=1,3,224,224",
            option="--shape",
        )
    return name, shape


def check_shapes(shapes: Mapping[str, Sequence[int]], inputs: Sequence[TensorSpec]) -> None:
    """Every ``--shape`` names a model input, with its rank and its fixed dims."""
    by_name = {i.name: i for i in inputs}
    shared: dict[str, tuple[str, int, int]] = {}  # dim_param -> (input, axis, size)
    placeholders = _placeholder_dims(shapes, by_name)
    for name, shape in shapes.items():
        info = by_name.get(name)
        if info is None:
            raise UsageError(
                f"--shape {name}=...: the model has no input {name!r} (inputs: {sorted(by_name)})",
                option="--shape",
            )
        if len(shape) != len(info.shape):
            raise UsageError(
                f"--shape {name}=...: rank {len(shape)}, input {name!r} has rank "
                f"{len(info.shape)} {list(info.shape)}",
                option="--shape",
            )
        for axis, (want, got) in enumerate(zip(info.shape, shape, strict=True)):
            if isinstance(want, int) and want != got:
                raise UsageError(
                    f"--shape {name}=...: dimension {axis} is fixed at {want} in the model, "
                    f"got {got}",
                    option="--shape",
                )
            if isinstance(want, str) and want and want not in placeholders:
                first = shared.setdefault(want, (name, axis, got))
                if first[2] != got:
                    raise UsageError(
                        f"--shape: inconsistent sizes for dimension {want!r}, which inputs "
                        f"{first[0]!r} (dim {first[1]} = {first[2]}) and {name!r} (dim {axis} "
                        f"= {got}) share in the model: give both the same size",
                        option="--shape",
                    )


def _placeholder_dims(
    shapes: Mapping[str, Sequence[int]], by_name: Mapping[str, TensorSpec]
) -> set[str]:
    """Dim names that one input gives to dims of different sizes: a placeholder, not a
    size the dims share (Paddle exports name every unknown dim ``?``, so a [1, 3, 48,
    192] text line has H and W both ``?``). :func:`_fix_input` fixes those per dim."""
    out: set[str] = set()
    for name, shape in shapes.items():
        info = by_name.get(name)
        sizes: dict[str, set[int]] = {}
        for dim, size in zip(info.shape if info else (), shape, strict=False):
            if isinstance(dim, str) and dim:
                sizes.setdefault(dim, set()).add(int(size))
        out.update(d for d, seen in sizes.items() if len(seen) > 1)
    return out


def fix_shapes(model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]]) -> tuple[str, ...]:
    """Make every input shape fixed in place; returns notes for the manifest."""
    notes: list[str] = []
    graph = model.graph
    before = {i.name: i.shape for i in io_info(model)[0]}
    # Inferred shapes of intermediate values were computed for the dynamic dims; once
    # inputs are fixed they can contradict (ORT then refuses the model, e.g. an LSTM in
    # an If branch): drop them, every consumer infers again.
    _drop_value_info(graph)
    for name, shape in shapes.items():
        try:
            _fix_input(graph, name, shape)
        except ValueError as exc:  # a dim shared with an input fixed to another size
            raise UsageError(
                f"--shape {name}={','.join(map(str, shape))}: inconsistent with another "
                f"--shape or the model's fixed dims: {exc}",
                option="--shape",
            ) from None
        notes.append(f"input {name!r} fixed to {list(shape)} (--shape)")
    missing: list[str] = []
    for index in range(len(io_info(model)[0])):
        info = io_info(model)[0][index]  # re-read: fixing one input can fix a shared dim
        dynamic = info.dynamic_dims
        if dynamic == (0,):
            _fix_batch(graph, info)
            notes.append(f"input {info.name!r}: dynamic batch dimension set to 1")
            continue
        if info.name not in shapes and before.get(info.name) != info.shape:
            shared = [d for d in before.get(info.name, ()) if isinstance(d, str) and d]
            why = f"it shares {', '.join(map(repr, shared))} with" if shared else "by"
            notes.append(
                f"input {info.name!r}: dynamic dimension(s) fixed, shape now {list(info.shape)} "
                f"({why} an input fixed before it)"
            )
        if dynamic:
            example = ",".join(str(d) if isinstance(d, int) else "N" for d in info.shape)
            dims = ", ".join(
                str(a) if info.shape[a] is None else f"{a} ({info.shape[a]})" for a in dynamic
            )
            missing.append(
                f"input {info.name!r} (dynamic dims {dims}): --shape {info.name}={example}"
            )
    if missing:
        raise UsageError(
            "this target needs fixed shapes; give every dynamic input its shape (N = the size "
            f"to use): {'; '.join(missing)}",
            option="--shape",
        )
    fix_output_shapes(model)
    return tuple(notes)


def check_fixed(path: Path, notes: Sequence[str]) -> None:
    """The fixed-shape model at ``path`` loads in onnxruntime (CPU EP), or a
    :class:`PackageError` naming the node and the shapes. (Shape inference with fixed
    dims runs through every ``If`` branch, and a branch the model never takes at these
    sizes can fail it.)"""
    import onnxruntime as ort

    from edgeort.hardware.ep import cpu_session

    so = ort.SessionOptions()
    so.log_severity_level = 4  # (graph optimizations on: some failures show only then)
    try:
        cpu_session(path, so)
    except Exception as exc:  # ORT raises its own types
        text = str(exc).strip()
        for marker in ("[ONNXRuntimeError] : ", " : FAIL : "):
            text = text.split(marker)[-1]
        fixed = "; ".join(notes) or "fixed shapes"
        raise PackageError(
            f"with fixed shapes ({fixed}) onnxruntime cannot load the model: "
            f"{text.splitlines()[0][:300] if text else type(exc).__name__}; try other "
            "--shape values (the sizes the model is used at), --freeze NAME=VALUE for an "
            "input that picks an If branch (e.g. a sample rate), a model exported for fixed "
            "shapes, or leave this target out (--keep-going)",
            path=path,
        ) from None


def _fix_input(graph: onnx.GraphProto, name: str, shape: Sequence[int]) -> None:
    """``make_input_shape_fixed``; when the input's dim names clash (Paddle exports
    name every unknown dim ``?``, so fixing H to 48 would fix W to 48 too), set this
    input's dims directly instead."""
    value = next(v for v in graph.input if v.name == name)
    dims = value.type.tensor_type.shape.dim
    sizes: dict[str, set[int]] = {}
    for dim, size in zip(dims, shape, strict=True):
        if dim.HasField("dim_param"):
            sizes.setdefault(dim.dim_param, set()).add(int(size))
    if all(len(v) == 1 for v in sizes.values()):
        make_input_shape_fixed(graph, name, list(shape))
        return
    log.info("input %s: one dim name for dims of different sizes; fixing them directly", name)
    for dim, size in zip(dims, shape, strict=True):
        dim.Clear()
        dim.dim_value = int(size)


def _drop_value_info(graph: onnx.GraphProto) -> None:
    for sub in graphs_in(graph):
        del sub.value_info[:]


def _fix_batch(graph: onnx.GraphProto, info: TensorSpec) -> None:
    batch = info.shape[0]
    if isinstance(batch, str) and batch:
        make_dim_param_fixed(graph, batch, 1)
    else:
        fixed: list[Any] = [1, *info.shape[1:]]  # a named batch dim was handled above
        make_input_shape_fixed(graph, info.name, fixed)


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed (or duplicate-named) node a unique name, in place, so recipes
    and fallbacks can name nodes to exclude."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Turn the main graph's ``Constant`` nodes into initializers, in place; returns how
    many. Paddle exports hold every weight in a ``Constant`` node: a quantizer then
    treats a Conv's weight as an activation (QNN's w8a16 recipe gave it uint16, and the
    QNN EP refused the Conv), and no quantizer folds it as a weight."""
    from onnx import numpy_helper

    graph = model.graph
    outputs = {o.name for o in graph.output}
    keep: list[onnx.NodeProto] = []
    moved = 0
    for node in graph.node:
        if (
            node.op_type == "Constant"
            and node.domain in ("", "ai.onnx")
            and (node.output[0] not in outputs)
        ):
            value = _constant_value(node)
            if value is not None:
                graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
                moved += 1
                continue
        keep.append(node)
    if moved:
        del graph.node[:]
        graph.node.extend(keep)
    return moved


def _constant_value(node: onnx.NodeProto) -> Any:
    import numpy as np
    from onnx import numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
    return None  # sparse_value, strings: left as nodes


def pre_process(model: Path, out: Path) -> Prepared:
    """``quant_pre_process`` (symbolic shape inference + basic optimization); if it fails
    on this model, retry without symbolic inference, then keep the model as is --
    and say why."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    attempts: tuple[dict[str, Any], ...] = ({}, {"skip_symbolic_shape": True})
    errors = []
    for options in attempts:
        try:
            with scratch_cwd(out.parent):
                quant_pre_process(str(model.resolve()), str(out.resolve()), **options)
        except Exception as exc:  # the pre-processor raises many types on odd models
            errors.append(
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            )
            continue
        from edgeort.pack.optimize import drop_unused_opsets

        proto = onnx.load_model(str(out))
        name_nodes(proto)
        drop_unused_opsets(proto)
        save_model(proto, out)
        note = "quant_pre_process" + (" (without symbolic shape inference)" if options else "")
        return Prepared(out, (note,))
    log.warning("quant_pre_process failed; quantizing the model as is: %s", errors[-1])
    return Prepared(model, (f"quant_pre_process skipped: it failed on this model ({errors[-1]})",))
