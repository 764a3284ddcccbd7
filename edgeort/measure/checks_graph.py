"""Doctor checks that read the graph: EP fallback and missing transformer fusions."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from edgeort.measure.findings import Finding
from edgeort.measure.graphinfo import GraphInfo, read_graph
from edgeort.measure.partition import GraphNode, PartitionReport, UnsupportedNode

__all__ = [
    "FUSED_ATTENTION",
    "attention_patterns",
    "check_fallback",
    "check_fusion",
    "real_report",
    "sandwiched",
]

FUSED_ATTENTION = frozenset(
    {
        "Attention",
        "MultiHeadAttention",
        "GroupQueryAttention",
        "PackedAttention",
        "PackedMultiHeadAttention",
        "DecoderMaskedMultiHeadAttention",
        "SparseAttention",
        "QAttention",
    }
)
_MATMULS = frozenset({"MatMul", "FusedMatMul", "MatMulInteger", "QLinearMatMul"})
_SCORE_OPS = frozenset({"Add", "Div", "Mul", "Where", "Cast", "Sub", "Reshape", "Transpose"})
_PROB_OPS = frozenset({"Cast", "Dropout", "Reshape", "Identity"})


def _maps(
    nodes: Sequence[GraphNode],
) -> tuple[dict[str, GraphNode], dict[str, list[GraphNode]]]:
    producer = {out: n for n in nodes for out in n.outputs if out}
    consumers: dict[str, list[GraphNode]] = {}
    for n in nodes:
        for name in n.inputs:
            consumers.setdefault(name, []).append(n)
    return producer, consumers


def _reaches_matmul(
    frontier: list[GraphNode],
    step: Callable[[GraphNode], Iterable[GraphNode]],
    through: frozenset[str],
    hops: int,
) -> bool:
    """Whether a MatMul is within ``hops`` steps of ``frontier``, walking ``step`` (to
    producers or to consumers) only through ``through`` ops."""
    for _ in range(hops):
        nxt: list[GraphNode] = []
        for n in frontier:
            if n.op_type in _MATMULS:
                return True
            if n.op_type in through:
                nxt.extend(step(n))
        frontier = nxt
    return any(n.op_type in _MATMULS for n in frontier)


def attention_patterns(nodes: Sequence[GraphNode]) -> list[str]:
    """Names of Softmax nodes that sit in a MatMul -> (scale/mask) -> Softmax -> MatMul
    attention core (the pattern ORT's transformer fusions look for)."""
    producer, consumers = _maps(nodes)

    def back(n: GraphNode) -> Iterable[GraphNode]:
        return (producer[i] for i in n.inputs if i in producer)

    def forward(n: GraphNode) -> Iterable[GraphNode]:
        return (c for o in n.outputs for c in consumers.get(o, []))

    return [
        n.name
        for n in nodes
        if n.op_type == "Softmax"
        and _reaches_matmul(
            [producer[i] for i in n.inputs[:1] if i in producer], back, _SCORE_OPS, 4
        )
        and _reaches_matmul(list(forward(n)), forward, _PROB_OPS, 2)
    ]


_FUSION_FIX = (
    "Fuse it offline with ORT's transformer optimizer: `python -m "
    "onnxruntime.transformers.optimizer --input model.onnx --output model.fused.onnx "
    "--model_type bert --num_heads H --hidden_size D` (or onnxruntime.transformers."
    "optimizer.optimize_model), or package with a transformer recipe "
    "(fuse_transformers = true). The fusion matches the standard BERT/GPT block layout "
    "(LayerNorm/residual anchor, Q/K/V projections with biases, Reshape/Transpose head "
    "split); export the model with that layout if it does not fuse."
)


def check_fusion(path: str | Path, label: str, graph: GraphInfo | None = None) -> Finding:
    """Attention cores left unfused after ORT's own optimisation at level ALL."""
    graph = graph or read_graph(path, optimize="all")
    fused = sorted({n.op_type for n in graph.nodes if n.op_type in FUSED_ATTENTION})
    cores = attention_patterns(graph.nodes)
    evidence = {"unfused_attention_cores": cores, "fused_ops": fused, "optimized": graph.optimized}
    if not cores:
        title = (
            f"attention is fused ({', '.join(fused)})" if fused else "no attention pattern found"
        )
        return Finding("missing-fusion", "ok", label, title, evidence=evidence)
    return Finding(
        "missing-fusion",
        "found",
        label,
        f"{len(cores)} attention core(s) not fused into one op",
        detail=(
            f"After ORT's level-ALL optimisation the graph still computes attention as "
            f"separate MatMul -> Softmax -> MatMul kernels (Softmax nodes: {', '.join(cores)}); "
            f"fused attention ops present: {', '.join(fused) or 'none'}. Unfused attention "
            f"writes the [seq x seq] score matrix to memory and misses the fused kernels."
        ),
        fix=_FUSION_FIX,
        severity="warning",
        evidence=evidence,
    )


def sandwiched(nodes: Sequence[GraphNode], on_device: Iterable[str]) -> list[str]:
    """Names of nodes *not* on the device that have a device node both upstream and
    downstream: each forces a device -> host -> device round trip."""
    device = set(on_device)
    producer, consumers = _maps(nodes)

    def reach(start: GraphNode, forward: bool) -> bool:
        queue, seen = deque([start]), {start.name}
        while queue:
            n = queue.popleft()
            nxt = (
                [c for o in n.outputs for c in consumers.get(o, [])]
                if forward
                else [producer[i] for i in n.inputs if i in producer]
            )
            for m in nxt:
                if m.name in device:
                    return True
                if m.name not in seen:
                    seen.add(m.name)
                    queue.append(m)
        return False

    return [
        n.name
        for n in nodes
        if n.name not in device and reach(n, forward=False) and reach(n, forward=True)
    ]


def real_report(
    target: str, ep: str, subgraphs: Sequence[tuple[str, Sequence[tuple[str, str, str]]]]
) -> PartitionReport:
    """A :class:`PartitionReport` from ORT's recorded placement (``session.placement``)."""
    device_groups = tuple(tuple(n[0] for n in nodes) for e, nodes in subgraphs if e == ep)
    others = [
        UnsupportedNode(name, op, dom or "ai.onnx", f"placed on {e}")
        for e, nodes in subgraphs
        if e != ep
        for name, op, dom in nodes
    ]
    total = sum(len(nodes) for _e, nodes in subgraphs)
    return PartitionReport(
        target=target,
        ep=ep,
        method="real-placement",
        source=f"session.get_provider_graph_assignment_info() with {ep}",
        num_nodes=total,
        num_supported=sum(len(g) for g in device_groups),
        partitions=device_groups,
        unsupported=tuple(others),
    )


def check_fallback(report: PartitionReport, nodes: Sequence[GraphNode], label: str) -> Finding:
    """EP fallback from a partition report (offline or real) over the graph ``nodes``."""
    on_device = {name for group in report.partitions for name in group}
    between = set(sandwiched(nodes, on_device)) & {u.name for u in report.unsupported}
    ops = sorted({u.op_type for u in report.unsupported if u.name in between})
    evidence = {
        "method": report.method,
        "partitions": report.num_partitions,
        "cpu_nodes": [{"name": u.name, "op_type": u.op_type} for u in report.unsupported],
        "between_partitions": sorted(between),
        "op_types": ops,
    }
    where = f"{report.ep} ({report.method})"
    if report.num_supported == 0:
        return Finding(
            "ep-fallback",
            "found",
            label,
            f"{report.ep} takes no node of this model",
            detail=f"Every node would run on the CPU EP; per {report.source}.",
            fix=f"Do not deploy this model on {report.ep}, or change the ops it uses.",
            severity="problem",
            evidence=evidence,
        )
    if not between and report.num_partitions <= 1:
        extra = (
            f"; {len(report.unsupported)} node(s) at the edges run on CPU"
            if report.unsupported
            else ""
        )
        return Finding(
            "ep-fallback", "ok", label, f"{where}: one partition{extra}", evidence=evidence
        )
    listing = ", ".join(f"{u.op_type} ({u.name})" for u in report.unsupported if u.name in between)
    return Finding(
        "ep-fallback",
        "found",
        label,
        f"{where}: {len(between)} node(s) fall back to CPU between {report.num_partitions} "
        f"partitions ({', '.join(ops) or 'see detail'})",
        detail=(
            f"{listing or 'CPU nodes split the graph'}. Each CPU island between device "
            f"partitions costs a device->host->device copy and a sync per run; "
            f"{report.num_supported}/{report.num_nodes} nodes on {report.ep}, verdict "
            f"{report.verdict}. Source: {report.source}."
        ),
        fix=(
            f"Replace {', '.join(ops) or 'the CPU-only ops'} with ops {report.ep} supports "
            f"(or move them to the start/end of the graph), re-export, and re-run doctor; "
            f"`edgeort doctor --json` lists every CPU node with its reason."
        ),
        severity="problem",
        evidence=evidence,
    )
