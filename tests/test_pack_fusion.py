"""Attention geometry for the transformer fusion: heads and hidden size off the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeort.pack.optimize import attention_geometry, fuse_transformer
from tests.models import make_bert_like


def _exported_style_split(heads: int, head_size: int) -> onnx.ModelProto:
    """Q projection + head split as PyTorch exports it: the Reshape target is
    Concat(batch, seq, -1, head_size), not a constant."""
    hidden = heads * head_size
    w = numpy_helper.from_array(np.zeros((hidden, hidden), np.float32), "W")
    b = numpy_helper.from_array(np.zeros((hidden,), np.float32), "B")
    const = [
        helper.make_node("Constant", [], [f"c{i}"], value=numpy_helper.from_array(np.array([v])))
        for i, v in enumerate((-1, head_size))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["q"]),
        helper.make_node("Add", ["q", "B"], ["qb"]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["d1"], axis=0),
        helper.make_node("Unsqueeze", ["d0", "ax"], ["u0"]),
        helper.make_node("Unsqueeze", ["d1", "ax"], ["u1"]),
        *const,
        helper.make_node("Concat", ["u0", "u1", "c0", "c1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["qb", "shape"], ["y"]),
    ]
    inits = [
        w,
        b,
        numpy_helper.from_array(np.array(0), "i0"),
        numpy_helper.from_array(np.array(1), "i1"),
        numpy_helper.from_array(np.array([0]), "ax"),
    ]
    graph = helper.make_graph(
        nodes,
        "split",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_geometry_from_an_exported_concat_shape_with_minus_one() -> None:
    assert attention_geometry(_exported_style_split(12, 32)) == (12, 384)


def test_geometry_from_constant_shapes_and_none_without_attention(tmp_path: Path) -> None:
    bert = onnx.load(str(make_bert_like(tmp_path, hidden=64, heads=4)))
    assert attention_geometry(bert) == (4, 64)
    plain = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
    )
    assert attention_geometry(plain) == (0, 0)


def test_bert_like_model_fuses_attention(tmp_path: Path) -> None:
    fused = fuse_transformer(make_bert_like(tmp_path, layers=2), tmp_path / "fused.onnx")
    assert fused.stats.get("Attention", 0) == 2
