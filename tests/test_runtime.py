"""edgeort.load(): picks the variant by the ranking, runs it, falls back, strict mode."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeort
from edgeort.bundle import write_bundle
from edgeort.errors import NoVariantError, ProviderError, UsageError
from edgeort.hardware.plugins import ep_devices
from tests.test_runtime_support import (
    EXAMPLE,
    QNN_OPTIONS,
    chain_model,
    digits_input,
    digits_reference,
    example_bundle,
    openvino_has_device,
    variant_spec,
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_bundle(tmp_path_factory.mktemp("digits"))


def test_example_loads_and_runs_picking_by_the_ranking(digits: Path) -> None:
    model = edgeort.load(digits)
    x = digits_input(3)
    out = model.run({"image": x})
    np.testing.assert_allclose(out["logits"], digits_reference(x), rtol=1e-5, atol=1e-5)
    if openvino_has_device():  # no recorded latencies: the priority decides (30 over 10)
        assert model.variant.name == "openvino-cpu"
        assert "measured" not in model.reasons["openvino-cpu"]
    else:
        assert model.variant.name == "cpu"
        assert model.providers == ["CPUExecutionProvider"]
        assert "reports no device" in model.reasons["openvino-cpu"]
    assert model.reasons[model.variant.name].startswith("picked: rank 1")
    assert "simulated" in model.reasons["qnn"]  # usable, but ranked below real EPs here


def test_qnn_simulated_htp_when_asked_by_profile(digits: Path) -> None:
    model = edgeort.load(digits, profile="qnn")
    assert model.variant.name == "qnn"
    assert model.providers[0] == "QNNExecutionProvider"
    assert model.placement().counts == {"QNNExecutionProvider": len(model.placement().nodes)}
    assert "simulated on x86_64" in model.reasons["qnn"]
    assert model.reasons["cpu"].startswith("not asked for")
    x = digits_input(1)
    out = model({"image": x})["logits"]
    np.testing.assert_allclose(out, digits_reference(x), rtol=1e-3, atol=1e-3)


def test_providers_order_is_honoured(digits: Path) -> None:
    model = edgeort.load(digits, providers=["QNNExecutionProvider", "CPUExecutionProvider"])
    assert model.variant.name == "qnn"
    model = edgeort.load(digits, providers=["CPUExecutionProvider", "QNNExecutionProvider"])
    assert model.variant.name == "cpu"


def test_providers_must_be_a_list_of_names(digits: Path) -> None:
    with pytest.raises(UsageError, match="providers"):
        edgeort.load(digits, providers="CPUExecutionProvider")  # type: ignore[arg-type]


def test_zip_bundle_loads(tmp_path: Path) -> None:
    model = edgeort.load(example_bundle(tmp_path, zip=True, with_qnn=False))
    x = digits_input(2)
    np.testing.assert_allclose(
        model.run({"image": x})["logits"], digits_reference(x), rtol=1e-5, atol=1e-5
    )


def test_one_log_line_per_skipped_variant(digits: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeort")
    model = edgeort.load(digits)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("edgeort.runtime")]
    if openvino_has_device():
        assert lines == []
    else:
        assert model.variant.name == "cpu"
        assert len(lines) == 1 and lines[0].startswith("variant openvino-cpu skipped")


def test_session_creation_failure_falls_back_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A QNN variant without backend_type cannot start on x86_64: the CPU variant runs."""
    model = chain_model(("Relu", "Neg"), shape=[1, 4])
    specs = [
        variant_spec(tmp_path, "qnn", "QNNExecutionProvider", model, profile="qnn-htp"),
        variant_spec(tmp_path, "cpu", "CPUExecutionProvider", model, profile="cpu-x86-64"),
    ]
    bundle = write_bundle(tmp_path / "b", specs, package_name="b")
    caplog.set_level(logging.INFO, logger="edgeort")
    loaded = edgeort.load(bundle, providers=["QNNExecutionProvider", "CPUExecutionProvider"])
    assert loaded.variant.name == "cpu"
    assert loaded.reasons["qnn"].startswith("failed:")
    assert "session creation failed" in loaded.reasons["qnn"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "variant qnn failed" in warnings[0].getMessage()


def erf_model() -> onnx.ModelProto:
    return chain_model(("Relu", "Erf"), shape=[1, 4])  # QNN takes Relu, not Erf


def erf_bundle(tmp_path: Path) -> Path:
    """A QNN variant of :func:`erf_model` (Erf falls to the CPU EP), then a CPU one."""
    model = erf_model()
    specs = [
        variant_spec(
            tmp_path,
            "qnn",
            "QNNExecutionProvider",
            model,
            profile="qnn-htp",
            provider_options=QNN_OPTIONS,
        ),
        variant_spec(tmp_path, "cpu", "CPUExecutionProvider", model, profile="cpu-x86-64"),
    ]
    return write_bundle(tmp_path / "erf", specs, package_name="erf")


def test_strict_refuses_a_graph_the_ep_cannot_take_whole(tmp_path: Path) -> None:
    bundle = erf_bundle(tmp_path)
    with pytest.raises(ProviderError, match="cannot take the whole graph") as info:
        edgeort.load(bundle, profile="qnn", strict=True)
    assert not isinstance(info.value, NoVariantError)
    assert info.value.provider == "QNNExecutionProvider"
    # Without strict, the same variant runs and the placement shows the CPU node.
    model = edgeort.load(bundle, profile="qnn")
    counts = model.placement().counts
    assert counts.get("QNNExecutionProvider", 0) >= 1 and counts.get("CPUExecutionProvider") == 1
    assert [n.op_type for n in model.placement().on("CPUExecutionProvider")] == ["Erf"]
    x = np.array([[-1.0, 0.0, 0.5, 2.0]], np.float32)
    from math import erf

    expected = np.array([[erf(max(v, 0.0)) for v in x[0]]], np.float32)
    np.testing.assert_allclose(model.run({"x": x})["y"], expected, atol=1e-3)


def test_strict_takes_no_other_variant(tmp_path: Path) -> None:
    bundle = erf_bundle(tmp_path)
    with pytest.raises(ProviderError, match="strict"):
        edgeort.load(
            bundle, providers=["QNNExecutionProvider", "CPUExecutionProvider"], strict=True
        )
    # strict on a CPU variant is fine: the CPU EP is the EP, nothing falls back.
    model = edgeort.load(bundle, providers=["CPUExecutionProvider"], strict=True)
    assert model.providers == ["CPUExecutionProvider"]


def test_no_variant_can_run_lists_every_reason(tmp_path: Path) -> None:
    model = onnx.load(EXAMPLE)
    # An OpenVINO NPU variant: no device at all on an AMD CPU, only a CPU one on an Intel CPU.
    ov = variant_spec(
        tmp_path, "ov", "OpenVINOExecutionProvider", model, profile="openvino-npu", device="npu"
    )
    specs = [
        ov,
        variant_spec(
            tmp_path, "future", "CPUExecutionProvider", model, profile="cpu-x86-64", min_ort="99.0"
        ),
    ]
    bundle = write_bundle(tmp_path / "none", specs, package_name="none")
    ov_types = {d.device.type.name.lower() for d in ep_devices("OpenVINOExecutionProvider")}
    if "npu" in ov_types:
        pytest.skip("this machine has an Intel NPU: the OpenVINO NPU variant can run")
    with pytest.raises(NoVariantError) as info:
        edgeort.load(bundle)
    reasons = info.value.reasons
    assert set(reasons) == {"ov", "future"}
    if ov_types:
        only = "/".join(sorted(ov_types))
        assert f"has only {only} devices here; the variant needs npu" in reasons["ov"]
    else:
        assert "reports no device" in reasons["ov"]
    assert "needs onnxruntime >= 99.0" in reasons["future"]
    assert "ov:" in str(info.value) and "future:" in str(info.value)


def test_version_guard_skips_a_variant_ort_cannot_load(tmp_path: Path) -> None:
    model = chain_model(("Relu",))
    specs = [
        variant_spec(
            tmp_path,
            "new",
            "CPUExecutionProvider",
            model,
            profile="cpu-x86-64-vnni",
            ir_version=15,
            opsets={"": 29},
        ),
        variant_spec(tmp_path, "ok", "CPUExecutionProvider", model, profile="cpu-x86-64"),
    ]
    bundle = write_bundle(tmp_path / "vg", specs, package_name="vg")
    loaded = edgeort.load(bundle)
    assert loaded.variant.name == "ok"
    assert "needs an onnxruntime newer than" in loaded.reasons["new"]


def test_unknown_profile_asked_is_a_usage_error(digits: Path) -> None:
    # A name no variant has is the caller's mistake (with a did-you-mean), not "nothing runs".
    with pytest.raises(UsageError, match="no variant of this bundle has that name") as info:
        edgeort.load(digits, profile="no-such-profile")
    assert not isinstance(info.value, NoVariantError) and info.value.option == "--profile"


def test_threads_argument_is_validated(digits: Path) -> None:
    with pytest.raises(UsageError, match="threads"):
        edgeort.load(digits, profile="cpu", threads=-1)
    model = edgeort.load(digits, profile="cpu", threads=1)
    assert model.session.get_session_options().intra_op_num_threads == 1
