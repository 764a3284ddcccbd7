"""CoreML, NNAPI and DirectML cannot run on this Linux x86-64 host. Their selection and
session set-up are real; their availability is *simulated* (FakeProviders on a captured
DeviceInfo, and FakeEpSession standing in for an ORT build that has the EP). Every test
here says "simulated" in its name."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgeort
from edgeort.bundle import write_bundle
from edgeort.hardware import probe
from edgeort.hardware.device import Accelerator, DeviceInfo
from edgeort.runtime import rank_bundle
from edgeort.testing import FakeProviders
from tests.test_runtime_support import EXAMPLE, digits_input, digits_reference, variant_spec

REAL_SESSION = ort.InferenceSession
REAL_AVAILABLE = ort.get_available_providers


@dataclass(frozen=True)
class Target:
    ep: str
    profile: str
    os: str
    arch: str
    device_type: str
    options: dict[str, str]
    cpu_profile: str
    accelerators: tuple[Accelerator, ...] = ()


TARGETS = {
    "coreml": Target(
        "CoreMLExecutionProvider",
        "coreml",
        "darwin",
        "arm64",
        "npu",
        {"ModelFormat": "MLProgram", "MLComputeUnits": "ALL"},
        "cpu-arm64",
    ),
    "nnapi": Target("NnapiExecutionProvider", "nnapi", "android", "arm64", "npu", {}, "cpu-arm64"),
    "directml": Target(
        "DmlExecutionProvider",
        "directml",
        "windows",
        "x86_64",
        "gpu",
        {"device_id": "0"},
        "cpu-x86-64",
        (Accelerator("gpu", "nvidia", "FakeProviders GPU", "fake"),),
    ),
}


def fake_device(t: Target) -> DeviceInfo:
    """This host's probe, re-labelled as the target OS/arch, with the EP faked in."""
    base = replace(
        probe(register_plugins=False),
        os=t.os,
        arch=t.arch,
        cpu_flags=frozenset({"neon", "asimd"} if t.arch == "arm64" else {"avx2"}),
        accelerators=t.accelerators,
    )
    return FakeProviders.of(t.ep, device_type=t.device_type).apply(base)


def target_bundle(tmp: Path, t: Target) -> Path:
    model = onnx.load(EXAMPLE)
    specs = [
        variant_spec(tmp, "cpu", "CPUExecutionProvider", model, profile=t.cpu_profile),
        variant_spec(
            tmp,
            "accel",
            t.ep,
            model,
            profile=t.profile,
            device=t.device_type if t.device_type == "gpu" else "",
            provider_options=t.options,
        ),
    ]
    return write_bundle(tmp / f"{t.profile}.ortpackage", specs, package_name=t.profile)


class FakeEpSession:
    """Simulated ORT build with ``providers[0]`` built in (tests only): records what
    edgeort asked for, and runs the model on the real CPU EP."""

    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None, **kw: Any):
        entry = {"providers": providers, "options": sess_options, "kwargs": kw}
        FakeEpSession.created.append(entry)
        self._ep = providers[0][0]
        self._real = REAL_SESSION(path, providers=["CPUExecutionProvider"])

    def get_providers(self) -> list[str]:
        return [self._ep, "CPUExecutionProvider"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def fake_ort_build(monkeypatch: pytest.MonkeyPatch) -> type[FakeEpSession]:
    eps = [t.ep for t in TARGETS.values()]
    monkeypatch.setattr(ort, "get_available_providers", lambda: [*eps, *REAL_AVAILABLE()])
    monkeypatch.setattr(ort, "InferenceSession", FakeEpSession)
    FakeEpSession.created = []
    return FakeEpSession


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_simulated_availability_ranks_the_accelerator_first(tmp_path: Path, name: str) -> None:
    t = TARGETS[name]
    ranking = rank_bundle(edgeort.open_bundle(target_bundle(tmp_path, t)), device=fake_device(t))
    assert [c.name for c in ranking.usable] == ["accel", "cpu"]
    assert t.ep in ranking.usable[0].reason


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_simulated_without_fake_device_the_accelerator_is_skipped(
    tmp_path: Path, name: str
) -> None:
    t = TARGETS[name]
    model = edgeort.load(target_bundle(tmp_path, t))
    assert model.variant.name == "cpu"
    assert "not in this onnxruntime build" in model.reasons["accel"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_simulated_device_but_real_ort_falls_back_to_cpu(tmp_path: Path, name: str) -> None:
    """The device claims the EP; this onnxruntime has none: session creation is refused
    by edgeort (never silently by ORT) and the CPU variant runs."""
    t = TARGETS[name]
    model = edgeort.load(target_bundle(tmp_path, t), device=fake_device(t))
    assert model.variant.name == "cpu"
    assert model.reasons["accel"].startswith("failed:")
    assert "not in this onnxruntime build" in model.reasons["accel"]
    x = digits_input(2)
    np.testing.assert_allclose(model.run({"image": x})["logits"], digits_reference(x), atol=1e-5)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_simulated_runtime_path_passes_ep_options_then_cpu(
    tmp_path: Path, name: str, fake_ort_build: type[FakeEpSession]
) -> None:
    t = TARGETS[name]
    model = edgeort.load(target_bundle(tmp_path, t), device=fake_device(t))
    assert model.variant.name == "accel"
    assert model.providers[0] == t.ep
    (created,) = fake_ort_build.created
    assert created["providers"] == [(t.ep, t.options), "CPUExecutionProvider"]
    assert created["kwargs"] == {"enable_fallback": 0}
    so = created["options"]
    assert so.get_session_config_entry("session.record_ep_graph_assignment_info") == "1"
    assert not so.has_providers()
    x = digits_input(1)
    np.testing.assert_allclose(model.run({"image": x})["logits"], digits_reference(x), atol=1e-5)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_simulated_strict_drops_cpu_ep_and_forbids_cpu_fallback(
    tmp_path: Path, name: str, fake_ort_build: type[FakeEpSession]
) -> None:
    t = TARGETS[name]
    model = edgeort.load(target_bundle(tmp_path, t), device=fake_device(t), strict=True)
    assert model.variant.name == "accel"
    (created,) = fake_ort_build.created
    assert created["providers"] == [(t.ep, t.options)]
    assert created["options"].get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
