"""The machine and software a benchmark ran on, and the id its results are filed under."""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from typing import Any

__all__ = ["describe", "ep_status", "machine_id"]

# The CPU features that decide which kernels ORT and the EPs pick.
FLAGS_OF_INTEREST = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "i8mm", "sve", "bf16",
)  # fmt: skip

PACKAGES = ("onnxruntime", "onnx", "numpy", "onnxruntime-qnn", "onnxruntime-ep-openvino", "edgeort")


def _cpuinfo_model() -> str | None:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()  # noqa: SIM115
    except OSError:
        return None
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else None


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and package versions, EP devices (probe + extras)."""
    from edgeort.hardware import probe

    dev = probe()
    flags = set(dev.cpu_flags)
    return {
        "cpu_model": dev.cpu_model,
        "cpu_model_raw": _cpuinfo_model() or platform.processor() or None,
        "cpu_vendor": dev.cpu_vendor,
        "arch": dev.arch,
        "physical_cores": dev.physical_cores,
        "logical_cores": dev.logical_cores,
        "memory_gb": round(dev.memory_total / 2**30, 1) if dev.memory_total else None,
        "os": dev.os,
        "os_version": dev.os_version,
        "hypervisor": "hypervisor" in flags,
        "flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "flags_absent": [f for f in FLAGS_OF_INTEREST if f not in flags and f.startswith("amx")],
        "python": platform.python_version(),
        "python_impl": sys.implementation.name,
        "packages": {p: package_version(p) for p in PACKAGES},
        "ort_build_providers": list(dev.ort_build_providers),
        "ep_devices": [
            {"ep": d.ep_name, "device_type": d.device_type, "vendor": d.device_vendor}
            for d in dev.ep_devices
        ],
        "probe_notes": list(dev.notes),
    }


def machine_id(machine: dict[str, Any]) -> str:
    """A readable key: arch, vendor, CPU model and logical cores (no host names)."""
    model = str(machine.get("cpu_model_raw") or machine.get("cpu_model") or "cpu")
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:48]
    return f"{machine['arch']}-{slug}-{machine['logical_cores']}cpu"


def ep_status(ep: str) -> tuple[bool, str, bool]:
    """(usable here, why not, simulated) for a plugin EP, decided at run time."""
    from edgeort.hardware.plugins import (
        KNOWN_PLUGINS,
        ensure_registered,
        ep_devices,
        registration_error,
    )

    if ep == "CPUExecutionProvider":
        return True, "", False
    if not ensure_registered(ep):
        package = KNOWN_PLUGINS[ep].package if ep in KNOWN_PLUGINS else ep
        why = registration_error(ep) or f"{package} not installed"
        return False, f"not measured: {why}", False
    if not ep_devices(ep):
        return False, "not measured: plugin lists no device on this CPU", False
    simulated = ep == "QNNExecutionProvider" and platform.machine().lower() in ("x86_64", "amd64")
    return True, "", simulated
