"""examples/digits: the committed trained model, its data files and their reproduction."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
MODEL = DIGITS / "model.onnx"
CALIBRATION = DIGITS / "calibration.npz"
VALIDATION = DIGITS / "validation.npz"


@pytest.fixture(scope="module")
def trainer() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("digits_train", DIGITS / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


def _weights(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_model_signature_and_versions() -> None:
    model = onnx.load(str(MODEL))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    (inp,) = model.graph.input
    (out,) = model.graph.output
    assert inp.name == "image" and out.name == "logits"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert in_dims == ["batch", 1, 8, 8]
    assert out_dims == ["batch", 10]
    assert [n.op_type for n in model.graph.node] == [
        "Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm",
    ]  # fmt: skip


def test_data_files_shapes_and_ranges() -> None:
    with np.load(CALIBRATION) as cal, np.load(VALIDATION) as val:
        assert set(cal.files) == {"image"}
        assert set(val.files) == {"image", "__labels__"}
        assert cal["image"].shape == (200, 1, 8, 8) and cal["image"].dtype == np.float32
        assert val["image"].shape == (360, 1, 8, 8) and val["image"].dtype == np.float32
        labels = val["__labels__"]
        assert labels.dtype == np.int64 and labels.shape == (360,)
        assert np.bincount(labels, minlength=10).min() >= 35  # stratified: ~36 per class
        for images in (cal["image"], val["image"]):
            assert images.min() == 0.0 and images.max() == 1.0  # pixels / 16


def test_validation_is_held_out_from_calibration() -> None:
    with np.load(CALIBRATION) as cal, np.load(VALIDATION) as val:
        cal_rows = {row.tobytes() for row in cal["image"].reshape(200, -1)}
        val_rows = {row.tobytes() for row in val["image"].reshape(360, -1)}
    assert len(cal_rows) == 200 and len(val_rows) == 360  # the data set has no duplicates
    assert not cal_rows & val_rows


def test_ort_accuracy_at_least_095(session: ort.InferenceSession) -> None:
    with np.load(VALIDATION) as val:
        logits = session.run(["logits"], {"image": val["image"]})[0]
        accuracy = float((logits.argmax(axis=1) == val["__labels__"]).mean())
    assert logits.shape == (360, 10)
    assert accuracy >= 0.95


def test_numpy_forward_matches_ort(
    trainer: types.ModuleType, session: ort.InferenceSession
) -> None:
    params = {k: v.astype(np.float64) for k, v in _weights(MODEL).items()}
    with np.load(VALIDATION) as val:
        images = val["image"][:64]
    expected, _ = trainer.forward(params, images.astype(np.float64))
    got = session.run(["logits"], {"image": images})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_dynamic_batch(session: ort.InferenceSession) -> None:
    with np.load(VALIDATION) as val:
        images = val["image"][:5]
    batched = session.run(["logits"], {"image": images})[0]
    single = np.concatenate(
        [session.run(["logits"], {"image": images[i : i + 1]})[0] for i in range(5)]
    )
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)


def test_train_reproduces_committed_files(trainer: types.ModuleType, tmp_path: Path) -> None:
    accuracy = trainer.build_all(tmp_path)
    assert accuracy >= 0.95
    for name in ("calibration.npz", "validation.npz"):
        assert (tmp_path / name).read_bytes() == (DIGITS / name).read_bytes(), name
    committed, rebuilt = _weights(MODEL), _weights(tmp_path / "model.onnx")
    assert committed.keys() == rebuilt.keys()
    for key, value in committed.items():
        np.testing.assert_allclose(rebuilt[key], value, rtol=0, atol=1e-5, err_msg=key)


def test_examples_small_enough_to_commit() -> None:
    total = sum(p.stat().st_size for p in DIGITS.iterdir() if p.is_file())
    assert total < 1_000_000
