"""Freeze an input to one value for fixed-shape targets, and keep only the ``If`` branch
that value (or a fixed shape) takes.

A streaming audio model takes its sample rate as a 0-d input (``sr``) and picks its
16 kHz or 8 kHz path with an ``If``. With fixed input shapes the path the model never
takes at those sizes can fail ONNX Runtime's shape inference (an LSTM in the 8 kHz
branch sees a rank-2 input at 16 kHz sizes), and a mobile EP cannot take an ``If`` at
all. ``--freeze sr=16000`` says the deployed model always gets that value:

- every use of the input reads a constant instead (the graph input stays, unused, so
  callers feed the same names to every variant; the runtime refuses another value);
- an ``If`` whose condition is then a constant (computed from constants, frozen inputs
  and the shapes of fixed-shape inputs) is replaced by the nodes of the branch it takes,
  repeatedly, so nested ``If`` nodes are folded too.

Applied where ``--shape`` is: to targets that fix shapes. The variant records the values
(``frozen_inputs``) and what was folded (``prepare`` notes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeort.bundle import TensorSpec
from edgeort.errors import UsageError
from edgeort.pack.load import graphs_in

__all__ = ["apply_freeze", "check_freeze", "fold_constant_ifs", "frozen_json", "parse_freeze"]

log = logging.getLogger(__name__)

# Ops whose value the folder computes (with onnx's reference implementation) when every
# input is known: what shape and flag arithmetic feeding an ``If`` is made of.
_FOLDABLE = frozenset({
    "Identity", "Cast", "Not", "And", "Or", "Xor", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs",
    "Squeeze", "Unsqueeze", "Reshape", "Gather", "Slice", "Concat", "Size", "Shape",
    "ReduceMin", "ReduceMax", "Min", "Max", "Where", "ConstantOfShape", "Range", "Constant",
})  # fmt: skip


def parse_freeze(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (VALUE: a number, ``true``/``false``, or comma-separated numbers)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(
            f"--freeze {text!r}: expected NAME=VALUE, e.g. --freeze sr=16000", option="--freeze"
        )
    return name.strip(), value.strip()


def check_freeze(values: Mapping[str, Any], inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Each value as an array of its input's dtype and shape, or a :class:`UsageError`
    naming the input and what was expected."""
    by_name = {i.name: i for i in inputs}
    out: dict[str, np.ndarray] = {}
    for name, raw in values.items():
        spec = by_name.get(name)
        if spec is None:
            raise UsageError(
                f"--freeze {name}: the model has no input {name!r} (inputs: "
                f"{', '.join(by_name) or 'none'})",
                option="--freeze",
            )
        if spec.dtype in ("string", "str", "object"):
            raise UsageError(f"--freeze {name}: string inputs cannot be frozen", option="--freeze")
        dtype = np.dtype(spec.dtype)
        try:
            arr = np.asarray(_parse_value(raw, dtype))
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"--freeze {name}={raw}: not a value of input {name!r} ({spec.dtype}): {exc}",
                option="--freeze",
            ) from None
        shape = spec.shape
        if len(shape) != arr.ndim or any(
            isinstance(d, int) and d != s for d, s in zip(shape, arr.shape, strict=True)
        ):
            raise UsageError(
                f"--freeze {name}={raw}: input {name!r} has shape {list(shape)}, the value "
                f"has shape {list(arr.shape)}",
                option="--freeze",
            )
        out[name] = arr
    return out


def _parse_value(raw: Any, dtype: np.dtype[Any]) -> np.ndarray:
    if isinstance(raw, str):
        items = [s.strip().lower() for s in raw.split(",")]
        parsed: list[Any] = [s == "true" if s in ("true", "false") else _number(s) for s in items]
        value: Any = parsed[0] if len(parsed) == 1 else parsed
    else:
        value = raw
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and dtype.kind in "iub" and not np.all(arr == np.round(arr)):
        raise ValueError("not an integer")
    return arr.astype(dtype)


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def frozen_json(values: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What the variant records: ``{input: {"dtype": ..., "value": ...}}``."""
    return {k: {"dtype": str(v.dtype), "value": v.tolist()} for k, v in values.items()}


def apply_freeze(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """Freeze ``values`` into ``model`` in place and fold the ``If`` nodes that become
    constant; returns notes for the manifest."""
    notes: list[str] = []
    graph = model.graph
    taken: set[str] = set()
    for g in graphs_in(graph):
        taken.update(i.name for i in g.initializer)
        taken.update(o for n in g.node for o in n.output if o)
    for name, value in values.items():
        const = _fresh(f"{name}__frozen", taken)
        graph.initializer.append(numpy_helper.from_array(value, const))
        for sub in graphs_in(graph):
            for node in sub.node:
                for i, used in enumerate(node.input):
                    if used == name:
                        node.input[i] = const
        notes.append(f"input {name!r} frozen to {value.tolist()} (--freeze)")
    notes.extend(fold_constant_ifs(model))
    return tuple(notes)


def fold_constant_ifs(model: onnx.ModelProto) -> list[str]:
    """Replace every top-level ``If`` whose condition is a constant by the branch it
    takes, until none is left; returns a note per folded node."""
    notes: list[str] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
    while True:
        producers = {o: n for n in model.graph.node for o in n.output if o}
        fold = _Fold(model.graph, _constants(model), producers, int(opset))
        folded = False
        for index, node in enumerate(model.graph.node):
            if node.op_type != "If" or node.domain not in ("", "ai.onnx"):
                continue
            cond = fold.value(node.input[0])
            if cond is None or cond.size != 1:
                continue
            branch = "then_branch" if bool(cond.reshape(())) else "else_branch"
            if _inline(model.graph, index, node, branch):
                notes.append(f"If node {node.name or node.output[0]!r}: kept its {branch}")
                folded = True
                break
        if not folded:
            return notes


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Values known before running: initializers and Constant nodes' values (the shapes
    of fixed-shape graph inputs are read on demand, :func:`_static_shape`)."""
    graph = model.graph
    known = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                known[node.output[0]] = numpy_helper.to_array(attr.t)
    return known


def _static_shape(name: str, graph: onnx.GraphProto) -> list[int] | None:
    for v in graph.input:
        if v.name == name and v.type.tensor_type.HasField("shape"):
            dims = v.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                return [int(d.dim_value) for d in dims]
    return None


class _Fold:
    """Values that follow from constants alone, computed on demand."""

    def __init__(
        self,
        graph: onnx.GraphProto,
        known: dict[str, np.ndarray],
        producers: dict[str, onnx.NodeProto],
        opset: int,
    ) -> None:
        self.graph, self.known, self.producers, self.opset = graph, known, producers, opset

    def value(self, name: str, depth: int = 0) -> np.ndarray | None:
        """The value of tensor ``name`` when it follows from constants, else None."""
        if name in self.known:
            return self.known[name]
        node = self.producers.get(name)
        if (
            depth > 64
            or node is None
            or node.op_type not in _FOLDABLE
            or node.domain not in ("", "ai.onnx")
        ):
            return None
        arrays: list[np.ndarray | None] = []
        if node.op_type in ("Shape", "Size"):
            shape = _static_shape(node.input[0], self.graph)
            if shape is None:
                return None
            arrays.append(np.zeros(shape, dtype=np.uint8))  # only its shape is read
        else:
            for used in node.input:
                got = self.value(used, depth + 1) if used else None
                if used and got is None:
                    return None
                arrays.append(got)
        results = self._evaluate(node, arrays)
        if results is None:
            return None
        for out, value in zip(node.output, results, strict=False):
            self.known[out] = value
        return self.known.get(name)

    def _evaluate(
        self, node: onnx.NodeProto, arrays: list[np.ndarray | None]
    ) -> list[np.ndarray] | None:
        from onnx.reference import ReferenceEvaluator

        names = [f"i{k}" if a is not None else "" for k, a in enumerate(arrays)]
        feeds = {n: a for n, a in zip(names, arrays, strict=True) if a is not None}
        inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in feeds.items()
        ]
        outputs = [helper.make_tensor_value_info(f"o{k}", 0, None) for k in range(len(node.output))]
        one = helper.make_node(node.op_type, names, [o.name for o in outputs])
        one.attribute.extend(node.attribute)
        graph = helper.make_graph([one], "fold", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]
        except Exception as exc:  # an op or attribute the reference cannot evaluate
            log.debug("not folding %s (%s): %s", node.name, node.op_type, exc)
            return None


def _inline(graph: onnx.GraphProto, index: int, node: onnx.NodeProto, branch: str) -> bool:
    body = next((a.g for a in node.attribute if a.name == branch), None)
    if body is None or len(body.output) != len(node.output):
        return False
    outer = {i.name for i in graph.initializer}
    if any(i.name in outer for i in body.initializer):
        return False  # a name clash this simple inliner does not rename
    graph.initializer.extend(body.initializer)
    new = list(body.node)
    names = {n.name for g in graphs_in(graph) for n in g.node if n.name}
    base = node.name or node.output[0]
    new.extend(
        helper.make_node(
            "Identity", [inner.name], [out], name=_fresh(f"{base}_{branch}_out{k}", names)
        )
        for k, (inner, out) in enumerate(zip(body.output, node.output, strict=True))
        if out
    )
    del graph.node[index]
    for k, item in enumerate(new):
        graph.node.insert(index + k, item)
    return True
