"""edgeort bench | profile | tune | doctor through the CLI, on a small bundle and models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from edgeort.cli import cli
from tests.models import make_mlp, make_planted_fallback, make_thread_contention
from tests.test_measure_helpers import small_bundle


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def as_json(result: Result, command: str) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == command and data["schema"] == 1
    return data


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    model = make_mlp(tmp)
    out = small_bundle(tmp, model)
    (out.parent / "mlp.onnx").write_bytes(model.read_bytes())  # the recorded source, beside it
    return out


@pytest.mark.parametrize("command", ["bench", "profile", "tune", "doctor"])
def test_help(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "--json" in result.output


def test_bench_json_on_a_bundle_with_compare(bundle: Path) -> None:
    data = as_json(
        invoke("bench", bundle, "--runs", 5, "--warmup", 1, "--compare", "--json"), "bench"
    )
    (row,) = data["results"]
    assert row["label"] == "cpu-fp32" and row["ep"] == "CPUExecutionProvider"
    assert row["latency"]["n"] == 5 and row["session_create_ms"] > 0
    assert data["baseline"]["label"].startswith("baseline: mlp.onnx")
    assert row["speedup_vs_baseline"] > 0


def test_bench_table_by_default(bundle: Path) -> None:
    result = invoke("bench", bundle, "--runs", 3)
    assert result.exit_code == 0, result.output
    assert "median" in result.output and "cpu-fp32" in result.output


def test_bench_bad_input_exits_with_data_error(bundle: Path, tmp_path: Path) -> None:
    result = invoke("bench", bundle, "--input", f"nope={tmp_path / 'x.npy'}", "--runs", 1)
    assert result.exit_code == 5 and "nope" in result.output


def test_bench_bad_dim_is_a_usage_error(bundle: Path) -> None:
    result = invoke("bench", bundle, "--dim", "batch=zero")
    assert result.exit_code == 2


def test_profile_json(bundle: Path, tmp_path: Path) -> None:
    data = as_json(
        invoke("profile", bundle, "--runs", 3, "--output", tmp_path, "--json"), "profile"
    )
    (row,) = data["results"]
    assert Path(row["trace"]).is_file() and Path(row["trace"]).parent == tmp_path
    assert row["runs"] == 3 and row["op_types"] and row["slowest_nodes"]
    assert set(row["node_eps"].values()) == {"CPUExecutionProvider"}


def test_tune_json_saves_the_cache(bundle: Path) -> None:
    data = as_json(invoke("tune", bundle, "--budget", 3, "--runs", 3, "--json"), "tune")
    (row,) = data["results"]
    assert row["best_ms"] > 0 and row["evaluated"] >= 2 and row["space_size"] >= 24
    assert Path(row["cache"]).is_file()
    assert json.loads(Path(row["cache"]).read_text())["intra_op_threads"] == row["best"]["threads"]


def test_tune_warns_when_a_sequence_dim_defaults_to_1(tmp_path: Path) -> None:
    """Settings tuned on 1-token inputs can be slower at real lengths: tune says which
    dims it set to 1 (not the batch) unless --dim or --input sets them."""
    from tests.models import make_bert_like

    model = make_bert_like(tmp_path)
    common = ["tune", model, "--budget", 1, "--runs", 3, "--no-save", "--json"]
    warned = invoke(*common)
    assert warned.exit_code == 0, warned.output
    assert "tune: dynamic dims sequence set to 1" in warned.stderr
    quiet = invoke(*common, "--dim", "sequence=16")
    assert quiet.exit_code == 0 and "set to 1" not in quiet.stderr


def test_tune_no_save(bundle: Path) -> None:
    data = as_json(
        invoke("tune", bundle, "--budget", 2, "--runs", 3, "--no-save", "--json"), "tune"
    )
    assert data["results"][0]["cache"] is None


def test_doctor_json_finds_planted_fallback(tmp_path: Path) -> None:
    data = as_json(
        invoke("doctor", make_planted_fallback(tmp_path), "--no-run", "--json"), "doctor"
    )
    found = [f for f in data["findings"] if f["check"] == "ep-fallback" and f["status"] == "found"]
    assert {f["target"].rsplit(" ", 1)[-1] for f in found} >= {"nnapi", "coreml", "qnn"}
    assert all(f["evidence"]["op_types"] == ["Shrink"] for f in found)
    reports = data["partitions"]["planted_fallback.onnx"]
    assert {r["target"] for r in reports} >= {
        "cpu",
        "nnapi",
        "coreml",
        "qnn",
        "openvino",
        "directml",
    }


def test_doctor_runs_the_thread_check_via_cli(tmp_path: Path) -> None:
    """The CLI carries the measured rounds and their verdict (which way it goes is timing:
    the decision is tested in test_measure_doctor, the measurement is a benchmark)."""
    from edgeort.measure.checks_runtime import contention_verdict
    from edgeort.measure.tune import physical_cores

    if physical_cores() < 2:
        pytest.skip("needs 2 physical cores")
    data = as_json(invoke("doctor", make_thread_contention(tmp_path), "--json"), "doctor")
    checks = {f["check"]: f for f in data["findings"] if f["check"] != "ep-fallback"}
    threads = checks["thread-contention"]
    ratios = threads["evidence"]["round_ratios"]
    assert threads["evidence"]["rounds"] == len(ratios) >= 15
    assert threads["status"] == contention_verdict(ratios).status
    assert checks["arena-growth"]["status"] == "skipped"


def test_doctor_text(tmp_path: Path) -> None:
    result = invoke("doctor", make_planted_fallback(tmp_path), "--no-run")
    assert result.exit_code == 0, result.output
    assert (
        "partition report" in result.stdout and "fix:" in result.stdout and "MAYBE" in result.stdout
    )


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("doctor", tmp_path / "nope.onnx")
    assert result.exit_code == 2


def test_every_command_on_the_example_model(tmp_path: Path, repo_root: Path) -> None:
    """The shipped example (examples/digits) in a bundle: all four commands, --json."""
    example = repo_root / "examples" / "digits" / "model.onnx"
    bundle = small_bundle(tmp_path, example)
    bench = as_json(invoke("bench", bundle, "--runs", 3, "--json"), "bench")
    assert bench["results"][0]["input_shapes"] == {"image": [1, 1, 8, 8]}
    prof = as_json(
        invoke("profile", bundle, "--runs", 2, "--output", tmp_path, "--json"), "profile"
    )
    assert {"Conv", "MaxPool", "Gemm"} <= {o["op_type"] for o in prof["results"][0]["op_types"]}
    tune = as_json(invoke("tune", bundle, "--budget", 2, "--runs", 3, "--json"), "tune")
    assert tune["results"][0]["best"]["threads"] >= 1
    doc = as_json(invoke("doctor", bundle, "--json"), "doctor")
    assert {r["target"] for r in doc["partitions"]["cpu-fp32"]} == {"cpu"}
    assert {f["check"] for f in doc["findings"]} >= {
        "missing-fusion",
        "thread-contention",
        "arena-growth",
    }


def test_bench_and_tune_run_a_bundle_at_its_recorded_sample_shapes(tmp_path: Path) -> None:
    """The packager records the first verification sample's shapes (``sample_shapes``);
    bench and tune feed dynamic dims at those sizes, not 1, unless --dim says otherwise."""
    import numpy as np

    from edgeort.bundle import open_bundle
    from edgeort.pack import package
    from tests.models import make_bert_like

    model = make_bert_like(tmp_path)
    data = tmp_path / "v.npz"
    rng = np.random.default_rng(0)
    np.savez(
        data, input_ids=rng.integers(0, 100, (4, 1, 12)), attention_mask=np.ones((4, 1, 12), int)
    )
    out = tmp_path / "b.ortpackage"
    package(model, ["cpu"], output=out, validation=data, measure_speed=False)
    (variant,) = open_bundle(out).variants
    assert variant.metadata["sample_shapes"] == {"input_ids": [1, 12], "attention_mask": [1, 12]}
    row = as_json(invoke("bench", out, "--runs", 3, "--json"), "bench")["results"][0]
    assert row["input_shapes"] == {"input_ids": [1, 12], "attention_mask": [1, 12]}
    told = as_json(invoke("bench", out, "--runs", 3, "--dim", "sequence=5", "--json"), "bench")
    assert told["results"][0]["input_shapes"]["input_ids"] == [1, 5]
    tuned = invoke("tune", out, "--budget", 1, "--runs", 3, "--no-save", "--json")
    assert tuned.exit_code == 0 and "set to 1" not in tuned.stderr
