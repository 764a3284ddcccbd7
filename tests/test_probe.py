"""probe() on this machine, cross-checked against independent readings of the same OS."""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from edgeort.hardware import ARM_FLAGS, X86_FLAGS, probe
from edgeort.hardware.device import DeviceInfo

HAVE_QNN = importlib.util.find_spec("onnxruntime_qnn") is not None
HAVE_OV = importlib.util.find_spec("onnxruntime_ep_openvino") is not None
ON_LINUX = sys.platform.startswith("linux") and Path("/proc/cpuinfo").is_file()


@pytest.fixture(scope="module")
def here() -> DeviceInfo:
    return probe()


def _cpuinfo_flags() -> set[str]:
    """The flags / Features of every processor in /proc/cpuinfo, read independently."""
    flags: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


@pytest.mark.skipif(not ON_LINUX, reason="needs Linux /proc/cpuinfo")
def test_every_normalised_flag_matches_proc_cpuinfo(here: DeviceInfo) -> None:
    raw = _cpuinfo_flags()
    tracked = X86_FLAGS if here.arch == "x86_64" else ARM_FLAGS
    for flag in tracked:
        expected = bool({"fphp", "asimdhp"} & raw) if flag == "fp16" else flag in raw
        assert (flag in here.cpu_flags) is expected, flag
    assert raw <= here.cpu_flags  # the raw set is kept too


def test_identity_matches_platform_and_psutil(here: DeviceInfo) -> None:
    machine = platform.machine().lower()
    expected_arch = {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine)
    assert here.arch == expected_arch
    assert here.os == {"linux": "linux", "darwin": "darwin", "win32": "windows"}[sys.platform]
    assert here.physical_cores == psutil.cpu_count(logical=False)
    assert here.logical_cores == psutil.cpu_count(logical=True)
    assert here.memory_total == psutil.virtual_memory().total
    assert here.memory_available is not None and 0 < here.memory_available <= here.memory_total
    if here.performance_cores is not None:
        assert here.performance_cores + (here.efficiency_cores or 0) <= (here.logical_cores or 0)
    import onnxruntime as ort

    assert here.ort_version == ort.__version__
    assert "CPUExecutionProvider" in here.ort_build_providers


@pytest.mark.skipif(not ON_LINUX, reason="needs Linux /proc/cpuinfo")
def test_cpu_vendor_and_model_match_proc_cpuinfo(here: DeviceInfo) -> None:
    text = Path("/proc/cpuinfo").read_text()
    if "vendor_id" in text:
        vendor_id = text.split("vendor_id")[1].split(":")[1].splitlines()[0].strip()
        expected = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(vendor_id)
        if expected:
            assert here.cpu_vendor == expected
        model = text.split("model name")[1].split(":", 1)[1].splitlines()[0].strip()
        assert here.cpu_model == model


def test_json_round_trip_and_keys(here: DeviceInfo) -> None:
    data = json.loads(json.dumps(here.to_json()))
    assert DeviceInfo.from_json(data) == here
    assert data["schema"] == 1
    for signal, why in data["absent"].items():
        assert isinstance(signal, str) and why


@pytest.mark.skipif(not HAVE_QNN, reason="onnxruntime-qnn is not installed")
def test_qnn_plugin_found_registered_with_a_device(here: DeviceInfo) -> None:
    [qnn] = [p for p in here.plugin_eps if p.ep_name == "QNNExecutionProvider"]
    assert qnn.registered and qnn.package == "onnxruntime-qnn" and qnn.error is None
    assert "QNNExecutionProvider" not in here.ort_build_providers
    types = here.ep_device_types("QNNExecutionProvider")
    assert types
    if here.arch == "x86_64":
        assert types == {"cpu"}
        assert any("QNNExecutionProvider" in n and "simulation" in n for n in here.notes)


@pytest.mark.skipif(not HAVE_OV, reason="onnxruntime-ep-openvino is not installed")
def test_openvino_plugin_found_and_no_device_is_explained(here: DeviceInfo) -> None:
    [ov] = [p for p in here.plugin_eps if p.ep_name == "OpenVINOExecutionProvider"]
    assert ov.registered and ov.package == "onnxruntime-ep-openvino"
    notes = [n for n in here.notes if n.startswith("OpenVINOExecutionProvider")]
    if here.ep_device_types("OpenVINOExecutionProvider"):
        assert not notes
    else:
        assert len(notes) == 1 and "reports no OrtEpDevice" in notes[0]
        if here.cpu_vendor != "intel":
            assert f"lists Intel hardware only; CPU vendor is {here.cpu_vendor}" in notes[0]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_probe_imports_neither_onnx_nor_click() -> None:
    out = _run(
        "import sys, edgeort.hardware, edgeort.profiles.match, edgeort.hardware.plugins\n"
        "edgeort.hardware.probe()\n"
        "print(sorted(m for m in ('onnx', 'click') if m in sys.modules))\n"
    )
    assert out.strip() == "[]"


def test_register_plugins_false_lists_but_does_not_register() -> None:
    out = _run(
        "import json\nfrom edgeort.hardware import probe\n"
        "print(json.dumps(probe(register_plugins=False).to_json()))\n"
    )
    data = json.loads(out)
    assert all(not p["registered"] for p in data["plugin_eps"])
    assert {d["ep_name"] for d in data["ep_devices"]} <= set(data["ort_build_providers"])
    if data["plugin_eps"]:
        assert any("register_plugins=False" in n for n in data["notes"])


def test_edgeort_probe_is_callable_after_submodule_import() -> None:
    out = _run(
        "import edgeort.hardware, edgeort\n"
        "print(type(edgeort.probe(register_plugins=False)).__name__)\n"
    )
    assert out.strip() == "DeviceInfo"
