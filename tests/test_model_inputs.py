"""Model.run(): validation against the recorded signature, error translation, threads."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgeort.errors import EdgeortError, InputError, ProviderError, UsageError
from edgeort.runtime.model import Model
from tests.test_runtime_support import (
    OPSET,
    TWO_INPUT_SPECS,
    Spec,
    chain_model,
    cpu_session,
    reference_two_input,
    two_input_model,
)

X = np.array([[1.0, -2.0, 3.0, -4.0], [0.5, -0.5, 2.0, -2.0]], np.float32)
IDS = np.arange(6, dtype=np.int64).reshape(2, 3)


@pytest.fixture
def model() -> Model:
    session = cpu_session(two_input_model(), **{"session.record_ep_graph_assignment_info": "1"})
    inputs, outputs = TWO_INPUT_SPECS
    return Model(session, inputs=inputs, outputs=outputs)


def assert_matches(result: dict[str, np.ndarray], x: np.ndarray, ids: np.ndarray) -> None:
    ref = reference_two_input(x, ids)
    assert set(result) == {"y", "z"}
    np.testing.assert_array_equal(result["y"], ref["y"])
    np.testing.assert_array_equal(result["z"], ref["z"])
    assert result["y"].dtype == np.float32 and result["z"].dtype == np.int64


def test_run_returns_outputs_by_name(model: Model) -> None:
    assert_matches(model.run({"x": X, "ids": IDS}), X, IDS)
    assert_matches(model({"x": X, "ids": IDS}), X, IDS)


def test_output_names_selects_outputs(model: Model) -> None:
    result = model.run({"x": X, "ids": IDS}, output_names=["z"])
    assert list(result) == ["z"]
    np.testing.assert_array_equal(result["z"], IDS + 1)


def test_unknown_output_name_is_usage_error(model: Model) -> None:
    with pytest.raises(UsageError, match="'nope'"):
        model.run({"x": X, "ids": IDS}, output_names=["nope"])


def test_wrong_dtype_names_input_expected_and_got(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X.astype(np.float64), "ids": IDS})
    err = info.value
    assert err.input_name == "x"
    assert "float32" in err.expected and "float64" in err.got
    assert "'x'" in str(err) and "float64" in str(err)


def test_int32_for_int64_is_refused_not_cast(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X, "ids": IDS.astype(np.int32)})
    assert info.value.input_name == "ids" and "int32" in info.value.got


def test_wrong_rank_names_input(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X[0], "ids": IDS})
    assert info.value.input_name == "x"
    assert "rank 1" in str(info.value) and "(batch, 4)" in info.value.expected


def test_wrong_fixed_dim_names_input_and_axis(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X, "ids": np.zeros((2, 4), np.int64)})
    assert info.value.input_name == "ids"
    assert "dim 1" in str(info.value) and "(2, 4)" in info.value.got


def test_symbolic_dim_accepts_any_size(model: Model) -> None:
    x = np.ones((7, 4), np.float32)
    assert model.run({"x": x, "ids": IDS})["y"].shape == (7, 4)


def test_missing_input_names_it(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X})
    assert info.value.input_name == "ids"
    assert "missing input 'ids'" in str(info.value)


def test_extra_input_names_it(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X, "ids": IDS, "mask": X})
    assert info.value.input_name == "mask"
    assert "unknown input 'mask'" in str(info.value)


def test_renamed_input_reports_the_missing_one(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X, "idz": IDS})
    assert info.value.input_name == "ids"


def test_feeds_must_be_a_mapping(model: Model) -> None:
    with pytest.raises(InputError, match="mapping"):
        model.run([X, IDS])  # type: ignore[arg-type]


def test_python_lists_are_converted_to_expected_dtype(model: Model) -> None:
    result = model.run({"x": [[1, -2, 3, -4]], "ids": [[0, 1, 2], [3, 4, 5]]})
    assert_matches(result, np.array([[1, -2, 3, -4]], np.float32), IDS)


def test_float_list_for_int_input_is_refused(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": X, "ids": [[0.5, 1, 2], [3, 4, 5]]})
    assert info.value.input_name == "ids" and "float64" in info.value.got


def test_ragged_list_is_input_error(model: Model) -> None:
    with pytest.raises(InputError) as info:
        model.run({"x": [[1.0, 2.0], [1.0]], "ids": IDS})
    assert info.value.input_name == "x"


def test_non_contiguous_arrays_give_the_contiguous_result(model: Model) -> None:
    wide = np.arange(32, dtype=np.float32).reshape(2, 16) - 10
    x = wide[:, ::4]
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)[:2, :3]
    assert not x.flags.c_contiguous and not ids.flags.c_contiguous
    assert_matches(model.run({"x": x, "ids": ids}), np.ascontiguousarray(x), ids.copy())


def test_scalar_input_from_python_number() -> None:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["s"], ["o"])],
        "scalar",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [])],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = 8
    m = Model(
        cpu_session(onnx_model),
        inputs=[Spec("s", "float32", ())],
        outputs=[Spec("o", "float32", ())],
    )
    out = m.run({"s": 3})["o"]
    assert out.shape == () and out.dtype == np.float32 and float(out) == -3.0


def test_ort_failure_during_run_is_translated() -> None:
    # a, b share no fixed dims: the signature check passes and ORT's Add fails broadcasting.
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["m"]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["k"])],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = 8
    specs = [Spec("a", "float32", ("n",)), Spec("b", "float32", ("m",))]
    m = Model(cpu_session(onnx_model), inputs=specs, outputs=[Spec("c", "float32", ("k",))])
    with pytest.raises(EdgeortError) as info:
        m.run({"a": np.ones(3, np.float32), "b": np.ones(4, np.float32)})
    assert isinstance(info.value, (InputError, ProviderError))
    assert "run() failed" in str(info.value)
    assert type(info.value.__cause__).__module__.startswith("onnxruntime")


def test_placement_counts_nodes_per_ep(model: Model) -> None:
    placement = model.placement()
    assert placement.counts == {"CPUExecutionProvider": len(placement.nodes)}
    assert {n.op_type for n in placement.nodes} >= {"Relu", "Add"}
    assert "CPUExecutionProvider" in str(placement)


def test_placement_without_recording_is_usage_error() -> None:
    inputs, outputs = TWO_INPUT_SPECS
    m = Model(cpu_session(two_input_model()), inputs=inputs, outputs=outputs)
    with pytest.raises(UsageError, match="record_ep_graph_assignment_info"):
        m.placement()


def test_io_binding_on_cpu_matches_run(model: Model) -> None:
    binding = model.io_binding()
    binding.bind_cpu_input("x", X)
    binding.bind_cpu_input("ids", IDS)
    assert_matches(model.run_with_binding(binding), X, IDS)


def test_properties(model: Model) -> None:
    assert [s.name for s in model.inputs] == ["x", "ids"]
    assert [s.name for s in model.outputs] == ["y", "z"]
    assert model.providers == ["CPUExecutionProvider"]
    assert isinstance(model.session, ort.InferenceSession)


def test_close_and_context_manager() -> None:
    inputs, outputs = TWO_INPUT_SPECS
    with Model(cpu_session(two_input_model()), inputs=inputs, outputs=outputs) as m:
        assert_matches(m.run({"x": X, "ids": IDS}), X, IDS)
    assert m.closed
    with pytest.raises(UsageError, match="closed"):
        m.run({"x": X, "ids": IDS})


def test_many_threads_get_the_single_threaded_results(model: Model) -> None:
    rng = np.random.default_rng(0)
    feeds = [
        {"x": rng.standard_normal((b, 4)).astype(np.float32), "ids": IDS + b} for b in range(1, 9)
    ]
    expected = [model.run(f) for f in feeds]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(150):
                j = (i + k) % len(feeds)
                got = model.run(feeds[j])
                np.testing.assert_array_equal(got["y"], expected[j]["y"])
                np.testing.assert_array_equal(got["z"], expected[j]["z"])
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_chain_model_helper_signature_is_enforced() -> None:
    m = Model(
        cpu_session(chain_model(("Relu",), shape=[1, 4])),
        inputs=[Spec("x", "float32", (1, 4))],
        outputs=[Spec("y", "float32", (1, 4))],
    )
    with pytest.raises(InputError, match="dim 0"):
        m.run({"x": np.ones((2, 4), np.float32)})


def test_placement_of_a_closed_model_says_it_is_closed() -> None:
    inputs, outputs = TWO_INPUT_SPECS
    m = Model(cpu_session(two_input_model()), inputs=inputs, outputs=outputs)
    m.close()
    with pytest.raises(UsageError, match="closed") as info:
        m.placement()
    assert "record_ep_graph_assignment_info" not in str(info.value)
