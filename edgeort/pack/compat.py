"""``--min-ort X.Y``: make each variant loadable by an older ONNX Runtime.

The oldest ORT the bundle must load in has known limits (newest ai.onnx opset and IR
version, :data:`edgeort.runtime.ortcompat.ORT_ONNX_TABLE`). A candidate above them is
down-converted with ``onnx.version_converter`` (opset) and by restamping the IR version
(when the graph uses
nothing newer: the model is checked after), before it is verified, so the verified file
is the shipped one. What cannot be converted stops the target with the reason. ORT-format
files are written by this ORT and load only in it or newer: with an older ``min_ort`` the
variant ships its ONNX file instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import onnx

from edgeort._versions import version_tuple
from edgeort.errors import PackageError, UsageError
from edgeort.runtime.ortcompat import ORT_ONNX_TABLE, OrtRow

__all__ = ["down_convert", "fit", "limits_for", "parse_min_ort"]

log = logging.getLogger(__name__)

ONNX_DOMAINS = ("", "ai.onnx")


def parse_min_ort(value: str | None) -> str | None:
    """``"1.24"`` / ``"1.24.1"`` checked; None stays None."""
    if value is None:
        return None
    text = str(value).strip()
    parts = version_tuple(text)
    if len(parts) < 2 or ".".join(map(str, parts)) != text:
        raise UsageError(
            f"--min-ort {value!r}: expected a version such as 1.24", option="--min-ort"
        )
    limits_for(text)
    return text


def limits_for(min_ort: str) -> OrtRow:
    """The newest known table row at or below ``min_ort`` (conservative limits)."""
    want = version_tuple(min_ort)[:2]
    rows = [r for r in ORT_ONNX_TABLE if version_tuple(r.ort) <= want]
    if not rows:
        raise UsageError(
            f"--min-ort {min_ort}: older than every known ORT release "
            f"({ORT_ONNX_TABLE[0].ort}); edgeort does not know what it loads",
            option="--min-ort",
        )
    return rows[-1]


def _onnx_opset(model: onnx.ModelProto) -> int | None:
    found = [int(o.version) for o in model.opset_import if o.domain in ONNX_DOMAINS]
    return max(found) if found else None


def down_convert(path: Path, min_ort: str, target: str) -> tuple[Path, str | None]:
    """``path`` made loadable by ``min_ort`` (rewritten beside it when needed); returns
    the file and a note saying what was done (None: nothing needed)."""
    row = limits_for(min_ort)
    model = onnx.load_model(str(path), load_external_data=False)
    opset, ir = _onnx_opset(model), int(model.ir_version)
    if (opset is None or opset <= row.max_opset) and ir <= row.max_ir:
        return path, None
    done = []
    if opset is not None and opset > row.max_opset:
        model = onnx.load_model(str(path))
        try:
            model = onnx.version_converter.convert_version(model, row.max_opset)
        except Exception as exc:  # the converter raises its own types
            raise PackageError(
                f"target {target}: --min-ort {min_ort} needs ai.onnx opset <= {row.max_opset}; "
                f"converting opset {opset} failed: {exc}",
                target=target,
            ) from None
        done.append(f"ai.onnx opset {opset} -> {row.max_opset}")
    if model.ir_version > row.max_ir:
        done.append(f"IR {model.ir_version} -> {row.max_ir}")
        model.ir_version = row.max_ir
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise PackageError(
            f"target {target}: --min-ort {min_ort}: the down-converted model ({'; '.join(done)}) "
            f"is not valid: {exc}",
            target=target,
        ) from None
    out = path.with_name(f"{path.stem}.min-ort{path.suffix}")
    onnx.save_model(model, str(out))
    note = f"--min-ort {min_ort}: down-converted {', '.join(done)} (ORT {row.ort} loads up to opset {row.max_opset}, IR {row.max_ir})"  # noqa: E501
    log.info("%s: %s", target, note)
    return out, note


def fit(built: Any, min_ort: str, target: str, notes: list[str]) -> tuple[Any, bool]:
    """A recipe's output (``quantize.Built``) made loadable by ``min_ort``; returns it and
    whether ORT format may still be written (only when this ORT is not newer)."""
    import onnxruntime as ort

    path, note = down_convert(built.path, min_ort, target)
    if note:
        notes.append(note)
    here = version_tuple(ort.__version__)[:2]
    ort_format_ok = version_tuple(min_ort)[:2] >= here
    if not ort_format_ok:
        notes.append(
            f"--min-ort {min_ort}: ONNX file shipped instead of ORT format (an ORT-format file "
            f"written by onnxruntime {ort.__version__} loads only in it or newer)"
        )
    return replace(built, path=path), ort_format_ok
