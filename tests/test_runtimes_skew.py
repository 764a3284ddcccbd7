"""Version skew for real: bundles built here (onnxruntime 1.32) loaded by onnxruntime
1.24.4 in its own runtime. The digits bundle runs there; a bundle whose model needs a
newer opset is refused before ORT sees it, naming the version it needs; packaged with
``--min-ort 1.24`` it is down-converted, records it, and runs there with the same
outputs. The 1.24 row of edgeort.runtime.ortcompat's table is re-measured in the runtime."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeort.errors import NoVariantError
from edgeort.runtime.ortcompat import ORT_ONNX_TABLE
from tests.conftest import REPO
from tests.runtimes_support import make_runtime

DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module")
def old_runtime() -> object:
    return make_runtime("cpu-1.24")


def mlp(opset: int, ir: int = 10) -> onnx.ModelProto:
    """A small MLP (MatMul, Add, Relu, Softmax) stamped with ``opset``/``ir``."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 4)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["h1"], name="add1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["z"], name="mm2"),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    return model


def _run_in(runtime: object, bundle: Path, x: np.ndarray, tmp: Path) -> dict:
    np.save(tmp / "x.npy", x)
    with runtime.worker() as worker:  # type: ignore[attr-defined]
        assert worker.hello["onnxruntime"] == "1.24.4"
        return worker.call(
            {
                "job": "run",
                "bundle": str(bundle),
                "inputs": {"x": {"npy": str(tmp / "x.npy"), "stacked": False}},
                "out_dir": str(tmp),
            }
        )


def test_the_digits_bundle_built_with_1_32_runs_in_1_24(
    old_runtime: object, tmp_path: Path
) -> None:
    from edgeort.pack import package

    out = tmp_path / "digits.ortpackage"
    package(DIGITS / "model.onnx", ["cpu"], output=out,
            calibration=DIGITS / "calibration.npz", measure_speed=False)  # fmt: skip
    data = np.load(DIGITS / "validation.npz")["image"][:8]
    np.save(tmp_path / "x.npy", data)
    with old_runtime.worker() as worker:  # type: ignore[attr-defined]
        run = worker.call(
            {
                "job": "run",
                "bundle": str(out),
                "inputs": {"image": {"npy": str(tmp_path / "x.npy"), "stacked": False}},
                "out_dir": str(tmp_path),
            }
        )
    assert run["onnxruntime"] == "1.24.4" and run["ep"] == "CPUExecutionProvider"
    assert np.load(run["outputs"]["logits"]).shape == (8, 10)


def test_a_newer_opset_is_refused_before_ort_then_min_ort_makes_it_run(
    old_runtime: object, tmp_path: Path
) -> None:
    from edgeort.pack import package

    src = tmp_path / "mlp26.onnx"
    onnx.save(mlp(26), src)
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    plain = tmp_path / "plain.ortpackage"
    package(src, ["cpu-x86-64"], output=plain, measure_speed=False)
    with pytest.raises(NoVariantError) as caught:
        _run_in(old_runtime, plain, x, tmp_path)
    message = str(caught.value)
    # The guard's words (before ORT): the opset, the version needed, the one installed.
    assert "ai.onnx opset 26: needs onnxruntime >= 1.32" in message
    assert "installed onnxruntime 1.24.4 loads up to IR 13, ai.onnx opset 25" in message
    assert "[ONNXRuntimeError]" not in message

    fitted = tmp_path / "fitted.ortpackage"
    result = package(src, ["cpu-x86-64"], output=fitted, measure_speed=False, min_ort="1.24")
    assert result.variants[0].accuracy["passed"] is True
    from edgeort.bundle import open_bundle

    recorded = open_bundle(fitted).variants[0]
    assert recorded.opsets[""] == 25
    assert recorded.metadata["compat"]["min_ort"] == "1.24"
    assert any("opset 26 -> 25" in c for c in recorded.metadata["compat"]["converted"])
    run = _run_in(old_runtime, fitted, x, tmp_path)
    assert run["onnxruntime"] == "1.24.4"
    got = np.load(run["outputs"]["y"])
    np.testing.assert_allclose(got, ref, rtol=0.05, atol=0.02)  # int8 dynamic variant


def test_the_1_24_row_of_the_version_table_holds_in_the_runtime(
    old_runtime: object, tmp_path: Path
) -> None:
    row = next(r for r in ORT_ONNX_TABLE if r.ort == "1.24")
    cases = {
        "fits": (row.max_opset, row.max_ir, True),
        "opset": (row.max_opset + 1, row.max_ir, False),
        "ir": (row.max_opset, row.max_ir + 1, False),
    }
    for name, (opset, ir, _) in cases.items():
        onnx.save(mlp(opset, ir), tmp_path / f"{name}.onnx")
    script = (
        "import json, sys, onnxruntime as ort\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        ort.InferenceSession(sys.argv[1] + '/' + name + '.onnx',"
        " providers=['CPUExecutionProvider']); out[name] = True\n"
        "    except Exception:\n"
        "        out[name] = False\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(old_runtime.python), "-c", script, str(tmp_path), *cases],  # type: ignore[attr-defined]
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    loads = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loads == {name: want for name, (_, _, want) in cases.items()}
