"""What ``edgeort doctor`` reports: one :class:`Finding` per check and target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHECKS", "Finding"]

# check id -> what it looks for (docs/doctor.md explains each with its fix)
CHECKS = {
    "ep-fallback": "nodes an accelerator EP hands back to the CPU between its partitions",
    "missing-fusion": "a transformer attention pattern ORT did not fuse into one op",
    "thread-contention": "latency that rises when intra-op threads are added",
    "arena-growth": "memory the CPU arena keeps after inputs of larger dynamic shapes",
    "io-copies": "host<->device copies of inputs/outputs on every run (IO binding fixes)",
    "ep-refused": "an installed EP that cannot create a session for the model or variant",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result. ``status``: found | ok | inconclusive (measured, but the
    measurements cannot decide) | skipped; ``severity``: problem | warning | info
    (meaningful when found)."""

    check: str
    status: str
    target: str
    title: str
    detail: str = ""
    fix: str = ""
    severity: str = "info"
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.status == "found"

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "severity": self.severity,
            "target": self.target,
            "title": self.title,
            "detail": self.detail,
            "fix": self.fix,
            "evidence": dict(self.evidence),
        }
