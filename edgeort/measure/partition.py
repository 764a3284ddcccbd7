"""Offline partition report: which nodes an EP would take, in how many partitions.

The grouping replays ORT's ``CreateSupportedPartitionNodeGroups``
(``onnxruntime/core/providers/partitioning_utils.cc``) the way ORT's own mobile
usability checker does in Python (``onnxruntime/tools/mobile_helpers/usability_checker.py``,
``_check_partitioning_for_graph``): nodes are visited in topological order; a supported
node joins the open group; an unsupported node that consumes the open group's output is
deferred until that group closes, so each group is a contiguous run ORT would hand to
the EP as one compiled partition.

The verdict uses the checker's thresholds (``PartitioningInfo.suitability``, ORT 1.32.0):

* 1 partition: YES if > 75 % of nodes are supported, MAYBE if > 50 %, else NO;
* 2 partitions: MAYBE if > 75 % of nodes are supported, else NO;
* 0 or more than 2 partitions: NO (each boundary is a device copy and a sync).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeort.measure.optables import OpTable

__all__ = [
    "GraphNode",
    "PartitionReport",
    "ShapeInfo",
    "UnsupportedNode",
    "check_node",
    "partition_report",
    "supported_groups",
    "verdict",
]


@dataclass(frozen=True, slots=True)
class GraphNode:
    name: str
    op_type: str
    domain: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShapeInfo:
    """What shape inference knew: ``shapes[name]`` = dims (int, or None/str when dynamic)."""

    shapes: Mapping[str, tuple[int | str | None, ...]] = field(default_factory=dict)
    constants: frozenset[str] = frozenset()  # initializers and Constant outputs

    def is_fixed(self, name: str) -> bool:
        if name in self.constants:
            return True
        dims = self.shapes.get(name)
        return dims is not None and all(isinstance(d, int) and d >= 0 for d in dims)

    def rank(self, name: str) -> int | None:
        dims = self.shapes.get(name)
        return None if dims is None else len(dims)


@dataclass(frozen=True, slots=True)
class UnsupportedNode:
    name: str
    op_type: str
    domain: str
    reason: str


@dataclass(frozen=True, slots=True)
class PartitionReport:
    target: str  # profile short name, e.g. "nnapi"
    ep: str
    method: str  # "offline-table" | "real-placement" | "kernel-registry"
    source: str  # the cited table, or what real placement ran on
    num_nodes: int
    num_supported: int
    partitions: tuple[tuple[str, ...], ...]
    unsupported: tuple[UnsupportedNode, ...]
    caveats: tuple[str, ...] = ()
    note: str = ""

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)

    @property
    def pct_supported(self) -> float:
        return 100.0 * self.num_supported / self.num_nodes if self.num_nodes else 0.0

    @property
    def verdict(self) -> str:
        return verdict(self.num_nodes, self.num_supported, self.num_partitions)

    def unsupported_ops(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.unsupported:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ep": self.ep,
            "method": self.method,
            "source": self.source,
            "nodes": self.num_nodes,
            "supported_nodes": self.num_supported,
            "pct_supported": round(self.pct_supported, 1),
            "partitions": self.num_partitions,
            "partition_sizes": [len(p) for p in self.partitions],
            "partition_nodes": [list(p) for p in self.partitions],
            "unsupported_ops": self.unsupported_ops(),
            "unsupported_nodes": [
                {"name": n.name, "op_type": n.op_type, "domain": n.domain, "reason": n.reason}
                for n in self.unsupported
            ],
            "caveats": list(self.caveats),
            "verdict": self.verdict,
            "note": self.note,
        }


def verdict(num_nodes: int, num_supported: int, num_partitions: int) -> str:
    """YES / MAYBE / NO with the thresholds of ORT's usability checker (module docstring)."""
    pct = 100.0 * num_supported / num_nodes if num_nodes else 0.0
    if num_partitions == 1:
        return "YES" if pct > 75 else "MAYBE" if pct > 50 else "NO"
    if num_partitions == 2:
        return "MAYBE" if pct > 75 else "NO"
    return "NO"


def _edges(
    nodes: Sequence[GraphNode],
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    producer = {out: i for i, node in enumerate(nodes) for out in node.outputs if out}
    producers: dict[int, set[int]] = {i: set() for i in range(len(nodes))}
    consumers: dict[int, set[int]] = {i: set() for i in range(len(nodes))}
    for i, node in enumerate(nodes):
        for name in node.inputs:
            j = producer.get(name)
            if j is not None and j != i:
                producers[i].add(j)
                consumers[j].add(i)
    return producers, consumers


def supported_groups(
    nodes: Sequence[GraphNode], is_supported: Callable[[GraphNode], bool]
) -> list[list[GraphNode]]:
    """Contiguous groups of supported nodes, as ORT's partitioner forms them."""
    producers, consumers = _edges(nodes)
    in_degree = {i: len(p) for i, p in producers.items()}
    ready: deque[int] = deque(i for i in range(len(nodes)) if in_degree[i] == 0)
    next_ready: deque[int] = deque()
    groups: list[list[GraphNode]] = []
    group: list[GraphNode] = []
    border: set[int] = set()
    supported = [is_supported(node) for node in nodes]
    while ready or next_ready:
        if not ready:
            if group:
                groups.append(group)
            group, border = [], set()
            ready, next_ready = next_ready, deque()
            continue
        i = ready.popleft()
        if not supported[i] and i in border:
            next_ready.append(i)  # revisit once the open group is closed
            continue
        if supported[i]:
            group.append(nodes[i])
            border.discard(i)
            border.update(consumers[i])
        for c in consumers[i]:
            in_degree[c] -= 1
            if in_degree[c] == 0:
                ready.append(c)
    if group:
        groups.append(group)
    return groups


def check_node(node: GraphNode, table: OpTable, shapes: ShapeInfo) -> str | None:
    """None if ``table``'s EP would take ``node``, else the reason it would not."""
    entry = table.lookup(node.domain, node.op_type)
    if entry is None:
        return f"op {node.domain or 'ai.onnx'}:{node.op_type} is not in the {table.short} table"
    data_inputs = [n for n in node.inputs if n]
    if table.require_fixed_shapes and not all(shapes.is_fixed(n) for n in data_inputs):
        return "an input has a dynamic shape (this EP needs fixed shapes)"
    if table.max_rank is not None:
        for name in data_inputs:
            rank = shapes.rank(name)
            if rank is not None and rank > table.max_rank:
                return f"input {name!r} has rank {rank} > {table.max_rank}"
    return _check_rules(node, entry.input_rank, entry.const_inputs, entry.attrs, shapes)


def _check_rules(
    node: GraphNode,
    input_rank: tuple[int, ...],
    const_inputs: tuple[int, ...],
    attrs: Mapping[str, Any],
    shapes: ShapeInfo,
) -> str | None:
    if input_rank and node.inputs:
        rank = shapes.rank(node.inputs[0])
        if rank is not None and rank not in input_rank:
            return f"input rank {rank}, the EP takes rank {'/'.join(map(str, input_rank))}"
    for idx in const_inputs:
        if idx < len(node.inputs) and node.inputs[idx] and node.inputs[idx] not in shapes.constants:
            return f"input {idx} ({node.inputs[idx]!r}) must be a constant"
    for name, rule in attrs.items():
        value = node.attrs.get(name, rule.default)
        if isinstance(value, bytes):
            value = value.decode()
        if value not in rule.allowed:
            return f"attribute {name}={value!r}, the EP takes {list(rule.allowed)}"
    return None


def partition_report(
    nodes: Sequence[GraphNode], table: OpTable, shapes: ShapeInfo, *, note: str = ""
) -> PartitionReport:
    """The offline report for one EP table over one graph."""
    reasons = {node.name: check_node(node, table, shapes) for node in nodes}
    groups = supported_groups(nodes, lambda n: reasons[n.name] is None)
    unsupported = tuple(
        UnsupportedNode(n.name, n.op_type, n.domain or "ai.onnx", reasons[n.name] or "")
        for n in nodes
        if reasons[n.name] is not None
    )
    return PartitionReport(
        target=table.short,
        ep=table.ep,
        method="offline-table",
        source=table.cite(),
        num_nodes=len(nodes),
        num_supported=len(nodes) - len(unsupported),
        partitions=tuple(tuple(n.name for n in g) for g in groups),
        unsupported=unsupported,
        caveats=_caveats(nodes, table, reasons),
        note=note,
    )


def _caveats(
    nodes: Iterable[GraphNode], table: OpTable, reasons: Mapping[str, str | None]
) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for node in nodes:
        if reasons[node.name] is None:
            entry = table.lookup(node.domain, node.op_type)
            if entry is not None and entry.caveat:
                seen[entry.key] = entry.caveat
    return tuple(f"{key}: {text}" for key, text in sorted(seen.items()))
