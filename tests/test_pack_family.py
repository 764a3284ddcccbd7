"""Model families (edgeort.pack.family) and their task metrics, gates and recipes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeort
from edgeort.bundle import open_bundle
from edgeort.errors import UsageError
from edgeort.pack import family, optimize, package
from edgeort.pack.gates import accuracy_gate
from edgeort.pack.metrics import (
    box_agreement,
    compare,
    ctc_agreement,
    decision_agreement,
    map_iou,
    task_value,
)
from edgeort.profiles import Verify
from tests.models import make_bert_like, make_cnn


def _init(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _save(graph: onnx.GraphProto, path: Path, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def make_detector(path: Path, classes: int = 3, size: int = 16) -> Path:
    """A YOLOv8-like net: Conv backbone, a box branch and a class branch (each ending in a
    Conv), then the decode tail: Sigmoid on the boxes' centre/size scaled to pixels,
    Sigmoid on the classes, Concat -> [1, 4 + classes, boxes]."""
    rng = np.random.default_rng(0)
    n = (size // 2) ** 2
    inits = [
        _init("w1", rng.standard_normal((8, 3, 3, 3)) * 0.4),
        _init("w2", rng.standard_normal((8, 8, 3, 3)) * 0.3),
        _init("wb", rng.standard_normal((4, 8, 1, 1)) * 0.5),
        _init("wc", rng.standard_normal((classes, 8, 1, 1)) * 0.8),
        _init("scale", np.float32(size)),
        helper.make_tensor("shape_b", TensorProto.INT64, [3], [1, 4, n]),
        helper.make_tensor("shape_c", TensorProto.INT64, [3], [1, classes, n]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["a1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["a2"], "conv2", pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Relu", ["a2"], ["r2"], "relu2"),
        helper.make_node("Conv", ["r2", "wb"], ["box_raw"], "box_conv"),
        helper.make_node("Conv", ["r2", "wc"], ["cls_raw"], "cls_conv"),
        helper.make_node("Reshape", ["box_raw", "shape_b"], ["box_flat"], "box_reshape"),
        helper.make_node("Sigmoid", ["box_flat"], ["box_sig"], "box_sigmoid"),
        helper.make_node("Mul", ["box_sig", "scale"], ["boxes"], "box_scale"),
        helper.make_node("Reshape", ["cls_raw", "shape_c"], ["cls_flat"], "cls_reshape"),
        helper.make_node("Sigmoid", ["cls_flat"], ["scores"], "cls_sigmoid"),
        helper.make_node("Concat", ["boxes", "scores"], ["out"], "decode_concat", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "detector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4 + classes, n])], inits,
    )  # fmt: skip
    return _save(graph, path)


def _single_output(path: Path, op: str, shape: list[int | str], out_shape: list[int | str]) -> Path:
    """x -> Conv (channels = shape[1]) -> op -> out, for the family tests."""
    rng = np.random.default_rng(1)
    channels = {4: out_shape[1], 2: out_shape[-1]}.get(len(out_shape), 4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1] * 4)]
    inits = [_init("w", rng.standard_normal((channels, shape[1], 3, 3)))]
    last = "c"
    if len(out_shape) == 3:  # [batch, steps, classes]: Conv [1, C, 1, T] -> [1, T, C]
        nodes += [
            helper.make_node("Squeeze", ["c", "axes"], ["sq"], "squeeze"),
            helper.make_node("Transpose", ["sq"], ["tr"], "transpose", perm=[0, 2, 1]),
        ]
        inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [2]))
        last = "tr"
    if len(out_shape) == 2:
        nodes += [
            helper.make_node("GlobalAveragePool", ["c"], ["g"], "gap"),
            helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        ]
        last = "f"
    nodes.append(
        helper.make_node(op, [last], ["out"], "last", **({"axis": -1} if op == "Softmax" else {}))
    )
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)], inits,
    )  # fmt: skip
    return _save(graph, path)


def _family(path: Path, override: str | None = None) -> family.Family:
    model = onnx.load(str(path))
    return family.detect(model, optimize.detect_family(model), override)


def test_families_are_read_off_the_graph(tmp_path: Path) -> None:
    assert _family(make_cnn(tmp_path)).name == "classifier"
    det = _family(make_detector(tmp_path / "det.onnx"))
    assert (det.name, det.layout, det.metric, det.recipes) == ("detector", "yolov8", "boxes", "cnn")
    seg = _single_output(tmp_path / "seg.onnx", "Sigmoid", [1, 3, 8, 8], [1, 1, 8, 8])
    assert _family(seg).name == "segmenter"
    ctc = _single_output(tmp_path / "ctc.onnx", "Softmax", [1, 3, 1, 12], [1, 12, 4])
    assert (_family(ctc).name, _family(ctc).metric) == ("recognizer", "ctc")
    scores = _single_output(tmp_path / "s.onnx", "Sigmoid", [1, 3, 8, 8], [1, 1])
    assert (_family(scores).name, _family(scores).metric) == ("scores", "decision")
    bert = _family(make_bert_like(tmp_path))
    assert (bert.name, bert.metric, bert.recipes) == ("encoder", "embedding", "transformer")


def test_user_family_wins_and_bad_names_say_what_is_expected(tmp_path: Path) -> None:
    det = _family(make_detector(tmp_path / "det.onnx"), "detector:yolov5")
    assert (det.name, det.layout, det.reason) == ("detector", "yolov5", "named by the user")
    assert _family(make_cnn(tmp_path), "segmenter").metric == "map_iou"
    with pytest.raises(UsageError, match="expected one of classifier"):
        family.parse_family("yolo")
    with pytest.raises(UsageError, match="only detector takes a layout"):
        family.parse_family("classifier:yolov8")


def test_head_nodes_are_the_decode_tail_and_the_last_convs(tmp_path: Path) -> None:
    head = set(family.head_nodes(onnx.load(str(make_detector(tmp_path / "d.onnx")))))
    assert {"box_conv", "cls_conv", "box_sigmoid", "cls_sigmoid", "decode_concat"} <= head
    assert not head & {"conv1", "conv2", "relu1", "relu2"}


def _yolov8(
    boxes: list[tuple[float, float, float, float, int, float]], classes: int = 3
) -> np.ndarray:
    """One sample [4 + classes, N] from (cx, cy, w, h, class, score) rows."""
    arr = np.zeros((4 + classes, len(boxes)), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(boxes):
        arr[:4, i] = cx, cy, w, h
        arr[4 + c, i] = s
    return arr


def test_box_agreement_counts_moved_lost_and_relabelled_boxes() -> None:
    ref = [_yolov8([(10, 10, 8, 8, 0, 0.9), (30, 30, 10, 10, 1, 0.8), (50, 50, 6, 6, 2, 0.1)])]
    same = box_agreement([np.stack(ref)], [np.stack(ref)])
    assert same == 1.0
    moved = _yolov8([(11.5, 10, 8, 8, 0, 0.9), (30, 30, 10, 10, 1, 0.8)])  # IoU 0.68 < 0.9
    assert box_agreement([np.stack(ref)], [moved[None]]) == 0.5
    relabelled = _yolov8([(10, 10, 8, 8, 1, 0.9), (30, 30, 10, 10, 1, 0.8)])
    assert box_agreement([np.stack(ref)], [relabelled[None]]) == 0.5
    extra = _yolov8([(10, 10, 8, 8, 0, 0.9), (30, 30, 10, 10, 1, 0.8), (70, 70, 5, 5, 2, 0.7)])
    assert box_agreement([np.stack(ref)], [extra[None]]) == pytest.approx(2 / 3)
    # yolov5 layout: [N, 5 + classes] with objectness
    v5 = np.array([[[10, 10, 8, 8, 0.9, 1.0, 0.0], [30, 30, 9, 9, 0.1, 1.0, 0.0]]], np.float32)
    v5_moved = v5.copy()
    v5_moved[0, 0, 0] += 3
    assert box_agreement([v5], [v5], "yolov5") == 1.0
    assert box_agreement([v5], [v5_moved], "yolov5") == 0.0


def test_map_ctc_decision_and_top1_metrics() -> None:
    ref = np.zeros((2, 1, 4, 4), np.float32)
    ref[:, :, :2] = 0.9
    got = ref.copy()
    got[0, 0, 0, 0] = 0.1  # one of 16 positive pixels lost
    assert map_iou([ref], [got]) == pytest.approx(15 / 16)
    steps = np.eye(4, dtype=np.float32)[[1, 1, 0, 2, 2, 3]][None]  # "1 2 3" with blank 0
    same_text = np.eye(4, dtype=np.float32)[[1, 0, 0, 2, 3, 3]][None]
    other = np.eye(4, dtype=np.float32)[[1, 1, 0, 1, 2, 3]][None]  # "1 1 2 3"
    assert ctc_agreement([steps], [same_text]) == 1.0
    assert ctc_agreement([steps], [other]) == 0.0
    ids = np.array([[[1, 1, 0, 2, 2, 3]]], np.int64)  # argmax taken inside the model
    assert ctc_agreement([ids], [np.array([[[1, 0, 2, 0, 3, 0]]], np.int64)]) == 1.0
    assert decision_agreement([np.array([[0.2], [0.7]])], [np.array([[0.4], [0.45]])]) == 0.5
    logits = np.array([[1.0, 2.0], [3.0, 0.0]])
    assert task_value("top1", [logits], [np.array([[2.0, 1.0], [3.0, 0.0]])]) == 0.5


def test_task_metric_gates_with_its_own_bound_and_custom_metric() -> None:
    ref = [_yolov8([(10, 10, 8, 8, 0, 0.9), (30, 30, 10, 10, 1, 0.8)])[None]]
    moved = [_yolov8([(12, 10, 8, 8, 0, 0.9), (30, 30, 10, 10, 1, 0.8)])[None]]
    metrics = compare(ref, moved, task="boxes", layout="yolov8")
    gate = accuracy_gate(metrics, Verify())
    assert (gate.metric, gate.value, gate.bound, gate.passed) == ("boxes", 0.5, 0.95, False)
    assert accuracy_gate(metrics, Verify(), max_drop=0.5).passed

    def half(reference: object, outputs: object) -> float:
        return 0.5

    custom = compare(ref, ref, custom=half)
    gate = accuracy_gate(custom, Verify(max_drop=0.4))
    assert (gate.metric, gate.value, gate.bound, gate.passed) == ("half", 0.5, 0.6, False)


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("det")
    rng = np.random.default_rng(3)
    np.savez(tmp / "calib.npz", x=rng.random((16, 3, 16, 16)).astype(np.float32))
    return make_detector(tmp / "det.onnx"), tmp / "calib.npz"


def test_detector_packages_with_a_float_decode_tail_and_the_boxes_metric(
    detector: tuple[Path, Path], tmp_path: Path
) -> None:
    model, calib = detector
    out = tmp_path / "det.ortpackage"
    result = package(model, ["cpu"], output=out, calibration=calib, measure_speed=False)
    variant = result.variants[0]
    acc = variant.accuracy
    assert acc["metric"] == "boxes" and acc["bound"] == pytest.approx(0.95)
    assert acc["value"] >= acc["bound"] and acc["passed"]
    bundle = open_bundle(out)
    meta = next(v for v in bundle.variants if v.name == variant.name).metadata
    assert meta["accuracy"]["metric"] == "boxes" and meta["accuracy"]["value"] == acc["value"]
    if variant.precision == "int8":
        built = onnx.load(str(out / "model" / variant.name / "model.onnx"))
        dq_inputs = {
            o for n in built.graph.node if n.op_type == "DequantizeLinear" for o in n.output
        }
        tail = [n for n in built.graph.node if n.op_type in ("Sigmoid", "Concat", "Mul")]
        assert tail and not any(i in dq_inputs for n in tail for i in n.input)
        assert any(n.op_type == "DequantizeLinear" for n in built.graph.node)
    xs = np.load(calib)["x"]
    loaded = edgeort.load(out)
    got = np.stack([loaded.run({"x": xs[i : i + 1]})["out"][0] for i in range(len(xs))])
    want = np.stack([onnx_run(model, xs[i : i + 1])[0] for i in range(len(xs))])
    assert box_agreement([want], [got]) == pytest.approx(acc["value"])  # the gate's figure


def onnx_run(model: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]


def test_metric_override_by_name_and_by_callable(
    detector: tuple[Path, Path], tmp_path: Path
) -> None:
    model, calib = detector
    result = package(
        model, ["cpu"], output=tmp_path / "a", calibration=calib, measure_speed=False,
        metric="cosine",
    )  # fmt: skip
    assert result.variants[0].accuracy["metric"] == "cosine"

    def always_fine(reference: object, outputs: object) -> float:
        return 1.0

    result = package(
        model, ["cpu"], output=tmp_path / "b", calibration=calib, measure_speed=False,
        metric=always_fine, family="detector:yolov5",
    )  # fmt: skip
    acc = result.variants[0].accuracy
    assert (acc["metric"], acc["value"]) == ("always_fine", 1.0)
    with pytest.raises(UsageError, match="--metric 'iou'"):
        package(model, ["cpu"], output=tmp_path / "c", calibration=calib, metric="iou")
