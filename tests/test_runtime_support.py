"""Helpers for the runtime tests: tiny ONNX models built with onnx.helper, bundles from them.

(Named test_* only so it sits with the runtime tests; the two tests at the bottom check
the helpers themselves.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OPSET = 17


@dataclass(frozen=True, slots=True)
class Spec:
    """A TensorSpec-like signature entry for tests on plain ONNX files."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] | None


def chain_model(
    ops: tuple[str, ...] = ("Relu",),
    *,
    shape: list[int | str] | None = None,
    opset: int = OPSET,
    ir_version: int = 8,
) -> onnx.ModelProto:
    """x -> op1 -> op2 ... -> y, float32, named nodes."""
    shape = shape if shape is not None else ["batch", 4]
    nodes, prev = [], "x"
    for i, op in enumerate(ops):
        out = "y" if i == len(ops) - 1 else f"t{i}"
        nodes.append(helper.make_node(op, [prev], [out], name=f"n{i}_{op}"))
        prev = out
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model


def two_input_model() -> onnx.ModelProto:
    """y = Relu(x) * 2 with x float32 [batch, 4]; z = ids + 1 with ids int64 [2, 3]."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.INT64, [], [1])
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "two"], ["y"], name="mul"),
        helper.make_node("Add", ["ids", "one"], ["z"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "two",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("z", TensorProto.INT64, [2, 3]),
        ],
        initializer=[two, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


TWO_INPUT_SPECS = (
    (Spec("x", "float32", ("batch", 4)), Spec("ids", "int64", (2, 3))),
    (Spec("y", "float32", ("batch", 4)), Spec("z", "int64", (2, 3))),
)


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def cpu_session(model: onnx.ModelProto, **config: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    for key, value in config.items():
        so.add_session_config_entry(key, value)
    return ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"], enable_fallback=0
    )


def reference_two_input(x: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": np.maximum(x, 0) * 2, "z": ids + 1}


class InferenceSessionSpy:
    """Counts InferenceSession constructions (monkeypatched over onnxruntime's class)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args[0] if args else kwargs.get("path_or_bytes"))
        return self.real(*args, **kwargs)


def test_chain_model_runs_in_ort() -> None:
    session = cpu_session(chain_model(("Relu", "Neg")))
    x = np.array([[1.0, -2.0, 3.0, -4.0]], np.float32)
    (y,) = session.run(None, {"x": x})
    np.testing.assert_array_equal(y, -np.maximum(x, 0))


def test_two_input_model_matches_reference() -> None:
    session = cpu_session(two_input_model())
    x = np.array([[1.0, -2.0, 3.0, -4.0]], np.float32)
    ids = np.arange(6, dtype=np.int64).reshape(2, 3)
    y, z = session.run(None, {"x": x, "ids": ids})
    ref = reference_two_input(x, ids)
    np.testing.assert_array_equal(y, ref["y"])
    np.testing.assert_array_equal(z, ref["z"])


# -- bundles ---------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits" / "model.onnx"
EP_PACKAGES = {
    "CPUExecutionProvider": "onnxruntime",
    "OpenVINOExecutionProvider": "onnxruntime-ep-openvino",
    "QNNExecutionProvider": "onnxruntime-qnn",
}


def fixed_batch(model: onnx.ModelProto, batch: int = 1) -> onnx.ModelProto:
    """A copy whose first input/output dim is fixed (QNN wants static shapes)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for value in (*out.graph.input, *out.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
    return out


def signature(model: onnx.ModelProto) -> tuple[list[Any], list[Any]]:
    """bundle.TensorSpec lists read from an ONNX model's graph inputs/outputs."""
    from edgeort.bundle import TensorSpec

    def spec(value: onnx.ValueInfoProto) -> Any:
        t = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
        return TensorSpec(value.name, dtype, dims)

    return [spec(v) for v in model.graph.input], [spec(v) for v in model.graph.output]


def variant_spec(
    tmp: Path,
    name: str,
    ep: str,
    model: onnx.ModelProto,
    *,
    profile: str,
    device: str = "",
    provider_options: dict[str, str] | None = None,
    session_options: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    min_ort: str = "1.24.2",
    ir_version: int | None = None,
    opsets: dict[str, int] | None = None,
) -> Any:
    """A VariantSpec for ``model`` saved under tmp/src/<name>/model.onnx."""
    from edgeort.bundle import VariantSpec

    src = tmp / "src" / name
    save(model, src / "model.onnx")
    inputs, outputs = signature(model)
    return VariantSpec(
        name=name,
        ep=ep,
        device=device,
        source_dir=src,
        model_file="model.onnx",
        provider_options=provider_options or {},
        session_options=session_options or {},
        profile=profile,
        profile_version="1",
        precision="fp32",
        inputs=inputs,
        outputs=outputs,
        ir_version=ir_version if ir_version is not None else model.ir_version,
        opsets=opsets if opsets is not None else {o.domain: o.version for o in model.opset_import},
        min_ort=min_ort,
        ep_package=EP_PACKAGES.get(ep, "onnxruntime"),
        metadata=metadata or {},
    )


QNN_OPTIONS = {"backend_type": "htp"}


def example_bundle(tmp: Path, *, zip: bool = False, with_qnn: bool = True) -> Path:
    """examples/digits as openvino + cpu (+ qnn, fixed batch 1) variants."""
    from edgeort.bundle import write_bundle

    model = onnx.load(EXAMPLE)
    specs = [
        variant_spec(
            tmp, "openvino-cpu", "OpenVINOExecutionProvider", model, profile="openvino-cpu"
        ),
        variant_spec(tmp, "cpu", "CPUExecutionProvider", model, profile="cpu-x86-64", device="cpu"),
    ]
    if with_qnn:
        specs.append(
            variant_spec(
                tmp,
                "qnn",
                "QNNExecutionProvider",
                fixed_batch(model),
                profile="qnn-htp",
                provider_options=QNN_OPTIONS,
            )
        )
    out = tmp / ("digits.zip" if zip else "digits.ortpackage")
    return write_bundle(out, specs, package_name="digits", zip=zip)


def digits_input(batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 1, 8, 8)).astype(np.float32)


def digits_reference(x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(EXAMPLE), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def openvino_has_device() -> bool:
    from edgeort.hardware.plugins import ep_devices

    return bool(ep_devices("OpenVINOExecutionProvider"))
