"""Install only the runtime into a brand-new virtual environment and run a bundle there.

The environment gets exactly ``onnxruntime numpy psutil platformdirs`` (the versions this
test suite runs with, so pip's cache usually serves them) and edgeort itself with
``--no-deps``: no onnx, no click. The bundle is built here, with onnx, and only run there.
Skipped (with pip's message) only when pip reports a network error; a pin that no index
has fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from edgeort.runtimes.env import NETWORK_HINTS
from tests.conftest import REPO
from tests.test_runtime_support import digits_input, digits_reference, example_bundle

pytestmark = pytest.mark.slow

RUNTIME = ("onnxruntime", "numpy", "psutil", "platformdirs")

CHILD = """
import importlib.util, json, sys
import numpy as np
import edgeort
x = np.load(sys.argv[2])
model = edgeort.load(sys.argv[1])
out = model.run({"image": x})["logits"]
np.save(sys.argv[3], out)
print(json.dumps({
    "variant": model.variant.name,
    "providers": model.providers,
    "absent": {m: importlib.util.find_spec(m) is None for m in ("onnx", "click")},
    "loaded": sorted(m for m in ("onnx", "click") if m in sys.modules),
    "edgeort": edgeort.__file__,
}))
"""


def pip(venv_python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "--python", str(venv_python), "--disable-pip-version-check"]
    return subprocess.run(
        [*cmd, "install", "-q", *args], capture_output=True, text=True, timeout=240, check=False
    )


def require(proc: subprocess.CompletedProcess[str], what: str) -> None:
    """Pass when pip succeeded; skip on a network error; fail on anything else."""
    if proc.returncode == 0:
        return
    if any(hint in proc.stderr for hint in NETWORK_HINTS):
        pytest.skip(f"pip cannot reach a package index for {what}: {proc.stderr.strip()[-300:]}")
    raise AssertionError(f"pip install {what} failed:\n{proc.stderr}")


def test_runtime_only_venv_runs_a_bundle(tmp_path: Path) -> None:
    bundle = example_bundle(tmp_path, with_qnn=False)
    x = digits_input(2)
    np_in, np_out = tmp_path / "x.npy", tmp_path / "y.npy"
    import numpy as np

    np.save(np_in, x)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pins = [f"{name}=={metadata.version(name)}" for name in RUNTIME]
    require(pip(python, *pins), " ".join(pins))
    require(pip(python, "--no-deps", str(REPO)), "edgeort --no-deps")

    proc = subprocess.run(
        [str(python), "-c", CHILD, str(bundle), str(np_in), str(np_out)],
        cwd=tmp_path,  # not the repo: the installed copy must be used
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["absent"] == {"onnx": True, "click": True}
    assert result["loaded"] == []
    assert Path(result["edgeort"]).is_relative_to(venv)
    assert result["variant"] == "cpu"  # no OpenVINO plugin in this environment
    assert result["providers"] == ["CPUExecutionProvider"]
    np.testing.assert_allclose(np.load(np_out), digits_reference(x), rtol=1e-5, atol=1e-5)


# pip's own words (pip 24/25), as the two cases print them.
BAD_PIN = (
    "ERROR: Could not find a version that satisfies the requirement numpy==0.0.1 "
    "(from versions: 1.26.4, 2.1.3)\n"
    "ERROR: No matching distribution found for numpy==0.0.1\n"
)
OFFLINE = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
    "HTTPSConnection object at 0x7f3c>: Failed to establish a new connection: [Errno -3] "
    "Temporary failure in name resolution')': /simple/numpy/\n"
    "ERROR: Could not find a version that satisfies the requirement numpy==2.1.3 "
    "(from versions: none)\n"
    "ERROR: No matching distribution found for numpy==2.1.3\n"
)


def _failed(stderr: str) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["pip"], returncode=1, stdout="", stderr=stderr)


def test_a_bad_pin_fails_instead_of_skipping() -> None:
    try:
        require(_failed(BAD_PIN), "numpy==0.0.1")
    except pytest.skip.Exception as exc:  # would only show as a skip: make it a failure
        pytest.fail(f"a bad pin was taken for a network error and skipped: {exc}")
    except AssertionError as exc:
        assert "pip install numpy==0.0.1 failed" in str(exc)
    else:
        pytest.fail("require() let a failed pip run pass")


def test_only_a_network_error_skips() -> None:
    with pytest.raises(pytest.skip.Exception, match="cannot reach a package index"):
        require(_failed(OFFLINE), "numpy==2.1.3")
    require(subprocess.CompletedProcess(["pip"], returncode=0, stdout="", stderr=""), "x")
