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


def _ort_refusal(opset: int, ir: int) -> Exception | None:
    """ORT's exception for a one-Relu model stamped (ai.onnx opset, IR), or None if it loads."""
    model = chain_model(("Relu",), opset=opset, ir_version=ir)
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def measured_limits() -> tuple[int, int]:
    """The installed ORT's newest ai.onnx opset and IR version, measured (no table)."""
    opset = 17  # every ORT this project allows loads opset 17 at IR 10...
    while opset < 60 and _ort_refusal(opset + 1, 10) is None:
        opset += 1
    ir = 8  # ...and IR 8 at opset 17
    while ir < 40 and _ort_refusal(17, ir + 1) is None:
        ir += 1
    return opset, ir


def test_installed_ort_refuses_one_past_its_limits_with_a_version_error(
    measured_limits: tuple[int, int],
) -> None:
    """What ORT refuses one past its measured limits, is_version_error recognises, and the
    guard either refuses too or leaves to ORT: it never refuses what ORT loads."""
    max_opset, max_ir = measured_limits
    installed = ort.__version__
    assert _ort_refusal(max_opset, max_ir) is None
    assert guard(max_ir, max_opset, installed) is None
    for opset, ir in ((max_opset + 1, 10), (17, max_ir + 1)):
        exc = _ort_refusal(opset, ir)
        assert exc is not None and is_version_error(exc), exc


def test_table_agrees_with_the_measured_limits_of_the_installed_ort(
    measured_limits: tuple[int, int],
) -> None:
    """Any installed version is checked, with or without a row of its own: the rows around
    it must bound what was measured (ORT only adds), so an exact row must equal it."""
    max_opset, max_ir = measured_limits
    mine = version_tuple(ort.__version__)[:2]
    below = [r for r in ORT_ONNX_TABLE if version_tuple(r.ort) <= mine]
    above = [r for r in ORT_ONNX_TABLE if version_tuple(r.ort) >= mine]
    assert below, f"onnxruntime {ort.__version__} is older than every row of ORT_ONNX_TABLE"
    assert below[-1].max_opset <= max_opset and below[-1].max_ir <= max_ir, below[-1]
    if above:  # with an exact row, below[-1] is above[0]: the limits must equal it
        assert max_opset <= above[0].max_opset and max_ir <= above[0].max_ir, above[0]
