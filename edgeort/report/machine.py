"""One machine's probe, in the few fields a report shows.

Light on purpose (stdlib only): ``edgeort bench --json`` records this summary so a bench
file says which machine its figures come from, wherever the report is made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["fingerprint_of", "machine_summary"]

_KEYS = ("os", "os_version", "arch", "cpu_vendor", "cpu_model", "ort_version")


def fingerprint_of(device: Mapping[str, Any]) -> str | None:
    """:func:`edgeort.choice.device_fingerprint` of a probe JSON object (None when
    the object lacks a field it needs)."""
    try:
        accel = sorted(
            f"{a['kind']}:{a['vendor']}:{a['name']}" for a in device.get("accelerators") or ()
        )
        key = [device["os"], device["arch"], device["cpu_model"], device["logical_cores"], accel]
    except (KeyError, TypeError):
        return None
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def _eps(device: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for entry in device.get("ep_devices") or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("ep_name"), str):
            label = f"{entry['ep_name']} ({entry.get('device_type', '?')})"
            if label not in names:
                names.append(label)
    return names


def machine_summary(device: Mapping[str, Any]) -> dict[str, Any]:
    """The report's view of a probe JSON object (``DeviceInfo.to_json()``, probe.md).

    Unknown or missing fields stay out; a summary given again passes through unchanged.
    """
    if device.get("summary") == 1:
        return dict(device)
    out: dict[str, Any] = {"summary": 1}
    for key in _KEYS:
        if isinstance(device.get(key), str | int | float):
            out[key] = device[key]
    for key in ("physical_cores", "logical_cores", "memory_total"):
        if isinstance(device.get(key), int) and not isinstance(device.get(key), bool):
            out[key] = device[key]
    accel = [
        f"{a.get('vendor', '?')} {a.get('name', '?')} ({a.get('kind', '?')})"
        for a in device.get("accelerators") or ()
        if isinstance(a, Mapping)
    ]
    out["accelerators"] = accel
    out["eps"] = _eps(device)
    fp = device.get("fingerprint") or fingerprint_of(device)
    if isinstance(fp, str):
        out["fingerprint"] = fp
    return out
