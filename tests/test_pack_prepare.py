"""Prepare and optimize: fixed shapes, node names, family, fusion, portable levels, ORT format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeort.errors import UsageError
from edgeort.pack.load import io_info, load_model
from edgeort.pack.optimize import (
    detect_family,
    fuse_transformer,
    offline_optimize,
    portable_level,
)
from edgeort.pack.ortformat import CONFIG_NAME, convert_to_ort
from edgeort.pack.prepare import check_shapes, fix_shapes, name_nodes, parse_shape, pre_process
from tests.models import make_bert_like, make_cnn, make_mlp, make_unfused_attention


def test_parse_shape() -> None:
    assert parse_shape("input_ids=1,128") == ("input_ids", (1, 128))
    assert parse_shape("a=b=1,2") == ("a=b", (1, 2))
    for bad in ("x", "x=", "x=1,a", "=1", "x=0,3"):
        with pytest.raises(UsageError, match="--shape"):
            parse_shape(bad)


def test_check_shapes_names_the_problem(tmp_path: Path) -> None:
    inputs = load_model(make_cnn(tmp_path, channels=1, size=8)).inputs
    check_shapes({"image": (2, 1, 8, 8)}, inputs)
    with pytest.raises(UsageError, match="no input 'img'"):
        check_shapes({"img": (1, 1, 8, 8)}, inputs)
    with pytest.raises(UsageError, match="rank 3"):
        check_shapes({"image": (1, 8, 8)}, inputs)
    with pytest.raises(UsageError, match="dimension 2 is fixed at 8"):
        check_shapes({"image": (1, 1, 9, 8)}, inputs)


def test_batch_defaults_to_one_and_is_recorded(tmp_path: Path) -> None:
    model = onnx.load(str(make_cnn(tmp_path)))
    notes = fix_shapes(model, {})
    inputs, outputs = io_info(model)
    assert inputs[0].shape == (1, 3, 16, 16) and outputs[0].shape == (1, 10)
    assert notes == ("input 'image': dynamic batch dimension set to 1",)


def test_other_dynamic_dims_need_the_shape_option(tmp_path: Path) -> None:
    path = make_bert_like(tmp_path)
    with pytest.raises(UsageError) as info:
        fix_shapes(onnx.load(str(path)), {})
    assert "input 'input_ids'" in str(info.value)
    assert "--shape input_ids=" in str(info.value) and info.value.option == "--shape"
    model = onnx.load(str(path))
    notes = fix_shapes(model, {"input_ids": (1, 12)})
    inputs, outputs = io_info(model)
    # the shared symbolic dims fix attention_mask too
    assert [i.shape for i in inputs] == [(1, 12), (1, 12)]
    assert outputs[0].shape == (1, 12, 64)
    assert "fixed to [1, 12]" in notes[0]


def test_name_nodes_makes_names_unique() -> None:
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Relu", ["x"], ["a"]),
            onnx.helper.make_node("Relu", ["a"], ["b"], name="r"),
            onnx.helper.make_node("Relu", ["b"], ["y"], name="r"),
        ],
        "g",
        [onnx.helper.make_tensor_value_info("x", 1, [1])],
        [onnx.helper.make_tensor_value_info("y", 1, [1])],
    )
    model = onnx.helper.make_model(graph)
    name_nodes(model)
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == 3 and all(names)


def test_families(tmp_path: Path) -> None:
    assert detect_family(onnx.load(str(make_cnn(tmp_path)))) == "cnn"
    assert detect_family(onnx.load(str(make_mlp(tmp_path)))) == "default"
    assert detect_family(onnx.load(str(make_bert_like(tmp_path)))) == "transformer"
    assert detect_family(onnx.load(str(make_unfused_attention(tmp_path)))) == "transformer"


def test_bert_fusion_reports_fused_ops(tmp_path: Path) -> None:
    path = make_bert_like(tmp_path)
    fused = fuse_transformer(path, tmp_path / "fused.onnx")
    assert fused.path == tmp_path / "fused.onnx"
    assert fused.stats.get("Attention") == 2 and not fused.stats.get("SkipLayerNormalization")
    ops = {n.op_type for n in onnx.load(str(fused.path)).graph.node}
    assert "Attention" in ops and "Softmax" not in ops
    # the residual Add + LayerNormalization stay standard ops: the CPU EP fuses them at
    # load time unless the variant keeps that fusion off (target.SLOW_FUSIONS)
    assert "LayerNormalization" in ops and "SkipLayerNormalization" not in ops
    assert detect_family(onnx.load(str(fused.path))) == "transformer"


def test_portable_levels() -> None:
    cpu, qnn = "CPUExecutionProvider", "QNNExecutionProvider"
    assert portable_level("extended", ep=cpu, precision="fp32") == ("extended", "")
    assert portable_level("extended", ep=qnn, precision="fp32")[0] == "basic"
    assert portable_level("extended", ep=cpu, precision="int8")[0] == "basic"
    assert portable_level("basic", ep=cpu, precision="fp16")[0] == "none"
    assert portable_level("all", ep=cpu, precision="fp32")[0] == "basic"
    assert portable_level("none", ep=cpu, precision="fp32") == ("none", "")


def test_offline_optimization_keeps_results_and_prunes_opsets(tmp_path: Path) -> None:
    path = make_cnn(tmp_path)
    out = offline_optimize(path, tmp_path / "opt.onnx", "basic")
    model = onnx.load(str(out))
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx"}
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    opt = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        opt.run(None, {"image": x})[0], ref.run(None, {"image": x})[0], rtol=1e-4, atol=1e-5
    )
    assert offline_optimize(path, tmp_path / "none.onnx", "none") == path


def test_pre_process_names_nodes(tmp_path: Path) -> None:
    prepared = pre_process(make_mlp(tmp_path), tmp_path / "pre.onnx")
    assert prepared.path == tmp_path / "pre.onnx" and prepared.notes == ("quant_pre_process",)
    model = onnx.load(str(prepared.path))
    assert all(n.name for n in model.graph.node)
    # quant_pre_process stamps every domain ORT knows; only the used ones stay
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx"}


def test_ort_format_and_operator_config(tmp_path: Path) -> None:
    path = make_cnn(tmp_path, batch=1)
    out = convert_to_ort(path, tmp_path / "ort")
    assert out.model.suffix == ".ort" and out.config.name == CONFIG_NAME
    config = out.config.read_text()
    assert "ai.onnx;" in config and "Conv" in config and str(tmp_path) not in config
    x = np.ones((1, 3, 16, 16), np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    got = ort.InferenceSession(str(out.model), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-5)
