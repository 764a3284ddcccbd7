"""The device side imports only the stdlib, numpy, onnxruntime, psutil and platformdirs.

Checked in a fresh interpreter, so nothing another test imported can hide a heavy import.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO
from tests.fresh import last_json

HEAVY = ("onnx", "click", "onnxruntime.quantization", "onnxruntime.transformers")
# The build-side packages; every other module of edgeort is device side.
BUILD_SIDE = ("edgeort.pack", "edgeort.measure", "edgeort.cli", "edgeort.__main__")


def device_modules() -> tuple[str, ...]:
    """Every module of edgeort outside the build-side packages, read off the tree."""
    found = []
    for path in sorted((REPO / "edgeort").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == b or name.startswith(b + ".") for b in BUILD_SIDE):
            found.append(name)
    return tuple(found)


DEVICE_MODULES = device_modules()

SCRIPT = """
import json, sys
import edgeort
edgeort.load; edgeort.probe; edgeort.open_bundle
import {modules}
heavy = {heavy!r}
print(json.dumps({{
    "loaded": sorted(m for m in heavy if m in sys.modules),
    "onnx_like": sorted(m for m in sys.modules if m == "onnx" or m.startswith("onnx.")),
    "load": edgeort.load.__module__,
}}))
"""


def run_fresh(code: str) -> dict[str, object]:
    return last_json(["-c", code])


def test_device_side_never_imports_onnx_or_click() -> None:
    result = run_fresh(SCRIPT.format(modules=", ".join(DEVICE_MODULES), heavy=HEAVY))
    assert result["loaded"] == []
    assert result["onnx_like"] == []
    assert result["load"] == "edgeort.runtime"


def test_the_check_sees_a_heavy_import() -> None:
    """The same script reports onnx once something imports it (the test can fail)."""
    code = SCRIPT.format(modules="edgeort.runtime, onnx", heavy=HEAVY)
    result = run_fresh(code)
    assert "onnx" in result["loaded"]


def test_loading_a_bundle_never_imports_the_bundle_writer(tmp_path: Path) -> None:
    import edgeort

    bundle = tmp_path / "digits.ortpackage"
    edgeort.package(
        REPO / "examples" / "digits" / "model.onnx",
        ["cpu"],
        output=bundle,
        calibration=REPO / "examples" / "digits" / "calibration.npz",
        measure_speed=False,
    )
    code = (
        "import json, sys, edgeort\n"
        f"model = edgeort.load({str(bundle)!r})\n"
        "print(json.dumps({'writer': 'edgeort.bundle._write' in sys.modules,"
        " 'variant': model.variant.name}))\n"
    )
    result = run_fresh(code)
    assert result["writer"] is False and result["variant"]
