"""Which EP runs which node: :meth:`Model.placement() <edgeort.runtime.model.Model.placement>`'s
result (imported on first use, not by :func:`edgeort.load`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["PlacedNode", "Placement"]


@dataclass(frozen=True, slots=True)
class PlacedNode:
    """One node of the optimised graph and the EP that runs it."""

    ep: str
    name: str
    op_type: str
    domain: str


@dataclass(frozen=True, slots=True)
class Placement:
    """Which EP runs which nodes, as ORT recorded it when the session was created."""

    nodes: tuple[PlacedNode, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Number of nodes per EP, EPs in the order ORT listed them."""
        return dict(Counter(n.ep for n in self.nodes))

    def on(self, ep: str) -> tuple[PlacedNode, ...]:
        return tuple(n for n in self.nodes if n.ep == ep)

    def __str__(self) -> str:
        return ", ".join(f"{ep}: {n} node(s)" for ep, n in self.counts.items()) or "no nodes"
