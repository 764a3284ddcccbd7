"""EPs compiled into the installed onnxruntime build under a plugin EP's name (the
"classic" route): the ``onnxruntime-openvino`` wheel is a whole ONNX Runtime with
``OpenVINOExecutionProvider`` built in. It is registered by name
(``get_available_providers()``), lists no ``OrtEpDevice`` and does no device discovery,
so it runs where the ``onnxruntime-ep-openvino`` plugin reports no device (AMD CPUs) --
there, Intel does not officially support it, and edgeort says so.

One ONNX Runtime per environment: the classic build replaces the ``onnxruntime`` module,
so it lives in its own environment (``edgeort runtimes add openvino``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CLASSIC_BUILDS",
    "ClassicBuild",
    "alternative_hint",
    "builtin_device_ids",
    "builtin_provider_options",
    "builtin_route",
    "support_note",
]


@dataclass(frozen=True, slots=True)
class ClassicBuild:
    ep_name: str
    package: str  # the wheel that replaces onnxruntime
    runtime: str  # the built-in edgeort runtime recipe that installs it
    device_option: str  # provider option naming the device (CPU/GPU/NPU)
    vendor: str  # the only CPU vendor its maker supports


CLASSIC_BUILDS: dict[str, ClassicBuild] = {
    "OpenVINOExecutionProvider": ClassicBuild(
        "OpenVINOExecutionProvider", "onnxruntime-openvino", "openvino", "device_type", "intel"
    ),
}


def builtin_route(ep_name: str) -> bool:
    """``ep_name`` is compiled into this onnxruntime build and no installed plugin
    provides it: sessions name it in ``providers=``, with no ``OrtEpDevice``."""
    if ep_name not in CLASSIC_BUILDS:
        return False
    import onnxruntime as ort

    if ep_name not in ort.get_available_providers():
        return False
    from edgeort.providers import plugin_installed

    return not plugin_installed(ep_name)


def builtin_device_ids() -> dict[str, tuple[str, ...]]:
    """Per built-in classic EP, the device ids it reports (OpenVINO: ``CPU``, ``GPU.0``...)."""
    import onnxruntime as ort

    out: dict[str, tuple[str, ...]] = {}
    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        try:
            from onnxruntime.capi import _pybind_state as capi

            out["OpenVINOExecutionProvider"] = tuple(
                str(d) for d in capi.get_available_openvino_device_ids()
            )
        except Exception:  # the helper is private; absent: the devices are unknown
            out["OpenVINOExecutionProvider"] = ()
    return out


def builtin_device_types(ep_name: str) -> frozenset[str]:
    """``cpu``/``gpu``/``npu`` the classic build of ``ep_name`` reports here."""
    ids = builtin_device_ids().get(ep_name, ())
    return frozenset(i.split(".", 1)[0].lower() for i in ids)


def builtin_provider_options(
    ep_name: str, device: str, options: Mapping[str, str]
) -> dict[str, str]:
    """``options`` for the classic build: the device named explicitly (the plugin picks
    it from the ``OrtEpDevice``; the classic EP from ``device_type``)."""
    out = dict(options)
    build = CLASSIC_BUILDS.get(ep_name)
    if build is not None and device and build.device_option not in out:
        out[build.device_option] = device.upper()
    return out


def support_note(ep_name: str, cpu_vendor: str) -> str | None:
    """The label for a run its maker does not support: "OpenVINO on AMD, not officially
    supported by Intel"."""
    build = CLASSIC_BUILDS.get(ep_name)
    if build is None or not cpu_vendor or cpu_vendor == build.vendor:
        return None
    short = ep_name.removesuffix("ExecutionProvider")
    vendor = cpu_vendor.upper() if len(cpu_vendor) <= 3 else cpu_vendor.capitalize()
    return f"{short} on {vendor}, not officially supported by {build.vendor.capitalize()}"


def alternative_hint(ep_name: str) -> str | None:
    """What else runs ``ep_name`` when its plugin lists no device here."""
    build = CLASSIC_BUILDS.get(ep_name)
    if build is None:
        return None
    return (
        f"alternative: the classic {build.package} build (EP compiled in, no device "
        f"discovery) in its own environment: edgeort runtimes add {build.runtime}"
    )
