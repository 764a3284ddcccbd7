"""Plugin EP discovery and registration against the real onnxruntime, plus FakeProviders."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path

import onnxruntime as ort
import pytest

from edgeort.hardware import plugins as providers
from edgeort.hardware.device import DeviceInfo, hardware_type
from edgeort.hardware.plugins import (
    KNOWN_PLUGINS,
    discover_plugins,
    ensure_registered,
    ep_devices,
    list_ep_devices,
    plugin_install_hint,
    register_all,
    registration_error,
    to_ep_device,
)
from edgeort.testing import FakeProviders

HAVE_QNN = importlib.util.find_spec("onnxruntime_qnn") is not None
HAVE_OV = importlib.util.find_spec("onnxruntime_ep_openvino") is not None


def test_known_plugins_name_package_and_module() -> None:
    qnn = KNOWN_PLUGINS["QNNExecutionProvider"]
    assert (qnn.package, qnn.module, qnn.extra) == ("onnxruntime-qnn", "onnxruntime_qnn", "qnn")
    ov = KNOWN_PLUGINS["OpenVINOExecutionProvider"]
    assert (ov.package, ov.module) == ("onnxruntime-ep-openvino", "onnxruntime_ep_openvino")


def test_install_hints() -> None:
    assert plugin_install_hint("QNNExecutionProvider") == (
        "pip install onnxruntime-qnn (or: pip install edgeort[qnn])"
    )
    assert "pip install onnxruntime-ep-openvino" in plugin_install_hint("OpenVINOExecutionProvider")
    assert plugin_install_hint("FooExecutionProvider", "onnxruntime-ep-foo") == (
        "pip install onnxruntime-ep-foo"
    )
    assert "onnxruntime-ep-<name>" in plugin_install_hint("FooExecutionProvider")


def test_missing_plugin_is_false_with_reason_never_raises() -> None:
    assert ensure_registered("NoSuchExecutionProvider") is False
    assert ensure_registered("NoSuchExecutionProvider") is False
    why = registration_error("NoSuchExecutionProvider")
    assert why is not None and "is not installed" in why
    assert ep_devices("NoSuchExecutionProvider") == []


def test_list_ep_devices_has_the_cpu_ep() -> None:
    devices = list_ep_devices()
    cpu = [d for d in devices if d.ep_name == "CPUExecutionProvider"]
    assert cpu and cpu[0].device_type == "cpu"
    assert len(devices) == len(ort.get_ep_devices())


@pytest.mark.skipif(not HAVE_QNN, reason="onnxruntime-qnn is not installed")
def test_qnn_plugin_registers_idempotently_from_many_threads() -> None:
    found = [p for p in discover_plugins() if p.ep_name == "QNNExecutionProvider"]
    assert found and found[0].package == "onnxruntime-qnn" and found[0].module == "onnxruntime_qnn"
    assert found[0].library_path and Path(found[0].library_path).is_file()
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_registered("QNNExecutionProvider")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8
    assert ensure_registered("QNNExecutionProvider") is True
    devs = ep_devices("QNNExecutionProvider")
    assert len(devs) == 1  # registered once: one device, not eight
    assert all(d.ep_name == "QNNExecutionProvider" for d in devs)
    [qnn] = [p for p in register_all() if p.ep_name == "QNNExecutionProvider"]
    assert qnn.registered and qnn.error is None


@pytest.mark.skipif(not HAVE_OV, reason="onnxruntime-ep-openvino is not installed")
def test_openvino_plugin_is_discovered_and_registers() -> None:
    assert ensure_registered("OpenVINOExecutionProvider") is True
    [ov] = [p for p in discover_plugins() if p.ep_name == "OpenVINOExecutionProvider"]
    assert ov.registered and ov.package == "onnxruntime-ep-openvino" and ov.version
    # It lists Intel hardware only: the host's CPU on an Intel host, no CPU on an AMD one
    # (what README, probe and the loader's fallback reason say).
    from edgeort.hardware import probe

    devs = [to_ep_device(d) for d in ep_devices("OpenVINOExecutionProvider")]
    assert all(d.ep_name == "OpenVINOExecutionProvider" for d in devs), devs
    assert all(d.vendor_id == 0x8086 for d in devs), devs  # PCI vendor id of Intel
    cpus = [d for d in devs if d.device_type == "cpu"]
    vendor = probe(register_plugins=False).cpu_vendor
    assert len(cpus) == (1 if vendor == "intel" else 0), (vendor, devs)


def _write_fake_plugin(root: Path, name: str, body: str) -> None:
    module = f"onnxruntime_ep_{name}"
    info = root / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: onnxruntime-ep-{name}\nVersion: 0.1\n"
    )
    info.joinpath("top_level.txt").write_text(f"{module}\n")
    (root / module).mkdir()
    (root / module / "__init__.py").write_text(body)


@pytest.fixture
def fresh_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    providers._forget_discovery()
    yield tmp_path
    monkeypatch.undo()
    providers._forget_discovery()


def test_convention_plugin_is_discovered_and_failure_is_cached(
    fresh_discovery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fresh_discovery
    bogus = root / "libnot_a_plugin.so"
    bogus.write_bytes(b"this is not a shared library")
    _write_fake_plugin(
        root,
        "fakeplug",
        f"def get_library_path():\n    return {str(bogus)!r}\n"
        "def get_ep_names():\n    return ['FakePlugExecutionProvider']\n",
    )
    [fake] = [p for p in discover_plugins() if p.package == "onnxruntime-ep-fakeplug"]
    assert (fake.ep_name, fake.module, fake.version) == (
        "FakePlugExecutionProvider",
        "onnxruntime_ep_fakeplug",
        "0.1",
    )
    assert fake.library_path == str(bogus) and not fake.registered
    calls: list[str] = []
    real = ort.register_execution_provider_library

    def spy(name: str, path: str) -> None:
        calls.append(name)
        real(name, path)

    monkeypatch.setattr(ort, "register_execution_provider_library", spy)
    assert ensure_registered("FakePlugExecutionProvider") is False
    assert ensure_registered("FakePlugExecutionProvider") is False
    assert calls == ["FakePlugExecutionProvider"]  # the failure is remembered
    why = registration_error("FakePlugExecutionProvider")
    assert why is not None and "registering" in why and str(bogus) in why
    [fake] = [p for p in discover_plugins() if p.package == "onnxruntime-ep-fakeplug"]
    assert fake.error == why


def test_broken_plugin_module_is_recorded_not_raised(fresh_discovery: Path) -> None:
    _write_fake_plugin(fresh_discovery, "broken", "raise RuntimeError('boom at import')\n")
    [broken] = [p for p in discover_plugins() if p.package == "onnxruntime-ep-broken"]
    assert broken.library_path is None and not broken.registered
    assert broken.error is not None and "boom at import" in broken.error


def _device() -> DeviceInfo:
    return DeviceInfo.from_json(
        {
            "os": "linux",
            "arch": "x86_64",
            "ort_version": "1.32.0",
            "ort_build_providers": ["CPUExecutionProvider"],
        }
    )


def test_fake_providers_simulate_availability() -> None:
    base = _device()
    assert "CoreMLExecutionProvider" not in base.available_eps
    faked = FakeProviders.of("CoreMLExecutionProvider", "DmlExecutionProvider", device_type="gpu")
    dev = faked.apply(base)
    assert {"CoreMLExecutionProvider", "DmlExecutionProvider"} <= dev.available_eps
    assert dev.ep_device_types("DmlExecutionProvider") == {"gpu"}
    assert dev.ort_build_providers[0] == "CPUExecutionProvider"
    assert any("FakeProviders" in n for n in dev.notes)
    assert "CoreMLExecutionProvider" not in base.available_eps  # the original is untouched
    only_build = FakeProviders(build=("NnapiExecutionProvider",)).apply(base)
    assert "NnapiExecutionProvider" in only_build.available_eps
    assert only_build.ep_device_types("NnapiExecutionProvider") == frozenset()


def test_hardware_type_reads_ort_device_types() -> None:
    kinds = {
        ort.OrtHardwareDeviceType.CPU: "cpu",
        ort.OrtHardwareDeviceType.GPU: "gpu",
        ort.OrtHardwareDeviceType.NPU: "npu",
    }
    for member, kind in kinds.items():
        assert hardware_type(type("Hw", (), {"type": member})()) == kind
    cpu = [d for d in ort.get_ep_devices() if d.ep_name == "CPUExecutionProvider"]
    assert [hardware_type(d.device) for d in cpu] == ["cpu"] * len(cpu)


def test_simulator_options_apply_where_the_ep_is_simulated_and_never_ship(
    tmp_path: Path,
) -> None:
    """qnn-htp's ``simulator_options`` (the SoC the x86-64 HTP simulator emulates) join
    the provider options only where the profile says the EP is simulated, and the
    packaged variant records the profile's provider options without them."""
    from dataclasses import replace

    from edgeort.hardware._platform import this_arch
    from edgeort.hardware.ep import simulator_options
    from edgeort.profiles import load_profiles

    (qnn,) = [p for p in load_profiles() if p.name == "qnn-htp"]
    assert dict(qnn.runtime.simulator_options) == {"soc_model": "57"}
    here = this_arch() in qnn.runtime.simulated_on
    assert simulator_options(qnn.runtime.ep, qnn) == ({"soc_model": "57"} if here else {})
    on_device = replace(qnn, runtime=replace(qnn.runtime, simulated_on=()))
    assert simulator_options(qnn.runtime.ep, on_device) == {}
    assert simulator_options("CPUExecutionProvider") == {}

    import numpy as np

    from edgeort.bundle import open_bundle
    from edgeort.pack import package
    from tests.models import make_mlp

    model = make_mlp(tmp_path, batch=1)
    calib = tmp_path / "c.npz"
    rng = np.random.default_rng(0)
    np.savez(calib, x=rng.standard_normal((8, 1, 16)).astype(np.float32))
    out = tmp_path / "m.ortpackage"
    package(
        model, ["qnn"], output=out, calibration=calib, here=False, measure_speed=False,
        max_drop=1.0,
    )  # fmt: skip
    (variant,) = open_bundle(out).variants
    assert "soc_model" not in variant.provider_options
    assert dict(variant.provider_options) == dict(qnn.runtime.provider_options)
