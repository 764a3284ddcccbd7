"""The ONNX Runtime part of the probe: version, built-in EPs, plugin EPs, EP devices.

:class:`OrtState` is what ORT says, as plain data, so a captured device can carry it in
its ``sources.json``. :func:`ort_notes` turns it into the plain-language notes users need
(a simulated QNN backend, a plugin that is installed but has no device here).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from edgeort.hardware._platform import PCI_VENDORS
from edgeort.hardware.device import Accelerator, EpDevice, PluginEp, hardware_type

__all__ = ["OrtState", "no_device_why", "ort_notes", "read_host_ort"]

_HW_KINDS = {"gpu": "gpu", "npu": "npu"}


@dataclass(frozen=True, slots=True)
class OrtState:
    version: str | None
    build_providers: tuple[str, ...]
    plugin_eps: tuple[PluginEp, ...]
    ep_devices: tuple[EpDevice, ...]
    hardware: tuple[Accelerator, ...] = ()  # GPUs/NPUs ORT's own device discovery found
    error: str | None = None  # why onnxruntime could not be used
    registered: bool = True  # were plugins registered before ep_devices was read?

    @classmethod
    def missing(cls, why: str) -> OrtState:
        return cls(None, (), (), (), (), why)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrtState:
        return cls(
            version=data.get("version"),
            build_providers=tuple(data.get("build_providers", ())),
            plugin_eps=tuple(PluginEp(**p) for p in data.get("plugin_eps", ())),
            ep_devices=tuple(EpDevice(**e) for e in data.get("ep_devices", ())),
            hardware=tuple(Accelerator(**a) for a in data.get("hardware", ())),
            error=data.get("error"),
            registered=bool(data.get("registered", True)),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def scoped(self, ep_names: Collection[str]) -> OrtState:
        """This state as a probe that registers only the plugins of ``ep_names`` sees it:
        other plugins and their devices left out (a captured device's full state)."""
        others = {p.ep_name for p in self.plugin_eps} - set(ep_names)
        return replace(
            self,
            plugin_eps=tuple(p for p in self.plugin_eps if p.ep_name not in others),
            ep_devices=tuple(d for d in self.ep_devices if d.ep_name not in others),
        )


def read_host_ort(*, register_plugins: bool | Collection[str]) -> OrtState:
    """Ask the installed onnxruntime (registering plugin EPs first when asked).

    ``register_plugins`` as in :func:`edgeort.hardware.probe`: ``True`` every installed
    plugin, ``False`` none (they are still listed), a collection of EP names only the
    plugins providing them (and only those are listed)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return OrtState.missing(f"onnxruntime cannot be imported: {exc}")
    from edgeort.hardware import plugins as providers

    devices = providers.list_ep_devices
    if register_plugins is True or register_plugins is False:
        plugins = providers.register_all() if register_plugins else providers.discover_plugins()
        plugin_names = frozenset(p.ep_name for p in plugins)
        ep_devices = devices()
    else:
        plugins = providers.register_for(register_plugins)
        plugin_names = providers.plugin_ep_names()
        others = plugin_names - set(register_plugins)  # plugins not asked for
        ep_devices = tuple(d for d in devices() if d.ep_name not in others)
    # get_available_providers() also lists registered plugin EPs; those live in plugin_eps.
    # An EP that no installed plugin provides is compiled in (onnxruntime-openvino).
    installed = frozenset(p.ep_name for p in plugins)
    build = tuple(
        n
        for n in ort.get_available_providers()
        if n not in plugin_names or (n not in installed and not providers.plugin_installed(n))
    )
    return OrtState(
        version=str(ort.__version__),
        build_providers=build,
        plugin_eps=plugins,
        ep_devices=ep_devices,
        hardware=_hardware_devices(),
        registered=register_plugins is not False,
    )


def _hardware_devices() -> tuple[Accelerator, ...]:
    """GPUs and NPUs from ORT's own discovery (DXCore on Windows, sysfs on Linux)."""
    try:
        from onnxruntime.capi import _pybind_state as capi

        devices = capi.get_hardware_devices()
    except Exception:  # private API: absent in other versions
        return ()
    out = []
    for hw in devices:
        kind = _HW_KINDS.get(hardware_type(hw))
        if kind:
            vid = int(hw.vendor_id)
            vendor = PCI_VENDORS.get(vid) or (str(hw.vendor).lower().split() or [f"{vid:#x}"])[0]
            name = f"{hw.vendor} {kind} {vid:#06x}:{int(hw.device_id):#06x}"
            out.append(Accelerator(kind, vendor, name, "onnxruntime"))
    return tuple(out)


def ort_notes(
    state: OrtState, *, arch: str, cpu_vendor: str, accelerators: tuple[Accelerator, ...]
) -> list[str]:
    """Plain-language notes about EPs that cannot do here what their name suggests."""
    notes: list[str] = []
    if state.version is None:
        return notes
    if not state.registered and state.plugin_eps:
        notes.append(
            "plugin EPs were not registered (register_plugins=False): their devices are not listed"
        )
    for plugin in state.plugin_eps:
        notes.extend(_plugin_notes(plugin, state, arch, cpu_vendor, accelerators))
    notes.extend(_classic_notes(state, cpu_vendor))
    return notes


def _classic_notes(state: OrtState, cpu_vendor: str) -> list[str]:
    """EPs compiled into this build under a plugin's name (the onnxruntime-openvino wheel)."""
    from edgeort.hardware.ep import CLASSIC_BUILDS, support_note

    notes = []
    plugins = {p.ep_name for p in state.plugin_eps}
    for ep in state.build_providers:
        build = CLASSIC_BUILDS.get(ep)
        if build is None or ep in plugins:
            continue
        text = (
            f"{ep} is compiled into this onnxruntime build ({build.package}): registered by "
            "name, no OrtEpDevice; it runs the OpenVINO profiles"
        )
        unsupported = support_note(ep, cpu_vendor)
        notes.append(f"{text} ({unsupported})" if unsupported else text)
    return notes


def _plugin_notes(
    plugin: PluginEp,
    state: OrtState,
    arch: str,
    cpu_vendor: str,
    accelerators: tuple[Accelerator, ...],
) -> list[str]:
    who = f"{plugin.ep_name} ({plugin.package} {plugin.version or '?'})"
    if not plugin.registered:
        if state.registered:
            return [f"{who} is installed but not registered: {plugin.error or 'unknown error'}"]
        return []
    types = sorted({d.device_type for d in state.ep_devices if d.ep_name == plugin.ep_name})
    if plugin.ep_name == "QNNExecutionProvider" and types and arch != "arm64":
        return [
            f"{who} on {arch}: the QNN plugin runs its HTP backend in simulation "
            f"(device type {', '.join(types)}); results are real, speed and placement "
            "say nothing about a Snapdragon NPU"
        ]
    if types:
        return []
    from edgeort.hardware.ep import alternative_hint

    alternative = alternative_hint(plugin.ep_name)
    return [
        f"{who} is registered but reports no OrtEpDevice, so it cannot run here: "
        + no_device_why(plugin.ep_name, cpu_vendor, accelerators)
        + (f"; {alternative}" if alternative else "")
    ]


def no_device_why(ep_name: str, cpu_vendor: str, accelerators: tuple[Accelerator, ...]) -> str:
    """Why a registered plugin EP lists no device here, as far as the probe can tell."""
    if ep_name == "OpenVINOExecutionProvider":
        intel = [a for a in accelerators if a.vendor == "intel"]
        if cpu_vendor != "intel" and not intel:
            return (
                f"the OpenVINO plugin lists Intel hardware only; CPU vendor is "
                f"{cpu_vendor or 'unknown'} and no Intel GPU/NPU was found"
            )
        return "the OpenVINO plugin found no usable Intel CPU/GPU/NPU (check its drivers)"
    if ep_name == "QNNExecutionProvider":
        return "no Qualcomm HTP (/dev/fastrpc-cdsp*) or simulator backend was found"
    return "the plugin found no supported hardware on this machine"
