"""Recipes: every precision builds the graph it claims and stays close to fp32."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeort.errors import PackageError
from edgeort.pack.data import Dataset, synthetic_data
from edgeort.pack.evaluate import CPU, EpChoice, make_session, run_dataset
from edgeort.pack.load import load_model
from edgeort.pack.metrics import compare
from edgeort.pack.quantize import (
    MIN_NBITS_K,
    apply_recipe,
    describe,
    large_matmuls,
    op_types_to_quantize,
)
from edgeort.profiles import Recipe
from tests.models import make_mlp

ON_CPU = EpChoice(CPU, CPU)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset, list[np.ndarray]]:
    folder = tmp_path_factory.mktemp("mlp")
    path = make_mlp(folder, inputs=256, hidden=64, outputs=8)
    data = synthetic_data(load_model(path).inputs, samples=16)
    return path, data, run_dataset(make_session(path, ON_CPU), data)


def _build(mlp: tuple, tmp_path: Path, recipe: Recipe) -> tuple[set[str], onnx.ModelProto, float]:
    path, data, reference = mlp
    built = apply_recipe(path, recipe, tmp_path / "out.onnx", data)
    model = onnx.load(str(built.path))
    got = run_dataset(make_session(built.path, ON_CPU), data)
    return {n.op_type for n in model.graph.node}, model, compare(reference, got).cosine_mean


def test_fp32_is_a_copy(mlp: tuple, tmp_path: Path) -> None:
    built = apply_recipe(mlp[0], Recipe(), tmp_path / "fp32.onnx")
    assert built.precision == "fp32"
    assert built.path.read_bytes() == mlp[0].read_bytes()


def test_dynamic_per_channel_int8(mlp: tuple, tmp_path: Path) -> None:
    recipe = Recipe(precision="int8", mode="dynamic", per_channel=True)
    ops, _, cosine = _build(mlp, tmp_path, recipe)
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert cosine > 0.999


@pytest.mark.parametrize(
    ("fmt", "act", "expected"),
    [
        ("qdq", "int8", {"QuantizeLinear", "DequantizeLinear"}),
        ("qoperator", "uint8", {"QLinearMatMul"}),
    ],
)
def test_static_int8(mlp: tuple, tmp_path: Path, fmt: str, act: str, expected: set[str]) -> None:
    recipe = Recipe(precision="int8", mode="static", format=fmt, activation_type=act)
    ops, _, cosine = _build(mlp, tmp_path, recipe)
    assert expected <= ops
    assert cosine > 0.995


def test_qnn_w8a16_uses_uint16_activations(mlp: tuple, tmp_path: Path) -> None:
    recipe = Recipe(precision="w8a16", mode="qnn", activation_type="uint16", weight_type="uint8")
    ops, model, cosine = _build(mlp, tmp_path, recipe)
    assert "QuantizeLinear" in ops
    zero_points = [
        i for i in model.graph.initializer if i.name.endswith("zero_point") and i.data_type == 4
    ]  # 4 = UINT16
    assert zero_points, "no uint16 activation zero points"
    assert cosine > 0.999


def test_qnn_w16a16_has_int16_weights_and_uint16_activations(mlp: tuple, tmp_path: Path) -> None:
    recipe = Recipe(precision="w16a16", mode="qnn", activation_type="uint16", weight_type="int16")
    ops, model, cosine = _build(mlp, tmp_path, recipe)
    assert "DequantizeLinear" in ops and describe(recipe).startswith("w16a16 qnn")
    types = {i.name: i.data_type for i in model.graph.initializer}
    int16 = onnx.TensorProto.INT16
    # the MatMul weights are stored quantized as int16 (symmetric: zero points 0)
    assert any(t == int16 and not n.endswith("zero_point") for n, t in types.items()), types
    assert any(t == onnx.TensorProto.UINT16 and n.endswith("zero_point") for n, t in types.items())
    assert cosine > 0.99999


def test_fp16_keeps_io_types(mlp: tuple, tmp_path: Path) -> None:
    ops, model, cosine = _build(mlp, tmp_path, Recipe(precision="fp16", keep_io_types=True))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = {i.name: i.data_type for i in model.graph.initializer}
    assert weights["w1"] == onnx.TensorProto.FLOAT16
    assert "Cast" in ops and cosine > 0.9999


def test_int4_weight_only_on_large_matmuls(mlp: tuple, tmp_path: Path) -> None:
    proto = onnx.load(str(mlp[0]))
    assert large_matmuls(proto, 128) == ["fc1"]  # w1 is 256x64; w2 (64x8) is too small
    built = apply_recipe(
        mlp[0], Recipe(precision="int4", mode="weight_only", block_size=32), tmp_path / "q4.onnx"
    )
    ops = [n.op_type for n in onnx.load(str(built.path)).graph.node]
    assert built.precision == "int4" and ops.count("MatMulNBits") == 1 and "MatMul" in ops
    got = run_dataset(make_session(built.path, ON_CPU), mlp[1])
    assert compare(mlp[2], got).cosine_mean > 0.98


def test_int4_without_large_matmuls_stays_fp32(tmp_path: Path) -> None:
    small = make_mlp(tmp_path, inputs=16, hidden=32)
    built = apply_recipe(small, Recipe(precision="int4", mode="weight_only"), tmp_path / "o.onnx")
    assert built.precision == "fp32"
    assert f"K >= {MIN_NBITS_K}" in built.notes[0]


def test_static_without_data_is_refused(mlp: tuple, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="needs calibration data"):
        apply_recipe(mlp[0], Recipe(precision="int8", mode="static"), tmp_path / "x.onnx")


def test_unknown_mode_is_a_package_error(mlp: tuple, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="'magic'"):
        apply_recipe(mlp[0], Recipe(precision="int8", mode="magic"), tmp_path / "x.onnx")


def test_describe() -> None:
    assert describe(Recipe()) == "fp32"
    assert describe(Recipe(precision="int8", mode="dynamic", per_channel=True)) == (
        "int8 dynamic, per-channel"
    )


def _conv_softmax(folder: Path) -> Path:
    """image [1, 3, 8, 8] -> Conv -> Relu -> Softmax over channels: a conv net whose
    answer is read from a softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["c"], "conv", pads=[1] * 4),
            helper.make_node("Relu", ["c"], ["r"], "relu"),
            helper.make_node("Softmax", ["r"], ["probs"], "softmax", axis=1),
        ],
        "conv_softmax",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "conv_softmax.onnx"
    onnx.save(model, str(path))
    return path


def _softmax_wrapped(model: onnx.ModelProto) -> bool:
    """True when the Softmax's output is quantized (read by a QuantizeLinear)."""
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    return any(
        n.op_type == "QuantizeLinear" and softmax.output[0] in n.input for n in model.graph.node
    )


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_float_op_types_leave_those_ops_float(tmp_path: Path, fmt: str) -> None:
    path = _conv_softmax(tmp_path)
    data = synthetic_data(load_model(path).inputs, samples=4)
    every = Recipe(precision="int8", mode="static", format=fmt, activation_type="uint8")
    built = apply_recipe(path, every, tmp_path / "every.onnx", data)
    ops = {n.op_type for n in onnx.load(str(built.path)).graph.node}
    kept = apply_recipe(
        path, replace(every, float_op_types=("Softmax",)), tmp_path / "kept.onnx", data
    )
    kept_model = onnx.load(str(kept.path))
    kept_ops = {n.op_type for n in kept_model.graph.node}
    if fmt == "qdq":  # the quantizer's default set wraps the Softmax; the recipe keeps it
        assert _softmax_wrapped(onnx.load(str(built.path)))
        assert not _softmax_wrapped(kept_model)
    else:
        assert "QLinearSoftmax" in ops and "QLinearSoftmax" not in kept_ops
    assert "Softmax" in kept_ops
    assert {"QLinearConv"} <= kept_ops or "QuantizeLinear" in kept_ops  # the Conv still is
    got = run_dataset(make_session(kept.path, ON_CPU), data)
    assert compare(run_dataset(make_session(path, ON_CPU), data), got).cosine_mean > 0.99


def test_float_op_types_narrow_explicit_op_types() -> None:
    recipe = Recipe(
        precision="int8", mode="static", op_types=("Conv", "Softmax"), float_op_types=("Softmax",)
    )
    assert op_types_to_quantize(recipe) == ["Conv"]
    assert op_types_to_quantize(replace(recipe, float_op_types=())) == ["Conv", "Softmax"]
    qnn = Recipe(precision="int8", mode="qnn", float_op_types=("Softmax",))
    assert op_types_to_quantize(qnn, {"Conv", "Softmax", "Relu"}) == ["Conv", "Relu"]
    every = op_types_to_quantize(
        Recipe(precision="int8", mode="static", float_op_types=("Softmax",))
    )
    assert every is not None and "Softmax" not in every and {"Conv", "Sigmoid", "Mul"} <= set(every)
    assert "float" in describe(recipe) and "Softmax" in describe(recipe)
