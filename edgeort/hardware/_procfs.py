"""Linux counts, memory and battery read the way psutil reads them, without importing
psutil (~20 ms of a fresh process's ``edgeort.load``).

Each reader mirrors one psutil function's Linux code path (psutil 7: ``_pslinux``) and
returns ``None`` whenever its answer could differ from psutil's; the caller then asks
psutil itself, so the probe's figures stay psutil's figures.
"""

from __future__ import annotations

import glob
import os

__all__ = ["battery_absent", "cpu_counts", "memory"]

POWER_SUPPLY = "/sys/class/power_supply"


def cpu_counts() -> tuple[int, int] | None:
    """(physical, logical) like ``psutil.cpu_count(logical=False)`` / ``cpu_count()``:
    logical from ``SC_NPROCESSORS_ONLN``, physical as the number of distinct
    ``topology/core_cpus_list`` (else ``thread_siblings_list``) contents. ``None`` where
    psutil would take another route (its /proc/cpuinfo fallbacks)."""
    try:
        logical = os.sysconf("SC_NPROCESSORS_ONLN")
    except (ValueError, OSError):
        return None
    base = "/sys/devices/system/cpu/cpu[0-9]*/topology/"
    seen: set[bytes] = set()
    try:
        for path in glob.glob(base + "core_cpus_list") or glob.glob(base + "thread_siblings_list"):
            with open(path, "rb") as fh:
                seen.add(fh.read().strip())
    except OSError:
        return None
    if not seen or logical < 1:
        return None
    return len(seen), logical


def memory() -> tuple[int, int] | None:
    """(total, available) bytes like ``psutil.virtual_memory()``: ``MemTotal`` and
    ``MemAvailable`` of /proc/meminfo. ``None`` where psutil would estimate or clamp
    (no ``MemAvailable``, zero, or above the total)."""
    mems: dict[bytes, int] = {}
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 2 and fields[0] in (b"MemTotal:", b"MemAvailable:"):
                    mems[fields[0]] = int(fields[1]) * 1024
    except (OSError, ValueError):
        return None
    total, avail = mems.get(b"MemTotal:"), mems.get(b"MemAvailable:")
    if total is None or avail is None or not 0 < avail <= total:
        return None
    return total, avail


def battery_absent() -> bool:
    """True when ``psutil.sensors_battery()`` would report no battery: no
    /sys/class/power_supply entry named ``BAT*`` or containing ``battery`` (or no such
    directory). False means: ask psutil."""
    try:
        names = os.listdir(POWER_SUPPLY)
    except OSError:
        return True
    return not any(n.startswith("BAT") or "battery" in n.lower() for n in names)
