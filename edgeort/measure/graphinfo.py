"""Read an ONNX file into the plain graph the measure modules reason about.

Like ORT's usability checker, the graph is first optimised at BASIC level by ORT itself
(constant folding, redundant-node elimination: what every EP sees before partitioning),
then shape inference fills in the shapes the per-EP checks need: ORT's symbolic shape
inference (``onnxruntime.tools.symbolic_shape_infer``, which knows ORT's contrib ops),
falling back to ONNX's.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, shape_inference

from edgeort._fs import scratch_cwd
from edgeort.errors import ModelError
from edgeort.hardware.ep import LEVELS, cpu_session
from edgeort.measure.partition import GraphNode, ShapeInfo

__all__ = ["GraphInfo", "optimized_model", "read_graph"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GraphInfo:
    path: Path
    nodes: tuple[GraphNode, ...]
    shapes: ShapeInfo
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_inputs: tuple[str, ...]  # graph inputs with a symbolic/unknown dim
    optimized: str  # the ORT level applied before reading ("none" when it failed)

    def op_types(self) -> set[str]:
        return {n.op_type for n in self.nodes}


def _load(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: cannot read the ONNX model: {exc}", path=path) from exc


def optimized_model(path: Path, level: str) -> onnx.ModelProto | None:
    """``path`` as ORT's CPU EP optimises it at ``level``; None when ORT cannot."""
    if level == "none":
        return None
    with tempfile.TemporaryDirectory(prefix="edgeort-opt-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = LEVELS[level]
        so.optimized_model_filepath = str(out)
        so.log_severity_level = 3
        try:
            cpu_session(path, so)
            return onnx.load(str(out))
        except Exception as exc:  # a model ORT cannot load is read as written
            log.info("cannot optimise %s at %s level: %s", path, level, exc)
            return None


def _dims(value: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in value.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or None)
    return tuple(out)


def _attr(attr: onnx.AttributeProto) -> Any:
    if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return None
    if attr.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    value = helper.get_attribute_value(attr)
    return value.decode() if isinstance(value, bytes) else value


def _nodes(graph: onnx.GraphProto) -> tuple[GraphNode, ...]:
    seen: set[str] = set()
    out = []
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        attrs = {a.name: _attr(a) for a in node.attribute}
        out.append(
            GraphNode(name, node.op_type, node.domain, tuple(node.input), tuple(node.output), attrs)
        )
    return tuple(out)


def _infer_shapes(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """ORT's symbolic shape inference (it knows the com.microsoft ops, e.g. 16-bit Q/DQ),
    else ONNX's; the model as is when both fail."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        # on failure it saves sym_shape_infer_temp.onnx + uuid .data files into the cwd
        with tempfile.TemporaryDirectory(prefix="edgeort-shapes-") as tmp, scratch_cwd(Path(tmp)):
            inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
        if isinstance(inferred, onnx.ModelProto):
            return inferred
    except Exception as exc:  # it raises plain Exceptions on models it cannot follow
        log.info("symbolic shape inference failed on %s: %s", path, exc)
    try:
        inferred_onnx: onnx.ModelProto = shape_inference.infer_shapes(model)
        return inferred_onnx
    except Exception as exc:
        log.info("shape inference failed on %s: %s", path, exc)
        return model


def read_graph(path: str | Path, *, optimize: str = "basic") -> GraphInfo:
    """The graph of ``path`` after ORT's ``optimize`` level (``none`` to read it as is)."""
    path = Path(path)
    model = _load(path)
    optimized = optimized_model(path, optimize)
    applied = optimize if optimized is not None else "none"
    model = optimized if optimized is not None else model
    model = _infer_shapes(model, path)
    graph = model.graph
    shapes: dict[str, tuple[int | str | None, ...]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = _dims(value)
        if dims is not None:
            shapes[value.name] = dims
    constants = {init.name for init in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    inputs = tuple(i.name for i in graph.input if i.name not in constants)
    dynamic = tuple(
        name for name in inputs if not all(isinstance(d, int) for d in shapes.get(name, (None,)))
    )
    return GraphInfo(
        path=path,
        nodes=_nodes(graph),
        shapes=ShapeInfo(shapes, frozenset(constants)),
        inputs=inputs,
        outputs=tuple(o.name for o in graph.output),
        dynamic_inputs=dynamic,
        optimized=applied,
    )
