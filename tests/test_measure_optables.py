"""The op tables: they load, cite their source, and name only real ONNX/ORT op types."""

from __future__ import annotations

import onnx.defs
import pytest
from onnxruntime.capi import onnxruntime_pybind11_state as C

from edgeort.errors import EdgeortError
from edgeort.measure.optables import TABLES, load_table, load_tables, table_for_ep

_ORT_SCHEMAS = {(s.domain or "ai.onnx", s.name) for s in C.get_all_operator_schema()}


def _known(domain: str, op: str) -> bool:
    if domain == "ai.onnx" and onnx.defs.has(op):
        return True
    return (domain, op) in _ORT_SCHEMAS


@pytest.mark.parametrize("short", TABLES)
def test_every_entry_is_a_valid_op_type(short: str) -> None:
    table = load_table(short)
    assert len(table.ops) >= 40
    bad = [key for key, e in table.ops.items() if not _known(e.domain, e.op_type)]
    assert bad == []


@pytest.mark.parametrize("short", TABLES)
def test_tables_cite_source_and_ort_version(short: str) -> None:
    table = load_table(short)
    assert table.short == short and table.ep.endswith("ExecutionProvider")
    assert table.source["file"] and table.source["ort_version"]
    assert table.source["ort_version"] in table.cite()
    assert table_for_ep(table.ep) is table


def test_known_memberships() -> None:
    tables = load_tables()
    assert tables["nnapi"].lookup("", "Conv") is not None
    assert tables["nnapi"].lookup("", "Shrink") is None
    assert tables["coreml"].lookup("", "ArgMax") is not None  # 'Argmax' in ORT's md, fixed
    assert tables["qnn"].lookup("com.microsoft", "Gelu") is not None  # QNN matches type only
    assert tables["nnapi"].lookup("com.microsoft", "Conv") is None  # NNAPI matches domain
    assert tables["directml"].lookup("com.microsoft", "Attention") is not None
    assert tables["openvino"].lookup("", "Shrink") is not None


def test_rules_are_parsed() -> None:
    conv = load_table("nnapi").lookup("", "Conv")
    assert conv is not None and conv.input_rank == (4,) and conv.const_inputs == (1, 2)
    d2s = load_table("nnapi").lookup("", "DepthToSpace")
    assert d2s is not None and d2s.attrs["mode"].allowed == ("DCR",)


def test_unknown_table_is_an_error() -> None:
    with pytest.raises(EdgeortError, match="tensorrt"):
        load_table("tensorrt")
    assert table_for_ep("TensorrtExecutionProvider") is None
