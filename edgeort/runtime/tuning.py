"""The tune cache: where ``edgeort tune`` records the best settings of a variant on a
device, and how :func:`edgeort.load` reads them back.

``<cache>/tune/<variant sha256>-<device fingerprint>-<ort version>.json``; a latency is
trusted only on the device (:func:`device_fingerprint`) it was measured on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime as ort

from edgeort._dirs import cache_dir
from edgeort._log import get_logger
from edgeort.hardware.device import DeviceInfo

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.bundle import Variant

__all__ = ["device_fingerprint", "read_tuning", "tuning_cache_path", "variant_sha256"]

log = get_logger(__name__)


def device_fingerprint(device: DeviceInfo) -> str:
    """16 hex digits naming this hardware (OS, arch, CPU model, cores, accelerators).

    Latencies measured on one fingerprint are trusted only on the same fingerprint.
    """
    accel = sorted(f"{a.kind}:{a.vendor}:{a.name}" for a in device.accelerators)
    key = [device.os, device.arch, device.cpu_model, device.logical_cores, accel]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def variant_sha256(variant: Variant) -> str:
    """sha256 naming what runs: name, profile, EP, device, options and every file's digest
    (the same model file under another EP, profile or options is another variant)."""
    key = {
        "name": variant.name,
        "profile": [variant.profile, variant.profile_version],
        "ep": variant.ep,
        "device": variant.device,
        "model_file": variant.model_file,
        "provider_options": dict(variant.provider_options),
        "session_options": dict(variant.session_options),
        "files": sorted((f.path, f.sha256) for f in variant.files),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def tuning_cache_path(variant: Variant, device: DeviceInfo, ort_version: str | None = None) -> Path:
    """``<cache>/tune/<variant sha256>-<device fingerprint>-<ort version>.json``
    (:func:`variant_sha256`, :func:`device_fingerprint`).

    ``edgeort tune`` writes it: ``{"latency_ms": float, "session_options": {str: str},
    "provider_options": {str: str}, "intra_op_threads": int | null, ...}``.
    """
    version = ort_version or ort.__version__
    name = f"{variant_sha256(variant)}-{device_fingerprint(device)}-{version}.json"
    return cache_dir() / "tune" / name


def read_tuning(variant: Variant, device: DeviceInfo) -> dict[str, Any] | None:
    """The tune cache entry of ``variant`` on ``device``, or None (absent or unreadable)."""
    path = tuning_cache_path(variant, device)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("ignoring unreadable tune cache %s: %s", path, exc)
        return None
    latency = data.get("latency_ms") if isinstance(data, dict) else None
    if not isinstance(latency, (int, float)) or isinstance(latency, bool) or latency <= 0:
        log.info("ignoring tune cache %s: no positive latency_ms", path)
        return None
    return dict(data)
