"""DeviceInfo: what :func:`edgeort.probe` found out about the device at hand.

A missing or broken signal is a recorded absence (``absent[signal] = why``), never a crash.
``to_json()`` is the stable, documented form users paste into bug reports
(``docs/probe.md``); ``from_json()`` reads it back (captured devices in tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeort.hardware._basics import CPU_EP, hardware_type

__all__ = [
    "CPU_EP",
    "PROBE_SCHEMA",
    "Accelerator",
    "Battery",
    "DeviceInfo",
    "EpDevice",
    "PluginEp",
    "hardware_type",
]

PROBE_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Accelerator:
    """An accelerator the OS shows. ``kind``: npu | gpu | dsp; ``vendor``: lower-case name."""

    kind: str
    vendor: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class Battery:
    percent: float
    plugged: bool | None


@dataclass(frozen=True, slots=True)
class EpDevice:
    """One ``onnxruntime.get_ep_devices()`` entry. ``device_type``: cpu | gpu | npu."""

    ep_name: str
    ep_vendor: str
    device_type: str
    device_vendor: str
    vendor_id: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PluginEp:
    """A plugin EP package found installed (``get_library_path()`` convention)."""

    ep_name: str
    package: str
    module: str
    library_path: str | None
    version: str | None
    registered: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The device at hand. Sizes are bytes; ``None`` means the signal was absent."""

    os: str  # linux | darwin | windows | android | ios
    os_version: str
    arch: str  # x86_64 | arm64 | other uname -m value, normalised
    cpu_vendor: str  # intel | amd | arm | qualcomm | apple | ... (lower case)
    cpu_model: str
    cpu_flags: frozenset[str]
    physical_cores: int | None
    logical_cores: int | None
    performance_cores: int | None
    efficiency_cores: int | None
    memory_total: int | None
    memory_available: int | None
    battery: Battery | None
    soc: str | None
    accelerators: tuple[Accelerator, ...]
    ort_version: str | None
    ort_build_providers: tuple[str, ...]
    plugin_eps: tuple[PluginEp, ...]
    ep_devices: tuple[EpDevice, ...]
    notes: tuple[str, ...] = ()
    absent: Mapping[str, str] = field(default_factory=dict)

    @property
    def available_eps(self) -> frozenset[str]:
        """EP names that can be used now: built-in ones plus plugins with a device."""
        names = set(self.ort_build_providers)
        names.update(d.ep_name for d in self.ep_devices)
        return frozenset(names)

    def ep_device_types(self, ep_name: str) -> frozenset[str]:
        return frozenset(d.device_type for d in self.ep_devices if d.ep_name == ep_name)

    @property
    def threads_default(self) -> int:
        """Intra-op threads edgeort uses unless a profile says otherwise."""
        return self.performance_cores or self.physical_cores or self.logical_cores or 1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_flags"] = sorted(self.cpu_flags)
        data["absent"] = dict(sorted(self.absent.items()))
        for dev in data["ep_devices"]:
            dev["metadata"] = dict(sorted(dev["metadata"].items()))
        return {"schema": PROBE_SCHEMA, **data}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceInfo:
        d = dict(data)
        d.pop("schema", None)
        battery = d.get("battery")
        return cls(
            os=d["os"],
            os_version=d.get("os_version", ""),
            arch=d["arch"],
            cpu_vendor=d.get("cpu_vendor", ""),
            cpu_model=d.get("cpu_model", ""),
            cpu_flags=frozenset(d.get("cpu_flags", ())),
            physical_cores=d.get("physical_cores"),
            logical_cores=d.get("logical_cores"),
            performance_cores=d.get("performance_cores"),
            efficiency_cores=d.get("efficiency_cores"),
            memory_total=d.get("memory_total"),
            memory_available=d.get("memory_available"),
            battery=Battery(**battery) if battery else None,
            soc=d.get("soc"),
            accelerators=tuple(Accelerator(**a) for a in d.get("accelerators", ())),
            ort_version=d.get("ort_version"),
            ort_build_providers=tuple(d.get("ort_build_providers", ())),
            plugin_eps=tuple(PluginEp(**p) for p in d.get("plugin_eps", ())),
            ep_devices=tuple(EpDevice(**e) for e in d.get("ep_devices", ())),
            notes=tuple(d.get("notes", ())),
            absent=dict(d.get("absent", {})),
        )
