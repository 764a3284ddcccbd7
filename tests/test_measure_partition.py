"""Partition counting (exact counts on hand-built graphs), per-node checks and verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeort.measure.graphinfo import read_graph
from edgeort.measure.optables import load_table
from edgeort.measure.partition import (
    GraphNode,
    ShapeInfo,
    check_node,
    partition_report,
    supported_groups,
    verdict,
)


def chain(*ops: str) -> list[GraphNode]:
    """x -> ops[0] -> t0 -> ops[1] -> t1 ..."""
    names = ["x", *[f"t{i}" for i in range(len(ops))]]
    return [GraphNode(f"n{i}", op, "", (names[i],), (names[i + 1],)) for i, op in enumerate(ops)]


def groups(nodes: list[GraphNode], unsupported: set[str]) -> list[list[str]]:
    return [
        [n.name for n in g] for g in supported_groups(nodes, lambda n: n.op_type not in unsupported)
    ]


def test_all_supported_chain_is_one_partition() -> None:
    assert groups(chain("Relu", "Relu", "Relu"), set()) == [["n0", "n1", "n2"]]


def test_unsupported_node_in_the_middle_splits_in_two() -> None:
    assert groups(chain("Relu", "Shrink", "Relu"), {"Shrink"}) == [["n0"], ["n2"]]


def test_unsupported_nodes_at_the_edges_leave_one_partition() -> None:
    assert groups(chain("Shrink", "Relu", "Relu", "Shrink"), {"Shrink"}) == [["n1", "n2"]]


def test_alternating_chain_counts_every_island() -> None:
    nodes = chain("Relu", "X", "Relu", "X", "Relu", "X", "Relu")
    assert len(groups(nodes, {"X"})) == 4


def test_nothing_supported_is_zero_partitions() -> None:
    assert groups(chain("X", "X"), {"X"}) == []


def test_diamond_with_unsupported_branch() -> None:
    # a -> (b unsupported, c) -> d: ORT closes {a, c} before b, then d starts a new group.
    nodes = [
        GraphNode("a", "Relu", "", ("x",), ("ta",)),
        GraphNode("b", "X", "", ("ta",), ("tb",)),
        GraphNode("c", "Relu", "", ("ta",), ("tc",)),
        GraphNode("d", "Add", "", ("tb", "tc"), ("y",)),
    ]
    assert groups(nodes, {"X"}) == [["a", "c"], ["d"]]


def test_independent_unsupported_branch_does_not_split() -> None:
    # Two inputs: x -> a -> b (supported), z -> u (unsupported, not connected).
    nodes = [
        GraphNode("a", "Relu", "", ("x",), ("ta",)),
        GraphNode("u", "X", "", ("z",), ("tu",)),
        GraphNode("b", "Relu", "", ("ta",), ("y",)),
    ]
    assert groups(nodes, {"X"}) == [["a", "b"]]


def _onnx_graph(ops: list[str], path: Path) -> Path:
    """A chain of unary float ops on a fixed [1, 4] tensor, saved as ONNX."""
    names = ["x", *[f"t{i}" for i in range(len(ops))]]
    nodes = [helper.make_node(op, [names[i]], [names[i + 1]], f"n{i}") for i, op in enumerate(ops)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "ops",
    [
        ["Relu", "Shrink", "Sigmoid", "Shrink", "Tanh"],
        ["Shrink", "Relu", "Relu"],
        ["Relu", "Erf", "Shrink", "Relu", "Erf", "Relu"],
        ["Relu", "Relu", "Relu"],
    ],
)
def test_counts_match_ort_usability_checker(tmp_path: Path, ops: list[str]) -> None:
    """Same graph, same op list: our grouping gives ORT's checker's numbers."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    path = _onnx_graph(ops, tmp_path / "m.onnx")
    table = load_table("nnapi")
    md = tmp_path / "ops.md"
    md.write_text("|Operator|Note|\n|--|--|\n" + "".join(f"|{k}||\n" for k in table.ops))
    g = read_graph(path, optimize="none")
    ours = partition_report(g.nodes, table, g.shapes)
    theirs = uc.check_partitioning(
        onnx.load(str(path)).graph,
        uc._SupportedOpsChecker(str(md)),
        require_fixed_input_sizes=False,
    )
    assert (ours.num_partitions, ours.num_supported) == (
        theirs.num_partitions,
        theirs.num_supported_nodes,
    )
    assert ours.verdict == theirs.suitability().name


@pytest.mark.parametrize(
    ("nodes", "supported", "parts", "expected"),
    [
        (10, 10, 1, "YES"),
        (100, 76, 1, "YES"),
        (100, 75, 1, "MAYBE"),
        (100, 51, 1, "MAYBE"),
        (100, 50, 1, "NO"),
        (100, 76, 2, "MAYBE"),
        (100, 75, 2, "NO"),
        (100, 99, 3, "NO"),
        (10, 0, 0, "NO"),
    ],
)
def test_verdict_thresholds(nodes: int, supported: int, parts: int, expected: str) -> None:
    assert verdict(nodes, supported, parts) == expected


def _conv_shapes(rank: int, *, const_weight: bool = True) -> tuple[GraphNode, ShapeInfo]:
    node = GraphNode("c", "Conv", "", ("x", "w", "b"), ("y",))
    dims: tuple[int, ...] = (1, 3, *([8] * (rank - 2)))
    constants = frozenset({"w", "b"} if const_weight else {"b"})
    return node, ShapeInfo({"x": dims, "w": (4, 3, 3, 3)}, constants)


def test_nnapi_takes_only_2d_conv_with_constant_weights() -> None:
    table = load_table("nnapi")
    assert check_node(*_conv_shapes(4)[:1], table, _conv_shapes(4)[1]) is None
    node, shapes = _conv_shapes(3)
    assert "rank 3" in (check_node(node, table, shapes) or "")
    node, shapes = _conv_shapes(4, const_weight=False)
    assert "must be a constant" in (check_node(node, table, shapes) or "")


def test_coreml_takes_1d_conv_but_nnapi_does_not() -> None:
    node, shapes = _conv_shapes(3)
    assert check_node(node, load_table("coreml"), shapes) is None
    assert check_node(node, load_table("nnapi"), shapes) is not None


def test_dynamic_input_rejected_only_where_fixed_shapes_are_required() -> None:
    node = GraphNode("r", "Relu", "", ("x",), ("y",))
    shapes = ShapeInfo({"x": ("batch", 4)})
    assert "dynamic shape" in (check_node(node, load_table("nnapi"), shapes) or "")
    assert "dynamic shape" in (check_node(node, load_table("qnn"), shapes) or "")
    assert check_node(node, load_table("openvino"), shapes) is None


def test_attribute_rule_and_its_default() -> None:
    table = load_table("nnapi")
    crd = GraphNode("d", "DepthToSpace", "", ("x",), ("y",), {"mode": "CRD", "blocksize": 2})
    dcr = GraphNode("d", "DepthToSpace", "", ("x",), ("y",), {"blocksize": 2})  # default DCR
    shapes = ShapeInfo({"x": (1, 8, 2, 2)})
    assert "mode" in (check_node(crd, table, shapes) or "")
    assert check_node(dcr, table, shapes) is None


def test_coreml_rank_limit() -> None:
    node = GraphNode("r", "Relu", "", ("x",), ("y",))
    assert "rank 6" in (check_node(node, load_table("coreml"), ShapeInfo({"x": (1,) * 6})) or "")
    assert check_node(node, load_table("coreml"), ShapeInfo({"x": (1,) * 5})) is None


def test_report_names_unsupported_nodes_and_caveats(tmp_path: Path) -> None:
    from tests.models import make_planted_fallback

    g = read_graph(make_planted_fallback(tmp_path))
    report = partition_report(g.nodes, load_table("nnapi"), g.shapes)
    assert (report.num_nodes, report.num_supported, report.num_partitions) == (5, 4, 2)
    assert [(u.name, u.op_type) for u in report.unsupported] == [("planted", "Shrink")]
    assert report.unsupported_ops() == {"Shrink": 1}
    assert any(c.startswith("ai.onnx:Conv:") for c in report.caveats)
    data = report.to_json()
    assert data["partition_sizes"] == [2, 2] and data["verdict"] == "MAYBE"


def test_graphinfo_reads_constants_and_dynamic_inputs(tmp_path: Path) -> None:
    from tests.models import make_dynamic_shapes

    g = read_graph(make_dynamic_shapes(tmp_path))
    assert g.dynamic_inputs == ("x",)
    assert {"scale", "shift"} <= g.shapes.constants
    assert g.shapes.shapes["y"] == ("batch", "seq")


def test_graphinfo_folds_constants_at_basic_level(tmp_path: Path) -> None:
    # Add(c1, c2) on two initializers is folded away by ORT's BASIC level.
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["c1", "c2"], ["c3"], "fold_me"),
            helper.make_node("Add", ["x", "c3"], ["y"], "keep"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [
            numpy_helper.from_array(np.array([1, 2], dtype=np.float32), "c1"),
            numpy_helper.from_array(np.array([3, 4], dtype=np.float32), "c2"),
        ],
    )
    path = tmp_path / "fold.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        str(path),
    )
    assert [n.name for n in read_graph(path, optimize="none").nodes] == ["fold_me", "keep"]
    assert [n.name for n in read_graph(path).nodes] == ["keep"]
