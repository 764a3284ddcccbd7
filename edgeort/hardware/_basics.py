"""The few EP and arch names the whole tree shares, in a module that imports nothing else
of edgeort: the runtime's cached load path (:mod:`edgeort.runtime.plans`) opens a session
without the probe, the profiles or the device dataclasses."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["CPU_EP", "hardware_type", "normalise_arch", "this_arch"]

CPU_EP = "CPUExecutionProvider"  # the one place the CPU EP is named

_ARCH = {"aarch64": "arm64", "arm64": "arm64", "amd64": "x86_64", "x86_64": "x86_64",
         "x64": "x86_64", "i386": "x86", "i686": "x86", "x86": "x86"}  # fmt: skip


def hardware_type(hw: Any) -> str:
    """``cpu`` | ``gpu`` | ``npu`` of an ``onnxruntime.OrtHardwareDevice``."""
    return str(hw.type).rsplit(".", 1)[-1].lower()


def normalise_arch(machine: str) -> str:
    return _ARCH.get(machine.strip().lower(), machine.strip().lower())


def this_arch() -> str:
    """This machine's arch, normalised (``arm64``, ``x86_64``, ...)."""
    if hasattr(os, "uname"):
        return normalise_arch(os.uname().machine)
    import platform  # Windows: no os.uname

    return normalise_arch(platform.machine())
