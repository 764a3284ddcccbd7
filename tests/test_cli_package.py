"""``edgeort package``: summary, --json events, exit codes, and kill -9 mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from edgeort.cli import cli
from edgeort.pack.pipeline import WORK_PREFIX
from tests.conftest import REPO
from tests.models import corrupt_model_bytes, make_bert_like, make_cnn
from tests.test_trust_support import age_leftovers, leftovers

DIGITS = REPO / "examples" / "digits"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_help_lists_every_option() -> None:
    result = invoke("package", "--help")
    assert result.exit_code == 0
    for option in (
        "--target", "--output", "--calibration", "--validation", "--shape", "--max-drop",
        "--zip", "--profile", "--json", "--no-speed",
    ):  # fmt: skip
        assert option in result.output


def test_package_prints_a_summary_and_status_lines(tmp_path: Path) -> None:
    out = tmp_path / "b.ortpackage"
    result = invoke(
        "package", make_bert_like(tmp_path), "-t", "cpu", "-t", "directml", "-o", out, "--no-speed",
        "--elsewhere",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{out}: 2 variant(s), transformer model")
    assert any(line.strip().startswith("cpu-x86-64: int8 model.onnx") for line in lines)
    assert any(
        "directml: fp16" in line and "verified on CPUExecutionProvider" in line for line in lines
    )
    assert "[100%]" in result.stderr and "verify:" in result.stderr


def test_json_prints_one_event_per_line_then_the_result(tmp_path: Path) -> None:
    out = tmp_path / "b.ortpackage"
    result = invoke(
        "package", make_bert_like(tmp_path), "-t", "cpu", "-o", out, "--json", "--no-speed"
    )
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert all("event" in o for o in objects[:-1]) and "result" in objects[-1]
    steps = [o["event"]["step"] for o in objects[:-1]]
    assert steps[0] == "load" and steps[-1] == "write" and "verify" in steps
    variant = objects[-1]["result"]["variants"][0]
    assert variant["precision"] == "int8" and variant["accuracy"]["passed"] is True


def test_shape_option_fixes_a_dynamic_sequence(tmp_path: Path) -> None:
    out = tmp_path / "b.ortpackage"
    model = make_bert_like(tmp_path)
    result = invoke(
        "package", model, "-t", "coreml", "-o", out, "--shape", "input_ids=1,16", "--json"
    )
    assert result.exit_code == 0, result.output
    variant = json.loads(result.stdout.splitlines()[-1])["result"]["variants"][0]
    assert variant["model_file"] == "model.ort"
    manifest = json.loads((out / "model" / "component.json").read_text())
    inputs = manifest["variants"]["coreml"]["additional_metadata"]["edgeort"]["inputs"]
    assert [i["shape"] for i in inputs] == [[1, 16], [1, 16]]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("-t", "cpu"), 4, "not a readable ONNX model"),  # truncated model
        (("-t", "nope"), 2, "unknown target 'nope'"),
        (("-t", "cpu", "--shape", "image"), 2, "--shape"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(
    tmp_path: Path, args: tuple[str, ...], code: int, needle: str
) -> None:
    model = corrupt_model_bytes(tmp_path, "truncated") if code == 4 else make_cnn(tmp_path)
    result = invoke("package", model, "-o", tmp_path / "o", *args)
    assert result.exit_code == code
    assert result.stderr.count("edgeort: error:") == 1 and needle in result.stderr
    assert not (tmp_path / "o").exists()


def test_static_recipe_without_calibration_exits_5_with_how_to_fix(tmp_path: Path) -> None:
    result = invoke("package", make_cnn(tmp_path), "-t", "cpu", "-o", tmp_path / "o", "--json")
    assert result.exit_code == 5
    error = json.loads(result.stdout.splitlines()[-1])["error"]
    assert error["type"] == "DataError" and error["exit_code"] == 5
    assert "--calibration" in error["message"]


def _big_validation(tmp_path: Path) -> Path:
    """The digits validation set repeated, so verification on QNN takes a while."""
    data = np.load(DIGITS / "validation.npz")
    path = tmp_path / "validation.npz"
    np.savez(path, image=np.tile(data["image"], (8, 1, 1, 1)))
    return path


def _package_proc(out: Path, validation: Path, *targets: str) -> subprocess.Popen[str]:
    work = out.parent / "work"  # TMPDIR: where the killed run's scratch files stay
    work.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "edgeort", "package", str(DIGITS / "model.onnx"), "-o", str(out)]
    for target in targets:
        args += ["-t", target]
    args += ["--calibration", str(DIGITS / "calibration.npz"), "--validation", str(validation)]
    return subprocess.Popen(
        [*args, "--json", "--no-speed"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(work)},
    )  # fmt: skip


def _kill_at_second_target_verify(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line).get("event", {})
        if event.get("target") == "qnn-htp" and event.get("step") == "verify":
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return event
    raise AssertionError(f"run ended (rc {proc.wait()}) before the point to kill it")


@pytest.mark.slow
def test_kill_9_mid_run_leaves_nothing_partial(tmp_path: Path) -> None:
    validation = _big_validation(tmp_path)
    out = tmp_path / "digits.ortpackage"
    with _package_proc(out, validation, "cpu", "qnn") as proc:
        _kill_at_second_target_verify(proc)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    # with a bundle already there, a killed run leaves it byte for byte as it was
    done = subprocess.run(
        [sys.executable, "-m", "edgeort", "package", str(DIGITS / "model.onnx"), "-t", "nnapi",
         "-o", str(out), "--calibration", str(DIGITS / "calibration.npz"), "--no-speed"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with _package_proc(out, validation, "cpu", "qnn") as proc:
        _kill_at_second_target_verify(proc)
    assert proc.returncode == -signal.SIGKILL
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(WORK_PREFIX))
    assert names == ["digits.ortpackage", "validation.npz", "work"]  # no staging leftovers
    # each killed run left its work directory beside the output (none in TMPDIR) ...
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(WORK_PREFIX)]) == 2
    assert not [p.name for p in (tmp_path / "work").iterdir() if "edgeort" in p.name]
    # ... and the next run there removes them once stale (unlocked: their process is gone)
    age_leftovers(tmp_path)
    again = invoke(
        "package", DIGITS / "model.onnx", "-t", "cpu", "-o", out, "--no-speed",
        "--calibration", DIGITS / "calibration.npz",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert not leftovers(tmp_path), leftovers(tmp_path)


def test_user_profile_file_adds_a_target(tmp_path: Path) -> None:
    profile = tmp_path / "my-cpu.toml"
    profile.write_text(
        '[profile]\nname = "my-cpu-fp16"\nextends = "cpu-x86-64"\ndescription = "fp16 on CPU"\n'
        'version = "3"\ndefault = false\n\n[[model.recipes.transformer]]\nprecision = "fp16"\n'
    )
    out = tmp_path / "b.ortpackage"
    model = make_bert_like(tmp_path)
    result = invoke(
        "package",
        model,
        "-t",
        "my-cpu-fp16",
        "-o",
        out,
        "--profile",
        profile,
        "--json",
        "--no-speed",
    )
    assert result.exit_code == 0, result.output
    variant = json.loads(result.stdout.splitlines()[-1])["result"]["variants"][0]
    assert variant["profile"] == "my-cpu-fp16" and variant["precision"] == "fp16"
    meta = json.loads((out / "model" / "component.json").read_text())["variants"]["my-cpu-fp16"]
    assert meta["additional_metadata"]["edgeort"]["profile_version"] == "3"


def test_short_names_resolve_to_the_best_fit_here_unless_elsewhere(tmp_path: Path) -> None:
    from edgeort.hardware import probe
    from edgeort.profiles import builtin_profiles
    from edgeort.profiles.match import resolve_target

    here = resolve_target("cpu", builtin_profiles(), probe()).name
    default = resolve_target("cpu", builtin_profiles()).name
    model = make_bert_like(tmp_path)
    names = {}
    for flag in ((), ("--elsewhere",)):
        out = tmp_path / f"b{len(flag)}.ortpackage"
        result = invoke("package", model, "-t", "cpu", "-o", out, "--no-speed", "--json", *flag)
        assert result.exit_code == 0, result.output
        last = json.loads(result.stdout.splitlines()[-1])
        names[bool(flag)] = last["result"]["variants"][0]["profile"]
    assert names == {False: here, True: default}


def test_status_is_a_progress_bar_on_a_terminal_and_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgeort.cli import commands_package
    from edgeort.pack import Event

    events = [
        Event("progress", "cpu", "quantize", "building int8", 0.25),
        Event("done", "", "write", "wrote out", 1.0),
    ]
    monkeypatch.setattr(commands_package, "_tty", lambda: False)
    for e in events:
        commands_package._status(e)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[ 25%] cpu quantize: building int8", "[100%] write: wrote out"]
    monkeypatch.setattr(commands_package, "_tty", lambda: True)
    for e in events:
        commands_package._status(e)
    err = capsys.readouterr().err.replace("\x1b[K", "")  # click drops ANSI off a tty
    assert "\r[######..................]  25% cpu quantize: building int8\r" in err
    assert err.endswith("[########################] 100% write: wrote out\n")
