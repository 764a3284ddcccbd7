"""A cold ``import edgeort; edgeort.load(bundle).run(feeds)`` loads only what the chosen
CPU variant needs: no build side, no zip or bundle-writing code, no platformdirs on plain
Linux, no :mod:`logging` until a record could be emitted (edgeort._log), and no
:mod:`tomllib` once the profiles' tables are cached (edgeort.profiles._parsed).

Checked in a fresh interpreter, so nothing another test imported can hide an import."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeort._log import get_logger
from tests.fresh import last_json, run_python
from tests.test_runtime_support import EXAMPLE, variant_spec

CHILD = """
import json, sys
import numpy as np
import edgeort
model = edgeort.load(sys.argv[1])
y = model.run({"image": np.ones((1, 1, 8, 8), np.float32)})["logits"]
print(json.dumps({"variant": model.variant.name, "y": y.tolist(), "modules": sorted(sys.modules)}))
"""

# Needed only by other paths: building, measuring, the CLI, zip bundles, writing bundles,
# signatures, captured devices, Model.placement(), error hints.
NOT_LOADED = (
    "edgeort.pack",
    "edgeort.measure",
    "edgeort.cli",
    "edgeort.report",
    "edgeort.farm",
    "edgeort.runtimes",
    "edgeort.bundle._zip",
    "edgeort.bundle._write",
    "edgeort.bundle._place",
    "edgeort.bundle.signing",
    "edgeort.bundle._protobuf",
    "edgeort.hardware._captured",
    "edgeort.hardware._ep_records",
    "edgeort.hardware._plugin_spec",
    "edgeort.runtime.placement",
    "onnx",
    "click",
    "zipfile",
    "tempfile",
    "shutil",
    "difflib",
    "logging",
    "threading",
    "tomllib",  # the built-in profiles' tables come from the cache (edgeort.profiles._parsed)
)


def _cpu_bundle(tmp: Path) -> Path:
    from edgeort.bundle import write_bundle

    spec = variant_spec(
        tmp, "cpu", "CPUExecutionProvider", onnx.load(EXAMPLE), profile="cpu-x86-64", device="cpu"
    )
    return write_bundle(tmp / "digits.ortpackage", [spec], package_name="digits")


def _plain_env(tmp: Path) -> dict[str, str]:
    """No EDGEORT_* directories: the cache and config dirs come from the XDG variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEORT_", "XDG_"))}
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg-config")
    env["HOME"] = str(tmp / "home")
    return env


def test_cold_load_of_a_cpu_bundle_imports_only_the_load_path(tmp_path: Path) -> None:
    bundle = _cpu_bundle(tmp_path)
    env = _plain_env(tmp_path)
    first = last_json(["-c", CHILD, str(bundle)], env=env)  # hashes, fills the cache
    out = last_json(["-c", CHILD, str(bundle)], env=env)  # verification cached
    assert first["variant"] == out["variant"] == "cpu"
    assert first["y"] == out["y"]
    # the verification cache is where platformdirs puts edgeort's cache
    assert (tmp_path / "xdg-cache" / "edgeort" / "verified.json").is_file()
    # the first load walks the model for external data, parses the profiles and writes
    # both caches
    first_needs = {"edgeort.bundle._protobuf", "tempfile", "shutil", "tomllib"}
    for run, allowed in ((first, first_needs), (out, set())):
        loaded = set(run["modules"])
        unexpected = sorted(
            m
            for m in loaded
            if any(m == n or m.startswith(n + ".") for n in NOT_LOADED if n not in allowed)
        )
        assert unexpected == []
        if sys.platform == "linux":  # plain Linux: the XDG rule, without platformdirs
            assert "platformdirs" not in loaded


def test_a_zip_bundle_still_loads_its_zip_reader(tmp_path: Path) -> None:
    from edgeort.bundle import write_bundle

    spec = variant_spec(
        tmp_path, "cpu", "CPUExecutionProvider", onnx.load(EXAMPLE), profile="cpu-x86-64"
    )
    bundle = write_bundle(tmp_path / "digits.zip", [spec], package_name="digits", zip=True)
    out = last_json(["-c", CHILD, str(bundle)], env=_plain_env(tmp_path))
    assert out["variant"] == "cpu" and "edgeort.bundle._zip" in out["modules"]


def test_lazy_logger_drops_debug_without_logging_and_warns_through_it() -> None:
    code = (
        "import sys\n"
        "from edgeort._log import get_logger\n"
        "log = get_logger('edgeort.test')\n"
        "log.debug('quiet %s', 1); log.info('quiet')\n"
        "print('logging' in sys.modules, log.isEnabledFor(20), log.isEnabledFor(30))\n"
        "log.warning('loud %s', 2)\n"
        "print('logging' in sys.modules)\n"
    )
    proc = run_python(["-c", code], cwd=None)
    assert proc.stdout.split() == ["False", "False", "True", "True"]
    assert proc.stderr.strip() == "loud 2"  # logging's last-resort handler, as before


def test_lazy_logger_records_name_level_and_the_callers_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger("edgeort.test")
    caplog.set_level(logging.DEBUG, logger="edgeort.test")
    log.debug("one %s", 1)
    line = sys._getframe().f_lineno - 1
    log.log(logging.INFO, "two")
    log.warning("three", stacklevel=1)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("edgeort.test", logging.DEBUG, "one 1"),
        ("edgeort.test", logging.INFO, "two"),
        ("edgeort.test", logging.WARNING, "three"),
    ]
    assert {Path(r.pathname).name for r in caplog.records} == {Path(__file__).name}
    assert caplog.records[0].lineno == line
    assert caplog.records[0].funcName == "test_lazy_logger_records_name_level_and_the_callers_line"
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="edgeort.test")
    log.info("dropped")
    assert caplog.records == [] and not log.isEnabledFor(logging.INFO)


def test_the_example_runs_the_same_through_edgeort(tmp_path: Path) -> None:
    import onnxruntime as ort

    out = last_json(["-c", CHILD, str(_cpu_bundle(tmp_path))], env=_plain_env(tmp_path))
    x = np.ones((1, 1, 8, 8), np.float32)
    want = ort.InferenceSession(str(EXAMPLE), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    np.testing.assert_allclose(out["y"], want[0], rtol=1e-5)
