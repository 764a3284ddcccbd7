"""Where the probe reads from: the running host, or a device captured into a directory.

Every OS access of the probe goes through a :class:`Sources` object, so a device captured
once (files under ``root/`` plus ``sources.json``) can be probed on any Linux CI host.
A source never raises for a missing or unreadable signal: it returns ``None`` (or an empty
list) and the probe records the absence.
"""

from __future__ import annotations

import glob as _glob
import os
import platform
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from edgeort._log import get_logger
from edgeort.hardware.device import Battery

if TYPE_CHECKING:  # pragma: no cover
    from edgeort.hardware._captured import CapturedSources
    from edgeort.hardware._ort import OrtState

__all__ = ["CapturedSources", "HostSources", "PlatformValues", "Sources"]

log = get_logger(__name__)

RUN_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class PlatformValues:
    """What :mod:`platform` and :mod:`sys` say about the running OS."""

    system: str  # platform.system(): Linux | Darwin | Windows | ...
    release: str  # platform.release(): kernel / OS release
    version: str  # platform.version()
    machine: str  # platform.machine(), not normalised
    sys_platform: str  # sys.platform: linux | darwin | win32 | android | ios


class Sources(Protocol):
    """The probe's only window on the device."""

    platform: PlatformValues
    env: Mapping[str, str]

    def read_text(self, path: str) -> str | None: ...
    def exists(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str] | None: ...
    def glob(self, pattern: str) -> list[str]: ...
    def run(self, cmd: Sequence[str]) -> str | None: ...
    def cpu_counts(self) -> tuple[int | None, int | None]: ...  # (physical, logical)
    def memory(self) -> tuple[int, int] | None: ...  # (total, available) bytes
    def battery(self) -> Battery | None: ...
    def registry(self, key: str, value: str) -> str | None: ...  # Windows HKLM only
    def processor_features(self) -> tuple[str, ...] | None: ...  # Windows PF_* present
    def ort_state(self, *, register_plugins: bool | Collection[str]) -> OrtState: ...


# Windows IsProcessorFeaturePresent() constants (winnt.h) the probe maps to flag names.
WINDOWS_PF = {
    "PF_AVX_INSTRUCTIONS_AVAILABLE": 39,
    "PF_AVX2_INSTRUCTIONS_AVAILABLE": 40,
    "PF_AVX512F_INSTRUCTIONS_AVAILABLE": 41,
    "PF_ARM_NEON_INSTRUCTIONS_AVAILABLE": 19,
    "PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE": 43,
    "PF_ARM_SVE_INSTRUCTIONS_AVAILABLE": 46,
    "PF_ARM_SVE2_INSTRUCTIONS_AVAILABLE": 47,
    "PF_ARM_V82_I8MM_INSTRUCTIONS_AVAILABLE": 66,
    "PF_ARM_V82_FP16_INSTRUCTIONS_AVAILABLE": 67,
    "PF_ARM_V86_BF16_INSTRUCTIONS_AVAILABLE": 68,
    "PF_ARM_SME_INSTRUCTIONS_AVAILABLE": 70,
}


class HostSources:
    """The machine this Python runs on."""

    def __init__(self) -> None:
        uname = platform.uname()
        self.platform = PlatformValues(
            system=uname.system,
            release=uname.release,
            version=uname.version,
            machine=uname.machine,
            sys_platform=sys.platform,
        )
        self.env: Mapping[str, str] = os.environ

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except (OSError, ValueError):
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return None

    def glob(self, pattern: str) -> list[str]:
        return sorted(_glob.glob(pattern))

    def run(self, cmd: Sequence[str]) -> str | None:
        import subprocess  # ~3 ms to import: only the macOS and Android probes run commands

        try:
            done = subprocess.run(
                list(cmd), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("probe: %s failed: %s", cmd[0], exc)
            return None
        return done.stdout if done.returncode == 0 else None

    def cpu_counts(self) -> tuple[int | None, int | None]:
        if sys.platform.startswith("linux"):
            from edgeort.hardware._procfs import cpu_counts

            counts = cpu_counts()
            if counts is not None:
                return counts
        import psutil

        return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)

    def memory(self) -> tuple[int, int] | None:
        if sys.platform.startswith("linux"):
            from edgeort.hardware._procfs import memory

            mem = memory()
            if mem is not None:
                return mem
        import psutil

        try:
            vm = psutil.virtual_memory()
        except (OSError, RuntimeError):
            return None
        return int(vm.total), int(vm.available)

    def battery(self) -> Battery | None:
        if sys.platform.startswith("linux"):
            from edgeort.hardware._procfs import battery_absent

            if battery_absent():
                return None
        import psutil

        reader = getattr(psutil, "sensors_battery", None)
        try:
            bat = reader() if reader else None
        except (OSError, RuntimeError, NotImplementedError):
            return None
        if bat is None:
            return None
        return Battery(percent=float(bat.percent), plugged=bat.power_plugged)

    def registry(self, key: str, value: str) -> str | None:
        if sys.platform != "win32":
            return None
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
                return str(winreg.QueryValueEx(handle, value)[0])
        except OSError:
            return None

    def processor_features(self) -> tuple[str, ...] | None:
        if sys.platform != "win32":
            return None
        import ctypes

        present = getattr(ctypes, "windll").kernel32.IsProcessorFeaturePresent  # noqa: B009
        return tuple(name for name, num in WINDOWS_PF.items() if present(num))

    def ort_state(self, *, register_plugins: bool | Collection[str]) -> OrtState:
        from edgeort.hardware._ort import read_host_ort

        return read_host_ort(register_plugins=register_plugins)


def __getattr__(name: str) -> Any:
    """:class:`CapturedSources` lives in :mod:`edgeort.hardware._captured` (imported on first
    use: probing this host never needs it)."""
    if name == "CapturedSources":
        from edgeort.hardware._captured import CapturedSources

        return CapturedSources
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
