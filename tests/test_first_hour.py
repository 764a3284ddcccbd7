"""Issue "a user's first hour": claims that were not true, and tracebacks / wrong error
classes. Each test replays the user's command or call on the issue's two-input model
(float ``feats`` + int64 ``ids``, dynamic batch) and checks: no traceback, the exit code
of the right error class, and a message that names the culprit."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import edgeort
from edgeort.bundle import open_bundle as open_dir
from edgeort.errors import InputError
from tests.conftest import REPO
from tests.first_hour_support import HAS_QNN, Tiny, fresh_edgeort, make_tiny, needs_qnn
from tests.first_hour_support import edgeort as cli

Cap = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def bundle(tiny: Tiny) -> Path:
    """cpu + qnn-fp32 (refused by the simulator, kept by --keep-going) + qnn (w8a16),
    packaged in a fresh process whose first QNN session is qnn-fp32's."""
    out = tiny.folder / "tiny.ortpackage"
    targets = ["-t", "cpu", "-t", "qnn-fp32", "-t", "qnn"] if HAS_QNN else ["-t", "cpu"]
    run = fresh_edgeort(
        "package", tiny.model, *targets, "-o", out, "--calibration", tiny.calibration,
        "--profile", tiny.qnn_fp32, "--keep-going", "--no-speed", "--name", "tiny-demo",
        "--version", "2.1",
    )  # fmt: skip
    assert run.rc == 0, run.err
    return out


# ---- claims that were not true --------------------------------------------------------


@needs_qnn
def test_a_variant_its_ep_refuses_fails_packaging_without_keep_going(
    tiny: Tiny, tmp_path: Path, capsys: Cap
) -> None:
    out = tmp_path / "q.ortpackage"
    run = fresh_edgeort(
        "package", tiny.model, "-t", "qnn-fp32", "--profile", tiny.qnn_fp32,
        "--calibration", tiny.calibration, "-o", out, "--no-speed",
    )  # fmt: skip
    assert run.rc == 12, run.err  # PackageError
    assert "target qnn-fp32: QNNExecutionProvider is installed but refused" in run.err
    assert "QNN_COMMON_ERROR" in run.err and "--keep-going" in run.err  # ORT's reason
    assert not out.exists()


@needs_qnn
def test_keep_going_records_the_refusal_and_every_command_believes_it(
    bundle: Path, capsys: Cap
) -> None:
    opened = edgeort.bundle.open_bundle(bundle)
    record = opened.variant("qnn-fp32").metadata["ep_refused"]
    assert record["ep"] == "QNNExecutionProvider" and "QNN_COMMON_ERROR" in record["reason"]
    assert opened.variant("qnn-htp").metadata.get("ep_refused") is None
    # inspect: unrunnable here, with the reason; the pick is another variant
    run = cli(capsys, "inspect", bundle)
    assert run.rc == 0
    assert "This device would pick: qnn-fp32" not in run.out
    assert "qnn-fp32: QNNExecutionProvider" in run.out and "refused this variant" in run.out
    assert "REFUSED   by QNNExecutionProvider at build time" in run.out
    # run: asked for, it is refused with the reason (NoVariantError)
    run = cli(capsys, "run", bundle, "--profile", "qnn-fp32")
    assert run.rc == 10 and "refused this variant" in run.err and "QNN_COMMON_ERROR" in run.err
    # doctor: a problem, with ORT's reason
    run = cli(capsys, "doctor", bundle, "--no-run", "--json")
    assert run.rc == 0
    refused = [f for f in json.loads(run.out)["findings"] if f["check"] == "ep-refused"]
    assert refused and refused[0]["severity"] == "problem" and refused[0]["status"] == "found"
    assert [f["target"].split(" on ")[0] for f in refused] == ["qnn-fp32"]
    assert "QNN_COMMON_ERROR" in refused[0]["title"]


@needs_qnn
def test_doctor_on_the_model_reports_qnn_refusing_it_as_a_problem(tiny: Tiny, capsys: Cap) -> None:
    # The tiny model with an op no EP has: ORT refuses the QNN session (a real refusal;
    # the simulator, emulating an SM8650, takes the fp32 tiny model itself).
    import onnx

    proto = onnx.load(str(tiny.model))
    last = proto.graph.node[-1]
    out_name = last.output[0]
    last.output[0] = f"{out_name}_pre"
    proto.graph.node.append(
        onnx.helper.make_node("Mystery", [last.output[0]], [out_name], domain="com.example")
    )
    proto.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    model = tiny.folder / "mystery.onnx"
    onnx.save(proto, str(model))
    run = cli(capsys, "doctor", model, "--no-run")
    assert run.rc == 0
    line = next(x for x in run.out.splitlines() if "ep-refused" in x and " on qnn:" in x)
    assert line.startswith(
        "[!!] ep-refused: mystery.onnx on qnn: QNNExecutionProvider is installed"
    )
    assert "Mystery" in line and "no problems found" not in run.out


def test_keep_going_leaves_out_a_failing_target_and_lists_it(
    tiny: Tiny, tmp_path: Path, capsys: Cap
) -> None:
    strict = tmp_path / "strict.toml"  # int8 only, no fallback, no drop allowed: fails
    strict.write_text(
        '[profile]\nname = "cpu-strict"\nextends = "cpu-x86-64"\ndefault = false\n'
        '[[model.recipes.default]]\nprecision = "int8"\nmode = "dynamic"\n'
        "[verify]\nmax_drop = 0.0\nfallback = []\n"
    )
    out = tmp_path / "k.ortpackage"
    args = ["package", tiny.model, "-t", "cpu-strict", "-t", "cpu", "--profile", strict,
            "--calibration", tiny.calibration, "-o", out, "--no-speed"]  # fmt: skip
    run = cli(capsys, *args)
    assert run.rc == 12 and "target cpu-strict" in run.err and not out.exists()
    run = cli(capsys, *args, "--keep-going")
    assert run.rc == 0, run.err
    assert "target cpu-strict left out (--keep-going)" in run.out
    opened = edgeort.bundle.open_bundle(out)
    assert [v.profile for v in opened.variants] == ["cpu-x86-64-vnni"] or len(opened.variants) == 1
    assert opened.metadata["failed_targets"][0]["target"] == "cpu-strict"
    assert "Left out     cpu-strict" in cli(capsys, "inspect", out).out


@needs_qnn
def test_bench_label_follows_the_measured_placement(tiny: Tiny, capsys: Cap) -> None:
    run = cli(capsys, "bench", tiny.model, "--ep", "QNNExecutionProvider", "--runs", "3", "--json")
    assert run.rc == 0, run.err
    row = json.loads(run.out)["results"][0]
    placement = row["placement"]
    assert placement, "ORT recorded no placement"
    took, total = placement.get("QNNExecutionProvider", 0), sum(placement.values())
    if took == 0:
        assert row["ep_label"].startswith("CPU (QNN (sim) took no node")
    elif took < total:
        assert f"{took}/{total} nodes" in row["ep_label"]
    else:
        assert row["ep_label"] == "QNN (sim)"
    text = cli(capsys, "bench", tiny.model, "--ep", "QNNExecutionProvider", "--runs", "3").out
    assert row["ep_label"] in text


@needs_qnn
def test_inspect_gives_the_real_reason_latency_was_not_measured(bundle: Path, capsys: Cap) -> None:
    run = cli(capsys, "inspect", bundle)
    assert "EP absent at build time" not in run.out
    assert "latency   not measured (QNNExecutionProvider runs in simulation here)" in run.out
    assert "latency   not measured (speed measurement off)" in run.out  # cpu, --no-speed


def test_package_json_names_calibration_data_as_such(
    tiny: Tiny, tmp_path: Path, capsys: Cap
) -> None:
    out = tmp_path / "c.ortpackage"
    run = cli(capsys, "package", tiny.model, "-t", "cpu", "--calibration", tiny.calibration,
              "-o", out, "--no-speed", "--json")  # fmt: skip
    assert run.rc == 0, run.err
    result = json.loads(run.out.splitlines()[-1])["result"]
    accuracy = result["variants"][0]["accuracy"]
    assert accuracy["data"] == "calibration" == accuracy["data_source"] == result["data"]
    assert edgeort.bundle.open_bundle(out).variants[0].metadata["accuracy"]["data"] == (
        "calibration"
    )


def test_nnapi_install_hint_matches_packaging_readme(capsys: Cap) -> None:
    readme = (REPO / "packaging" / "README.md").read_text()
    nnapi_row = next(line for line in readme.splitlines() if "`NnapiExecutionProvider`" in line)
    assert "no Python wheel exists" in nnapi_row
    run = cli(capsys, "probe")
    nnapi = [line for line in run.out.splitlines() if "NnapiExecutionProvider is not" in line]
    assert nnapi and all("no Python wheel exists" in line for line in nnapi)
    assert "pip package onnxruntime-android" not in run.out


def test_profiles_show_qnn_lists_no_weight_only_fields(capsys: Cap) -> None:
    run = cli(capsys, "profiles", "show", "qnn-htp")
    assert run.rc == 0 and 'precision = "w8a16"' in run.out
    assert "bits" not in run.out and "block_size" not in run.out


def test_fixed_shape_notes_name_every_input(tiny: Tiny, tmp_path: Path, capsys: Cap) -> None:
    run = cli(capsys, "package", tiny.model, "-t", "nnapi", "--calibration", tiny.calibration,
              "-o", tmp_path / "n.ortpackage", "--no-speed")  # fmt: skip
    assert run.rc == 0, run.err
    assert "input 'feats': dynamic batch dimension set to 1" in run.err
    assert "input 'ids': dynamic dimension(s) fixed, shape now [1, 3]" in run.err


def test_gate_decisions_are_printed_where_they_happen(
    tiny: Tiny, tmp_path: Path, capsys: Cap
) -> None:
    out = tmp_path / "g.ortpackage"
    # The tiny model reads as a classifier (top-1, which int8 keeps); the cosine metric
    # with no drop allowed makes the int8 recipe fail its gate, so a fallback runs.
    run = cli(capsys, "package", tiny.model, "-t", "cpu", "--calibration", tiny.calibration,
              "--max-drop", "0", "--metric", "cosine", "-o", out, "--no-speed",
              "--json")  # fmt: skip
    assert run.rc == 0, run.err
    events = [json.loads(x)["event"] for x in run.out.splitlines()[:-1]]
    texts = [f"{e['kind']}: {e['message']}" for e in events]
    first_fail = next(i for i, t in enumerate(texts) if t.startswith("warning: accuracy:"))
    first_fallback = next(i for i, t in enumerate(texts) if "fallback:" in t)
    assert first_fail < first_fallback, texts  # the failure shows before the fallback runs


def test_simulated_io_copies_are_information_not_a_problem() -> None:
    from edgeort.measure.doctor import DoctorReport
    from edgeort.measure.findings import Finding
    from edgeort.measure.text import format_doctor

    copies = Finding("io-copies", "found", "v", "copies 0.2 KiB (simulated here)", severity="info")
    lines = format_doctor(DoctorReport(Path("m.onnx"), "model", (copies,), {}, {}, ()))
    assert "[i] io-copies: v: copies 0.2 KiB (simulated here)" in lines
    assert lines[-1].startswith("no problems found (1 informational")


@needs_qnn
def test_io_copies_on_the_qnn_simulator_has_info_severity(bundle: Path) -> None:
    from edgeort.measure.checks_runtime import check_copies
    from edgeort.measure.targets import resolve

    target = next(t for t in resolve(bundle).targets if t.label == "qnn-htp")
    finding = check_copies(target, [])
    assert target.simulated and finding.found and finding.severity == "info"


# ---- tracebacks and wrong error classes ------------------------------------------------


def test_inconsistent_shapes_are_named(tiny: Tiny, tmp_path: Path, capsys: Cap) -> None:
    run = cli(capsys, "package", tiny.model, "-t", "nnapi", "--shape", "feats=4,6",
              "--shape", "ids=2,3", "-o", tmp_path / "x.ortpackage")  # fmt: skip
    assert run.rc == 2  # UsageError
    assert "inconsistent sizes for dimension 'batch'" in run.err
    assert "'feats' (dim 0 = 4)" in run.err and "'ids' (dim 0 = 2)" in run.err


def test_out_of_range_ids_in_calibration_data_are_a_data_error(
    tiny: Tiny, tmp_path: Path, capsys: Cap
) -> None:
    run = cli(capsys, "package", tiny.model, "-t", "cpu", "--calibration", tiny.bad_ids,
              "-o", tmp_path / "y.ortpackage")  # fmt: skip
    assert run.rc == 5  # DataError
    assert "bad.npz: input 'ids' holds index" in run.err and "valid ids are -10..9" in run.err


def test_batch_mismatch_between_inputs_is_an_input_error(
    bundle: Path, tmp_path: Path, capsys: Cap
) -> None:
    np.save(tmp_path / "f.npy", np.zeros((1, 6), np.float32))
    np.save(tmp_path / "i.npy", np.zeros((2, 3), np.int64))
    run = cli(capsys, "run", bundle, "--profile", "cpu",
              "-i", f"feats={tmp_path / 'f.npy'}", "-i", f"ids={tmp_path / 'i.npy'}")  # fmt: skip
    assert run.rc == 11  # InputError, not the provider's 9
    assert "input 'ids': dim 0 ('batch') is 2, but input 'feats' has 'batch' = 1" in run.err
    assert "[E:onnxruntime" not in run.err
    with edgeort.load(bundle, profile="cpu") as model, pytest.raises(InputError) as info:
        model.run({"feats": np.zeros((1, 6), np.float32), "ids": np.zeros((2, 3), np.int64)})
    assert info.value.input_name == "ids"


def test_a_wrong_input_name_is_named_with_the_closest_one(bundle: Path) -> None:
    with edgeort.load(bundle, profile="cpu") as model, pytest.raises(InputError) as info:
        model.run({"feat": np.zeros((1, 6), np.float32), "ids": np.zeros((1, 3), np.int64)})
    assert "unknown input 'feat' (did you mean 'feats'?)" in str(info.value)


def test_a_zip_written_with_writestr_opens(bundle: Path, tmp_path: Path) -> None:
    z = tmp_path / "rezipped.zip"
    with zipfile.ZipFile(z, "w") as zf:  # writestr(name, data): no file-type bits
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            zf.writestr(path.relative_to(bundle).as_posix(), path.read_bytes())
    assert zipfile.ZipFile(z).infolist()[0].external_attr >> 16 == 0o600
    opened = edgeort.bundle.open_bundle(z)
    assert {v.name for v in opened.variants} == {v.name for v in open_dir(bundle).variants}


def test_a_dim_typo_is_refused_with_a_suggestion(tiny: Tiny, capsys: Cap) -> None:
    run = cli(capsys, "bench", tiny.model, "--dim", "bacth=8", "--runs", "1")
    assert run.rc == 2
    assert "--dim bacth=...: the model has no dynamic dimension 'bacth'" in run.err
    assert "did you mean 'batch'?" in run.err


@needs_qnn
def test_short_names_mean_the_same_everywhere(bundle: Path, tiny: Tiny, capsys: Cap) -> None:
    run = cli(capsys, "bench", bundle, "--ep", "qnn", "--runs", "2", "--json")
    assert run.rc == 0, run.err
    assert [r["label"] for r in json.loads(run.out)["results"]] == ["qnn-htp"]
    run = cli(capsys, "bench", bundle, "--ep", "QNNExecutionProvider", "--runs", "2", "--json")
    skipped = json.loads(run.out)["skipped"]  # the refused variant is not benched
    assert "refused this variant" in skipped["qnn-fp32"]
    # profiles show cpu = what package -t cpu packages here
    shown = cli(capsys, "profiles", "show", "cpu").out.splitlines()[0]
    packaged = edgeort.bundle.open_bundle(bundle).variants[0].profile
    assert shown == f"# {packaged}: built-in"


def test_an_unknown_profile_is_a_usage_error_with_a_suggestion(bundle: Path, capsys: Cap) -> None:
    run = cli(capsys, "run", bundle, "--profile", "cpux")
    assert run.rc == 2 and "--profile 'cpux'" in run.err and "did you mean 'cpu'?" in run.err


def test_lists_follow_the_documented_rule(bundle: Path) -> None:
    with edgeort.load(bundle, profile="cpu") as model:
        out = model.run({"feats": [[0.5] * 6], "ids": [[1, 2, 3]]})  # lists take the dtype
        assert out["y"].shape == (1, 4)
        with pytest.raises(InputError, match="input 'ids': wrong dtype"):
            model.run({"feats": [[0.5] * 6], "ids": [[1.5, 2.0, 3.0]]})  # float -> int: no
        with pytest.raises(InputError, match="never casts arrays"):
            model.run({"feats": np.zeros((1, 6)), "ids": np.zeros((1, 3), np.int64)})
    assert "Python lists" in (REPO / "README.md").read_text()
