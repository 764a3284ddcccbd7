"""Real-model failure classes, each on a small look-alike model: symbolic-expression
output dims, an opset-11 CNN with per-channel static int8, a streaming model (0-d int64
input, state fed back, ``If`` subgraphs), a detector-like head; dynamic dims staying
dynamic on the CPU; ``keep_going``. Each packages, and ``edgeort.load`` runs the bundle
with the fp32 model's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgeort
from edgeort.bundle import open_bundle
from edgeort.errors import UsageError
from edgeort.pack import package
from edgeort.pack.manifest import bundle_dim
from tests.models_real import (
    VAD_CHUNK,
    VAD_STATE,
    make_detector_head,
    make_expr_dims,
    make_opset11_cnn,
    make_vad_like,
    stride_expr,
)


def _fp32(model: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _images(path: Path, n: int, h: int, w: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, image=rng.random((n, 1, 3, h, w), dtype=np.float32))
    return path


def _meta(out: Path) -> dict:
    return dict(open_bundle(out).variants[0].metadata)


# -- symbolic-expression output dims ------------------------------------------------


def test_expression_dims_are_recorded_as_unnamed_and_names_kept() -> None:
    assert bundle_dim("(floor(height/2 - 1/2) + 1)") is None
    assert bundle_dim("x" * 300) is None
    assert bundle_dim("batch") == "batch" and bundle_dim("unk__12") == "unk__12"
    assert bundle_dim(7) == 7 and bundle_dim(None) is None


def test_expression_output_dims_package_and_stay_dynamic(tmp_path: Path) -> None:
    model = make_expr_dims(tmp_path)
    declared = onnx.load(str(model)).graph.output[0].type.tensor_type.shape.dim[2].dim_param
    assert len(declared) > 256 and stride_expr("height", 1) in declared
    out = tmp_path / "expr.ortpackage"
    package(
        model, ["cpu"], output=out, calibration=_images(tmp_path / "c.npz", 16, 32, 32, 0),
        validation=_images(tmp_path / "v.npz", 8, 32, 32, 1), measure_speed=False,
    )  # fmt: skip
    meta = _meta(out)
    assert meta["outputs"][0]["shape"] == [1, 8, None]
    assert meta["inputs"][0]["shape"] == [1, 3, "height", "width"]
    loaded = edgeort.load(out)
    for h, w in ((32, 32), (48, 40)):  # another image size still runs on the CPU variant
        x = np.random.default_rng(h).random((1, 3, h, w), dtype=np.float32)
        got = loaded.run({"image": x})["feat"]
        want = _fp32(model, {"image": x})[0]
        assert got.shape == want.shape
        assert _cosine(got, want) > 0.99


# -- old opsets ------------------------------------------------------------------------


def test_opset11_cnn_per_channel_static_upgrades_the_opset(tmp_path: Path) -> None:
    model = make_opset11_cnn(tmp_path)
    out = tmp_path / "cnn11.ortpackage"
    result = package(
        model, ["cpu"], output=out, calibration=_images(tmp_path / "c.npz", 32, 16, 16, 0),
        validation=_images(tmp_path / "v.npz", 16, 16, 16, 1), measure_speed=False,
    )  # fmt: skip
    meta = _meta(out)
    assert result.variants[0].precision == "int8"
    assert meta["opsets"][""] >= 13
    assert any("opset 11 -> 13" in note for note in meta["prepare"]), meta["prepare"]
    assert meta["recipe"]["per_channel"] is True
    variant = open_bundle(out).variants[0]
    graph = onnx.load(str(out / "model" / variant.name / variant.model_file)).graph
    axes = [a for n in graph.node if n.op_type == "DequantizeLinear" for a in n.attribute]
    assert any(a.name == "axis" for a in axes)  # really per-channel
    x = np.random.default_rng(5).random((1, 3, 16, 16), dtype=np.float32)
    assert (
        _cosine(edgeort.load(out).run({"image": x})["logits"], _fp32(model, {"image": x})[0]) > 0.99
    )


def test_opset_upgrade_failure_falls_back_to_per_tensor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeort.pack import prepare

    # Fault injection: the converter's failure (seen on some exporters' graphs) is
    # simulated; everything else runs for real.
    monkeypatch.setattr(
        prepare, "upgrade_opset", lambda *a, **k: "onnx.version_converter 11 -> 13 failed: X"
    )
    model = make_opset11_cnn(tmp_path)
    out = tmp_path / "cnn11.ortpackage"
    package(
        model, ["cpu"], output=out, calibration=_images(tmp_path / "c.npz", 32, 16, 16, 0),
        measure_speed=False,
    )  # fmt: skip
    meta = _meta(out)
    assert meta["opsets"][""] == 11
    assert any("per-tensor instead of per-channel" in n for n in meta["prepare"])
    assert meta["recipe"]["per_channel"] is False


# -- a streaming model: 0-d int64 input, state, If subgraphs ------------------------


def _vad_data(path: Path, n: int, seed: int, sequences: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {
        "input": rng.standard_normal((n, 1, VAD_CHUNK)).astype(np.float32),
        "sr": np.where(np.arange(n) % 5 == 4, 8000, 16000).astype(np.int64),
    }
    if sequences:
        arrays["__sequence__"] = (np.arange(n) // 8).astype(np.int64)
    np.savez(path, **arrays)
    return path


def _stream(run, chunks: np.ndarray, rates: np.ndarray) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    state = np.zeros(VAD_STATE, dtype=np.float32)
    probs = []
    for chunk, rate in zip(chunks, rates, strict=True):
        prob, state = run({"input": chunk, "state": state, "sr": np.array(rate, dtype=np.int64)})
        probs.append(prob)
    return probs


def test_vad_like_model_packages_with_state_and_runs_a_stream(tmp_path: Path) -> None:
    model = make_vad_like(tmp_path)
    out = tmp_path / "vad.ortpackage"
    result = package(
        model, ["cpu"], output=out, calibration=_vad_data(tmp_path / "c.npz", 32, 0),
        validation=_vad_data(tmp_path / "v.npz", 24, 1, sequences=True), measure_speed=False,
    )  # fmt: skip
    assert result.state == (("state", "stateN"),)
    bundle = open_bundle(out)
    assert bundle.metadata["state"] == [{"input": "state", "output": "stateN"}]
    meta = dict(bundle.variants[0].metadata)
    assert meta["inputs"][2] == {"name": "sr", "dtype": "int64", "shape": []}
    assert meta["accuracy"]["passed"] is True
    loaded = edgeort.load(out)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(9)
    chunks = rng.standard_normal((20, 1, VAD_CHUNK)).astype(np.float32)
    rates = np.array([16000] * 10 + [8000] * 10)

    def packaged(feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        got = loaded.run(feed)
        return got["output"], got["stateN"]

    def reference(feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        prob, state = session.run(None, feed)
        return prob, state

    got, want = _stream(packaged, chunks, rates), _stream(reference, chunks, rates)
    assert np.abs(np.concatenate(got) - np.concatenate(want)).max() < 0.05


def test_state_feedback_runs_the_samples_as_a_sequence(tmp_path: Path) -> None:
    from edgeort.pack import evaluate
    from edgeort.pack.data import load_data
    from edgeort.pack.load import load_model

    model = make_vad_like(tmp_path)
    source = load_model(model)
    pairs = (("state", "stateN"),)
    data = load_data(_vad_data(tmp_path / "v.npz", 16, 2, sequences=True), source.inputs,
                     state=pairs)  # fmt: skip
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    fed: dict[str, np.ndarray] = {}
    outputs = evaluate.run_dataset(session, data, fed=fed)
    rates = data.arrays["sr"]
    want = _stream(lambda f: session.run(None, f), data.arrays["input"][:8], rates[:8])
    want += _stream(lambda f: session.run(None, f), data.arrays["input"][8:], rates[8:])
    assert np.allclose(outputs[0], np.concatenate(want), atol=1e-6)
    assert fed["state"].shape == (16, *VAD_STATE)
    assert not fed["state"][8].any() and fed["state"][9].any()  # sequence 2 starts at zeros


def test_user_state_pairs_replace_detection(tmp_path: Path) -> None:
    model = make_vad_like(tmp_path)
    with pytest.raises(UsageError, match="no output 'nope'"):
        package(model, ["cpu"], output=tmp_path / "x", state={"state": "nope"})
    with pytest.raises(UsageError, match="float32"):
        package(model, ["cpu"], output=tmp_path / "x", state={"sr": "stateN"})
    result = package(model, ["cpu"], output=tmp_path / "none", state={}, measure_speed=False)
    assert result.state == ()
    assert not (tmp_path / "x").exists()


# -- a detector-like head ---------------------------------------------------------------


def test_detector_head_packages_and_keeps_its_boxes(tmp_path: Path) -> None:
    model = make_detector_head(tmp_path)
    out = tmp_path / "det.ortpackage"
    package(
        model, ["cpu"], output=out, calibration=_images(tmp_path / "c.npz", 32, 32, 32, 0),
        validation=_images(tmp_path / "v.npz", 8, 32, 32, 1), measure_speed=False,
    )  # fmt: skip
    loaded = edgeort.load(out)
    x = np.random.default_rng(3).random((1, 3, 32, 32), dtype=np.float32)
    got = loaded.run({"image": x})["detections"]
    want = _fp32(model, {"image": x})[0]
    assert got.shape == want.shape == (1, 7, 64)
    boxes_err = np.abs(got[:, :4] - want[:, :4]).max()
    assert boxes_err < 0.5  # pixels on a 32-pixel image
    assert np.abs(got[:, 4:] - want[:, 4:]).max() < 0.1  # scores in [0, 1]


# -- fixed shapes per target, keep_going ------------------------------------------------


def test_fixed_shape_targets_name_every_dynamic_input() -> None:
    from edgeort.pack.prepare import fix_shapes

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["a", "b"], ["y"], "add")], "two",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, ["n", "h"]),
         onnx.helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, ["n", "w"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", "h"])],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    with pytest.raises(UsageError) as err:
        fix_shapes(model, {})
    assert "--shape a=N,N" in str(err.value) and "--shape b=N,N" in str(err.value)
    notes = fix_shapes(model, {"a": (1, 4), "b": (1, 4)})
    assert any("'a' fixed to [1, 4]" in n for n in notes)
    assert any("'b' fixed to [1, 4]" in n for n in notes)


def test_one_dim_name_on_dims_of_different_sizes_is_fixed_per_dim() -> None:
    """Paddle exports name every unknown dim "?": --shape x=1,3,48,192 must not read
    as "? is 48 and 192"."""
    from edgeort.pack.load import io_info
    from edgeort.pack.prepare import check_shapes, fix_shapes

    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Relu", ["x"], ["y"], "relu")], "paddle",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [-1, 3, "?", "?"])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [-1, 3, "?", "?"])],
    )  # fmt: skip
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    check_shapes({"x": (1, 3, 48, 192)}, io_info(model)[0])  # the early check agrees
    fix_shapes(model, {"x": (1, 3, 48, 192)})
    assert io_info(model)[0][0].shape == (1, 3, 48, 192)  # not 48 x 48
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((1, 3, 48, 192), np.float32)
    assert session.run(None, {"x": x})[0].shape == (1, 3, 48, 192)


def test_keep_going_writes_the_targets_that_passed(tmp_path: Path) -> None:
    model = make_expr_dims(tmp_path)
    calib = _images(tmp_path / "c.npz", 8, 32, 32, 0)
    out = tmp_path / "kg.ortpackage"
    with pytest.raises(UsageError, match="--shape image="):
        package(model, ["cpu", "nnapi"], output=out, calibration=calib, measure_speed=False,
                here=False)  # fmt: skip
    assert not out.exists()
    result = package(
        model, ["cpu", "nnapi"], output=out, calibration=calib, measure_speed=False,
        here=False, keep_going=True,
    )  # fmt: skip
    assert [v.profile for v in result.variants] == ["cpu-x86-64"]
    assert [(f.target, f.error) for f in result.failed] == [("nnapi", "UsageError")]
    assert "--shape image=" in result.failed[0].message
    listed = open_bundle(out).metadata["failed_targets"]
    assert listed[0]["target"] == "nnapi" and "--shape" in listed[0]["message"]
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    assert edgeort.load(out).run({"image": x})["feat"].shape[2] > 0


# -- inputs: 0-d, bool, optional, -1 dims; state detection -------------------------------


def _io_model(tmp_path: Path) -> Path:
    """x float [1, 4], flag bool 0-d, k int64 0-d, scale float [1] with a default."""
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Cast", ["flag"], ["f"], "cast", to=onnx.TensorProto.FLOAT),
         h.make_node("Cast", ["k"], ["kf"], "cast_k", to=onnx.TensorProto.FLOAT),
         h.make_node("Mul", ["x", "f"], ["xf"], "mul"),
         h.make_node("Add", ["xf", "kf"], ["xk"], "add"),
         h.make_node("Mul", ["xk", "scale"], ["y"], "scale_mul")],
        "io",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [-1, 4]),
         h.make_tensor_value_info("flag", onnx.TensorProto.BOOL, []),
         h.make_tensor_value_info("k", onnx.TensorProto.INT64, []),
         h.make_tensor_value_info("scale", onnx.TensorProto.FLOAT, [1])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [-1, 4])],
        [onnx.numpy_helper.from_array(np.array([2.0], dtype=np.float32), "scale")],
    )  # fmt: skip
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "io.onnx"
    onnx.save(model, str(path))
    return path


def test_scalar_bool_optional_and_minus_one_inputs(tmp_path: Path) -> None:
    from edgeort.pack import evaluate
    from edgeort.pack.data import load_data
    from edgeort.pack.load import load_model

    source = load_model(_io_model(tmp_path))
    assert [i.name for i in source.inputs] == ["x", "flag", "k"]
    assert source.inputs[0].shape == (None, 4)  # -1 written by the exporter: dynamic
    assert [o.name for o in source.optional] == ["scale"]
    n = 6
    arrays = {
        "x": np.ones((n, 1, 4), np.float32),
        "flag": np.arange(n) % 2 == 0,
        "k": np.arange(n, dtype=np.int64),
    }
    np.savez(tmp_path / "d.npz", **arrays)
    np.savez(tmp_path / "o.npz", **arrays, scale=np.full((n, 1), 3.0, np.float32))
    session = ort.InferenceSession(str(source.path), providers=["CPUExecutionProvider"])
    for name, scale in (("d.npz", 2.0), ("o.npz", 3.0)):
        data = load_data(tmp_path / name, source.inputs, optional=source.optional)
        feed = data.sample(3)
        assert feed["k"].shape == () and feed["flag"].dtype == np.bool_
        y = evaluate.run_dataset(session, data)[0]
        want = (np.where(arrays["flag"], 1.0, 0.0) + arrays["k"])[:, None] * scale
        assert np.allclose(y, np.broadcast_to(want, (n, 4)))
    out = tmp_path / "io.ortpackage"
    package(source.path, ["cpu"], output=out, validation=tmp_path / "d.npz", measure_speed=False)
    got = edgeort.load(out).run(
        {"x": np.ones((2, 4), np.float32), "flag": np.array(True), "k": np.array(5)}
    )["y"]
    assert np.allclose(got, 12.0)


def test_state_pairs_are_detected_by_name_and_signature() -> None:
    from edgeort.bundle import TensorSpec
    from edgeort.pack.state import detect_pairs, parse_state

    def io(name: str, shape: tuple, dtype: str = "float32") -> TensorSpec:
        return TensorSpec(name, dtype, shape)

    inputs = [
        io("input", (None, None)), io("state", (2, None, 128)), io("sr", (), "int64"),
        io("h", (1, 8)), io("past_key_values.0.key", (1, 2, "past", 4)), io("x_in", (3,)),
        io("c", (1, 8)),
    ]  # fmt: skip
    outputs = [
        io("output", (None, 1)), io("stateN", (None, None, None)), io("hn", (1, 8)),
        io("present.0.key", (1, 2, "total", 4)), io("x_out", (3,)), io("cn", (1, 9)),
    ]  # fmt: skip
    assert detect_pairs(inputs, outputs) == (
        ("state", "stateN"),
        ("h", "hn"),
        ("past_key_values.0.key", "present.0.key"),
        ("x_in", "x_out"),
    )  # fmt: skip  (input/output: no stem; c/cn: dim 1 differs)
    assert parse_state("state=stateN") == ("state", "stateN")
    with pytest.raises(UsageError, match="IN=OUT"):
        parse_state("state")


def test_if_subgraphs_under_static_per_channel_never_crash(tmp_path: Path) -> None:
    from dataclasses import replace

    from edgeort.profiles import Recipe, get_profile

    cpu = get_profile("cpu")
    static = Recipe(
        precision="int8", mode="static", activation_type="int8", weight_type="int8",
        per_channel=True,
    )  # fmt: skip
    profile = replace(
        cpu, name="cpu-static-all", short="cpu", default=False, builtin=False,
        model=replace(cpu.model, recipes={"default": (static,), "cnn": (static,)}),
    )  # fmt: skip
    model = make_vad_like(tmp_path)
    out = tmp_path / "vad-static.ortpackage"
    package(
        model, [profile.name], profiles=[profile], output=out, max_drop=1.0,
        calibration=_vad_data(tmp_path / "c.npz", 32, 0), measure_speed=False,
    )  # fmt: skip
    variant = open_bundle(out).variants[0]
    assert variant.precision == "int8"
    graph = onnx.load(str(out / "model" / variant.name / variant.model_file)).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)
    branches = [a.g for n in graph.node if n.op_type == "If" for a in n.attribute]
    assert len(branches) == 2  # the If survives; its branches are float or quantized
    loaded = edgeort.load(out)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    chunks = np.random.default_rng(4).standard_normal((12, 1, VAD_CHUNK)).astype(np.float32)
    rates = np.array([16000, 8000] * 6)
    got = _stream(lambda f: tuple(loaded.run(f).values()), chunks, rates)
    want = _stream(lambda f: session.run(None, f), chunks, rates)
    error = np.abs(np.concatenate(got) - np.concatenate(want))  # int8 state drifts a little
    assert error.mean() < 0.06 and error.max() < 0.3


def test_cli_state_and_keep_going(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edgeort.cli import cli

    model = make_expr_dims(tmp_path)
    calib = _images(tmp_path / "c.npz", 8, 32, 32, 0)
    out = tmp_path / "cli.ortpackage"
    args = ["package", str(model), "-t", "cpu", "-t", "nnapi", "--elsewhere", "--no-speed",
            "--calibration", str(calib), "-o", str(out)]  # fmt: skip
    bad = CliRunner().invoke(cli, [*args, "--state", "image"])
    assert bad.exit_code == UsageError.exit_code and "IN=OUT" in bad.output
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code == UsageError.exit_code and not out.exists()
    assert "Traceback" not in failed.output
    kept = CliRunner().invoke(cli, [*args, "--keep-going", "--no-state"])
    assert kept.exit_code == 0, kept.output
    assert "nnapi: LEFT OUT (UsageError)" in kept.stdout and "--shape image=" in kept.stdout


def test_scan_rnn_packages_keeps_time_dynamic_and_streams(tmp_path: Path) -> None:
    from tests.models_real import make_scan_rnn

    model = make_scan_rnn(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((24, 1, 6, 8)).astype(np.float32))
    out = tmp_path / "rnn.ortpackage"
    result = package(model, ["cpu"], output=out, calibration=tmp_path / "c.npz",
                     measure_speed=False)  # fmt: skip
    assert result.state == (("h", "hn"),)
    meta = _meta(out)
    assert meta["inputs"][0]["shape"] == [1, "time", 8]
    loaded = edgeort.load(out)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    h_got = h_want = np.zeros((1, 16), np.float32)
    for steps in (5, 9, 3):  # another sequence length each call
        x = rng.standard_normal((1, steps, 8)).astype(np.float32)
        got = loaded.run({"x": x, "h": h_got})
        y_want, h_want = session.run(["y", "hn"], {"x": x, "h": h_want})
        h_got = got["hn"]
        assert got["y"].shape == (1, steps, 16)
        assert np.abs(got["y"] - y_want).max() < 0.1


def test_qnn_recipe_on_a_model_with_metadata_props(tmp_path: Path) -> None:
    """qnn_preprocess_model fails on metadata_props (YOLO exports carry class names
    there): the qnn recipe still builds, and the props survive in the variant."""
    model = make_detector_head(tmp_path)
    proto = onnx.load(str(model))
    onnx.helper.set_model_props(proto, {"names": "{0: 'cat', 1: 'dog', 2: 'bird'}"})
    onnx.save(proto, str(model))
    out = tmp_path / "det-qnn.ortpackage"
    result = package(
        model, ["qnn"], output=out, calibration=_images(tmp_path / "c.npz", 8, 32, 32, 0),
        measure_speed=False, here=False, max_drop=1.0,
    )  # fmt: skip
    variant = open_bundle(out).variants[0]
    assert result.variants[0].precision == "w8a16", result.variants[0].gates
    built = onnx.load(str(out / "model" / variant.name / variant.model_file))
    assert {p.key: p.value for p in built.metadata_props}["names"].startswith("{0: 'cat'")
    assert any(n.op_type == "QuantizeLinear" for n in built.graph.node)


def test_weights_in_constant_nodes_are_quantized_as_weights(tmp_path: Path) -> None:
    """Paddle exports hold every weight in a Constant node, none in initializers: the
    qnn recipe quantized the Conv weights like activations (uint16), which the QNN EP
    refuses. They become initializers first, so they get the recipe's uint8."""
    from tests.models import make_cnn

    model = make_cnn(tmp_path, batch=1)
    proto = onnx.load(str(model))
    for init in proto.graph.initializer:
        proto.graph.node.insert(
            0, onnx.helper.make_node("Constant", [], [init.name], value=init, name=f"c_{init.name}")
        )
    del proto.graph.initializer[:]
    onnx.save(proto, str(model))
    out = tmp_path / "paddle-like.ortpackage"
    package(
        model, ["qnn"], output=out, calibration=_images(tmp_path / "c.npz", 8, 16, 16, 0),
        measure_speed=False, here=False, max_drop=1.0,
    )  # fmt: skip
    variant = open_bundle(out).variants[0]
    built = onnx.load(str(out / "model" / variant.name / variant.model_file))
    inits = {i.name: i for i in built.graph.initializer}
    producers = {o: n for n in built.graph.node for o in n.output}
    convs = [n for n in built.graph.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear" and dq.input[0] in inits, dq
        assert inits[dq.input[0]].data_type == onnx.TensorProto.UINT8
    assert not any(n.op_type == "Constant" for n in built.graph.node)


def test_a_recipe_that_quantizes_nothing_ships_as_fp32_and_says_why(tmp_path: Path) -> None:
    """All compute inside If branches, which the quantizer leaves float: the variant is
    labelled fp32, not int8 (the speed gate and the bundle tell the truth)."""
    h = onnx.helper
    rng = np.random.default_rng(0)

    def branch(name: str) -> onnx.GraphProto:
        w = onnx.numpy_helper.from_array(
            (rng.standard_normal((64, 32)) * 0.2).astype(np.float32), f"{name}.w"
        )
        return h.make_graph(
            [h.make_node("MatMul", ["x", f"{name}.w"], [f"{name}.y"], f"{name}_mm")], name, [],
            [h.make_tensor_value_info(f"{name}.y", onnx.TensorProto.FLOAT, [1, 32])], [w],
        )  # fmt: skip

    graph = h.make_graph(
        [h.make_node("If", ["flag"], ["y"], "pick", then_branch=branch("a"),
                     else_branch=branch("b"))],
        "if_only",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64]),
         h.make_tensor_value_info("flag", onnx.TensorProto.BOOL, [])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32])],
    )  # fmt: skip
    model = tmp_path / "if_only.onnx"
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    onnx.save(proto, str(model))
    np.savez(
        tmp_path / "v.npz", x=rng.standard_normal((8, 1, 64)).astype(np.float32),
        flag=np.arange(8) % 2 == 0,
    )  # fmt: skip
    out = tmp_path / "if.ortpackage"
    result = package(model, ["cpu"], output=out, validation=tmp_path / "v.npz",
                     measure_speed=False)  # fmt: skip
    meta = _meta(out)
    assert result.variants[0].precision == "fp32" and meta["recipe"]["mode"] == "dynamic"
    assert any("quantized no node" in note for note in meta["prepare"]), meta["prepare"]
    x = np.ones((1, 64), np.float32)
    got = edgeort.load(out).run({"x": x, "flag": np.array(False)})["y"]
    assert np.allclose(got, _fp32(model, {"x": x, "flag": np.array(False)})[0], atol=1e-5)
