"""End to end on the example: the trained digits CNN packaged for six targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeort.bundle import open_bundle
from edgeort.hardware import plugins as providers
from edgeort.pack import PackageResult, package
from tests.conftest import REPO

DIGITS = REPO / "examples" / "digits"
TARGETS = ("cpu", "openvino", "qnn", "coreml", "nnapi", "directml")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[PackageResult, Path]:
    out = tmp_path_factory.mktemp("digits") / "digits.ortpackage"
    result = package(
        DIGITS / "model.onnx", TARGETS, output=out, calibration=DIGITS / "calibration.npz",
        validation=DIGITS / "validation.npz", measure_speed=False,
    )  # fmt: skip
    return result, out


def _by_ep(result: PackageResult) -> dict[str, dict]:
    return {v.ep: {"v": v, **v.accuracy} for v in result.variants}


def _has_device(ep: str) -> bool:
    return bool(providers.ensure_registered(ep) and providers.ep_devices(ep))


@pytest.mark.slow
def test_cpu_int8_keeps_top1_within_half_a_point(packaged: tuple) -> None:
    result, _ = packaged
    cpu = _by_ep(result)["CPUExecutionProvider"]
    assert cpu["v"].precision == "int8" and cpu["data"] == "validation"
    assert cpu["samples"] == 360 and cpu["on_ep"] == "CPUExecutionProvider"
    assert cpu["top1_accuracy"] >= cpu["fp32_top1_accuracy"] - 0.005
    assert cpu["fp32_top1_accuracy"] > 0.95  # the trained model, not noise


@pytest.mark.slow
def test_qnn_variant_ran_on_the_qnn_plugin(packaged: tuple) -> None:
    result, _ = packaged
    qnn = _by_ep(result)["QNNExecutionProvider"]
    assert qnn["v"].precision == "w8a16"
    if _has_device("QNNExecutionProvider"):
        assert qnn["on_ep"] == "QNNExecutionProvider"
    else:  # no plugin here: says so
        assert qnn["on_ep"] == "CPUExecutionProvider" and "QNN" in qnn["on_ep_reason"]
    assert qnn["passed"] and qnn["top1_accuracy"] >= qnn["fp32_top1_accuracy"] - 0.005
    speed = [g for g in qnn["v"].gates if g["gate"] == "speed"]
    if qnn["on_ep"] == "QNNExecutionProvider" and qnn["v"].latency is None:
        assert "simulation" in speed[-1]["reason"]  # the x86 HTP simulator's speed means nothing


@pytest.mark.slow
def test_openvino_verifies_on_its_device_or_says_why_not(packaged: tuple) -> None:
    result, _ = packaged
    ov = _by_ep(result)["OpenVINOExecutionProvider"]
    if _has_device("OpenVINOExecutionProvider"):
        assert ov["on_ep"] == "OpenVINOExecutionProvider"
    else:
        assert ov["on_ep"] == "CPUExecutionProvider"
        assert "reports no device" in ov["on_ep_reason"] or "not installed" in ov["on_ep_reason"]
    assert ov["passed"]


@pytest.mark.slow
def test_mobile_and_gpu_variants_are_prepared_not_run(packaged: tuple) -> None:
    result, out = packaged
    by_ep = _by_ep(result)
    for ep, precision, model_file in (
        ("CoreMLExecutionProvider", "fp16", "model.ort"),
        ("NnapiExecutionProvider", "int8", "model.ort"),
        ("DmlExecutionProvider", "fp16", "model.onnx"),
    ):
        acc = by_ep[ep]
        assert (acc["v"].precision, acc["v"].model_file) == (precision, model_file)
        assert acc["on_ep"] == "CPUExecutionProvider" and ep in acc["on_ep_reason"]
        assert acc["passed"]
    bundle = open_bundle(out)  # verifies sizes and digests of every file
    nnapi = next(v for v in bundle.variants if v.ep == "NnapiExecutionProvider")
    assert {f.path for f in nnapi.files} == {
        "model.ort", "required_operators.with_runtime_opt.config"
    }  # fmt: skip
    assert nnapi.inputs[0].shape == (1, 1, 8, 8)  # fixed shapes for NNAPI
    assert nnapi.session_options["session.load_model_format"] == "ORT"


@pytest.mark.slow
def test_every_variant_file_runs_and_matches_its_recorded_accuracy(packaged: tuple) -> None:
    _, out = packaged
    data = np.load(DIGITS / "validation.npz")
    x, labels = data["image"], data["__labels__"]
    for variant in open_bundle(out).variants:
        path = out / "model" / variant.directory / variant.model_file
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = np.concatenate(
            [session.run(None, {"image": x[i : i + 1]})[0] for i in range(len(x))]
        )
        accuracy = float(np.mean(logits.argmax(1) == labels))
        recorded = variant.metadata["accuracy"]
        if recorded["on_ep"] == "CPUExecutionProvider":
            assert accuracy == pytest.approx(recorded["top1_accuracy"])
        assert accuracy > 0.95


@pytest.mark.slow
def test_speed_gate_decision_matches_the_measured_latencies(tmp_path: Path) -> None:
    result = package(
        DIGITS / "model.onnx", ["cpu"], output=tmp_path / "b",
        calibration=DIGITS / "calibration.npz", validation=DIGITS / "validation.npz",
    )  # fmt: skip
    variant = result.variants[0]
    speed = [g for g in variant.gates if g["gate"] == "speed"][-1]
    latency = variant.latency
    assert latency is not None and latency["ep"] == "CPUExecutionProvider"
    assert latency["ort_version"] == ort.__version__ and latency["ms_median"] > 0
    assert latency["device"] == "cpu" and len(latency["device_fingerprint"]) == 16
    if speed["decision"] == "replace":
        assert variant.precision == "fp32" and "slower than fp32" in speed["reason"]
    else:
        assert speed["decision"] == "keep"
        assert variant.precision == "int8"
        assert latency["ms_median"] <= latency["fp32_ms_median"]


@pytest.mark.slow
def test_with_the_ep_present_the_fastest_passing_recipe_is_kept(tmp_path: Path) -> None:
    from dataclasses import replace

    from edgeort.profiles import Recipe, builtin_profiles, get_profile

    cpu = get_profile("cpu")
    recipes = (Recipe(precision="int8", mode="static", per_channel=True), Recipe())
    two = replace(
        cpu, name="cpu-two", default=False, model=replace(cpu.model, recipes={"cnn": recipes})
    )
    result = package(
        DIGITS / "model.onnx", ["cpu-two"], output=tmp_path / "b",
        profiles=[*builtin_profiles(), two], calibration=DIGITS / "calibration.npz",
        validation=DIGITS / "validation.npz",
    )  # fmt: skip
    gates = result.variants[0].gates
    kept = [g for g in gates if g["gate"] == "recipe"]
    assert len(kept) == 1 and "fastest passing recipe" in kept[0]["reason"]
    timings = {}
    for part in kept[0]["reason"].split(": ", 1)[1].split("; "):
        label, ms = part.split(" = ")
        timings[label] = float(ms.removesuffix(" ms"))
    assert len(timings) == 2 and kept[0]["recipe"] == min(timings, key=timings.__getitem__)
