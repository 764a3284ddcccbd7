"""Stock ONNX Runtime (no edgeort code at run time) opens, selects and runs our bundles:
the bundle really is an ORT model package (docs/bundle-format.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeort.bundle import open_bundle, write_bundle
from tests.test_bundle_support import BIAS, make_model, make_spec, qnn_spec, sample_bundle

X = np.array([[1, 2, 3, 4], [-1, 0, 0.5, 8]], np.float32)


def _select(root: Path, so: ort.SessionOptions) -> ort.ModelPackageComponentContext:
    ctx = ort.ModelPackageContext(str(root))
    assert ctx.get_component_names() == ["model"]
    return ctx.select_component("model", ort.ModelPackageOptions(so))


def test_stock_ort_opens_selects_and_runs_cpu_variant(tmp_path: Path) -> None:
    root = sample_bundle(tmp_path, external="weights.bin")
    comp = _select(root, ort.SessionOptions())  # no EP configured: ORT uses CPU
    assert comp.get_selected_variant_name() == "cpu-fp32"
    assert Path(comp.get_selected_variant_folder_path()) == root / "model" / "cpu-fp32"
    sess = comp.create_session()
    assert sess.get_providers() == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(sess.run(None, {"x": X})[0], X + BIAS)


def test_stock_ort_opens_extracted_zip(tmp_path: Path) -> None:
    bundle = open_bundle(sample_bundle(tmp_path, name="b.zip", zip=True))
    comp = _select(bundle.root, ort.SessionOptions())
    np.testing.assert_array_equal(comp.create_session().run(None, {"x": X})[0], X + BIAS)


def _qnn_devices() -> list[ort.OrtEpDevice]:
    qnn = pytest.importorskip("onnxruntime_qnn", reason="onnxruntime-qnn is not installed")
    devices = [d for d in ort.get_ep_devices() if d.ep_name == "QNNExecutionProvider"]
    if not devices:
        try:
            ort.register_execution_provider_library("QNNExecutionProvider", qnn.get_library_path())
        except Exception as exc:  # ORT's own exception types
            if "already registered" not in str(exc):
                pytest.skip(f"QNN plugin did not register: {exc}")
        devices = [d for d in ort.get_ep_devices() if d.ep_name == "QNNExecutionProvider"]
    if not devices:
        pytest.skip("QNN plugin registered but reports no OrtEpDevice on this machine")
    return devices


def test_stock_ort_selects_qnn_variant_with_qnn_plugin(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_model(src / "model.onnx")
    qnn = qnn_spec(src)
    root = write_bundle(tmp_path / "q.ortpackage", [make_spec(src), qnn], package_name="q")

    cpu = _select(root, ort.SessionOptions())
    assert cpu.get_selected_variant_name() == "cpu-fp32"

    so = ort.SessionOptions()
    so.add_provider_for_devices(_qnn_devices(), {"backend_type": "htp"})
    comp = _select(root, so)
    assert comp.get_selected_variant_name() == "qnn-htp"
    sess = comp.create_session()  # provider options come from executor_info.ort
    assert sess.get_providers()[0] == "QNNExecutionProvider"
    np.testing.assert_allclose(sess.run(None, {"x": X})[0], X + BIAS, atol=1e-2)
