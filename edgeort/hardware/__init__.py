"""The probe: what is this device? -> :class:`~edgeort.hardware.device.DeviceInfo`.

``probe()`` reads the OS, CPU (vendor, model, normalised ISA flags, performance and
efficiency cores), memory, battery, SoC, accelerators and ONNX Runtime (version, built-in
EPs, plugin EPs and their devices). Every read goes through a :class:`Sources` object
(:class:`HostSources` by default, :class:`CapturedSources` for a device captured into a
directory), and a missing or broken signal becomes an ``absent`` entry, never an error.

It imports neither onnx nor click. The JSON form is documented in ``docs/probe.md``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.hardware._captured import CapturedSources
    from edgeort.hardware._cpu import ARM_FLAGS, X86_FLAGS
    from edgeort.hardware._ort import OrtState
    from edgeort.hardware._sources import HostSources, PlatformValues, Sources
    from edgeort.hardware.device import DeviceInfo

__all__ = [
    "ARM_FLAGS",
    "X86_FLAGS",
    "CapturedSources",
    "HostSources",
    "OrtState",
    "PlatformValues",
    "Sources",
    "probe",
]


_LAZY = {
    "ARM_FLAGS": "_cpu",
    "X86_FLAGS": "_cpu",
    "CapturedSources": "_captured",
    "HostSources": "_sources",
    "OrtState": "_ort",
    "PlatformValues": "_sources",
    "Sources": "_sources",
}


def __getattr__(name: str) -> Any:
    """The probe's parts are imported on first use: opening a session through
    :mod:`edgeort.hardware.ep` (the runtime's cached load path) never probes."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"edgeort.hardware.{module}"), name)


def probe(
    *, register_plugins: bool | Collection[str] = True, sources: Sources | None = None
) -> DeviceInfo:
    """Describe the device at hand (or the captured one ``sources`` reads).

    ``register_plugins``: ``True`` registers every installed plugin EP (OpenVINO, QNN,
    ...) with ONNX Runtime first, so their devices are listed; ``False`` registers none
    (they are listed, without devices). A collection of EP names registers and lists only
    the plugins providing those EPs, and looks up no plugin at all when every name is
    the CPU EP: what :func:`edgeort.load` uses for a bundle's variants. Registrations are
    kept for the process.
    """
    from edgeort.hardware._cpu import read_cpu
    from edgeort.hardware._ort import ort_notes
    from edgeort.hardware._platform import (
        merge_ort_hardware,
        normalise_arch,
        read_accelerators,
        read_os,
        read_soc,
    )
    from edgeort.hardware._sources import HostSources
    from edgeort.hardware.device import DeviceInfo

    if isinstance(register_plugins, str):
        register_plugins = (register_plugins,)
    elif not isinstance(register_plugins, bool):
        register_plugins = frozenset(register_plugins)
    src = sources if sources is not None else HostSources()
    absent: dict[str, str] = {}
    os_name, os_version, props = read_os(src, absent)
    arch = normalise_arch(src.platform.machine)
    cpu = read_cpu(src, os_name, arch, absent)
    soc = read_soc(src, props, cpu.board, cpu.model)
    if soc is None:
        absent["soc"] = "no /sys/devices/soc0, getprop, device-tree model or SoC brand string"
    accelerators = read_accelerators(src, os_name, arch, cpu.model)
    ort = src.ort_state(register_plugins=register_plugins)
    merge_ort_hardware(accelerators, ort.hardware)
    if ort.error:
        absent["onnxruntime"] = ort.error
    memory = src.memory()
    if memory is None:
        absent["memory"] = "psutil.virtual_memory() failed"
    battery = src.battery()
    if battery is None:
        absent["battery"] = "no battery reported (psutil.sensors_battery() is None)"
    notes = [*cpu.notes, *ort_notes(ort, arch=arch, cpu_vendor=cpu.vendor,
                                    accelerators=tuple(accelerators))]  # fmt: skip
    if not isinstance(register_plugins, bool) and ort.version is not None:
        notes.append(_scope_note(register_plugins))
    return DeviceInfo(
        os=os_name,
        os_version=os_version,
        arch=arch,
        cpu_vendor=cpu.vendor,
        cpu_model=cpu.model,
        cpu_flags=cpu.flags,
        physical_cores=cpu.physical,
        logical_cores=cpu.logical,
        performance_cores=cpu.performance,
        efficiency_cores=cpu.efficiency,
        memory_total=memory[0] if memory else None,
        memory_available=memory[1] if memory else None,
        battery=battery,
        soc=soc,
        accelerators=tuple(accelerators),
        ort_version=ort.version,
        ort_build_providers=ort.build_providers,
        plugin_eps=ort.plugin_eps,
        ep_devices=ort.ep_devices,
        notes=tuple(notes),
        absent=dict(sorted(absent.items())),
    )


def _scope_note(eps: Collection[str]) -> str:
    asked = ", ".join(sorted(eps)) or "none"
    return (
        f"plugin EPs looked up and registered only for the EPs asked for ({asked}): "
        "other installed plugins are not listed"
    )
