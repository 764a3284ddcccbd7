"""What task a model does, read off its graph: it picks the recipe and the gate's metric.

| family | read off the graph (first output) | metric (:mod:`edgeort.pack.metrics`) |
|---|---|---|
| ``encoder`` | attention (``optimize.detect_family`` says transformer) | ``embedding`` |
| ``detector`` | rank 3, a decode tail (Sigmoid and Concat after the last Conv) | ``boxes`` |
| ``recognizer`` | rank 3 after (Log)Softmax, or an RNN; integer ``[batch, steps]`` | ``ctc`` |
| ``segmenter`` | rank 4 after a Conv net (a map: masks, text probability) | ``map_iou`` |
| ``classifier`` | rank 2, ``[batch, classes > 1]`` | ``top1`` |
| ``scores`` | one score per sample (rank <= 2, last dim 1) | ``decision`` |
| ``generic`` | anything else | ``cosine`` |

Detector output layouts: ``yolov8`` (``[batch, 4 + classes, boxes]``: cx, cy, w, h, class
scores; no objectness) and ``yolov5`` (``[batch, boxes, 5 + classes]``: cx, cy, w, h,
objectness, class scores) and ``yolox`` (the ``yolov5`` columns before decoding: grid
offsets and log sizes over strides 8/16/32 of a square input, as exported without
``decode_in_inference``; read off a tail with no Mul/Exp/Pow). The smaller of the two
static dims is the per-box one. The user names the layout: ``family="detector:yolox"``.

The decode tail of a detector (every node after the last Conv of each branch: the
Split/Sigmoid/Mul/Concat that turn feature maps into boxes, plus those last Convs
themselves) stays float: :func:`head_nodes` names it for ``nodes_to_exclude``.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from edgeort.errors import UsageError
from edgeort.pack.optimize import producer_op

__all__ = [
    "FAMILIES",
    "LAYOUTS",
    "METRICS",
    "Family",
    "detect",
    "head_nodes",
    "parse_family",
]

METRICS = {
    "classifier": "top1",
    "detector": "boxes",
    "segmenter": "map_iou",
    "recognizer": "ctc",
    "scores": "decision",
    "encoder": "embedding",
    "generic": "cosine",
}
FAMILIES = tuple(METRICS)
LAYOUTS = ("yolov8", "yolov5", "yolox")
_PASS = frozenset({"Identity", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Cast", "Flatten"})
_RNN = frozenset({"LSTM", "GRU", "RNN"})
_INTEGER = frozenset(
    {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
)


@dataclass(frozen=True, slots=True)
class Family:
    """``name``: one of :data:`FAMILIES`; ``recipes``: the profile recipe key it falls
    back to (``transformer``, ``cnn`` or ``default``); ``metric``: the gate's metric;
    ``layout``: a detector's output layout; ``reason``: how it was decided."""

    name: str
    recipes: str
    metric: str
    layout: str | None = None
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}:{self.layout}" if self.layout else self.name

    def to_json(self) -> dict[str, str]:
        out = {"name": self.name, "metric": self.metric, "reason": self.reason}
        if self.layout:
            out["layout"] = self.layout
        return out


def parse_family(text: str) -> tuple[str, str | None]:
    """``"detector"`` or ``"detector:yolov5"`` -> (family, layout)."""
    name, _, layout = text.strip().partition(":")
    if name not in FAMILIES:
        raise UsageError(
            f"--family {text!r}: expected one of {', '.join(FAMILIES)} "
            f"(a detector may name its output layout: detector:{'|'.join(LAYOUTS)})",
            option="--family",
        )
    if layout and (name != "detector" or layout not in LAYOUTS):
        raise UsageError(
            f"--family {text!r}: only detector takes a layout, one of {', '.join(LAYOUTS)}",
            option="--family",
        )
    return name, layout or None


def _dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def _tail(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]]:
    """(tail nodes after the last Convs, those last Convs), top-level graph only."""
    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            consumers.setdefault(name, []).append(i)
    conv_below = [False] * len(nodes)  # a Conv is reachable downstream of node i
    # ONNX graphs are topologically sorted: one reverse pass settles every node.
    for i in range(len(nodes) - 1, -1, -1):
        below = False
        for out in nodes[i].output:
            for j in consumers.get(out, ()):
                below = below or nodes[j].op_type == "Conv" or conv_below[j]
        conv_below[i] = below
    after_conv = [False] * len(nodes)
    made_after: set[str] = set()
    for i, n in enumerate(nodes):
        after_conv[i] = n.op_type == "Conv" or any(x in made_after for x in n.input)
        if after_conv[i]:
            made_after.update(n.output)
    tail = [n for i, n in enumerate(nodes) if after_conv[i] and not conv_below[i]]
    return [n for n in tail if n.op_type != "Conv"], [n for n in tail if n.op_type == "Conv"]


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of a detector's decode tail and of the last Conv of each branch."""
    tail, last = _tail(model)
    return [n.name for n in (*last, *tail) if n.name]


def _layout(dims: list[int | None], tail_ops: set[str]) -> str:
    a, b = dims[1], dims[2]
    if a is not None and (b is None or a < b):
        return "yolov8"
    return "yolov5" if tail_ops & {"Mul", "Exp", "Pow"} else "yolox"


def detect(model: onnx.ModelProto, recipes: str, override: str | None = None) -> Family:
    """The family of ``model`` (``recipes``: ``optimize.detect_family``'s answer);
    ``override`` (``--family``) wins, a detector's layout is still read when not named."""
    graph = model.graph
    ops = {n.op_type for n in graph.node}
    out_dims = _dims(graph.output[0]) if graph.output else None
    if override:
        name, layout = parse_family(override)
        if name == "detector" and layout is None:
            tail = {n.op_type for n in _tail(model)[0]}
            layout = _layout(out_dims, tail) if out_dims and len(out_dims) == 3 else "yolov8"
        base = "transformer" if name == "encoder" else ("cnn" if "Conv" in ops else "default")
        if recipes == "transformer" and name == "encoder":
            base = recipes
        return Family(name, base, METRICS[name], layout, "named by the user")
    if out_dims is None:
        if recipes == "transformer":
            return Family("encoder", recipes, "embedding", None, "attention in the graph")
        return Family("generic", recipes, "cosine", None, "first output has no known rank")
    producers = {o: n for n in graph.node for o in n.output}
    last = producer_op(graph.output[0].name, producers, _PASS, limit=8)
    rank = len(out_dims)
    integer = graph.output[0].type.tensor_type.elem_type in _INTEGER
    if (rank == 3 and last in ("Softmax", "LogSoftmax")) or (ops & _RNN and not integer):
        why = f"rank-3 output after {last}" if last in ("Softmax", "LogSoftmax") else "an RNN"
        return Family("recognizer", recipes, "ctc", None, f"{why}: per-step class scores")
    if rank == 2 and integer and last in ("ArgMax", ""):
        why = "integer [batch, steps] output after ArgMax: per-step class ids"
        return Family("recognizer", recipes, "ctc", None, why)
    if recipes == "transformer":
        return Family("encoder", recipes, "embedding", None, "attention in the graph")
    tail_ops = {n.op_type for n in _tail(model)[0]} if "Conv" in ops else set()
    if rank == 3 and "Conv" in ops and {"Sigmoid", "Concat"} <= tail_ops:
        layout = _layout(out_dims, tail_ops)
        return Family(
            "detector", recipes, "boxes", layout, "rank-3 output after a Sigmoid/Concat decode tail"
        )
    if rank == 4 and "Conv" in ops:
        return Family("segmenter", recipes, "map_iou", None, "rank-4 map after a Conv net")
    last_dim = out_dims[-1] if out_dims else 1
    if rank <= 2 and not integer and (last_dim == 1 or (last_dim is None and last == "Sigmoid")):
        return Family("scores", recipes, "decision", None, "one score per sample")
    if rank == 2 and not integer and (last_dim is None or last_dim > 1):
        return Family("classifier", recipes, "top1", None, "[batch, classes] output")
    return Family("generic", recipes, "cosine", None, f"rank-{rank} output")
