"""The lean device path of edgeort.load(): only the plugin EPs and profiles a bundle's
variants name are looked up, and the device it ranks with describes exactly that.

Import-state checks run in a fresh interpreter, so nothing another test did can hide a
lookup; results (outputs, reasons) are compared with the full probe's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import psutil
import pytest

from edgeort.hardware import CapturedSources, probe
from edgeort.hardware.plugins import plugin_ep_names
from tests.fresh import last_json
from tests.test_runtime_support import EXAMPLE, QNN_OPTIONS, fixed_batch, variant_spec

HAVE_QNN = importlib.util.find_spec("onnxruntime_qnn") is not None
DEVICES = Path(__file__).parent / "data" / "devices"
CPU = "CPUExecutionProvider"
QNN = "QNNExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
PLUGIN_MODULES = ("onnxruntime_qnn", "onnxruntime_ep_openvino")

CHILD = """
import json, sys
import numpy as np
import edgeort
from edgeort.runtime import rank_bundle
model = edgeort.load(sys.argv[1])
y = model.run({"image": np.ones((1, 1, 8, 8), np.float32)})["logits"]
import onnxruntime as ort
from edgeort.profiles import builtin_profiles
device = rank_bundle(edgeort.open_bundle(sys.argv[1])).device
print(json.dumps({
    "variant": model.variant.name,
    "y": y.tolist(),
    "reasons": model.reasons,
    "metadata_imported": "importlib.metadata" in sys.modules,
    "psutil_imported": "psutil" in sys.modules,
    "memory": [device.memory_total, device.memory_available],
    "cores": [device.physical_cores, device.logical_cores],
    "plugins_imported": sorted(m for m in PLUGIN_MODULES if m in sys.modules),
    "ep_devices": sorted({d.ep_name for d in ort.get_ep_devices()}),
    "all_profiles_loaded": builtin_profiles.cache_info().currsize > 0,
    "plugin_eps": [[p.ep_name, p.registered] for p in device.plugin_eps],
    "notes": list(device.notes),
}))
""".replace("PLUGIN_MODULES", repr(PLUGIN_MODULES))


def _bundle(tmp: Path, *, qnn: bool) -> Path:
    from edgeort.bundle import write_bundle

    model = onnx.load(EXAMPLE)
    specs = [variant_spec(tmp, "cpu", CPU, model, profile="cpu-x86-64", device="cpu")]
    if qnn:
        specs.insert(
            0,
            variant_spec(
                tmp, "qnn", QNN, fixed_batch(model), profile="qnn-htp", provider_options=QNN_OPTIONS
            ),
        )
    return write_bundle(tmp / "digits.ortpackage", specs, package_name="digits")


def _child(bundle: Path) -> dict:
    return last_json(["-c", CHILD, str(bundle)])


def _expected(x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(EXAMPLE), providers=[CPU])
    return session.run(None, {"image": x})[0]


def test_cpu_only_bundle_looks_up_no_plugin_and_reads_one_profile(tmp_path: Path) -> None:
    out = _child(_bundle(tmp_path, qnn=False))
    assert out["variant"] == "cpu"
    np.testing.assert_allclose(out["y"], _expected(np.ones((1, 1, 8, 8), np.float32)), rtol=1e-5)
    assert "profile fits" in out["reasons"]["cpu"]  # its profile was found and matched
    assert out["metadata_imported"] is False
    assert out["plugins_imported"] == []
    if sys.platform.startswith("linux"):  # counts and memory come from /proc and /sys
        assert out["psutil_imported"] is False
        assert out["cores"] == [psutil.cpu_count(logical=False), psutil.cpu_count()]
        assert out["memory"][0] == psutil.virtual_memory().total
    assert out["ep_devices"] == [CPU]  # nothing registered
    assert out["all_profiles_loaded"] is False
    assert out["plugin_eps"] == []
    assert not any("register_plugins=False" in n for n in out["notes"])
    assert any("only for the EPs asked for (CPUExecutionProvider)" in n for n in out["notes"])


def test_qnn_bundle_registers_qnn_only_and_notes_say_so(tmp_path: Path) -> None:
    out = _child(_bundle(tmp_path, qnn=True))
    assert out["metadata_imported"] is True  # plugins were looked up
    assert OPENVINO not in out["ep_devices"]
    assert [ep for ep, _ in out["plugin_eps"]] == ([QNN] if HAVE_QNN else [])
    assert not any(n.startswith(OPENVINO) for n in out["notes"])
    assert not any("register_plugins=False" in n for n in out["notes"])  # no stale note
    if HAVE_QNN:
        assert out["plugin_eps"] == [[QNN, True]] and QNN in out["ep_devices"]
        simulated = any(n.startswith(QNN) and "simulation" in n for n in out["notes"])
        assert simulated is (probe(register_plugins=False).arch == "x86_64")
        assert out["variant"] == "cpu"  # the simulated QNN ranks below the real CPU EP
        assert "simulated" in out["reasons"]["qnn"]
    else:
        assert "not installed" in out["reasons"]["qnn"]


def test_scoped_probe_lists_only_the_plugins_asked_for() -> None:
    full = probe()  # registers every installed plugin in this process
    cpu_only = probe(register_plugins=[CPU])
    assert cpu_only.plugin_eps == ()
    plugins = plugin_ep_names()
    assert not {d.ep_name for d in cpu_only.ep_devices} & plugins
    assert not set(cpu_only.ort_build_providers) & plugins
    assert cpu_only.ort_build_providers == full.ort_build_providers
    same = ("os", "arch", "cpu_model", "cpu_flags", "physical_cores", "logical_cores", "soc")
    assert all(getattr(cpu_only, f) == getattr(full, f) for f in same)
    if HAVE_QNN:
        qnn = probe(register_plugins=(QNN,))
        assert [p.ep_name for p in qnn.plugin_eps] == [QNN] and qnn.plugin_eps[0].registered
        assert qnn.ep_device_types(QNN) == full.ep_device_types(QNN)
        assert [n for n in qnn.notes if n.startswith(QNN)] == [
            n for n in full.notes if n.startswith(QNN)
        ]


def test_scoped_probe_of_a_captured_device() -> None:
    sources = CapturedSources.from_dir(DEVICES / "intel-hybrid-laptop")
    full = probe(sources=sources)
    assert OPENVINO in {p.ep_name for p in full.plugin_eps}
    scoped = probe(sources=sources, register_plugins=[CPU])
    assert scoped.plugin_eps == ()
    assert OPENVINO not in {d.ep_name for d in scoped.ep_devices}
    assert any("only for the EPs asked for" in n for n in scoped.notes)
    kept = probe(sources=sources, register_plugins=[OPENVINO])
    assert kept.plugin_eps == full.plugin_eps and kept.ep_devices == full.ep_devices
    assert probe(sources=sources, register_plugins=OPENVINO).plugin_eps == full.plugin_eps


LAZY_CHILD = """
import json, sys
import numpy as np
import edgeort
model = edgeort.load(sys.argv[1])
y = model.run({"image": np.ones((1, 1, 8, 8), np.float32)})["logits"]
import onnxruntime as ort
print(json.dumps({
    "variant": model.variant.name,
    "reasons": model.reasons,
    "metadata_imported": "importlib.metadata" in sys.modules,
    "plugins_imported": sorted(m for m in PLUGIN_MODULES if m in sys.modules),
    "ep_devices": sorted({d.ep_name for d in ort.get_ep_devices()}),
}))
""".replace("PLUGIN_MODULES", repr(PLUGIN_MODULES))


def _simulated_qnn_or_skip() -> None:
    if not HAVE_QNN:
        pytest.skip("onnxruntime-qnn is not installed")
    if probe(register_plugins=False).arch != "x86_64":
        pytest.skip("the QNN HTP backend runs simulated only on x86_64")


def test_cpu_pick_leaves_the_simulated_qnn_plugin_alone(tmp_path: Path) -> None:
    """A real CPU variant outranks a QNN variant that runs only simulated here, so load()
    neither looks up plugins (no importlib.metadata) nor registers QNN for that pick."""
    _simulated_qnn_or_skip()
    out = last_json(["-c", LAZY_CHILD, str(_bundle(tmp_path, qnn=True))])
    assert out["variant"] == "cpu"
    assert out["metadata_imported"] is False
    assert out["plugins_imported"] == []
    assert out["ep_devices"] == [CPU]
    assert "simulated" in out["reasons"]["qnn"] and "not registered yet" in out["reasons"]["qnn"]


def _broken_cpu_model() -> onnx.ModelProto:
    """The digits signature around an op no EP implements: session creation fails."""
    from onnx import TensorProto, helper

    node = helper.make_node("Nope", ["image"], ["logits"], domain="edgeort.test")
    graph = helper.make_graph(
        [node],
        "broken",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("edgeort.test", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def test_the_deferred_qnn_variant_is_registered_when_the_cpu_one_fails(tmp_path: Path) -> None:
    _simulated_qnn_or_skip()
    from edgeort.bundle import write_bundle

    model = onnx.load(EXAMPLE)
    specs = [
        variant_spec(tmp_path, "cpu", CPU, _broken_cpu_model(), profile="cpu-x86-64"),
        variant_spec(
            tmp_path,
            "qnn",
            QNN,
            fixed_batch(model),
            profile="qnn-htp",
            provider_options=QNN_OPTIONS,
        ),
    ]
    bundle = write_bundle(tmp_path / "b.ortpackage", specs, package_name="b")
    out = last_json(["-c", LAZY_CHILD, str(bundle)])
    assert out["variant"] == "qnn"
    assert out["reasons"]["cpu"].startswith("failed:")
    assert out["reasons"]["qnn"].startswith("picked:") and "available" in out["reasons"]["qnn"]
    assert QNN in out["ep_devices"]
