"""``--freeze``: an input frozen to one value for fixed-shape targets, and the ``If``
nodes it (or a fixed shape) decides folded to the branch taken. The look-alike of
silero-vad's sample-rate switch fails ONNX Runtime's shape inference at fixed sizes
unless the branch the model never takes there is gone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

import edgeort
from edgeort.bundle import open_bundle
from edgeort.cli import cli
from edgeort.errors import DataError, InputError, PackageError, UsageError
from edgeort.pack import package
from edgeort.pack.freeze import apply_freeze, check_freeze, fold_constant_ifs
from edgeort.pack.load import io_info
from tests.models_real import make_rate_switch

FIXED_CPU = """[profile]
name = "cpu-fixed"
extends = "cpu-x86-64"
description = "the CPU EP with fixed shapes (tests: a fixed-shape target that runs here)"

[model]
fixed_shapes = true
"""


def _data(path: Path, n: int, seed: int, sr: int = 16000) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        input=rng.standard_normal((n, 64)).astype(np.float32),
        sr=np.full(n, sr, dtype=np.int64),
    )
    return path


@pytest.fixture
def fixed_profile(tmp_path: Path) -> Path:
    path = tmp_path / "cpu-fixed.toml"
    path.write_text(FIXED_CPU)
    return path


def _package(tmp_path: Path, profile: Path, **kw: object) -> Path:
    model = make_rate_switch(tmp_path)
    out = tmp_path / "rs.ortpackage"
    package(
        model, ["cpu", "cpu-fixed"], output=out, profiles=[profile],
        calibration=_data(tmp_path / "c.npz", 16, 0),
        validation=_data(tmp_path / "v.npz", 8, 1), shapes={"input": (1, 64)},
        measure_speed=False, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return out


def test_fixed_shapes_without_freeze_fail_naming_the_branch_and_the_way_out(
    tmp_path: Path, fixed_profile: Path
) -> None:
    with pytest.raises(PackageError) as err:
        _package(tmp_path, fixed_profile)
    assert "k8_view" in str(err.value)
    assert "--freeze NAME=VALUE" in str(err.value)
    assert not (tmp_path / "rs.ortpackage").exists()


def test_frozen_input_packages_folds_the_if_and_runs_with_fp32_answers(
    tmp_path: Path, fixed_profile: Path
) -> None:
    out = _package(tmp_path, fixed_profile, freeze={"sr": 16000})
    bundle = open_bundle(out)
    by_profile = {v.profile: v for v in bundle.variants}
    fixed = by_profile.pop("cpu-fixed")
    (dynamic,) = by_profile.values()  # the cpu profile that fits here
    assert fixed.metadata["frozen_inputs"] == {"sr": {"dtype": "int64", "value": 16000}}
    assert "frozen_inputs" not in dynamic.metadata
    notes = fixed.metadata["prepare"]
    assert "input 'sr' frozen to 16000 (--freeze)" in notes
    assert "If node 'rate_branch': kept its then_branch" in notes
    variant_model = onnx.load(str(bundle.model_path(fixed)))
    assert [n.op_type for n in variant_model.graph.node].count("If") == 0
    assert [i.name for i in variant_model.graph.input] == ["input", "sr"]  # same feeds
    assert fixed.metadata["inputs"][0]["shape"] == [1, 64]

    reference = ort.InferenceSession(str(tmp_path / "rate_switch.onnx"))
    x = np.random.default_rng(5).standard_normal((1, 64)).astype(np.float32)
    feed = {"input": x, "sr": np.array(16000, dtype=np.int64)}
    model = edgeort.load(out, profile="cpu-fixed")
    assert model.variant.profile == "cpu-fixed"
    got, want = model.run(feed)["output"].ravel(), reference.run(None, feed)[0].ravel()
    assert float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)) > 0.99
    # with the If gone its MatMul is in the main graph, where the int8 recipe reaches it;
    # the dynamic variant keeps the If, and its recipe quantizes nothing (fp32, said so)
    assert (fixed.precision, dynamic.precision) == ("int8", "fp32")
    with pytest.raises(InputError) as err:
        model.run({**feed, "sr": np.array(8000, dtype=np.int64)})
    assert err.value.input_name == "sr"
    assert "frozen to 16000" in str(err.value)
    # the dynamic CPU variant keeps the If and takes any rate
    cpu = edgeort.load(out, profile=dynamic.profile)
    x63 = x[:, :63]
    got = cpu.run({"input": x63, "sr": np.array(8000, dtype=np.int64)})["output"]
    want = reference.run(None, {"input": x63, "sr": np.array(8000, dtype=np.int64)})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_data_at_another_value_is_refused_naming_file_and_sample(
    tmp_path: Path, fixed_profile: Path
) -> None:
    model = make_rate_switch(tmp_path)
    bad = _data(tmp_path / "v8k.npz", 4, 1, sr=8000)
    with pytest.raises(DataError) as err:
        package(
            model, ["cpu-fixed"], output=tmp_path / "x", profiles=[fixed_profile],
            calibration=_data(tmp_path / "c.npz", 8, 0), validation=bad,
            shapes={"input": (1, 64)}, freeze={"sr": 16000}, measure_speed=False,
        )  # fmt: skip
    assert "v8k.npz" in str(err.value) and "'sr'" in str(err.value) and "8000" in str(err.value)


def test_freeze_needs_a_fixed_shape_target(tmp_path: Path) -> None:
    model = make_rate_switch(tmp_path)
    with pytest.raises(UsageError) as err:
        package(model, ["cpu"], output=tmp_path / "x", freeze={"sr": 16000}, measure_speed=False)
    assert err.value.option == "--freeze" and "fix shapes" in str(err.value)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"rate": "16000"}, "no input 'rate'"),
        ({"sr": "16000.5"}, "not an integer"),
        ({"sr": "16000,8000"}, "has shape []"),
        ({"sr": "fast"}, "not a value of input 'sr'"),
    ],
)
def test_freeze_values_are_checked_against_the_input(
    tmp_path: Path, values: dict[str, str], words: str
) -> None:
    inputs = io_info(onnx.load(str(make_rate_switch(tmp_path))))[0]
    with pytest.raises(UsageError) as err:
        check_freeze(values, inputs)
    assert words in str(err.value) and err.value.option == "--freeze"
    assert check_freeze({"sr": "16000"}, inputs)["sr"].dtype == np.int64


def _shape_switch(dim: int | str) -> onnx.ModelProto:
    """``if x.shape[0] == 1: squeeze(x, 0) else: identity`` nested in an ``If`` on a
    flag input, as PyTorch exports an RNN's batch check."""
    squeeze = helper.make_graph(
        [helper.make_node("Squeeze", ["x", "zero"], ["sq"])], "sq", [],
        [helper.make_tensor_value_info("sq", TensorProto.FLOAT, None)],
    )  # fmt: skip
    ident = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["id"])], "id", [],
        [helper.make_tensor_value_info("id", TensorProto.FLOAT, None)],
    )  # fmt: skip
    inner_nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
        helper.make_node("Equal", ["batch", "one"], ["is_one"]),
        helper.make_node("If", ["is_one"], ["y"], then_branch=squeeze, else_branch=ident),
    ]
    outer_then = helper.make_graph(
        inner_nodes, "then", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    outer_else = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["n"])], "else", [],
        [helper.make_tensor_value_info("n", TensorProto.FLOAT, None)],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["out"], then_branch=outer_then, else_branch=outer_else)],
        "switch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim, 4]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
         helper.make_tensor("one", TensorProto.INT64, [], [1])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_nested_ifs_fold_on_a_frozen_flag_and_a_fixed_shape() -> None:
    model = _shape_switch(1)
    notes = apply_freeze(model, {"flag": np.array(True)})
    assert notes[0] == "input 'flag' frozen to True (--freeze)"
    assert len(notes) == 3  # the flag's If, then the shape check's If
    assert all(n.op_type != "If" for n in model.graph.node)
    assert any(n.op_type == "Squeeze" for n in model.graph.node)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(session.run(None, {"x": x, "flag": np.array(True)})[0], x[0])


def test_a_shape_check_on_a_dynamic_dim_is_left_alone() -> None:
    model = _shape_switch("batch")
    apply_freeze(model, {"flag": np.array(True)})
    assert [n.op_type for n in model.graph.node].count("If") == 1  # the batch check stays
    untouched = _shape_switch("batch")
    assert fold_constant_ifs(untouched) == []  # nothing constant without a frozen flag


def test_cli_freeze(tmp_path: Path, fixed_profile: Path) -> None:
    model = make_rate_switch(tmp_path)
    common = [
        "package", str(model), "-t", "cpu-fixed", "--profile", str(fixed_profile),
        "--calibration", str(_data(tmp_path / "c.npz", 8, 0)), "--shape", "input=1,64",
        "--no-speed",
    ]  # fmt: skip
    bad = CliRunner().invoke(cli, [*common, "-o", str(tmp_path / "a"), "--freeze", "sr"])
    assert bad.exit_code != 0 and "expected NAME=VALUE" in bad.output
    twice = ["--freeze", "sr=16000", "--freeze", "sr=8000"]
    bad = CliRunner().invoke(cli, [*common, "-o", str(tmp_path / "a"), *twice])
    assert bad.exit_code == 2 and "--freeze sr=... given twice" in bad.output
    ok = CliRunner().invoke(cli, [*common, "-o", str(tmp_path / "b"), "--freeze", "sr=16000"])
    assert ok.exit_code == 0, ok.output
    (variant,) = open_bundle(tmp_path / "b").variants
    assert variant.metadata["frozen_inputs"]["sr"]["value"] == 16000


def test_an_input_that_is_also_an_output_stays_valid() -> None:
    """Only node inputs read the constant: an input passed straight to an output keeps
    reading the (still declared) graph input, so the model stays valid ONNX."""
    model = _shape_switch(1)
    model.graph.output.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    apply_freeze(model, {"flag": np.array(True)})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((1, 4), np.float32)
    assert session.run(["flag"], {"x": x, "flag": np.array(True)})[0]
