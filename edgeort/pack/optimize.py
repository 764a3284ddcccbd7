"""Model family detection, transformer fusion and portable offline optimization.

Family (chooses the profile's recipes): ``transformer`` when the graph has a fused
attention op or the attention pattern MatMul -> (Add/Mul/Div/Where/Cast)* -> Softmax ->
(Cast/Dropout)* -> MatMul; ``cnn`` when it has ``Conv``; otherwise ``default``.

Offline optimization bakes only levels that stay portable: ``none``, ``basic`` (standard
ONNX ops only) or ``extended`` (adds CPU-EP contrib ops, so only for the CPU EP and only
for float models). ``all``/``layout`` are never baked into a shipped file: they add
NCHWc layouts that are specific to the build machine's CPU.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from edgeort._fs import scratch_cwd
from edgeort.errors import PackageError
from edgeort.hardware.ep import CPU_EP, LEVELS, cpu_session
from edgeort.pack.load import graphs_in

__all__ = [
    "Fused",
    "detect_family",
    "drop_unused_opsets",
    "fuse_transformer",
    "offline_optimize",
    "portable_level",
    "producer_op",
    "prune_opsets",
    "used_domains",
]

log = logging.getLogger(__name__)

ATTENTION_OPS = frozenset(
    {"Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention", "SparseAttention"}
)
_PASS_BEFORE = frozenset({"Add", "Mul", "Div", "Where", "Cast", "Sub"})
_PASS_AFTER = frozenset({"Cast", "Dropout", "Identity"})
# offline levels whose output runs on any machine (ORT_ENABLE_ALL adds NCHWc etc.)
PORTABLE_LEVELS = ("none", "basic", "extended")


@dataclass(frozen=True, slots=True)
class Fused:
    path: Path
    stats: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def producer_op(
    start: str,
    producers: Mapping[str, onnx.NodeProto],
    passthrough: frozenset[str],
    *,
    limit: int = 16,
) -> str:
    """Follow ``start`` back through pass-through ops (at most ``limit``); the op type
    found ("" for a graph input or initializer)."""
    node = producers.get(start)
    for _ in range(limit):
        if node is None or node.op_type not in passthrough or not node.input:
            break
        node = producers.get(node.input[0])
    return node.op_type if node is not None else ""


def detect_family(model: onnx.ModelProto) -> str:
    """``transformer`` | ``cnn`` | ``default`` (see the module docstring)."""
    nodes = list(model.graph.node)
    ops = {n.op_type for n in nodes}
    if ops & ATTENTION_OPS:
        return "transformer"
    producers = {out: n for n in nodes for out in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    for n in nodes:
        if n.op_type != "Softmax" or producer_op(n.input[0], producers, _PASS_BEFORE) != "MatMul":
            continue
        frontier, seen = list(consumers.get(n.output[0], [])), 0
        while frontier and seen < 16:
            nxt = frontier.pop()
            seen += 1
            if nxt.op_type == "MatMul":
                return "transformer"
            if nxt.op_type in _PASS_AFTER:
                frontier.extend(consumers.get(nxt.output[0], []))
    return "cnn" if "Conv" in ops else "default"


def _constant_ints(
    name: str, inits: Mapping[str, onnx.TensorProto], consts: Mapping[str, onnx.TensorProto]
) -> list[int] | None:
    tensor = inits.get(name) or consts.get(name)
    if tensor is None or tensor.data_type not in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
        return None
    return [int(v) for v in onnx.numpy_helper.to_array(tensor).reshape(-1)]


def attention_geometry(model: onnx.ModelProto) -> tuple[int, int]:
    """(num_heads, hidden_size) read off the head-splitting Reshapes of the attention
    blocks: a target shape ``[.., .., heads, head_size]``, given as a constant or (as
    PyTorch exports it) a Concat whose last two parts are constants. ORT's own detection
    reads constants only, so on exported models it fails and fuses no Attention.
    (0, 0) when no such Reshape is found: ORT then tries its own detection."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {
        n.output[0]: n.attribute[0].t
        for n in graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"
    }
    concats = {n.output[0]: n for n in graph.node if n.op_type == "Concat"}
    producers = {out: n for n in graph.node for out in n.output}
    votes: Counter[tuple[int, int]] = Counter()
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        dims = _constant_ints(node.input[1], inits, consts)
        if dims is None and node.input[1] in concats:
            parts = concats[node.input[1]].input
            tail = [_constant_ints(p, inits, consts) for p in parts[-2:]]
            if len(parts) == 4 and all(t is not None and len(t) == 1 for t in tail):
                dims = [0, 0] + [t[0] for t in tail if t is not None]
        if dims is None or len(dims) != 4 or dims[3] <= 0:
            continue
        if dims[2] > 0:
            votes[(dims[2], dims[2] * dims[3])] += 1
        elif dims[2] == -1 and (hidden := _bias_width(node.input[0], producers, inits)):
            votes[(hidden // dims[3], hidden)] += 1  # [.., .., -1, head_size]
    return votes.most_common(1)[0][0] if votes else (0, 0)


def _bias_width(
    name: str, producers: Mapping[str, onnx.NodeProto], inits: Mapping[str, onnx.TensorProto]
) -> int:
    """Width of the projection bias added just before a head-splitting Reshape."""
    add = producers.get(name)
    if add is None or add.op_type != "Add":
        return 0
    for arg in add.input:
        tensor = inits.get(arg)
        if tensor is not None and len(tensor.dims) == 1:
            return int(tensor.dims[0])
    return 0


def fuse_transformer(model: Path, out: Path) -> Fused:
    """``onnxruntime.transformers`` BERT fusion (heads and hidden size from
    :func:`attention_geometry`). Returns the fused-op statistics; a fusion failure keeps
    the model as is."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = attention_geometry(onnx.load_model(str(model), load_external_data=False))
    try:
        # In the work directory: symbolic shape inference, when it fails, saves
        # sym_shape_infer_temp.onnx (+ data) into the current directory.
        with scratch_cwd(out.parent):
            optimized = optimize_model(
                str(model.resolve()), model_type="bert", num_heads=heads, hidden_size=hidden,
                opt_level=0, optimization_options=_fusion_options(),
            )  # fmt: skip
            stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
            optimized.save_model_to_file(str(out.resolve()))
    except Exception as exc:  # the fusion scripts raise on patterns they half-match
        why = f"transformer fusion skipped: {type(exc).__name__}: {exc}"
        log.warning("%s", why)
        return Fused(model, {}, (why,))
    return Fused(out, dict(sorted(stats.items())), ("onnxruntime.transformers bert fusion",))


def _fusion_options() -> Any:
    """BERT fusion without SkipLayerNormalization: the residual Add and LayerNormalization
    stay standard ops. The CPU EP fuses them itself when a session loads the model (its
    SkipLayerNormFusion), unless the variant turns that off because it measured the plain
    ops faster (:data:`edgeort.pack.target.SLOW_FUSIONS`); a fused node in the file would
    leave no such choice."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    return options


def portable_level(level: str, *, ep: str, precision: str) -> tuple[str, str]:
    """The offline level to bake for ``ep``: ``extended`` only for fp32 models on the
    CPU EP (its contrib ops and QDQ fusions are CPU- or platform-specific); nothing for
    fp16 models (the CPU EP would bake in casts to fp32 for its own kernels)."""
    if level == "none":
        return "none", ""
    if precision == "fp16":
        return "none", "no offline optimization for fp16: the CPU EP would bake in fp32 casts"
    if level not in PORTABLE_LEVELS:
        return "basic", f"offline level {level!r} is not portable; baked 'basic' instead"
    if level == "extended" and ep != CPU_EP:
        return "basic", f"offline level 'basic' instead of 'extended': {ep} compiles itself"
    if level == "extended" and precision != "fp32":
        return "basic", "offline level 'basic' instead of 'extended' for a quantized model"
    return level, ""


def offline_optimize(model: Path, out: Path, level: str) -> Path:
    """Save ``model`` optimized at ``level`` (none|basic|extended) by the CPU EP."""
    if level == "none":
        return model
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[level]
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3
    try:
        cpu_session(model, so)
    except Exception as exc:  # ORT's own types
        raise PackageError(f"offline optimization ({level}) failed: {exc}", path=model) from None
    prune_opsets(out)
    return out


def used_domains(model: onnx.ModelProto) -> set[str]:
    """Operator domains used by the graph, its subgraphs and functions ("" = ai.onnx)."""
    used = {""} | {n.domain or "" for g in graphs_in(model.graph) for n in g.node}
    for func in model.functions:
        used |= {n.domain or "" for n in func.node}
    return used


def drop_unused_opsets(model: onnx.ModelProto) -> bool:
    """Keep only the opset imports of domains the graph uses, in place; True if any went."""
    used = used_domains(model)
    keep = [op for op in model.opset_import if (op.domain or "") in used or op.domain == "ai.onnx"]
    if len(keep) == len(model.opset_import):
        return False
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return True


def prune_opsets(path: Path) -> None:
    """ORT stamps every domain it knows on a model it saves; keep those the graph uses."""
    model = onnx.load_model(str(path))
    if drop_unused_opsets(model):
        onnx.save_model(model, str(path))
