"""Target runtimes for real: the classic onnxruntime-openvino 1.24.1 build in its own
environment runs the OpenVINO variant of the digits example through the worker protocol,
with edgeort.load, top-1 unchanged and no onnx/click; packaging verifies the OpenVINO
variant there. Plus the worker protocol's failure modes and the runtimes CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeort.cli import cli
from edgeort.errors import BundleError, RuntimeEnvError, UsageError
from edgeort.runtimes.client import Worker
from tests.conftest import REPO
from tests.runtimes_support import make_runtime, runtimes_env  # noqa: F401 - fixture

OV = "OpenVINOExecutionProvider"
DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module")
def openvino_runtime() -> object:
    return make_runtime("openvino")


@pytest.fixture(scope="module")
def digits_bundle(
    openvino_runtime: object, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, object]:
    """examples/digits packaged for cpu + openvino, the OpenVINO variant verified in the
    openvino runtime (named explicitly: on an Intel host the plugin could verify it)."""
    from edgeort.pack import package
    from tests.runtimes_support import RUNTIMES_DIR

    out = tmp_path_factory.mktemp("rt") / "digits.ortpackage"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEORT_RUNTIMES_DIR", str(RUNTIMES_DIR))
        result = package(
            DIGITS / "model.onnx",
            ["cpu", "openvino"],
            output=out,
            calibration=DIGITS / "calibration.npz",
            validation=DIGITS / "validation.npz",
            runtimes=["openvino"],
        )
    return out, result


def _reference_top1() -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    data = np.load(DIGITS / "validation.npz")
    session = ort.InferenceSession(str(DIGITS / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": data["image"]})[0]
    return logits.argmax(axis=1), data["__labels__"]


def test_packaging_verifies_the_openvino_variant_in_the_runtime(
    digits_bundle: tuple[Path, object],
) -> None:
    _, result = digits_bundle
    ov = next(v for v in result.variants if v.ep == OV)
    acc = ov.accuracy
    assert acc["on_ep"] == OV
    assert acc["runtime"]["name"] == "openvino"
    assert acc["runtime"]["ort_build"] == "onnxruntime-openvino"
    assert acc["runtime"]["ort_build_version"] == "1.24.1"
    assert acc["runtime"]["placement"].get(OV, 0) > 0
    assert acc["passed"] is True
    assert ov.latency is not None and ov.latency["runtime"] == "openvino"
    assert ov.latency["ort_version"] == "1.24.1" and ov.latency["ms_median"] > 0
    cpu = next(v for v in result.variants if v.ep == "CPUExecutionProvider")
    assert "runtime" not in cpu.accuracy  # runs in this process


def test_edgeort_load_in_the_runtime_runs_openvino_top1_unchanged(
    digits_bundle: tuple[Path, object], openvino_runtime: object, tmp_path: Path
) -> None:
    bundle, _ = digits_bundle
    data = np.load(DIGITS / "validation.npz")
    np.save(tmp_path / "x.npy", data["image"])
    with openvino_runtime.worker() as worker:  # type: ignore[attr-defined]
        assert worker.hello["ort_build"] == "onnxruntime-openvino"
        info = worker.call({"job": "info"})
        ranking = worker.call({"job": "doctor", "bundle": str(bundle)})
        run = worker.call(
            {
                "job": "run",
                "bundle": str(bundle),
                "providers": [OV],
                "inputs": {"image": {"npy": str(tmp_path / "x.npy"), "stacked": False}},
                "out_dir": str(tmp_path),
            }
        )
    # The classic build: the EP by name, no OrtEpDevice, no plugin.
    assert OV in info["providers"] and info["plugins"] == []
    assert not any(d.startswith(OV) for d in info["ep_devices"])
    assert info["build_devices"][OV]  # OpenVINO lists its devices (CPU)
    # The loader ranks the OpenVINO variant as usable there (by default, not only asked).
    usable = {v["variant"]: v for v in ranking["variants"]}
    assert usable["openvino-cpu"]["usable"], usable["openvino-cpu"]["reason"]
    # Picked and run on the OpenVINO EP, every node on it, top-1 as fp32.
    assert run["variant"] == "openvino-cpu"
    assert run["providers"][0] == OV
    assert set(run["placement"]) == {OV}
    top1 = np.load(run["outputs"]["logits"]).argmax(axis=1)
    ref, labels = _reference_top1()
    assert (top1 == labels).mean() == (ref == labels).mean()
    assert (top1 == ref).mean() >= 0.995
    # The runtime is a device runtime: onnx and click neither imported nor installed.
    assert run["build_side_modules"] == {"imported": [], "installed": []}
    assert info["build_side_modules"] == {"imported": [], "installed": []}


def test_bench_and_doctor_run_inside_the_runtime(
    digits_bundle: tuple[Path, object],
    runtimes_env: Path,  # noqa: F811
) -> None:
    bundle, _ = digits_bundle
    runner = CliRunner()
    res = runner.invoke(
        cli, ["bench", str(bundle), "--runtime", "openvino", "--runs", "5", "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["environment"]["ort_build"] == "onnxruntime-openvino"
    ran = {r["variant"]: r for r in report["results"]}
    assert ran["openvino-cpu"]["ep"] == OV
    assert ran["openvino-cpu"]["latency"]["runs"] == 5
    res = runner.invoke(cli, ["doctor", str(bundle), "--runtime", "openvino"])
    assert res.exit_code == 0, res.output
    assert "in runtime openvino" in res.output and "picked openvino-cpu" in res.output


def test_runtimes_list_reports_build_eps_and_health(
    openvino_runtime: object,
    runtimes_env: Path,  # noqa: F811
) -> None:
    res = CliRunner().invoke(cli, ["runtimes", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)["runtimes"]}
    row = rows["openvino"]
    assert row["health"] == "ok"
    assert row["ort_build"] == "onnxruntime-openvino" and row["onnxruntime"] == "1.24.1"
    assert OV in row["providers"]


# -- the protocol's failure modes (no network) -----------------------------------------

HELLO = 'import json; print(json.dumps({"hello": {"protocol": %d}}), flush=True)'


def test_a_crashing_worker_is_a_clear_error() -> None:
    script = HELLO % 1 + "; import sys; sys.stdin.readline(); sys.exit(3)"
    worker = Worker(sys.executable, name="crashy", command=[sys.executable, "-c", script])
    with pytest.raises(RuntimeEnvError, match=r"runtime crashy: the worker crashed .*exit code 3"):
        worker.call({"job": "info"})
    worker.close()


def test_a_hanging_worker_is_killed_after_its_timeout() -> None:
    script = HELLO % 1 + "; import time; time.sleep(120)"
    worker = Worker(sys.executable, name="stuck", command=[sys.executable, "-c", script])
    with pytest.raises(RuntimeEnvError, match=r"runtime stuck: the worker hung .*within 1 s"):
        worker.call({"job": "info"}, timeout=1)
    assert worker._proc.poll() is not None  # killed
    worker.close()


def test_stray_replies_do_not_extend_a_calls_deadline() -> None:
    # A reply to another id every 0.4 s, never the one asked for: the 1 s budget holds
    # (before, each stray reply restarted it and the call never ended).
    script = HELLO % 1 + (
        "; import json, time\nfor i in range(300):\n"
        "    print(json.dumps({'id': -1, 'ok': True}), flush=True); time.sleep(0.4)"
    )
    worker = Worker(sys.executable, name="chatty", command=[sys.executable, "-c", script])
    with pytest.raises(RuntimeEnvError, match=r"runtime chatty: the worker hung .*within 1 s"):
        worker.call({"job": "info"}, timeout=1)
    worker.close()


def test_a_worker_speaking_another_protocol_is_refused() -> None:
    script = HELLO % 99 + "; import time; time.sleep(120)"
    with pytest.raises(RuntimeEnvError, match=r"protocol 99.*speaks 1.*runtimes add old --force"):
        Worker(sys.executable, name="old", command=[sys.executable, "-c", script])


def test_a_worker_that_dies_before_its_hello_is_a_clear_error() -> None:
    script = "import sys; sys.stderr.write('boom: no module\\n'); sys.exit(1)"
    with pytest.raises(RuntimeEnvError, match=r"crashed while starting \(exit code 1\).*boom"):
        Worker(sys.executable, name="dead", command=[sys.executable, "-c", script])


def test_job_errors_come_back_as_their_own_class(tmp_path: Path) -> None:
    """A real worker (this interpreter): an unknown job is a UsageError, a missing
    bundle the loader's BundleError, and the worker keeps serving."""
    with Worker(sys.executable, name="host") as worker:
        with pytest.raises(UsageError, match="in runtime host: unknown job 'nope'"):
            worker.call({"job": "nope"})
        with pytest.raises(BundleError, match="in runtime host"):
            worker.call({"job": "run", "bundle": str(tmp_path / "missing.ortpackage")})
        assert worker.call({"job": "info"})["protocol"] == 1


def test_a_line_that_is_no_request_is_answered_as_a_usage_error() -> None:
    """The worker loop itself: a line that is not JSON, or not an object, gets a
    UsageError reply with no id, and the worker keeps serving until ``shutdown``."""
    import subprocess

    lines = 'garbage\n[1]\n{"id": 3, "job": "shutdown"}\n'
    done = subprocess.run(
        [sys.executable, "-m", "edgeort.runtimes.worker"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hello, *replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert hello["hello"]["protocol"] == 1
    errors = [r["error"] for r in replies[:2]]
    assert [(r["id"], r["ok"]) for r in replies] == [(None, False), (None, False), (3, True)]
    assert [(e["type"], e["exit_code"]) for e in errors] == [("UsageError", 2)] * 2
    assert errors[0]["message"].startswith("not JSON: ")
    assert errors[1]["message"] == "not an object"


def test_run_job_is_a_plain_function(tmp_path: Path) -> None:
    """The device farm imports the jobs: request dict in, result dict out."""
    from edgeort.runtimes.worker import handle, run_job

    info = run_job({"job": "info"})
    assert info["onnxruntime"] and "CPUExecutionProvider" in info["providers"]
    reply = handle({"id": 7, "job": "run", "bundle": str(tmp_path / "none")})
    assert reply["id"] == 7 and reply["ok"] is False
    assert reply["error"]["type"] == "BundleError" and reply["error"]["exit_code"] == 6


def test_runtimes_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEORT_RUNTIMES_DIR", str(tmp_path / "rts"))
    runner = CliRunner()
    res = runner.invoke(cli, ["runtimes", "list", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["runtimes"] == []
    res = runner.invoke(cli, ["runtimes", "add", "mine"])
    assert res.exit_code == 2 and "no built-in runtime 'mine'" in res.output
    res = runner.invoke(cli, ["runtimes", "add", "bad name!"])
    assert res.exit_code == 2 and "runtime name" in res.output
    res = runner.invoke(cli, ["runtimes", "add", "x", "-r", "onnx==1.20.0"])
    assert res.exit_code == 2 and "no onnx, no click" in res.output
    res = runner.invoke(cli, ["runtimes", "remove", "openvino"])
    assert res.exit_code == 14 and "edgeort runtimes add openvino" in res.output
    res = runner.invoke(cli, ["bench", str(DIGITS / "model.onnx"), "--runtime", "openvino"])
    assert res.exit_code == 14 and "no runtime 'openvino'" in res.output


def test_package_auto_without_a_runtime_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--runtimes auto with no runtime and no --allow-install: verified as before (plugin
    or CPU EP), nothing installed, and when OpenVINO cannot run here the event names the
    runtime to create."""
    from edgeort.pack import package

    monkeypatch.setenv("EDGEORT_RUNTIMES_DIR", str(tmp_path / "rts"))
    events = []
    result = package(
        DIGITS / "model.onnx", ["openvino"], output=tmp_path / "b.ortpackage",
        calibration=DIGITS / "calibration.npz", measure_speed=False, on_event=events.append,
    )  # fmt: skip
    assert not (tmp_path / "rts").exists()
    acc = result.variants[0].accuracy
    assert "runtime" not in acc
    said = [e.message for e in events if e.step == "runtime"]
    if acc["on_ep"] == OV:  # the plugin has a device here (Intel host)
        assert said == []
    else:
        assert any("edgeort runtimes add openvino" in m and "--allow-install" in m for m in said)


# -- the classic route, decided from a DeviceInfo (no network) -------------------------


def _classic_device(vendor: str, *, plugin: bool) -> object:
    from dataclasses import replace

    from edgeort.hardware.device import PluginEp
    from tests.test_select import device

    plugins = (PluginEp(OV, "onnxruntime-ep-openvino", "m", "/lib.so", "1.8.1", True),)
    return replace(
        device(cpu_vendor=vendor),
        ort_version="1.24.1",
        ort_build_providers=() if plugin else (OV, "CPUExecutionProvider"),
        plugin_eps=plugins if plugin else (),
    )


def test_the_loader_accepts_the_compiled_in_openvino_and_not_a_deviceless_plugin() -> None:
    from types import SimpleNamespace

    from edgeort.hardware.ep import ep_unavailable

    variant = SimpleNamespace(ep=OV, device="cpu", ep_package="onnxruntime-ep-openvino")
    assert ep_unavailable(variant, _classic_device("amd", plugin=False)) is None
    why = ep_unavailable(variant, _classic_device("amd", plugin=True))
    assert why is not None and "reports no device" in why


def test_probe_notes_name_the_alternative_and_label_unsupported_runs() -> None:
    from edgeort.hardware._ort import OrtState, ort_notes
    from edgeort.hardware.device import PluginEp
    from edgeort.hardware.ep import support_note

    plugin = PluginEp(OV, "onnxruntime-ep-openvino", "m", "/lib.so", "1.8.1", True)
    no_device = OrtState("1.32.0", ("CPUExecutionProvider",), (plugin,), ())
    notes = ort_notes(no_device, arch="x86_64", cpu_vendor="amd", accelerators=())
    assert any(
        "reports no OrtEpDevice" in n and "edgeort runtimes add openvino" in n for n in notes
    )
    classic = OrtState("1.24.1", (OV, "CPUExecutionProvider"), (), ())
    on_amd = ort_notes(classic, arch="x86_64", cpu_vendor="amd", accelerators=())
    assert on_amd == [
        f"{OV} is compiled into this onnxruntime build (onnxruntime-openvino): registered by "
        "name, no OrtEpDevice; it runs the OpenVINO profiles (OpenVINO on AMD, not officially "
        "supported by Intel)"
    ]
    on_intel = ort_notes(classic, arch="x86_64", cpu_vendor="intel", accelerators=())
    assert len(on_intel) == 1 and "not officially supported" not in on_intel[0]
    assert support_note("CPUExecutionProvider", "amd") is None


def test_openvino_profiles_name_the_classic_package() -> None:
    from edgeort.profiles import builtin_profiles

    ov = [p for p in builtin_profiles() if p.runtime.ep == OV]
    assert ov and all(p.runtime.alternative_packages == ("onnxruntime-openvino",) for p in ov)
    assert all(p.runtime.min_ort == "1.24.1" for p in ov)


def test_auto_picks_a_created_runtime_only_when_the_ep_cannot_run_here(
    openvino_runtime: object,
    runtimes_env: Path,  # noqa: F811
) -> None:
    from edgeort.pack.inruntime import RuntimeVerifier
    from edgeort.profiles import get_profile

    ov, cpu = get_profile("openvino-cpu"), get_profile("cpu-x86-64")
    said: list[str] = []
    auto = RuntimeVerifier(("auto",))
    picked = auto.pick(ov, False, said.append)  # the EP does not run in this process
    assert picked is not None and picked.name == "openvino" and said == []
    assert auto.pick(ov, True, said.append) is None  # it does: verified in-process
    assert auto.pick(cpu, False, said.append) is None  # the CPU EP never needs one
    assert RuntimeVerifier(("none",)).pick(ov, False, said.append) is None
    assert RuntimeVerifier(("openvino",)).pick(ov, True, said.append).name == "openvino"


def test_a_variant_verified_in_a_runtime_is_gated_with_the_users_metric(
    openvino_runtime: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime path compares with the task metric like the in-process path: here the
    user's callable, whose score (a constant) must be the one recorded."""
    from edgeort.pack import package
    from tests.runtimes_support import RUNTIMES_DIR

    monkeypatch.setenv("EDGEORT_RUNTIMES_DIR", str(RUNTIMES_DIR))
    result = package(
        DIGITS / "model.onnx",
        ["openvino"],
        output=tmp_path / "cos.ortpackage",
        calibration=DIGITS / "calibration.npz",
        validation=DIGITS / "validation.npz",
        runtimes=["openvino"],
        metric=lambda reference, outputs: 0.9990234375,
        measure_speed=False,
    )
    (ov,) = result.variants
    assert ov.accuracy["runtime"]["name"] == "openvino"
    assert ov.accuracy["value"] == 0.9990234375, ov.accuracy


def test_the_bundle_sent_to_a_runtime_records_dims_and_options_as_shipped(
    tmp_path: Path,
) -> None:
    """The one-variant bundle a target runtime verifies records a symbolic-expression
    dim as an unnamed one (the bundle writer refused the expression before) and the
    session options the shipped variant gets (``.ort``: saved runtime optimizations)."""
    from edgeort.bundle import open_bundle
    from edgeort.pack.inruntime import _one_variant_bundle
    from edgeort.pack.manifest import signature
    from edgeort.pack.write import session_options
    from edgeort.profiles import load_profiles
    from tests.models_real import make_expr_dims

    model = make_expr_dims(tmp_path)
    sig = signature(model)
    assert len(str(sig[1][0].shape[2])) > 256  # the expression
    (nnapi,) = [p for p in load_profiles() if p.name == "nnapi"]
    ort_file = tmp_path / "model.ort"
    ort_file.write_bytes(b"stand-in: only staged and digested, never loaded")
    path = _one_variant_bundle(tmp_path / "w", nnapi, ort_file, (), sig, "fp32")
    (variant,) = open_bundle(path).variants
    assert variant.outputs[0].shape == (1, 8, None)
    assert variant.inputs[0].shape == (1, 3, "height", "width")
    assert dict(variant.session_options) == session_options(nnapi, "model.ort")
    assert variant.session_options["session.enable_saved_runtime_optimizations"] == "1"
