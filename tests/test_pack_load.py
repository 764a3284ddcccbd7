"""Loading and checking the source model: one clear ModelError per broken model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeort.errors import ModelError
from edgeort.pack.load import load_model
from tests.models import CORRUPTIONS, corrupt_model_bytes, make_cnn, make_mlp


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("truncated", "not a readable ONNX model"),
        ("random_bytes", "not a readable ONNX model"),
        ("opset_99", "opset 99"),
        ("ir_99", "IR version 99"),
    ],
)
def test_corrupt_models_give_one_clear_error(tmp_path: Path, kind: str, needle: str) -> None:
    assert kind in CORRUPTIONS
    path = corrupt_model_bytes(tmp_path, kind)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "none.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty graph"):
        load_model(empty)


def test_checker_failure_names_the_problem(tmp_path: Path) -> None:
    # A node reading a tensor nothing produces: the checker rejects the graph.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "dangling.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelError, match=r"onnx\.checker.*nowhere"):
        load_model(path)


def test_an_operator_onnxruntime_lacks_is_a_model_error(tmp_path: Path) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"onnxruntime .* cannot load it"):
        load_model(path)


def test_signature_and_digest(tmp_path: Path) -> None:
    path = make_cnn(tmp_path, channels=1, size=8)
    source = load_model(path)
    assert [(i.name, i.dtype, i.shape) for i in source.inputs] == [
        ("image", "float32", ("batch", 1, 8, 8))
    ]
    assert source.outputs[0].name == "logits" and source.outputs[0].shape == ("batch", 10)
    assert source.opsets == {"ai.onnx": 17} and source.ir_version == 8
    import hashlib

    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_external_data_is_supported(tmp_path: Path) -> None:
    path = make_mlp(tmp_path, inputs=64, hidden=64)
    model = onnx.load(str(path))
    expected = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "w1"))
    ext = tmp_path / "ext" / "mlp.onnx"
    ext.parent.mkdir()
    onnx.save_model(
        model, str(ext), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    assert (ext.parent / "weights.bin").is_file()
    source = load_model(ext)
    w1 = next(i for i in source.proto.graph.initializer if i.name == "w1")
    assert np.array_equal(numpy_helper.to_array(w1), expected)
