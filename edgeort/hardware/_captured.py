"""A device captured into a directory, read as the probe's :class:`Sources` (tests,
``--from`` captures). Imported on first use: probing this host never loads it."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeort.hardware._sources import PlatformValues
from edgeort.hardware.device import Battery

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.hardware._ort import OrtState

__all__ = ["CapturedSources"]


@dataclass(slots=True)
class CapturedSources:
    """A device captured into a directory: ``sources.json`` plus files under ``root/``.

    ``sources.json`` keys: ``platform`` (the :class:`PlatformValues` fields), ``env``,
    ``commands`` (the command line joined by spaces -> its stdout), ``cpu_counts``
    (``[physical, logical]``), ``memory`` (``[total, available]``), ``battery``
    (``{"percent", "plugged"}`` or null), ``registry`` (``"KEY\\\\value"`` -> text),
    ``processor_features`` (Windows ``PF_*`` names present, or null) and ``ort``
    (an :class:`~edgeort.hardware._ort.OrtState` as JSON, or null for "not installed").
    """

    root: Path
    platform: PlatformValues
    env: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, str] = field(default_factory=dict)
    counts: tuple[int | None, int | None] = (None, None)
    mem: tuple[int, int] | None = None
    bat: Battery | None = None
    reg: Mapping[str, str] = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    ort: Mapping[str, Any] | None = None

    @classmethod
    def from_dir(cls, path: str | Path) -> CapturedSources:
        base = Path(path)
        data = json.loads((base / "sources.json").read_text(encoding="utf-8"))
        counts = data.get("cpu_counts") or [None, None]
        mem = data.get("memory")
        bat = data.get("battery")
        feats = data.get("processor_features")
        return cls(
            root=base / "root",
            platform=PlatformValues(**data["platform"]),
            env=dict(data.get("env", {})),
            commands=dict(data.get("commands", {})),
            counts=(counts[0], counts[1]),
            mem=(int(mem[0]), int(mem[1])) if mem else None,
            bat=Battery(**bat) if bat else None,
            reg=dict(data.get("registry", {})),
            features=tuple(feats) if feats is not None else None,
            ort=data.get("ort"),
        )

    def _local(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read_text(self, path: str) -> str | None:
        try:
            return self._local(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return self._local(path).exists()

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(p.name for p in self._local(path).iterdir())
        except OSError:
            return None

    def glob(self, pattern: str) -> list[str]:
        found = self.root.glob(pattern.lstrip("/"))
        return sorted("/" + p.relative_to(self.root).as_posix() for p in found)

    def run(self, cmd: Sequence[str]) -> str | None:
        return self.commands.get(" ".join(cmd))

    def cpu_counts(self) -> tuple[int | None, int | None]:
        return self.counts

    def memory(self) -> tuple[int, int] | None:
        return self.mem

    def battery(self) -> Battery | None:
        return self.bat

    def registry(self, key: str, value: str) -> str | None:
        return self.reg.get(f"{key}\\{value}")

    def processor_features(self) -> tuple[str, ...] | None:
        return self.features

    def ort_state(self, *, register_plugins: bool | Collection[str]) -> OrtState:
        from edgeort.hardware._ort import OrtState

        if self.ort is None:
            return OrtState.missing("onnxruntime is not installed on the captured device")
        state = OrtState.from_json(self.ort)
        if isinstance(register_plugins, bool):
            return state
        return state.scoped(register_plugins)
