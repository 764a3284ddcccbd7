"""probe() on devices captured into tests/data/devices/ (read through CapturedSources)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgeort.hardware import CapturedSources, probe
from edgeort.hardware.device import DeviceInfo

DEVICES = Path(__file__).parent / "data" / "devices"


def probe_dir(path: Path) -> DeviceInfo:
    return probe(sources=CapturedSources.from_dir(path))


def copy_device(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEVICES / name, tmp_path / name))


# device -> (expected fields, flags that must be there, flags that must not)
EXPECTED: dict[str, tuple[dict[str, Any], set[str], set[str]]] = {
    "snapdragon-android": (
        {
            "os": "android",
            "os_version": "14 (API 34)",
            "arch": "arm64",
            "cpu_vendor": "arm",
            "cpu_model": "Cortex-A510 + Cortex-A715 + Cortex-A710 + Cortex-X3",
            "physical_cores": 8,
            "performance_cores": 5,  # X3 + 4 mid cores; the A510s run below 80 % of the X3
            "efficiency_cores": 3,
            "soc": "Qualcomm Snapdragon SM8550",
        },
        {"asimd", "asimddp", "i8mm", "bf16", "fp16"},
        {"sve", "sme", "avx2"},
    ),
    "raspberry-pi-5": (
        {
            "os": "linux",
            "arch": "arm64",
            "cpu_vendor": "arm",
            "cpu_model": "Cortex-A76",
            "physical_cores": 4,
            "performance_cores": 4,
            "efficiency_cores": 0,
            "soc": "Raspberry Pi 5 Model B Rev 1.0",
            "battery": None,
        },
        {"asimd", "asimddp", "fp16"},
        {"i8mm", "bf16", "sve"},
    ),
    "apple-m2-pro": (
        {
            "os": "darwin",
            "os_version": "14.5",
            "arch": "arm64",
            "cpu_vendor": "apple",
            "cpu_model": "Apple M2 Pro",
            "physical_cores": 12,
            "performance_cores": 8,
            "efficiency_cores": 4,
            "soc": "Apple M2 Pro",
        },
        {"asimd", "asimddp", "i8mm", "bf16", "fp16"},
        {"sme", "sve"},
    ),
    "intel-hybrid-laptop": (
        {
            "os": "linux",
            "os_version": "Ubuntu 22.04.4 LTS (kernel 6.5.0-35-generic)",
            "arch": "x86_64",
            "cpu_vendor": "intel",
            "cpu_model": "12th Gen Intel(R) Core(TM) i7-1260P",
            "physical_cores": 12,
            "logical_cores": 16,
            "performance_cores": 4,  # cpu_core lists 8 logical CPUs = 4 cores with HT
            "efficiency_cores": 8,
        },
        {"avx2", "fma", "f16c", "avx_vnni"},
        {"avx512f", "avx512_vnni", "amx_int8"},
    ),
    "windows-desktop": (
        {
            "os": "windows",
            "arch": "x86_64",
            "cpu_vendor": "intel",
            "cpu_model": "12th Gen Intel(R) Core(TM) i7-12700",
            "physical_cores": 12,
            "logical_cores": 20,
            "performance_cores": None,
            "soc": None,
        },
        {"avx2"},
        {"avx512f"},
    ),
    "jetson-orin-nano": (
        {
            "os": "linux",
            "arch": "arm64",
            "cpu_model": "Cortex-A78AE",
            "soc": "NVIDIA Jetson Orin Nano Developer Kit",
            "performance_cores": 6,
        },
        {"asimd", "asimddp", "fp16"},
        {"i8mm"},
    ),
    "linux-intel-npu": (
        {
            "os": "linux",
            "arch": "x86_64",
            "cpu_vendor": "intel",
            "cpu_model": "Intel(R) Core(TM) Ultra 7 155H",
            "performance_cores": 6,
            "efficiency_cores": 10,
        },
        {"avx2", "avx_vnni"},
        {"avx512f"},
    ),
}

ACCELERATORS = {
    "snapdragon-android": {("npu", "qualcomm", "/dev/fastrpc-cdsp"),
                           ("gpu", "qualcomm", "/dev/kgsl-3d0")},
    "raspberry-pi-5": {("gpu", "broadcom", "/sys/class/drm/renderD128")},
    "apple-m2-pro": {("gpu", "apple", "sysctl machdep.cpu.brand_string"),
                     ("npu", "apple", "sysctl machdep.cpu.brand_string")},
    "intel-hybrid-laptop": {("gpu", "intel", "/sys/class/drm/renderD128")},
    "windows-desktop": {("gpu", "nvidia", "onnxruntime")},
    "jetson-orin-nano": {("gpu", "nvidia", "/etc/nv_tegra_release")},
    "linux-intel-npu": {("npu", "intel", "/sys/class/accel/accel0"),
                        ("gpu", "intel", "/sys/class/drm/renderD128")},
}  # fmt: skip


def test_every_captured_device_has_expectations() -> None:
    assert sorted(p.name for p in DEVICES.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_captured_device(name: str) -> None:
    info = probe_dir(DEVICES / name)
    fields, present, missing = EXPECTED[name]
    for key, value in fields.items():
        assert getattr(info, key) == value, key
    assert present <= info.cpu_flags
    assert not (missing & info.cpu_flags)
    assert {(a.kind, a.vendor, a.source) for a in info.accelerators} == ACCELERATORS[name]
    assert DeviceInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_android_reads_getprop_and_qnn_npu_device() -> None:
    info = probe_dir(DEVICES / "snapdragon-android")
    assert info.battery is not None and info.battery.percent == 81.0
    assert info.battery.plugged is False
    assert info.ep_device_types("QNNExecutionProvider") == {"npu"}
    assert not any("simulation" in n for n in info.notes)  # arm64: the real HTP
    assert info.absent == {}


def test_intel_npu_box_lists_npu_and_openvino_devices() -> None:
    info = probe_dir(DEVICES / "linux-intel-npu")
    [npu] = [a for a in info.accelerators if a.kind == "npu"]
    assert npu.name == "intel_vpu 0x8086:0x7d1d"
    assert info.ep_device_types("OpenVINOExecutionProvider") == {"cpu", "gpu", "npu"}
    assert not any("OpenVINO" in n for n in info.notes)


def test_windows_without_proc_records_what_it_cannot_read() -> None:
    info = probe_dir(DEVICES / "windows-desktop")
    assert info.os_version == "11 (10.0.22631)"
    assert "partial on Windows" in info.absent["cpu_flags"]
    assert "performance_cores" in info.absent
    assert "DmlExecutionProvider" in info.available_eps


def test_jetson_names_its_l4t_release() -> None:
    info = probe_dir(DEVICES / "jetson-orin-nano")
    [gpu] = info.accelerators
    assert gpu.name == "Jetson iGPU (L4T R35.4.1)"
    assert "TensorrtExecutionProvider" in info.ort_build_providers


# ---- broken and missing signals become `absent` entries ------------------------------


def test_missing_cpuinfo(tmp_path: Path) -> None:
    dev = copy_device("raspberry-pi-5", tmp_path)
    (dev / "root/proc/cpuinfo").unlink()
    info = probe_dir(dev)
    assert info.absent["cpu_flags"] == "/proc/cpuinfo unreadable"
    assert info.cpu_flags == frozenset() and info.cpu_model == ""
    assert info.arch == "arm64" and info.physical_cores == 4  # the rest still works


def test_garbage_cpuinfo(tmp_path: Path) -> None:
    dev = copy_device("intel-hybrid-laptop", tmp_path)
    (dev / "root/proc/cpuinfo").write_bytes(b"\x00\xff garbage without colons\n\n")
    info = probe_dir(dev)
    assert info.absent["cpu_flags"] == "/proc/cpuinfo has no processor entries"
    assert info.performance_cores == 4  # read from /sys, not cpuinfo


def test_broken_cpufreq_falls_back_then_is_absent(tmp_path: Path) -> None:
    dev = copy_device("raspberry-pi-5", tmp_path)
    (dev / "root/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq").write_text("n/a\n")
    info = probe_dir(dev)
    assert info.performance_cores is None and info.efficiency_cores is None
    assert "cpufreq/cpuinfo_max_freq" in info.absent["performance_cores"]
    assert info.threads_default == 4  # physical cores instead


def test_small_frequency_differences_are_all_performance_cores(tmp_path: Path) -> None:
    dev = copy_device("raspberry-pi-5", tmp_path)  # like AMD "preferred cores": -4 %
    for cpu, freq in enumerate([2400000, 2400000, 2300000, 2300000]):
        path = dev / f"root/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq"
        path.write_text(f"{freq}\n")
    assert (probe_dir(dev).performance_cores, probe_dir(dev).efficiency_cores) == (4, 0)


def test_cpu_capacity_is_the_fallback(tmp_path: Path) -> None:
    dev = copy_device("raspberry-pi-5", tmp_path)
    shutil.rmtree(dev / "root/sys/devices/system/cpu")
    for cpu, cap in enumerate([1024, 1024, 446, 446]):
        path = dev / f"root/sys/devices/system/cpu/cpu{cpu}/cpu_capacity"
        path.parent.mkdir(parents=True)
        path.write_text(f"{cap}\n")
    info = probe_dir(dev)
    assert (info.performance_cores, info.efficiency_cores) == (2, 2)


def test_soc_falls_back_to_getprop(tmp_path: Path) -> None:
    dev = copy_device("snapdragon-android", tmp_path)
    shutil.rmtree(dev / "root/sys/devices/soc0")
    assert probe_dir(dev).soc == "Qualcomm SM8550"


def test_soc_falls_back_to_the_board_platform(tmp_path: Path) -> None:
    dev = copy_device("snapdragon-android", tmp_path)
    shutil.rmtree(dev / "root/sys/devices/soc0")
    data = json.loads((dev / "sources.json").read_text())
    lines = data["commands"]["getprop"].splitlines()
    data["commands"]["getprop"] = "\n".join(x for x in lines if "ro.soc." not in x)
    (dev / "sources.json").write_text(json.dumps(data))
    assert probe_dir(dev).soc == "kalama"


def test_android_without_getprop(tmp_path: Path) -> None:
    dev = copy_device("snapdragon-android", tmp_path)
    data = json.loads((dev / "sources.json").read_text())
    data["commands"] = {}
    (dev / "sources.json").write_text(json.dumps(data))
    info = probe_dir(dev)
    assert info.os == "android"
    assert info.os_version.startswith("kernel 5.15")
    assert info.absent["android.getprop"] == "getprop gave no output"
    assert info.soc == "Qualcomm Snapdragon SM8550"  # soc0 still answers


def test_empty_sysctl_on_macos() -> None:
    src = CapturedSources.from_dir(DEVICES / "apple-m2-pro")
    info = probe(sources=replace(src, commands={}))
    assert info.absent["cpu_flags"] == "sysctl gave no output"
    assert "performance_cores" in info.absent and "os_version" in info.absent
    assert info.os == "darwin" and info.physical_cores == 12


def test_rosetta_is_noted() -> None:
    src = CapturedSources.from_dir(DEVICES / "apple-m2-pro")
    platform = replace(src.platform, machine="x86_64")
    commands = {**src.commands, "sysctl -n sysctl.proc_translated": "1\n"}
    info = probe(sources=replace(src, platform=platform, commands=commands))
    assert info.arch == "x86_64"
    assert any("Rosetta 2" in n for n in info.notes)


def test_onnxruntime_missing_is_absent() -> None:
    src = CapturedSources.from_dir(DEVICES / "raspberry-pi-5")
    info = probe(sources=replace(src, ort=None))
    assert info.ort_version is None and info.ort_build_providers == ()
    assert "not installed" in info.absent["onnxruntime"]


def test_no_memory_or_counts_are_absent() -> None:
    src = CapturedSources.from_dir(DEVICES / "jetson-orin-nano")
    info = probe(sources=replace(src, mem=None, counts=(None, None)))
    assert info.memory_total is None and "memory" in info.absent
    assert {"physical_cores", "logical_cores"} <= set(info.absent)


# ---- plugin notes from captured ORT states -------------------------------------------


def _with_simulated_qnn(src: CapturedSources) -> CapturedSources:
    """The captured ORT state plus a QNN plugin whose only device is the CPU simulator."""
    ort = json.loads(json.dumps(src.ort))
    ort["plugin_eps"].append(
        {"ep_name": "QNNExecutionProvider", "package": "onnxruntime-qnn",
         "module": "onnxruntime_qnn", "library_path": "/x/libqnn.so", "version": "2.7.0",
         "registered": True, "error": None}
    )  # fmt: skip
    ort["ep_devices"] = [
        {"ep_name": "QNNExecutionProvider", "ep_vendor": "Qualcomm", "device_type": "cpu",
         "device_vendor": "AMD", "vendor_id": 0x1022, "metadata": {}}
    ]  # fmt: skip
    return replace(src, ort=ort)


def test_notes_for_simulated_qnn_and_openvino_without_device(tmp_path: Path) -> None:
    dev = copy_device("intel-hybrid-laptop", tmp_path)
    cpuinfo = dev / "root/proc/cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace("GenuineIntel", "AuthenticAMD"))
    shutil.rmtree(dev / "root/sys/class/drm")  # no Intel GPU either
    info = probe(sources=_with_simulated_qnn(CapturedSources.from_dir(dev)))
    assert info.cpu_vendor == "amd"
    [qnn_note] = [n for n in info.notes if n.startswith("QNNExecutionProvider")]
    assert "runs its HTP backend in simulation" in qnn_note
    [ov_note] = [n for n in info.notes if n.startswith("OpenVINOExecutionProvider")]
    assert "reports no OrtEpDevice" in ov_note
    assert "lists Intel hardware only; CPU vendor is amd and no Intel GPU/NPU was found" in ov_note


def test_note_for_a_plugin_that_failed_to_register() -> None:
    src = CapturedSources.from_dir(DEVICES / "raspberry-pi-5")
    ort = {**dict(src.ort or {}), "plugin_eps": [
        {"ep_name": "QNNExecutionProvider", "package": "onnxruntime-qnn",
         "module": "onnxruntime_qnn", "library_path": None, "version": "2.7.0",
         "registered": False, "error": "import onnxruntime_qnn failed"}]}  # fmt: skip
    info = probe(sources=replace(src, ort=ort))
    assert any("not registered: import onnxruntime_qnn failed" in n for n in info.notes)
