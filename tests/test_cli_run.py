"""``edgeort run`` and ``edgeort inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from edgeort.cli import cli
from tests.fresh import run_python
from tests.test_runtime_support import digits_input, digits_reference, example_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_bundle(tmp_path_factory.mktemp("cli"))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_run_with_input_file_writes_the_outputs(bundle: Path, tmp_path: Path) -> None:
    x = digits_input(4)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    result = invoke("run", bundle, "--input", f"image={tmp_path / 'x.npy'}", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["inputs_generated"] is False
    assert report["outputs"]["logits"]["shape"] == [4, 10]
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["logits"], digits_reference(x), rtol=1e-5, atol=1e-5)


def test_run_without_inputs_generates_them_and_says_so(bundle: Path) -> None:
    result = invoke("run", bundle)
    assert result.exit_code == 0, result.output
    assert "No --input given: generated random inputs from the signature" in result.stdout
    assert "image: float32(1, 1, 8, 8)" in result.stdout
    assert "logits: float32(1, 10)" in result.stdout


def test_run_with_profile_runs_simulated_qnn(bundle: Path) -> None:
    result = invoke("run", bundle, "--profile", "qnn", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["variant"] == "qnn"
    assert report["providers"][0] == "QNNExecutionProvider"
    assert set(report["placement"]) == {"QNNExecutionProvider"}


def test_run_provider_option_orders_eps(bundle: Path) -> None:
    result = invoke("run", bundle, "--provider", "CPUExecutionProvider", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["variant"] == "cpu"


def test_run_wrong_input_name_is_input_error_exit_code(bundle: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", digits_input())
    result = invoke("run", bundle, "--input", f"pixels={tmp_path / 'x.npy'}")
    assert result.exit_code == 11  # InputError
    assert "missing input 'image'" in result.stderr


def test_run_wrong_dtype_file_is_input_error(bundle: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", digits_input().astype(np.float64))
    result = invoke("run", bundle, "--input", f"image={tmp_path / 'x.npy'}")
    assert result.exit_code == 11
    assert "float64" in result.stderr


def test_run_bad_input_spec_and_unreadable_file(bundle: Path, tmp_path: Path) -> None:
    result = invoke("run", bundle, "--input", "image")
    assert result.exit_code == 2 and "NAME=FILE.npy" in result.stderr
    (tmp_path / "bad.npy").write_text("not numpy")
    result = invoke("run", bundle, "--input", f"image={tmp_path / 'bad.npy'}")
    assert result.exit_code == 5 and "bad.npy" in result.stderr


def test_run_strict_refusal_exit_code(bundle: Path) -> None:
    result = invoke("run", bundle, "--provider", "NoSuchExecutionProvider", "--strict")
    assert result.exit_code == 10  # NoVariantError
    assert "not asked for" in result.stderr


def test_run_unknown_profile_is_a_usage_error(bundle: Path) -> None:
    result = invoke("run", bundle, "--profile", "no-such", "--strict")
    assert result.exit_code == 2  # UsageError: a name no variant has, not "nothing runs"
    assert "--profile 'no-such'" in result.stderr and "known: " in result.stderr


def test_inspect_lists_variants_and_the_pick(bundle: Path) -> None:
    result = invoke("inspect", bundle)
    assert result.exit_code == 0, result.output
    for name in ("openvino-cpu", "cpu", "qnn"):
        assert f"  {name}: " in result.stdout
    assert "This device would pick:" in result.stdout
    assert "simulated" in result.stdout


def test_inspect_json_matches_the_ranking_and_creates_no_session(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    def no_session(*args: object, **kwargs: object) -> None:
        raise AssertionError("inspect must not create a session")

    monkeypatch.setattr(ort, "InferenceSession", no_session)
    result = invoke("inspect", bundle, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [v["name"] for v in info["variants"]] == ["openvino-cpu", "cpu", "qnn"]
    sizes = {v["name"]: v["size"] for v in info["variants"]}
    assert sizes["cpu"] == (bundle / "model" / "cpu" / "model.onnx").stat().st_size
    assert info["pick"] == next(iter(info["ranking"]))
    assert info["ranking"][info["pick"]].startswith("rank 1")
    result = invoke("inspect", bundle, "--json", "--profile", "qnn")
    assert json.loads(result.stdout)["pick"] == "qnn"


def test_json_stdout_is_clean_in_a_real_process(bundle: Path) -> None:
    """Native libraries (the QNN plugin) print to fd 1; --json output must still parse."""
    proc = run_python(["-m", "edgeort", "run", str(bundle), "--profile", "qnn", "--json"])
    report = json.loads(proc.stdout)
    assert report["variant"] == "qnn"


def test_help_of_both_commands() -> None:
    for command in ("run", "inspect"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "BUNDLE" in result.stdout
