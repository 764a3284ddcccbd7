"""What a farm worker advertises: Dask worker resources and a probe summary.

Resources (each with the value 1; a Dask task that asks for a resource runs only on
workers that have it):

- ``profile:<name>`` for every device profile that fits this device (``edgeort probe``'s
  ranking; a simulated EP's profile too, and the summary says so);
- ``ep:<EP name>`` for every execution provider that can open a session here: the CPU EP,
  built-in EPs of this onnxruntime build, plugin EPs that list a device;
- ``runtime:<name>`` for every target runtime ``edgeort.runtimes`` reports available
  (only when that package exists in this edgeort);
- ``build`` when this device can package (onnx and onnxruntime's quantization tools
  import): packaging jobs go only to such workers;
- ``timing``: timing jobs ask for it, so a worker runs one at a time.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import platform
from collections.abc import Mapping
from typing import Any

__all__ = ["BUILD", "TIMING", "advertise", "ep_resource", "profile_resource", "summary"]

log = logging.getLogger(__name__)

TIMING = "timing"
BUILD = "build"


def profile_resource(name: str) -> str:
    return f"profile:{name}"


def ep_resource(ep: str) -> str:
    return f"ep:{ep}"


def runtime_resource(name: str) -> str:
    return f"runtime:{name}"


def _can_build() -> bool:
    return all(
        importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime.quantization")
    )


def _runtimes() -> list[str]:
    """Names of the target runtimes created here (:func:`edgeort.runtimes.list_runtimes`)."""
    from edgeort.runtimes import list_runtimes

    try:
        return sorted(r.name for r in list_runtimes())
    except Exception as exc:  # a broken runtime folder must not stop a join
        log.warning("listing target runtimes failed: %s", exc)
        return []


def _eps(device: Any) -> list[str]:
    names = {"CPUExecutionProvider"}
    names.update(d.ep_name for d in device.ep_devices)
    plugins = {p.ep_name for p in device.plugin_eps}
    names.update(e for e in device.ort_build_providers if e not in plugins and "." not in e)
    return sorted(names)


def summary(device: Any = None) -> dict[str, Any]:
    """This device, as ``edgeort farm ls`` shows it (JSON-able)."""
    from edgeort.profiles import load_profiles
    from edgeort.profiles.match import rank
    from edgeort.runtime.tuning import device_fingerprint

    if device is None:
        from edgeort.hardware import probe

        device = probe()
    ranked = rank(load_profiles(), device)
    fitting = [c for c in ranked if c.fits]
    return {
        "host": platform.node(),
        "os": device.os,
        "os_version": device.os_version,
        "arch": device.arch,
        "cpu": device.cpu_model,
        "cores": device.logical_cores,
        "memory_gb": round(device.memory_total / 2**30, 1) if device.memory_total else None,
        "soc": device.soc,
        "accelerators": [f"{a.kind}:{a.vendor}:{a.name}" for a in device.accelerators],
        "device_fingerprint": device_fingerprint(device),
        "ort_version": device.ort_version,
        "eps": _eps(device),
        "profiles": [c.profile.name for c in fitting],
        "simulated": [c.profile.name for c in fitting if c.simulated],
        "runtimes": _runtimes(),
        "build": _can_build(),
    }


def advertise(info: Mapping[str, Any]) -> dict[str, float]:
    """The Dask resources for a :func:`summary`."""
    res: dict[str, float] = {TIMING: 1}
    if info.get("build"):
        res[BUILD] = 1
    res.update({profile_resource(p): 1 for p in info.get("profiles", ())})
    res.update({ep_resource(e): 1 for e in info.get("eps", ())})
    res.update({runtime_resource(r): 1 for r in info.get("runtimes", ())})
    return res
