"""Outlier channels before dynamic int8 (edgeort.pack.outliers), the embedding gate, and
the measured SkipLayerNormFusion choice, on small onnx.helper models (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeort
from edgeort.pack import outliers
from edgeort.pack.data import Dataset
from edgeort.pack.gates import accuracy_gate
from edgeort.pack.metrics import Metrics, compare, embedding_cosines, padding_mask
from edgeort.pack.quantize import apply_recipe
from edgeort.pack.result import PackageResult
from edgeort.profiles import Recipe, Verify
from edgeort.profiles.schema import recipe_rules
from tests.models import make_bert_like

HIDDEN, FFN, OUTLIER = 16, 48, 3


def _mlp(path: Path, seed: int = 0) -> Path:
    """x [batch, seq, 16] -> MatMul -> Relu -> MatMul -> y, constant weights."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (HIDDEN, FFN)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (FFN, HIDDEN)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="act"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", HIDDEN])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _attention(path: Path, seed: int = 0) -> Path:
    """x [batch, seq, 16] -> com.microsoft Attention (2 heads) -> y."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (HIDDEN, 3 * HIDDEN)).astype(np.float32)
    b = rng.normal(0, 0.1, (3 * HIDDEN,)).astype(np.float32)
    node = helper.make_node(
        "Attention", ["x", "w", "b"], ["y"], name="att", domain="com.microsoft", num_heads=2
    )
    graph = helper.make_graph(
        [node],
        "att",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", HIDDEN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", HIDDEN])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


def _inputs(samples: int, seed: int, outlier: float = 60.0) -> np.ndarray:
    """Activations with one channel ``outlier`` times the others, as transformers have."""
    x = np.random.default_rng(seed).normal(0, 1, (samples, 1, 6, HIDDEN)).astype(np.float32)
    x[..., OUTLIER] *= outlier
    return x


def _data(x: np.ndarray) -> Dataset:
    return Dataset({"x": x}, {"x": True}, x.shape[0], "test")


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.stack([session.run(None, {"x": s})[0] for s in x])


def test_matmul_outlier_channels_are_split_off_exactly(tmp_path: Path) -> None:
    model = _mlp(tmp_path / "mlp.onnx")
    done = outliers.rewrite(model, tmp_path / "out.onnx", _data(_inputs(16, 0)))
    assert done.path == tmp_path / "out.onnx"
    assert "fc1/outlier_matmul" in done.float_nodes and "fc1/outlier_gather" in done.float_nodes
    rewritten = onnx.load(str(done.path))
    channels = {i.name: numpy_helper.to_array(i) for i in rewritten.graph.initializer}
    assert OUTLIER in channels["fc1/outlier_channels"].tolist()
    assert len(channels["fc1/outlier_channels"]) <= outliers.MAX_SPLIT
    assert channels["fc1/outlier_keep"][OUTLIER] == 0.0
    onnx.checker.check_model(rewritten)
    x = _inputs(4, 1)
    np.testing.assert_allclose(_run(done.path, x), _run(model, x), rtol=1e-4, atol=1e-3)


def test_attention_input_is_smoothed_exactly(tmp_path: Path) -> None:
    model = _attention(tmp_path / "att.onnx")
    done = outliers.rewrite(model, tmp_path / "out.onnx", _data(_inputs(16, 0)))
    ops = [n.op_type for n in onnx.load(str(done.path)).graph.node]
    assert ops == ["Mul", "Attention"] and done.float_nodes == ()
    assert any("smoothed" in n for n in done.notes)
    x = _inputs(4, 1)
    np.testing.assert_allclose(_run(done.path, x), _run(model, x), rtol=1e-4, atol=1e-3)


def test_nothing_outlying_leaves_the_model_alone(tmp_path: Path) -> None:
    model = _mlp(tmp_path / "mlp.onnx")
    flat = np.random.default_rng(0).uniform(-1, 1, (16, 1, 6, HIDDEN)).astype(np.float32)
    # fc1's input is flat; its Relu output feeding fc2 may still outlie: exclude fc2
    done = outliers.rewrite(model, tmp_path / "out.onnx", _data(flat), exclude=("fc2",))
    assert done.path == model and done.float_nodes == ()
    assert not (tmp_path / "out.onnx").exists()


def test_outliers_recipe_quantizes_closer_to_fp32(tmp_path: Path) -> None:
    model = _mlp(tmp_path / "mlp.onnx")
    calibration, check = _data(_inputs(32, 0)), _inputs(16, 1)
    ref = _run(model, check)
    errors = {}
    for flag in (False, True):
        recipe = Recipe(
            precision="int8", mode="dynamic", activation_type="uint8", per_channel=True,
            outliers=flag,
        )  # fmt: skip
        built = apply_recipe(model, recipe, tmp_path / f"q{flag}.onnx", calibration)
        assert any("outlier" in n for n in built.notes) is flag
        got = _run(built.path, check)
        errors[flag] = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    assert errors[True] < errors[False] / 2, errors
    ops = {n.op_type for n in onnx.load(str(tmp_path / "qTrue.onnx")).graph.node}
    assert "MatMul" in ops  # the side MatMul stays float
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops


def test_outliers_without_calibration_is_plain_dynamic(tmp_path: Path) -> None:
    recipe = Recipe(precision="int8", mode="dynamic", activation_type="uint8", outliers=True)
    built = apply_recipe(_mlp(tmp_path / "mlp.onnx"), recipe, tmp_path / "q.onnx", None)
    assert built.notes == ("outliers: no calibration data, not applied",)


def test_outliers_needs_dynamic_mode() -> None:
    static = Recipe(precision="int8", mode="static", activation_type="uint8", outliers=True)
    assert ("outliers", "outliers applies to mode 'dynamic', got 'static'") in recipe_rules(static)
    dynamic = Recipe(precision="int8", mode="dynamic", activation_type="uint8", outliers=True)
    assert recipe_rules(dynamic) == []


# -- the embedding metric and its gate --------------------------------------------------


def test_embedding_cosine_pools_real_tokens_only() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 5, 8))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    padded_only = ref.copy()
    padded_only[mask == 0] += 50.0  # padding is never pooled
    np.testing.assert_allclose(embedding_cosines([ref], [padded_only], mask), 1.0)
    real = ref.copy()
    real[1, 2] *= -1.0
    cos = embedding_cosines([ref], [real], mask)
    assert cos[1] < 0.99 and cos[0] == pytest.approx(1.0) and cos[2] == pytest.approx(1.0)
    # without a mask, every position is pooled
    assert embedding_cosines([ref], [padded_only], None).min() < 0.99


def test_compare_records_the_worst_sentence() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(4, 6, 8)).astype(np.float32)
    got = ref.copy()
    got[2] += rng.normal(0, 0.5, size=(6, 8)).astype(np.float32)
    mask = padding_mask({"attention_mask": np.ones((4, 6), np.int64)}, 4)
    m = compare([ref], [got], mask=mask, task="embedding")
    cos = embedding_cosines([ref], [got], None)
    assert m.task_metric == "embedding"
    assert m.task_value == pytest.approx(float(cos.mean()))
    assert m.task_min == pytest.approx(float(cos.min())) and m.task_min < m.task_value


def _metrics(mean: float, worst: float) -> Metrics:
    return Metrics(
        samples=10, cosine_mean=mean, cosine_min=worst, rel_error=0.0, max_abs=0.0,
        task_metric="embedding", task_value=mean, task_min=worst,
    )  # fmt: skip


def test_embedding_gate_bounds_mean_and_worst_sentence() -> None:
    assert accuracy_gate(_metrics(0.999, 0.995), Verify()).passed
    low_min = accuracy_gate(_metrics(0.999, 0.98), Verify())
    assert not low_min.passed and "worst sample 0.9800 < bound 0.9900" in low_min.reason
    low_mean = accuracy_gate(_metrics(0.995, 0.995), Verify())
    assert not low_mean.passed and low_mean.bound == pytest.approx(0.997)
    # a user's looser --max-drop loosens the worst-sample bound with it
    assert accuracy_gate(_metrics(0.97, 0.96), Verify(), max_drop=0.05).passed


# -- packaging a transformer -------------------------------------------------------------


def _bert_data(path: Path, samples: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, size=(samples, 1, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[: samples // 2, :, 8:] = 0
    np.savez(path, input_ids=ids, attention_mask=mask)
    return path


@pytest.fixture(scope="module")
def bert_package(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    tmp = tmp_path_factory.mktemp("bert_outliers")
    model = make_bert_like(tmp, layers=1, hidden=32, heads=2)
    return edgeort.package(
        model, ["cpu-x86-64"], output=tmp / "b.ortpackage",
        calibration=_bert_data(tmp / "c.npz", 16, 0), validation=_bert_data(tmp / "v.npz", 8, 1),
    )  # fmt: skip


def test_transformer_package_tries_outliers_and_the_fusion_choice(
    bert_package: PackageResult,
) -> None:
    from edgeort.bundle import open_bundle

    variant = bert_package.variants[0]
    assert variant.accuracy["metric"] == "embedding"
    assert any("outlier channels float" in g.get("recipe", "") for g in variant.gates)
    # the chosen quantized candidate is timed with SkipLayerNormFusion off (whatever wins
    # the speed gate after it); the bundle carries the setting only for a kept-off int8
    session = [g for g in variant.gates if g["gate"] == "session"]
    assert len(session) == 1 and session[0]["decision"] in ("keep", "skip")
    assert "SkipLayerNormFusion off" in session[0]["reason"]
    stored = open_bundle(bert_package.path).variants[0].session_options
    kept_off = stored.get("optimization.disable_specified_optimizers") == "SkipLayerNormFusion"
    assert kept_off is (variant.precision != "fp32" and session[0]["decision"] == "keep")
    loaded = edgeort.load(bert_package.path)
    feeds = {"input_ids": np.ones((1, 12), np.int64), "attention_mask": np.ones((1, 12), np.int64)}
    assert loaded.run(feeds)["last_hidden_state"].shape == (1, 12, 32)


def test_outliers_recipe_is_skipped_without_calibration(tmp_path: Path) -> None:
    model = make_bert_like(tmp_path, layers=1, hidden=32, heads=2)
    result = edgeort.package(
        model, ["cpu-x86-64"], output=tmp_path / "b.ortpackage",
        validation=_bert_data(tmp_path / "v.npz", 8, 1),
    )  # fmt: skip
    skips = [g for g in result.variants[0].gates if g["gate"] == "recipe"]
    assert any("outliers need calibration data" in g["reason"] for g in skips)
