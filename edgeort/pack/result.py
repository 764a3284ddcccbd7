"""The result of :func:`edgeort.pack.package`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FailedTarget", "PackageResult", "VariantResult"]


@dataclass(frozen=True, slots=True)
class FailedTarget:
    """A target left out of the bundle (``keep_going``): its error class and message."""

    target: str
    error: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VariantResult:
    name: str
    profile: str
    ep: str
    precision: str
    model_file: str
    accuracy: Mapping[str, Any]
    latency: Mapping[str, Any] | None
    gates: tuple[Mapping[str, str], ...]
    ep_refused: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PackageResult:
    path: Path
    family: str
    data: str  # validation | calibration | synthetic
    variants: tuple[VariantResult, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    failed: tuple[FailedTarget, ...] = ()
    state: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "family": self.family,
            "data": self.data,
            "notes": list(self.notes),
            "failed": [f.to_json() for f in self.failed],
            "state": [list(pair) for pair in self.state],
            "variants": [
                {
                    "name": v.name,
                    "profile": v.profile,
                    "ep": v.ep,
                    "precision": v.precision,
                    "model_file": v.model_file,
                    "accuracy": dict(v.accuracy),
                    "latency": dict(v.latency) if v.latency else None,
                    "gates": [dict(g) for g in v.gates],
                    "ep_refused": dict(v.ep_refused) if v.ep_refused else None,
                }
                for v in self.variants
            ],
        }
