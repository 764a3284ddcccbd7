"""OS, architecture, SoC and accelerator readers.

Accelerators come from what the OS exposes: ``/sys/class/accel`` (NPUs), DRM render
nodes (GPUs), Qualcomm FastRPC nodes (Hexagon NPU), Apple Silicon, Jetson, and ORT's own
hardware discovery (the only GPU/NPU signal on Windows here).
"""

from __future__ import annotations

from edgeort.hardware._basics import normalise_arch, this_arch
from edgeort.hardware._sources import Sources
from edgeort.hardware.device import Accelerator

__all__ = [
    "PCI_VENDORS",
    "normalise_arch",
    "read_accelerators",
    "read_os",
    "read_soc",
    "this_arch",
]

PCI_VENDORS = {
    0x8086: "intel", 0x1022: "amd", 0x1002: "amd", 0x10DE: "nvidia", 0x17CB: "qualcomm",
    0x5143: "qualcomm", 0x106B: "apple", 0x13B5: "arm", 0x1E60: "hailo", 0x14E4: "broadcom",
    0x1414: "microsoft", 0x4D4F4351: "qualcomm",
}  # fmt: skip
_DRIVER_VENDORS = {
    "i915": "intel", "xe": "intel", "intel_vpu": "intel", "amdgpu": "amd", "radeon": "amd",
    "amdxdna": "amd", "nouveau": "nvidia", "nvidia": "nvidia", "tegra": "nvidia",
    "nvgpu": "nvidia", "msm": "qualcomm", "msm_drm": "qualcomm", "msm_dpu": "qualcomm",
    "qaic": "qualcomm", "v3d": "broadcom", "vc4": "broadcom", "panfrost": "arm",
    "panthor": "arm", "mali": "arm", "rocket": "rockchip", "ethosu": "arm",
}  # fmt: skip
_SOC_FAMILY_VENDOR = {"snapdragon": "Qualcomm"}
_ANDROID_SOC_MAKER = {"qti": "Qualcomm", "qualcomm": "Qualcomm", "mediatek": "MediaTek"}


def read_getprop(src: Sources) -> dict[str, str]:
    """Android system properties (``getprop`` prints ``[key]: [value]`` lines)."""
    out = src.run(["getprop"]) or ""
    props = {}
    for line in out.splitlines():
        key, sep, value = line.partition("]: [")
        if sep:
            props[key.strip().lstrip("[")] = value.strip().rstrip("]")
    return props


def is_android(src: Sources) -> bool:
    if src.platform.sys_platform == "android":
        return True
    env = src.env
    return ("ANDROID_ROOT" in env and "ANDROID_DATA" in env) or src.exists("/system/build.prop")


def read_os(src: Sources, absent: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """(os, os_version, getprop) -- getprop is empty except on Android."""
    pv = src.platform
    system = pv.system.lower()
    if pv.sys_platform == "ios":
        return "ios", pv.release, {}
    if system == "linux" and is_android(src):
        props = read_getprop(src)
        release, sdk = props.get("ro.build.version.release"), props.get("ro.build.version.sdk")
        if not props:
            absent["android.getprop"] = "getprop gave no output"
        version = f"{release} (API {sdk})" if release and sdk else f"kernel {pv.release}"
        return "android", version, props
    if system == "linux":
        return "linux", _linux_version(src, absent), {}
    if system == "darwin":
        version = (src.run(["sysctl", "-n", "kern.osproductversion"]) or "").strip()
        if not version:
            absent["os_version"] = "sysctl -n kern.osproductversion gave no output"
        return "darwin", version or f"Darwin {pv.release}", {}
    if system == "windows":
        return "windows", f"{pv.release} ({pv.version})", {}
    return system or pv.sys_platform, pv.release, {}


def _linux_version(src: Sources, absent: dict[str, str]) -> str:
    text = src.read_text("/etc/os-release") or src.read_text("/usr/lib/os-release")
    pretty = ""
    for line in (text or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    if not pretty:
        absent["os_release"] = "/etc/os-release has no PRETTY_NAME"
        return f"kernel {src.platform.release}"
    return f"{pretty} (kernel {src.platform.release})"


def _dt_text(src: Sources, path: str) -> str | None:
    text = src.read_text(path)
    return text.replace("\x00", " ").strip() if text else None


def read_soc(src: Sources, props: dict[str, str], board: str | None, brand: str) -> str | None:
    """The SoC / board name, from the most specific signal present."""
    family = (src.read_text("/sys/devices/soc0/family") or "").strip()
    machine = (src.read_text("/sys/devices/soc0/machine") or "").strip()
    if family and machine:
        maker = _SOC_FAMILY_VENDOR.get(family.lower())
        return " ".join(p for p in (maker, family, machine) if p)
    if props.get("ro.soc.model"):
        maker = props.get("ro.soc.manufacturer", "")
        maker = _ANDROID_SOC_MAKER.get(maker.lower(), maker)
        return f"{maker} {props['ro.soc.model']}".strip()
    if props.get("ro.board.platform") or props.get("ro.product.board"):
        return props.get("ro.board.platform") or props["ro.product.board"]  # e.g. "kalama"
    if brand.startswith("Apple") or "Snapdragon" in brand:
        return brand
    model = _dt_text(src, "/proc/device-tree/model") or board
    if model:
        return model
    return machine or None


def read_accelerators(src: Sources, os_name: str, arch: str, brand: str) -> list[Accelerator]:
    found = [*_sysfs("accel", "npu", src), *_sysfs("drm", "gpu", src)]
    cdsp = src.glob("/dev/fastrpc-cdsp*")
    if cdsp:
        found.append(Accelerator("npu", "qualcomm", "Hexagon NPU (FastRPC cdsp)", cdsp[0]))
    if src.exists("/dev/kgsl-3d0"):  # Adreno on Android / Qualcomm Linux (no DRM node)
        found.append(Accelerator("gpu", "qualcomm", "Adreno GPU (kgsl)", "/dev/kgsl-3d0"))
    if os_name == "darwin" and brand.startswith("Apple"):
        source = "sysctl machdep.cpu.brand_string"
        found.append(Accelerator("gpu", "apple", f"{brand} GPU", source))
        found.append(Accelerator("npu", "apple", "Apple Neural Engine", source))
    tegra = src.read_text("/etc/nv_tegra_release")
    if tegra:
        found.append(Accelerator("gpu", "nvidia", f"Jetson iGPU ({l4t_release(tegra)})",
                                 "/etc/nv_tegra_release"))  # fmt: skip
    return found


def l4t_release(text: str) -> str:
    """``# R35 (release), REVISION: 4.1, ...`` -> ``L4T R35.4.1``."""
    head = text.strip().lstrip("#").split(",")
    major = head[0].split()[0] if head and head[0].split() else "R?"
    rev = next((p.split(":", 1)[1].strip() for p in head if "REVISION" in p), "")
    return f"L4T {major}.{rev}" if rev else f"L4T {major}"


def _sysfs(cls: str, kind: str, src: Sources) -> list[Accelerator]:
    pattern = "/sys/class/accel/accel*" if cls == "accel" else "/sys/class/drm/renderD*"
    out = []
    for node in src.glob(pattern):
        vendor_text = (src.read_text(f"{node}/device/vendor") or "").strip()
        device_text = (src.read_text(f"{node}/device/device") or "").strip()
        driver = _driver(src.read_text(f"{node}/device/uevent"))
        vendor = _vendor(vendor_text, driver)
        if vendor is None:
            continue
        ids = f"{vendor_text}:{device_text}" if vendor_text else ""
        name = " ".join(p for p in (driver or cls, ids) if p)
        out.append(Accelerator(kind, vendor, name, node))
    return out


def _driver(uevent: str | None) -> str:
    for line in (uevent or "").splitlines():
        if line.startswith("DRIVER="):
            return line.split("=", 1)[1].strip()
    return ""


def _vendor(vendor_text: str, driver: str) -> str | None:
    if vendor_text:
        try:
            vid = int(vendor_text, 16)
        except ValueError:
            return (driver and _DRIVER_VENDORS.get(driver)) or None
        return PCI_VENDORS.get(vid, f"pci:{vid:#06x}")
    if driver:
        return _DRIVER_VENDORS.get(driver, driver)
    return None


def merge_ort_hardware(found: list[Accelerator], ort_hw: tuple[Accelerator, ...]) -> None:
    """Add ORT-discovered GPUs/NPUs the OS readers did not already report."""
    seen = {(a.kind, a.vendor) for a in found}
    for acc in ort_hw:
        if (acc.kind, acc.vendor) not in seen:
            found.append(acc)
            seen.add((acc.kind, acc.vendor))
