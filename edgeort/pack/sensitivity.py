"""Find the nodes whose quantization loses the most accuracy.

Both the float model and its quantized build are run with every intermediate tensor
they share (by name) added as an output. For each tensor, the relative error of the
quantized value against the float one is measured over a few samples; a node's
sensitivity is the error at its output minus the largest error at its inputs: the
error that node adds. Each ranked node comes with the producers of its inputs: a tensor
is quantized where it is made as well as where it is used (the masked attention scores
feeding a Softmax are the classic case), so excluding the consumer alone is not enough.
The quantizer keeps node names and the float-domain tensor names
of the model it was given (QDQ models add ``*_QuantizeLinear``/``*_DequantizeLinear``
tensors beside them), so this works for QDQ, QOperator and dynamic builds alike.
The nodes ranked first go to ``nodes_to_exclude`` in the ``exclude_sensitive`` fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgeort.hardware.ep import cpu_session
from edgeort.pack.data import Dataset

__all__ = ["rank_sensitive_nodes", "run_with_outputs"]

log = logging.getLogger(__name__)


def _node_outputs(model: onnx.ModelProto) -> set[str]:
    return {o for n in model.graph.node for o in n.output if o}


def _with_outputs(model: onnx.ModelProto, names: Iterable[str], out: Path) -> Path:
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    existing = {o.name for o in augmented.graph.output}
    for name in names:
        if name not in existing:
            augmented.graph.output.append(onnx.ValueInfoProto(name=name))
    onnx.save_model(augmented, str(out))
    return out


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return cpu_session(path, so)


def run_with_outputs(
    model: onnx.ModelProto, names: list[str], data: Dataset, path: Path
) -> Iterator[tuple[str, np.ndarray]]:
    """(tensor name, value) of each of ``names`` for every sample of ``data``: ``model``
    with those tensors added as outputs, saved at ``path`` and run on the CPU EP."""
    session = _session(_with_outputs(model, names, path))
    for feed in data.feeds():
        for name, value in zip(names, session.run(names, feed), strict=True):
            yield name, np.asarray(value)


def _run(path: Path, names: list[str], data: Dataset, samples: int) -> dict[str, list[np.ndarray]]:
    session = _session(path)
    found: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feed in data.feeds(samples):
        for name, value in zip(names, session.run(names, feed), strict=True):
            found[name].append(np.asarray(value, dtype=np.float64).ravel())
    return found


def _errors(ref: dict[str, list[np.ndarray]], got: dict[str, list[np.ndarray]]) -> dict[str, float]:
    errors = {}
    for name, chunks in ref.items():
        r = np.concatenate(chunks)
        g = np.concatenate(got[name])
        if r.shape != g.shape or not np.all(np.isfinite(g)):
            continue
        errors[name] = float(np.linalg.norm(g - r)) / max(float(np.linalg.norm(r)), 1e-12)
    return errors


def rank_sensitive_nodes(
    float_model: Path, quant_model: Path, data: Dataset, work: Path, *, samples: int = 8
) -> list[tuple[str, ...]]:
    """Groups (node, producers of its inputs) of ``float_model`` whose node adds error
    in ``quant_model``, worst first."""
    fm = onnx.load_model(str(float_model))
    qm = onnx.load_model(str(quant_model))
    floats = {
        vi.name
        for vi in onnx.shape_inference.infer_shapes(fm).graph.value_info
        if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    } | {o.name for o in fm.graph.output}
    shared = sorted(_node_outputs(fm) & _node_outputs(qm) & floats)
    if not shared:
        return []
    fpath = _with_outputs(fm, shared, work / "sens.float.onnx")
    qpath = _with_outputs(qm, shared, work / "sens.quant.onnx")
    try:
        errors = _errors(_run(fpath, shared, data, samples), _run(qpath, shared, data, samples))
    except Exception as exc:  # an augmented graph ORT refuses: no ranking, recorded upstream
        log.info("sensitivity run failed: %s", exc)
        return []
    scores = []
    for node in fm.graph.node:
        outs = [errors[o] for o in node.output if o in errors]
        if not outs or not node.name:
            continue
        ins = [errors.get(i, 0.0) for i in node.input if i]
        added = max(outs) - max(ins, default=0.0)
        if added > 0:
            scores.append((added, node.name))
    scores.sort(key=lambda s: (-s[0], s[1]))
    producers = {o: n.name for n in fm.graph.node for o in n.output if n.name}
    nodes = {n.name: n for n in fm.graph.node}
    return [
        (name, *dict.fromkeys(producers[i] for i in nodes[name].input if i in producers))
        for _, name in scores
    ]
