"""edgeort report: the data, the page built from it, and the page in a real Chromium."""

from __future__ import annotations

import io
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from edgeort.cli import cli
from edgeort.hardware import plugins as providers
from edgeort.pack import package
from tests.chromium import find_chromium, render_page
from tests.conftest import REPO

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

DIGITS = REPO / "examples" / "digits"
HOSTILE = "<script>alert(1)</script>"


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _rows_file(path: Path) -> Path:
    """Hand-written rows in the shapes the runtime and farm work will produce."""
    rows = {
        "rows": [
            {"worker": "pi-5", "device": {"name": "Raspberry Pi 5"}, "variant": "cpu-x86-64-vnni",
             "ep": "CPUExecutionProvider", "p50_ms": 0.41, "p95_ms": 0.52, "p99_ms": 0.6,
             "ort_build": "onnxruntime 1.24.1"},
            {"worker": "nuc", "runtime": "openvino-1.24", "variant": "cpu-x86-64-vnni",
             "ep": "CPUExecutionProvider", "latency": {"median_ms": 0.05, "p95_ms": 0.07}},
            {"worker": "snapdragon", "variant": "qnn-htp", "ep": "QNNExecutionProvider",
             "p50": 0.09, "accuracy": {"value": 0.9991, "metric": "cosine"}},
            {"worker": "pi-5", "variant": "cpu-x86-64-vnni", "p50_ms": None},
            {"worker": HOSTILE, "variant": HOSTILE, "p50_ms": 1.0},
        ]
    }  # fmt: skip
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example bundle (CPU and QNN variants), a real bench file, a real profile trace
    and a hand-written rows file; then the report over all of them."""
    tmp = tmp_path_factory.mktemp("report")
    bundle = tmp / "digits.ortpackage"
    package(
        DIGITS / "model.onnx", ["cpu", "qnn"], output=bundle,
        calibration=DIGITS / "calibration.npz", validation=DIGITS / "validation.npz",
        measure_speed=False,
    )  # fmt: skip
    bench = invoke("bench", bundle, "--runs", 5, "--warmup", 1, "--json")
    assert bench.exit_code == 0, bench.output
    (tmp / "bench.json").write_text(bench.stdout, encoding="utf-8")
    traces = tmp / "traces"
    prof = invoke("profile", bundle, "--variant", "cpu-x86-64-vnni", "--runs", 3,
                  "--warmup", 1, "--output", traces)  # fmt: skip
    assert prof.exit_code == 0, prof.output
    (trace,) = traces.glob("*.json")
    page = tmp / "report.html"
    done = invoke(
        "report", bundle, "--bench", tmp / "bench.json", "--bench", _rows_file(tmp / "rows.json"),
        "--profile", trace, "-o", page, "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    (tmp / "report.json").write_text(done.stdout, encoding="utf-8")
    return {"bundle": bundle, "page": page, "json": tmp / "report.json", "tmp": tmp}


def _data(made: dict[str, Path]) -> dict[str, Any]:
    return dict(json.loads(made["json"].read_text(encoding="utf-8")))


def test_the_page_is_rendered_from_the_json_data(made: dict[str, Path]) -> None:
    from edgeort.report import render_html

    data = _data(made)
    assert render_html(data) == made["page"].read_text(encoding="utf-8")
    assert {v["name"] for v in data["variants"]} == {"cpu-x86-64-vnni", "qnn-htp"}


def test_variants_say_where_they_were_verified(made: dict[str, Path]) -> None:
    variants = {v["name"]: v for v in _data(made)["variants"]}
    cpu, qnn = variants["cpu-x86-64-vnni"], variants["qnn-htp"]
    assert cpu["verified"]["kind"] == "real" and cpu["verified"]["on_ep"] == "CPUExecutionProvider"
    assert cpu["accuracy"]["metric"] and cpu["accuracy"]["value"] >= cpu["accuracy"]["bound"]
    assert qnn["precision"] == "w8a16" and qnn["ep"] == "QNNExecutionProvider"
    if qnn["verified"]["on_ep"] == "QNNExecutionProvider":
        simulated = platform.machine().lower() in {"x86_64", "amd64"}
        assert qnn["verified"]["kind"] == ("simulated" if simulated else "real")
    else:
        assert qnn["verified"]["kind"] == "substitute"
    assert any(g["gate"] == "accuracy" and g["reason"] for g in qnn["gates"])


def test_rows_from_workers_and_runtimes_become_devices(made: dict[str, Path]) -> None:
    data = _data(made)
    devices = {d["label"]: d for d in data["devices"]}
    pi = devices["pi-5 (Raspberry Pi 5)"]
    (point,) = pi["points"]
    assert point["latency_ms"] == 0.41 and point["p95_ms"] == 0.52 and point["ort"]
    assert point["accuracy_from"] == "bundle" and point["bound"] is not None
    nuc = devices["nuc · runtime openvino-1.24"]
    assert nuc["points"][0]["latency_ms"] == 0.05 and nuc["points"][0]["runtime"]
    snap = devices["snapdragon"]["points"][0]
    assert snap["accuracy"] == 0.9991 and snap["accuracy_from"] == "this measurement"
    assert any("no finite median latency" in n for n in data["notes"])
    assert any("not a variant of this bundle" in n for d in data["devices"] for n in d["notes"])


def test_local_bench_rows_name_this_machine(made: dict[str, Path]) -> None:
    data = _data(made)
    local = [d for d in data["devices"] if d["label"].startswith("this machine")]
    assert local and {p["variant"] for p in local[0]["points"]} >= {"cpu-x86-64-vnni"}
    here = [m for m in data["machines"] if m["label"] == "this machine"]
    assert here and here[0]["summary"]["cpu_model"] and here[0]["summary"]["fingerprint"]
    assert any(r.startswith("measured: bench.json") for r in here[0]["roles"])


def test_where_time_goes_comes_from_the_trace(made: dict[str, Path]) -> None:
    (prof,) = _data(made)["profiles"]
    assert prof["op_types"] and prof["op_types"][0]["total_ms"] > 0
    assert any("Conv" in o["op_type"] for o in prof["op_types"])  # Conv or QLinearConv
    assert abs(sum(o["share"] for o in prof["op_types"]) - 1.0) < 0.01


def test_placement_strips_cover_every_variant(made: dict[str, Path]) -> None:
    strips = _data(made)["placement"]
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for s in strips:
        by_variant.setdefault(s["variant"], []).append(s)
    assert set(by_variant) == {"cpu-x86-64-vnni", "qnn-htp"}
    cpu = by_variant["cpu-x86-64-vnni"][0]
    assert {n["ep"] for n in cpu["nodes"]} == {"CPUExecutionProvider"}
    for s in strips:
        assert len(s["nodes"]) == s["nodes_total"]
        assert sum(n["ep"] == s["ep"] for n in s["nodes"]) == s["nodes_on_ep"]
    qnn_methods = {s["method"] for s in by_variant["qnn-htp"]}
    if providers.ensure_registered("QNNExecutionProvider"):
        assert "real-placement" in qnn_methods


def test_strings_from_results_files_are_escaped(made: dict[str, Path]) -> None:
    page = made["page"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (CI installs it)")
def test_the_page_renders_in_headless_chromium(made: dict[str, Path]) -> None:
    from PIL import Image

    page = render_page(made["page"])
    assert page.errors == []
    assert page.requests == [made["page"].resolve().as_uri()]  # the page itself, nothing else
    for name in ("cpu-x86-64-vnni", "qnn-htp"):
        assert name in page.text
    for section in ("Variants", "Accuracy vs latency", "Where time goes", "Placement", "Machines"):
        assert section in page.text
    image = Image.open(io.BytesIO(page.png)).convert("L")
    assert image.size[0] == 1280 and image.size[1] == page.height > 1000
    variance = float(np.asarray(image, dtype=np.float64).var())
    assert variance > 100  # a blank (single-colour) screenshot has 0


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (CI installs it)")
def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    """The same check on a page that logs an error, throws and fetches: it must notice."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>bad</p><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); throw new Error('thrown');</script></body></html>",
        encoding="utf-8",
    )
    page = render_page(bad)
    assert any("boom" in e for e in page.errors) and any("thrown" in e for e in page.errors)
    assert "http://127.0.0.1:9/x.png" in page.requests


def test_report_needs_an_output(made: dict[str, Path]) -> None:
    result = invoke("report", made["bundle"])
    assert result.exit_code == 2 and "-o report.html" in result.output


def test_a_bad_results_file_is_a_data_error(made: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": 3}', encoding="utf-8")
    result = invoke("report", made["bundle"], "--bench", bad, "--json", "--no-placement")
    assert result.exit_code == 5 and "bad.json" in result.output and "'results'" in result.output
    bad.write_text("{not json", encoding="utf-8")
    result = invoke("report", made["bundle"], "--bench", bad, "--json", "--no-placement")
    assert result.exit_code == 5 and "cannot read the results JSON" in result.output


def test_a_file_that_is_no_trace_is_a_data_error(made: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "trace.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    result = invoke("report", made["bundle"], "--profile", bad, "--json", "--no-placement")
    assert result.exit_code == 5 and "ORT profile trace" in result.output


def test_the_machine_summary_carries_the_runtime_fingerprint() -> None:
    """bench files and bundles name machines by the same fingerprint, so they match up."""
    from edgeort.hardware import probe
    from edgeort.report.machine import fingerprint_of, machine_summary
    from edgeort.runtime.tuning import device_fingerprint

    device = probe(register_plugins=False)
    summary = machine_summary(device.to_json())
    assert summary["fingerprint"] == device_fingerprint(device)
    assert summary["cpu_model"] == device.cpu_model and "cpu_flags" not in summary
    assert fingerprint_of({"os": "linux"}) is None


def test_ort_format_variants_get_a_note_not_a_crash(tmp_path: Path) -> None:
    """CoreML variants are ORT-format files: no graph to partition, said so; the others
    still get their strips (and doctor no longer stops at the first .ort file)."""
    bundle = tmp_path / "mobile.ortpackage"
    package(
        DIGITS / "model.onnx", ["cpu", "coreml"], output=bundle,
        calibration=DIGITS / "calibration.npz", measure_speed=False,
    )  # fmt: skip
    result = invoke("report", bundle, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {s["variant"] for s in data["placement"]} == {"cpu-x86-64-vnni"}
    assert any(
        n.startswith("coreml: no placement strip") and "ORT format" in n for n in data["notes"]
    )
    doctor = invoke("doctor", bundle, "--no-run", "--json")
    assert doctor.exit_code == 0, doctor.output
    assert any("ORT format" in n for n in json.loads(doctor.stdout)["notes"])
