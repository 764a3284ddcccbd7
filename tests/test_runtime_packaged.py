"""End to end: examples/digits packaged by edgeort.package for cpu, openvino and qnn, then
loaded the way a device would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeort
from edgeort.bundle import open_bundle
from edgeort.hardware import probe
from edgeort.profiles import builtin_profiles
from edgeort.profiles.match import evaluate, resolve_target
from edgeort.runtime.tuning import device_fingerprint
from tests.conftest import REPO
from tests.test_runtime_support import openvino_has_device

DIGITS = REPO / "examples" / "digits"
OPENVINO = "OpenVINOExecutionProvider"
OPENVINO_VARIANT = "openvino-cpu"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pk") / "digits.ortpackage"
    result = edgeort.package(
        DIGITS / "model.onnx",
        ["cpu", "openvino", "qnn"],
        output=out,
        calibration=DIGITS / "calibration.npz",
        validation=DIGITS / "validation.npz",
    )
    return Path(result.path)


@pytest.fixture(scope="module")
def validation() -> dict[str, np.ndarray]:
    with np.load(DIGITS / "validation.npz") as data:
        return {k: data[k] for k in data.files}


def ranked_by_the_rule(bundle_path: Path) -> list[tuple[str, float]]:
    """The bundle's real (not simulated) variants that can run here, best first, by the
    documented rule (edgeort/runtime/ranking.py, docs/architecture.md): a fitting profile
    first, then measured before unmeasured (a latency the bundle recorded on this device's
    fingerprint counts only if the variant passed its accuracy gate), faster first, then
    higher priority, then bundle order. Built from the bundle's recorded facts, the
    profiles and the plugin's device list, not from the loader's ranking."""
    device = probe()
    here = device_fingerprint(device)
    profiles = {p.name: p for p in builtin_profiles()}
    keys: dict[str, tuple[bool, bool, float, int, int]] = {}
    latency: dict[str, float] = {}
    for index, variant in enumerate(open_bundle(bundle_path).variants):
        assert variant.ep in {"CPUExecutionProvider", OPENVINO, "QNNExecutionProvider"}
        profile = profiles[variant.profile]
        if device.arch in profile.runtime.simulated_on:
            continue  # QNN's HTP simulator on x86_64: ranked below every real EP
        if variant.ep == OPENVINO and not openvino_has_device():
            continue  # the plugin lists no device (an AMD CPU): skipped
        fit = evaluate(profile, device)
        recorded = variant.metadata.get("latency") or {}
        measured = (
            variant.metadata["accuracy"]["passed"] is True
            and recorded.get("device_fingerprint") == here
        )
        ms = float(recorded["ms_median"]) if measured else 0.0
        keys[variant.name] = (not fit.fits, not measured, ms, -fit.score, index)
        latency[variant.name] = ms
    order = sorted(keys, key=keys.__getitem__)
    return [(name, latency[name]) for name in order]


def test_packaged_example_picks_by_the_ranking_and_classifies(
    packaged: Path, validation: dict[str, np.ndarray]
) -> None:
    model = edgeort.load(packaged)
    cpu = resolve_target("cpu", builtin_profiles(), probe()).name  # best CPU profile here
    expected = ranked_by_the_rule(packaged)
    names = [name for name, _ in expected]
    # Packaged on this host: the CPU variant always, and the OpenVINO one where the plugin
    # lists a device (an Intel CPU), are real EPs whose latency the bundle recorded here.
    assert cpu in names
    assert (OPENVINO_VARIANT in names) == openvino_has_device()
    assert all(ms > 0 for _, ms in expected), expected
    assert model.variant.name == names[0]
    for rank, (name, ms) in enumerate(expected, start=1):
        assert f"rank {rank}: " in model.reasons[name], model.reasons
        assert f"measured {ms:.3g} ms here (bundle)" in model.reasons[name], model.reasons
    assert model.reasons[names[0]].startswith("picked: rank 1: ")
    if not openvino_has_device():
        assert "reports no device" in model.reasons[OPENVINO_VARIANT]
    qnn = model.reasons["qnn-htp"]
    assert qnn.startswith(f"rank {len(names) + 1}: ") and "ranked below real EPs" in qnn
    logits = model.run({"image": validation["image"]})["logits"]
    accuracy = float((logits.argmax(-1) == validation["__labels__"]).mean())
    assert accuracy >= 0.95


def test_packaged_qnn_runs_whole_graph_on_simulated_htp_in_strict_mode(
    packaged: Path, validation: dict[str, np.ndarray]
) -> None:
    model = edgeort.load(packaged, profile="qnn", strict=True)
    assert model.variant.ep == "QNNExecutionProvider"
    assert set(model.placement().counts) == {"QNNExecutionProvider"}
    images = validation["image"][:40]
    predictions = [
        int(model.run({"image": images[i : i + 1]})["logits"].argmax()) for i in range(40)
    ]
    reference = edgeort.load(packaged, providers=["CPUExecutionProvider"])
    expected = reference.run({"image": images})["logits"].argmax(-1)
    agreement = float((np.array(predictions) == expected).mean())
    assert agreement >= 0.95
