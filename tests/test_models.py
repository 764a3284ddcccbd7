"""tests/models.py: every builder loads in ORT and computes what its docstring says."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidProtobuf

from tests.models import (
    CORRUPTIONS,
    corrupt_model_bytes,
    make_bert_like,
    make_cnn,
    make_dynamic_shapes,
    make_mlp,
    make_planted_fallback,
    make_thread_contention,
    make_unfused_attention,
)

CPU = ["CPUExecutionProvider"]
QNN = "QNNExecutionProvider"


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=CPU)


def _weights(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _fused_stats(path: Path, heads: int, hidden: int) -> dict[str, int]:
    from onnxruntime.transformers.optimizer import optimize_model

    # opt_level=0: python fusions only. ORT 1.32's optimize_by_onnxruntime (opt_level>0,
    # the bert default) imports torch, which edgeort does not depend on.
    model = optimize_model(
        str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    model.save_model_to_file(str(path.with_suffix(".opt.onnx")))
    return dict(model.get_fused_operator_statistics())


@pytest.mark.parametrize(
    "builder",
    [make_mlp, make_cnn, make_dynamic_shapes, make_bert_like, make_unfused_attention,
     make_planted_fallback, make_thread_contention],
)  # fmt: skip
def test_builders_are_deterministic_and_valid(builder: Callable[..., Path], tmp_path: Path) -> None:
    first = builder(tmp_path / "a")
    second = builder(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    model = onnx.load(str(first))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert builder.__doc__ and builder.__doc__.strip()
    _session(first)


def test_mlp_matches_numpy(tmp_path: Path) -> None:
    path = make_mlp(tmp_path, inputs=5, hidden=7, outputs=3)
    w = _weights(path)
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    expected = np.maximum(x @ w["w1"] + w["b1"], 0) @ w["w2"] + w["b2"]
    (got,) = _session(path).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert _dims(onnx.load(str(path)).graph.input[0]) == ["batch", 5]


def test_cnn_dynamic_batch(tmp_path: Path) -> None:
    path = make_cnn(tmp_path, channels=1, size=8, classes=5)
    session = _session(path)
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    (batched,) = session.run(None, {"image": x})
    singles = [session.run(None, {"image": x[i : i + 1]})[0] for i in range(3)]
    assert batched.shape == (3, 5)
    np.testing.assert_allclose(batched, np.concatenate(singles), rtol=1e-5, atol=1e-6)
    assert any(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)


def test_dynamic_shapes_accepts_any_batch_and_seq(tmp_path: Path) -> None:
    path = make_dynamic_shapes(tmp_path)
    model = onnx.load(str(path))
    assert _dims(model.graph.input[0]) == ["batch", "seq"]
    session = _session(path)
    for shape in [(1, 3), (2, 5), (4, 17)]:
        x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
        (y,) = session.run(None, {"x": x})
        assert y.shape == shape
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def _bert_feeds(batch: int, seq: int, vocab: int, token_types: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[0, seq // 2 :] = 0  # first sequence is padded
    feeds = {"input_ids": rng.integers(0, vocab, (batch, seq)), "attention_mask": mask}
    if token_types:
        feeds["token_type_ids"] = np.zeros((batch, seq), dtype=np.int64)
    return feeds


def test_bert_like_runs_and_masks_padding(tmp_path: Path) -> None:
    path = make_bert_like(tmp_path, layers=2, hidden=32, heads=4, seq=12, vocab=50)
    session = _session(path)
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]
    feeds = _bert_feeds(2, 10, 50, token_types=False)
    (hidden,) = session.run(None, feeds)
    assert hidden.shape == (2, 10, 32) and np.isfinite(hidden).all()
    # tokens under a 0 in the mask must not change the other tokens' outputs
    changed = {**feeds, "input_ids": feeds["input_ids"].copy()}
    changed["input_ids"][0, 5:] = (changed["input_ids"][0, 5:] + 1) % 50
    (hidden2,) = session.run(None, changed)
    np.testing.assert_allclose(hidden2[0, :5], hidden[0, :5], rtol=1e-4, atol=1e-5)
    assert not np.allclose(hidden2[0, 5:], hidden[0, 5:])


@pytest.mark.parametrize("layers", [1, 2])
def test_bert_like_is_fused_by_ort_optimizer(tmp_path: Path, layers: int) -> None:
    path = make_bert_like(tmp_path, layers=layers, hidden=64, heads=4)
    stats = _fused_stats(path, heads=4, hidden=64)
    assert stats["Attention"] + stats["MultiHeadAttention"] == layers
    assert stats["SkipLayerNormalization"] == 2 * layers
    assert stats["Gelu"] + stats["FastGelu"] + stats["BiasGelu"] == layers
    feeds = _bert_feeds(2, 16, 100, token_types=False)
    (original,) = _session(path).run(None, feeds)
    (optimized,) = _session(path.with_suffix(".opt.onnx")).run(None, feeds)
    np.testing.assert_allclose(optimized, original, rtol=1e-4, atol=1e-4)


def test_bert_like_token_types_and_pooler(tmp_path: Path) -> None:
    path = make_bert_like(tmp_path, layers=1, hidden=32, heads=2, token_type_ids=True, pooled=True)
    session = _session(path)
    assert [i.name for i in session.get_inputs()][-1] == "token_type_ids"
    hidden, pooled = session.run(None, _bert_feeds(3, 7, 100, token_types=True))
    assert hidden.shape == (3, 7, 32) and pooled.shape == (3, 32)
    assert np.abs(pooled).max() <= 1.0  # tanh
    stats = _fused_stats(path, heads=2, hidden=32)
    assert stats["Attention"] == 1 and stats["SkipLayerNormalization"] >= 2


def test_bert_like_rejects_bad_heads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of heads"):
        make_bert_like(tmp_path, hidden=30, heads=4)


def test_unfused_attention_has_core_but_is_not_fused(tmp_path: Path) -> None:
    path = make_unfused_attention(tmp_path, dim=16)
    nodes = onnx.load(str(path)).graph.node
    producer = {out: n for n in nodes for out in n.output}
    softmax = next(n for n in nodes if n.op_type == "Softmax")
    assert producer[softmax.input[0]].op_type == "MatMul"
    assert any(n.op_type == "MatMul" and softmax.output[0] in n.input for n in nodes)
    stats = _fused_stats(path, heads=1, hidden=16)
    assert stats["Attention"] == 0 and stats["MultiHeadAttention"] == 0
    w = _weights(path)
    x = np.random.default_rng(5).standard_normal((2, 6, 16)).astype(np.float32)
    scores = (x @ w["wq"] * w["scale"]) @ (x @ w["wk"]).transpose(0, 2, 1)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected = probs @ (x @ w["wv"]) @ w["wo"]
    (got,) = _session(path).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_planted_fallback_op_and_cpu_result(tmp_path: Path) -> None:
    path = make_planted_fallback(tmp_path)
    assert [n.op_type for n in onnx.load(str(path)).graph.node] == [
        "Conv", "Relu", "Shrink", "Conv", "Relu",
    ]  # fmt: skip
    (y,) = _session(path).run(None, {"image": np.ones((1, 3, 16, 16), np.float32)})
    assert y.shape == (1, 8, 16, 16) and np.isfinite(y).all()


@pytest.fixture
def qnn_devices() -> Iterator[list[ort.OrtEpDevice]]:
    """QNN's OrtEpDevices; registers the plugin for this test only if nobody else has."""
    devices = [d for d in ort.get_ep_devices() if d.ep_name == QNN]
    if devices:
        yield devices
        return
    try:
        import onnxruntime_qnn
    except ImportError:
        pytest.skip("onnxruntime-qnn is not installed")
    try:
        ort.register_execution_provider_library(QNN, onnxruntime_qnn.get_library_path())
    except Exception as exc:  # registration errors are ORT's own types
        pytest.skip(f"QNN EP library did not register: {exc}")
    try:
        devices = [d for d in ort.get_ep_devices() if d.ep_name == QNN]
        if not devices:
            pytest.skip("QNN EP registered but reports no OrtEpDevice")
        yield devices
    finally:
        ort.unregister_execution_provider_library(QNN)


def _qnn_takes_whole_graph(path: Path, devices: list[ort.OrtEpDevice]) -> bool:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the expected failure logs an error line otherwise
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    options.add_provider_for_devices(devices, {"backend_type": "htp"})
    try:
        ort.InferenceSession(str(path), options)
    except Fail as exc:
        logging.getLogger(__name__).info("QNN refused %s: %s", path.name, exc)
        return False
    return True


def test_planted_op_is_what_qnn_cannot_take(
    tmp_path: Path, qnn_devices: list[ort.OrtEpDevice]
) -> None:
    control = make_planted_fallback(tmp_path, middle_op="Relu", filename="control.onnx")
    planted = make_planted_fallback(tmp_path)
    assert _qnn_takes_whole_graph(control, qnn_devices)
    assert not _qnn_takes_whole_graph(planted, qnn_devices)


def test_thread_contention_is_a_layernorm_chain(tmp_path: Path) -> None:
    path = make_thread_contention(tmp_path, depth=50, rows=3, width=8)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("LayerNormalization") == 50 and len(ops) == 51
    x = np.random.default_rng(6).standard_normal((3, 8)).astype(np.float32) * 5 + 2
    (y,) = _session(path).run(None, {"x": x})
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_models_fail_to_load(tmp_path: Path, kind: str) -> None:
    path = corrupt_model_bytes(tmp_path, kind)
    assert path.exists() and path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    expected = InvalidProtobuf if kind in ("truncated", "random_bytes") else Fail
    with pytest.raises(expected):
        _session(path)


def test_corrupt_model_bytes_rejects_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        corrupt_model_bytes(tmp_path, "bitflip")
