"""The version guard: the ORT -> opset/IR table, checked against the installed ORT."""

from __future__ import annotations

import itertools

import onnxruntime as ort
import pytest

from edgeort.runtime.ortcompat import (
    ORT_ONNX_TABLE,
    first_ort_for,
    is_version_error,
    version_guard,
    version_tuple,
)
from tests.test_runtime_support import chain_model


def guard(ir: int, opset: int, ort_version: str, min_ort: str = "1.0") -> str | None:
    return version_guard(
        ir_version=ir, opsets={"": opset}, min_ort=min_ort, ort_version=ort_version
    )


def test_version_tuple() -> None:
    assert version_tuple("1.32.0") == (1, 32, 0)
    assert version_tuple("1.33.0rc1") == (1, 33, 0)
    assert version_tuple("2") == (2,)
    assert version_tuple("1.20.1+cu12") == (1, 20, 1)


def test_table_is_monotonic() -> None:
    keys = [version_tuple(r.ort) for r in ORT_ONNX_TABLE]
    assert keys == sorted(keys)
    for a, b in itertools.pairwise(ORT_ONNX_TABLE):
        assert a.max_opset <= b.max_opset and a.max_ir <= b.max_ir


def test_table_rows_match_onnx_release_numbers() -> None:
    onnx_helper = pytest.importorskip("onnx.helper")
    releases = {}
    for onnx_version, ir, opset, *_ in onnx_helper.VERSION_TABLE:
        releases[".".join(onnx_version.split(".")[:2])] = (ir, opset)
    for row in ORT_ONNX_TABLE:
        assert releases[row.onnx] == (row.max_ir, row.max_opset), row


def test_exact_row_refuses_newer_opset_and_ir_naming_the_version_needed() -> None:
    why = guard(10, 23, "1.20.1")
    assert why is not None and "needs onnxruntime >= 1.22" in why and "1.20.1" in why
    assert "opset 22" in why
    assert guard(11, 22, "1.20.0") is not None
    assert guard(10, 22, "1.20.0") is None


def test_nothing_known_loads_it() -> None:
    why = guard(15, 29, "1.32.0")
    assert why is not None and "newer than 1.32" in why


def test_between_rows_only_certain_refusals() -> None:
    assert guard(13, 26, "1.26.0") is None  # may load; ORT decides
    why = guard(14, 29, "1.26.0")
    assert why is not None and "older than 1.32" in why


def test_newer_than_table_lets_ort_decide() -> None:
    assert guard(20, 40, "1.40.0") is None


def test_min_ort_is_checked_first() -> None:
    why = version_guard(ir_version=8, opsets={"": 17}, min_ort="1.33.1", ort_version="1.32.0")
    assert why is not None and "needs onnxruntime >= 1.33.1" in why


def test_other_domains_are_not_ai_onnx() -> None:
    assert (
        version_guard(
            ir_version=8,
            opsets={"": 17, "com.microsoft": 99},
            min_ort="1.0",
            ort_version="1.32.0",
        )
        is None
    )


def test_first_ort_for() -> None:
    row = first_ort_for(10, 21)
    assert row is not None and row.ort == "1.18"
    assert first_ort_for(15, 10) is None


@pytest.mark.parametrize(("opset", "ir"), [(29, 10), (17, 15)])
def test_installed_ort_agrees_with_its_row(opset: int, ir: int) -> None:
    """The row of the installed ORT is true: what the guard refuses, ORT refuses too."""
    installed = ort.__version__
    row = next(
        (r for r in ORT_ONNX_TABLE if version_tuple(r.ort) == version_tuple(installed)[:2]), None
    )
    if row is None:
        pytest.skip(f"onnxruntime {installed} has no exact row in ORT_ONNX_TABLE")
    refused = guard(ir, opset, installed)
    model = chain_model(("Relu",), opset=opset, ir_version=ir)
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:
        assert refused is not None
        assert is_version_error(exc), exc
    else:
        assert refused is None


def test_installed_ort_loads_its_row_maximum() -> None:
    installed = version_tuple(ort.__version__)[:2]
    row = next((r for r in ORT_ONNX_TABLE if version_tuple(r.ort) == installed), None)
    if row is None:
        pytest.skip(f"onnxruntime {ort.__version__} has no exact row in ORT_ONNX_TABLE")
    assert guard(row.max_ir, row.max_opset, ort.__version__) is None
    model = chain_model(("Relu",), opset=row.max_opset, ir_version=row.max_ir)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "x"
