"""Version guard: can the installed onnxruntime load a variant's IR version and opsets?

ORT promises backward compatibility only (newer runtimes load older models); a model
stamped with a newer ai.onnx opset or IR version than the runtime knows fails at session
creation. edgeort checks the variant's recorded ``ir_version``/``opsets``/``min_ort``
before ORT sees the file, so such a variant is skipped with the ORT version it needs.

Sources of :data:`ORT_ONNX_TABLE` (ORT release -> newest ONNX release it implements; the
opset and IR numbers of each ONNX release are from ``onnx.helper.VERSION_TABLE``):

* ``docs``: the version matrix of https://onnxruntime.ai/docs/reference/compatibility.html
* ``pr``: microsoft/onnxruntime#24449 ("Integration with ONNX rel-1.18.0", merged
  2025-04-16, first released in ORT 1.22)
* ``verified``: measured with the installed wheel (opset 29 / IR 15 refused by ORT 1.32.0;
  ``tests/test_runtime_version_guard.py`` re-checks it whenever 1.32 is installed)

Between two rows the limits are only bounded: a variant is refused up front only when
it needs more than the next known row allows; otherwise ORT is asked, and its own
version error is recognised by :func:`edgeort.hardware.ep.is_version_error` and reported
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgeort._versions import version_tuple
from edgeort.hardware.ep import is_version_error

__all__ = [
    "ORT_ONNX_TABLE",
    "OrtRow",
    "first_ort_for",
    "is_version_error",
    "version_guard",
    "version_tuple",
]

ONNX_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True, slots=True)
class OrtRow:
    ort: str  # major.minor
    onnx: str
    max_opset: int  # ai.onnx
    max_ir: int
    source: str  # docs | pr | verified


ORT_ONNX_TABLE: tuple[OrtRow, ...] = (
    OrtRow("1.14", "1.13", 18, 8, "docs"),
    OrtRow("1.15", "1.14", 19, 9, "docs"),
    OrtRow("1.16", "1.14", 19, 9, "docs"),
    OrtRow("1.17", "1.15", 20, 9, "docs"),
    OrtRow("1.18", "1.16", 21, 10, "docs"),
    OrtRow("1.19", "1.16", 21, 10, "docs"),
    OrtRow("1.20", "1.17", 22, 10, "docs"),
    OrtRow("1.22", "1.18", 23, 11, "pr"),
    OrtRow("1.32", "1.23", 28, 14, "verified"),
)


def _row_key(row: OrtRow) -> tuple[int, ...]:
    return version_tuple(row.ort)


def _bounds(ort_version: str) -> tuple[OrtRow | None, OrtRow | None]:
    """(row known to be <= the installed minor, row known to be >= it)."""
    mine = version_tuple(ort_version)[:2]
    lower = upper = None
    for row in ORT_ONNX_TABLE:
        key = _row_key(row)
        if key <= mine:
            lower = row
        if key >= mine and upper is None:
            upper = row
    return lower, upper


def first_ort_for(ir_version: int | None, opset: int | None) -> OrtRow | None:
    """The oldest known ORT release that loads this IR version and ai.onnx opset."""
    for row in ORT_ONNX_TABLE:
        if (ir_version is None or ir_version <= row.max_ir) and (
            opset is None or opset <= row.max_opset
        ):
            return row
    return None


def _onnx_opset(opsets: Mapping[str, int] | None) -> int | None:
    found = [int(v) for k, v in (opsets or {}).items() if k in ONNX_DOMAINS]
    return max(found) if found else None


def _needs(ir_version: int | None, opset: int | None) -> str:
    row = first_ort_for(ir_version, opset)
    what = f"IR {ir_version}, ai.onnx opset {opset}"
    if row is None:
        newest = ORT_ONNX_TABLE[-1]
        return f"{what}: needs an onnxruntime newer than {newest.ort} (no known release loads it)"
    return f"{what}: needs onnxruntime >= {row.ort}"


def version_guard(
    *,
    ir_version: int | None,
    opsets: Mapping[str, int] | None,
    min_ort: str | None,
    ort_version: str,
) -> str | None:
    """None if the installed ORT can load the variant (or cannot be ruled out), else the
    reason, naming the ORT version the variant needs."""
    installed = version_tuple(ort_version)
    if min_ort and version_tuple(min_ort) > installed:
        return f"needs onnxruntime >= {min_ort} (recorded min_ort); installed {ort_version}"
    opset = _onnx_opset(opsets)
    lower, upper = _bounds(ort_version)
    if upper is None:
        return None  # newer than every known release: ORT itself decides
    too_new = (ir_version is not None and ir_version > upper.max_ir) or (
        opset is not None and opset > upper.max_opset
    )
    if not too_new:
        return None
    if _row_key(upper) == installed[:2]:
        limits = f"loads up to IR {upper.max_ir}, ai.onnx opset {upper.max_opset}"
    else:
        after = lower.ort if lower is not None else "?"
        limits = f"is older than {upper.ort} (newer than {after}), which loads at most IR " + (
            f"{upper.max_ir}, ai.onnx opset {upper.max_opset}"
        )
    return f"{_needs(ir_version, opset)}; installed onnxruntime {ort_version} {limits}"
